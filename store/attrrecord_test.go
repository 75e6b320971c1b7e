package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

func attrRoundTrip(t *testing.T, rec attrRecord) attrRecord {
	t.Helper()
	b, err := appendAttrRecord(nil, &rec)
	if err != nil {
		t.Fatalf("appendAttrRecord: %v", err)
	}
	out, err := decodeAttrRecord(rec.Attributes.Nameplate, b)
	if err != nil {
		t.Fatalf("decodeAttrRecord of appendAttrRecord's bytes: %v", err)
	}
	return out
}

// Every field, set to a random non-zero value, comes back equal; so do the
// detector's attributes, the zero record, and nil and empty fault lists
// (JSON kept them apart too).
func TestAttrRecordRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 500 {
		rec := attrRecord{Version: rng.Uint64(), Dirty: i%2 == 0}
		fillRandom(t, rng, reflect.ValueOf(&rec.Attributes).Elem(), "DeviceAttributes")
		if i%3 == 0 {
			rec.Attributes.ActiveFaults[0] = attrFaults[rng.IntN(len(attrFaults))]
		}
		if out := attrRoundTrip(t, rec); !reflect.DeepEqual(out, rec) {
			t.Fatalf("round trip %d changed the record:\n in %+v\nout %+v", i, rec, out)
		}
	}
	for i := range 2000 {
		rec := attrRecord{Attributes: realAttrs(rng, i), Version: uint64(i), Dirty: i%2 == 1}
		if out := attrRoundTrip(t, rec); !reflect.DeepEqual(out, rec) {
			t.Fatalf("round trip of real attributes %d:\n in %+v\nout %+v", i, rec, out)
		}
	}
	for name, a := range map[string]agent.DeviceAttributes{
		"zero":                {Nameplate: "IP1"},
		"empty faults":        {Nameplate: "IP1", ActiveFaults: []string{}},
		"negative zero":       {Nameplate: "IP1", Reading: agent.Reading{Voltage: math.Copysign(0, -1)}},
		"every known fault":   {Nameplate: "IP1", ActiveFaults: attrFaults[:]},
		"an empty fault name": {Nameplate: "IP1", ActiveFaults: []string{""}},
	} {
		rec := attrRecord{Attributes: a}
		out := attrRoundTrip(t, rec)
		if !reflect.DeepEqual(out, rec) || math.Signbit(out.Attributes.Reading.Voltage) != math.Signbit(a.Reading.Voltage) {
			t.Errorf("%s: came back as %+v", name, out)
		}
	}
}

// Known fault names are the agent's (CONTRACT §4): a code stands for the
// name the contract fixes.
func TestAttrFaultCodes(t *testing.T) {
	want := []string{agent.FaultLampFailure, agent.FaultLampUnexpectedOn, agent.FaultSupplyVoltageTooHigh,
		agent.FaultSupplyVoltageTooLow, agent.FaultPowerFactorTooLow, agent.FaultLampPowerTooHigh,
		agent.FaultCyclingFailure, agent.FaultCommunicationFailure}
	if !reflect.DeepEqual(attrFaults[:], want) {
		t.Fatalf("attrFaults %v, want the agent's fault names %v in this order", attrFaults, want)
	}
}

func encodeNumber(v float64) []byte {
	e := recordEncoder{}
	e.number("v", v)
	return e.b
}

// Numbers come back bit for bit, short when they are short decimals.
func TestAttrNumbers(t *testing.T) {
	for _, c := range []struct {
		v    float64
		size int
	}{
		{0, 1}, {1e-6, 1}, {0.96, 2}, {0.42, 2}, {88.1, 2}, {100, 2}, {221.4, 3}, {1234.5, 3}, {10234, 3},
		{12345.68, 4}, {-19.7472, 4}, {-47.938123, 5},
		{maxExactInt - 1, 9}, // the largest mantissa: as long as raw, still exact
		{math.Copysign(0, -1), 9}, {1e-9, 9}, {1.0 / 3, 9}, {0.30000000000000004, 9}, {maxExactInt, 9},
		{math.MaxFloat64, 9}, {-math.MaxFloat64, 9}, {math.SmallestNonzeroFloat64, 9}, {1e300, 9},
	} {
		b := encodeNumber(c.v)
		d := recordDecoder{b: b}
		got := d.number("v")
		if d.err != nil || len(d.b) != 0 || math.Float64bits(got) != math.Float64bits(c.v) {
			t.Errorf("%v: came back as %v (%v, %d bytes left)", c.v, got, d.err, len(d.b))
		}
		if len(b) != c.size {
			t.Errorf("%v: %d bytes, want %d", c.v, len(b), c.size)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	check := func(v float64) {
		d := recordDecoder{b: encodeNumber(v)}
		if got := d.number("v"); d.err != nil || math.Float64bits(got) != math.Float64bits(v) {
			t.Fatalf("%v (%#x): came back as %v (%v)", v, math.Float64bits(v), got, d.err)
		}
	}
	for range 100_000 {
		// What the detector hands out (7 significant digits, any scale),
		// and any finite float64.
		check(viaFloat32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))))
		if f := math.Float64frombits(rng.Uint64()); !math.IsNaN(f) && !math.IsInf(f, 0) {
			check(f)
		}
	}
	// The measurements of lightsim's fleet, as the detector hands them out.
	total, n := 0, 0
	for i := range 10_000 {
		r := realAttrs(rng, i).Reading
		for _, v := range []float64{r.Voltage, r.Current, r.Power, r.PowerFactor, r.Energy, r.Dim, r.Lux,
			r.Temperature, r.BurnHours, r.SwitchCount} {
			check(v)
			total += len(encodeNumber(v))
			n++
		}
	}
	if avg := float64(total) / float64(n); avg > 3 {
		t.Errorf("real measurements take %.2f bytes on average, want at most 3 (9 raw)", avg)
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := recordEncoder{}
		if e.number("voltage", v); !errors.Is(e.err, ErrInvalid) {
			t.Errorf("%v: %v, want ErrInvalid", v, e.err)
		}
	}
}

// Every malformed record, and every form the encoder does not write, is an
// error wrapping errCorrupt, never a panic.
func TestAttrRecordDecodeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	good, err := appendAttrRecord(nil, &attrRecord{Attributes: realAttrs(rng, 0), Version: 77, Dirty: true})
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if _, err := decodeAttrRecord("IP1", good[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v, want errCorrupt", n, len(good), err)
		}
	}
	minimal, err := appendAttrRecord(nil, &attrRecord{Version: 5})
	if err != nil {
		t.Fatal(err)
	}
	// The minimal record: [0] format, [1] dirty, [2] version, [3] flags,
	// [4] fields, [5:15] ten numbers, [15] last_seen kind, [16] faults.
	const dirty, flags, fields, voltage, faults = 1, 3, 4, 5, 16
	set := func(i int, v ...byte) []byte {
		b := bytes.Clone(minimal)
		return append(b[:i], append(v, b[i+1:]...)...)
	}
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	zz := func(m int64) uint64 { return uint64(m<<1) ^ uint64(m>>63) }
	raw := func(v float64) []byte { return binary.LittleEndian.AppendUint64([]byte{numRaw}, math.Float64bits(v)) }
	str := func(s string) []byte { return append(uv(uint64(len(s))), s...) }
	for name, b := range map[string][]byte{
		"empty":                          nil,
		"unknown format":                 append([]byte{0x7f}, good[1:]...),
		"trailing byte":                  append(bytes.Clone(good), 0),
		"dirty 2":                        set(dirty, 2),
		"unknown flag bit":               set(flags, 4),
		"fields beyond 16 bits":          set(fields, uv(1<<16)...),
		"number tag 15":                  set(voltage, 15),
		"mantissa 2^53":                  set(voltage, uv(zz(maxExactInt)<<3)...),
		"1 written as 10/10":             set(voltage, uv(zz(10)<<3|1)...),
		"0 written as 0/10":              set(voltage, 1),
		"221.4 written raw":              set(voltage, raw(221.4)...),
		"NaN":                            set(voltage, raw(math.NaN())...),
		"infinity":                       set(voltage, raw(math.Inf(-1))...),
		"raw number cut short":           set(voltage, numRaw, 1, 2),
		"a known fault spelt out":        set(faults, append([]byte{2, 0}, str(agent.FaultLampFailure)...)...),
		"fault code 9":                   set(faults, 2, 9),
		"more faults than bytes":         set(faults, 0xff, 0xff, 0xff, 0x0f),
		"fault name past the end":        set(faults, 2, 0, 5, 'a'),
		"JSON, cut":                      []byte(`{"attributes":{"nameplate_num":"IP1"`),
		"JSON, attributes not an object": []byte(`{"attributes":1,"version":1}`),
		"JSON, no attributes":            []byte(`{"version":1}`),
		"JSON, fields beyond 16 bits":    []byte(`{"attributes":{"reading":{"fields":65536}}}`),
	} {
		if _, err := decodeAttrRecord("IP1", b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
	// The fixtures above are built on what they say they are.
	for name, c := range map[string]struct {
		b  []byte
		ok func(a agent.DeviceAttributes) bool
	}{
		"minimal":      {minimal, func(a agent.DeviceAttributes) bool { return a.ActiveFaults == nil }},
		"flags":        {set(flags, attrOnline|attrLampOn), func(a agent.DeviceAttributes) bool { return a.Online && a.Reading.LampOn }},
		"fields":       {set(fields, uv(1<<16-1)...), func(a agent.DeviceAttributes) bool { return a.Reading.Fields == 1<<16-1 }},
		"voltage 22.5": {set(voltage, uv(zz(225)<<3|1)...), func(a agent.DeviceAttributes) bool { return a.Reading.Voltage == 22.5 }},
		"voltage -0":   {set(voltage, raw(math.Copysign(0, -1))...), func(a agent.DeviceAttributes) bool { return math.Signbit(a.Reading.Voltage) }},
		"faults": {set(faults, append([]byte{3, 1, 0}, str("relayStuck")...)...), func(a agent.DeviceAttributes) bool {
			return reflect.DeepEqual(a.ActiveFaults, []string{agent.FaultLampFailure, "relayStuck"})
		}},
	} {
		rec, err := decodeAttrRecord("IP1", c.b)
		if err != nil || !c.ok(rec.Attributes) || rec.Version != 5 || rec.Attributes.Nameplate != "IP1" {
			t.Errorf("%s: the fixture does not decode as this test assumes: %+v %v", name, rec, err)
		}
	}
}

// decodeAttrRecord never panics, fails only with errCorrupt, and a binary
// record it accepts is exactly what the encoder writes for what it
// decoded. A JSON record (schemas 1 and 2) may hold what the binary layout
// refuses; once encoded, it is a fixed point.
func FuzzDecodeAttrRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(13, 14))
	for i := range 4 {
		b, err := appendAttrRecord(nil, &attrRecord{Attributes: realAttrs(rng, i*50), Version: uint64(i), Dirty: i%2 == 0})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var random attrRecord
	fillRandom(f, rng, reflect.ValueOf(&random.Attributes).Elem(), "DeviceAttributes")
	b, err := appendAttrRecord(nil, &random)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	minimal, _ := appendAttrRecord(nil, &attrRecord{})
	f.Add(minimal)
	inner, _ := json.Marshal(realAttrs(rng, 0))
	js, _ := json.Marshal(jsonAttrRecord{Attributes: inner, Version: 3, Dirty: true})
	f.Add(js)
	f.Add([]byte(`{"attributes":{"nameplate_num":"x","last_seen":"2026-03-01T21:00:00+23:59","active_faults":null},"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeAttrRecord("IP1", b)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error not wrapping errCorrupt: %v", err)
			}
			return
		}
		again, err := appendAttrRecord(nil, &rec)
		if err != nil {
			if b[0] == attrBinary {
				t.Fatalf("a decoded binary record does not encode again: %v", err)
			}
			return
		}
		if b[0] == attrBinary && !bytes.Equal(again, b) {
			t.Fatalf("accepted a form the encoder does not write:\n%x\n%x", b, again)
		}
		rec2, err := decodeAttrRecord("IP1", again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b[0] == attrBinary && !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("not a fixed point:\n%+v\n%+v", rec, rec2)
		}
		again2, err := appendAttrRecord(nil, &rec2)
		if err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("encoding is not stable: %v\n%x\n%x", err, again, again2)
		}
	})
}

func rawAttr(t testing.TB, s *Store, name string) []byte {
	t.Helper()
	var v []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bktAttrs).Get([]byte(name)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// Through the store: many different devices in one batch each come back
// as written (bbolt keeps each value until commit: a shared buffer would
// show here), stored compactly.
func TestAttributesStoredCompact(t *testing.T) {
	s := openT(t, Options{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 16))
	var all []agent.DeviceAttributes
	for i := range 1000 {
		all = append(all, realAttrs(rng, i))
	}
	for i := 0; i < len(all); i += 500 {
		if err := s.PutAttributes(ctx, all[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, a := range all {
		rec, ok, err := s.Attributes(a.Nameplate)
		if err != nil || !ok || !reflect.DeepEqual(rec.Attributes, a) || rec.Version != uint64(i+1) {
			t.Fatalf("%s: %+v %v %v\nwant %+v version %d", a.Nameplate, rec, ok, err, a, i+1)
		}
		raw := rawAttr(t, s, a.Nameplate)
		if raw[0] != attrBinary || len(raw) > 64 {
			t.Fatalf("%s stored as %d bytes (format %#x): want a binary record of at most 64", a.Nameplate, len(raw), raw[0])
		}
		total += len(raw)
	}
	// About 40 bytes a device (the JSON records were 300–400).
	if avg := float64(total) / float64(len(all)); avg > 48 {
		t.Errorf("records of %.1f bytes on average, want at most 48", avg)
	}
	closeAndVerify(t, s)
}

// A stored record that cannot be read is replaced by the next write of
// its device; until then reading it is an error, as before.
func TestAttributesUnreadableReplaced(t *testing.T) {
	s := openT(t, Options{})
	ctx := context.Background()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktAttrs).Put([]byte("IP1"), []byte{attrBinary, 1, 9, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Attributes("IP1"); !errors.Is(err, errCorrupt) {
		t.Fatalf("unreadable record: %v, want errCorrupt", err)
	}
	a := agent.DeviceAttributes{Nameplate: "IP1", Online: true, ActiveFaults: []string{}}
	if err := s.PutAttributes(ctx, []agent.DeviceAttributes{a}); err != nil {
		t.Fatal(err)
	}
	dirty, err := s.DirtyAttributes(0)
	if err != nil || len(dirty) != 1 || !reflect.DeepEqual(dirty[0].Attributes, a) {
		t.Fatalf("after the write: %+v %v", dirty, err)
	}
	closeAndVerify(t, s)
}

// A file written by the store of schema 2 (commit 65210b7, JSON attribute
// records; testdata/schema2-attrs.go.txt made it): read-only it is read as
// it is and left untouched; read-write its mark is raised to 3, its
// records read, and each is written in the binary layout when next written
// — an unchanged one keeping its version and dirty flag (no resend), a
// changed one with a new version.
func TestOpenSchema2AttributesFile(t *testing.T) {
	path := dbPath(t)
	gz, err := os.Open("testdata/schema2-attrs.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	seen := time.Date(2026, 12, 4, 21, 10, 0, 0, time.UTC)
	all := agent.FieldVoltage | agent.FieldCurrent | agent.FieldPower | agent.FieldPowerFactor | agent.FieldEnergy |
		agent.FieldLampOn | agent.FieldDim | agent.FieldLux | agent.FieldTemperature | agent.FieldBurnHours | agent.FieldSwitchCount
	a := agent.DeviceAttributes{Nameplate: "IP00001", Online: true, LastSeen: seen, ActiveFaults: []string{},
		Reading: agent.Reading{Fields: all, Voltage: 221.4, Current: 0.42, Power: 88.1, PowerFactor: 0.96, Energy: 1234.5,
			LampOn: true, Dim: 100, Lux: 2.1, Temperature: 38.5, BurnHours: 10234, SwitchCount: 5531}}
	b := agent.DeviceAttributes{Nameplate: "IP00002", LastSeen: seen.Add(-20 * time.Minute),
		ActiveFaults: []string{"communicationFailure", "lampFailure"},
		Reading:      agent.Reading{Fields: agent.FieldVoltage | agent.FieldLampOn, Voltage: 198.7}}
	c := agent.DeviceAttributes{Nameplate: "IP00003"}
	d := agent.DeviceAttributes{Nameplate: "LP-9.x_Z", LastSeen: seen.Add(time.Second),
		ActiveFaults: []string{"relayStuck", "supplyVoltageTooHigh"},
		Reading: agent.Reading{Fields: agent.FieldTemperature | agent.FieldEnergy | agent.FieldCurrent,
			Temperature: -12.25, Energy: 0.3, Current: 1e-9, Power: math.MaxFloat64}}
	want := map[string]agent.AttributeRecord{"IP00001": {Attributes: a, Version: 1}, "IP00002": {Attributes: b, Version: 2},
		"IP00003": {Attributes: c, Version: 3}, "LP-9.x_Z": {Attributes: d, Version: 5}}
	wantDirty := []agent.AttributeRecord{want["IP00002"], want["IP00003"], want["LP-9.x_Z"]}
	check := func(s *Store, what string) {
		t.Helper()
		for name, w := range want {
			got, ok, err := s.Attributes(name)
			if err != nil || !ok || !reflect.DeepEqual(got, w) {
				t.Fatalf("%s: %s: %+v %v %v\nwant %+v", what, name, got, ok, err, w)
			}
		}
		if got, err := s.DirtyAttributes(0); err != nil || !reflect.DeepEqual(got, wantDirty) {
			t.Fatalf("%s: dirty %+v %v\nwant %+v", what, got, err, wantDirty)
		}
	}
	schema := func(s *Store) uint64 {
		var v uint64
		if err := s.db.View(func(tx *bolt.Tx) error { v = u64Decode(tx.Bucket(bktMeta).Get(metaSchema)); return nil }); err != nil {
			t.Fatal(err)
		}
		return v
	}

	ro := openT(t, Options{Path: path, ReadOnly: true})
	if schema(ro) != 2 {
		t.Fatalf("the fixture has schema %d, want 2", schema(ro))
	}
	check(ro, "read-only")
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fileBytes(t, path), data) {
		t.Fatal("read-only open changed the file")
	}

	rw := openT(t, Options{Path: path})
	if schema(rw) != schemaVersion {
		t.Fatalf("schema mark %d after a read-write open, want %d", schema(rw), schemaVersion)
	}
	check(rw, "read-write")
	for name := range want {
		if raw := rawAttr(t, rw, name); raw[0] != '{' {
			t.Fatalf("%s was rewritten by opening: %q...", name, raw[:1])
		}
	}
	ctx := context.Background()
	// Unchanged writes of a clean and a dirty record: the layout changes,
	// nothing else.
	if err := rw.PutAttributes(ctx, []agent.DeviceAttributes{a, b}); err != nil {
		t.Fatal(err)
	}
	// A changed device: a new version after the file's last (5).
	c2 := c
	c2.Online = true
	if err := rw.PutAttributes(ctx, []agent.DeviceAttributes{c2}); err != nil {
		t.Fatal(err)
	}
	want["IP00003"] = agent.AttributeRecord{Attributes: c2, Version: 6}
	wantDirty[1] = want["IP00003"]
	check(rw, "after writes")
	// Synced at its version: the JSON record is rewritten clean, in binary.
	if err := rw.MarkAttributesSynced(ctx, []agent.AttributeRecord{want["LP-9.x_Z"]}); err != nil {
		t.Fatal(err)
	}
	wantDirty = wantDirty[:2]
	check(rw, "after sync")
	for _, name := range []string{"IP00001", "IP00002", "IP00003", "LP-9.x_Z"} {
		if raw := rawAttr(t, rw, name); raw[0] != attrBinary {
			t.Fatalf("%s still stored as %q...", name, raw[:1])
		}
	}
	closeAndVerify(t, rw)
	rw = openT(t, Options{Path: path})
	check(rw, "reopened")
	closeAndVerify(t, rw)
}
