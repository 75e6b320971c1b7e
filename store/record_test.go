package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// fillRandom sets every field of the struct v points to (recursively) to a
// random non-zero value. A field of a kind it does not know fails the test:
// the domain types gained a field the record codec must learn.
func fillRandom(t testing.TB, rng *rand.Rand, v reflect.Value, path string) {
	t.Helper()
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(randomTime(rng)))
		return
	case reflect.TypeFor[json.RawMessage]():
		v.SetBytes(randomBytes(rng, 1+rng.IntN(600)))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillRandom(t, rng, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.String:
		v.SetString(string(randomBytes(rng, 1+rng.IntN(40))))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		n := rng.Int64()
		if v.Kind() == reflect.Int {
			n = int64(rng.Int32())
		}
		if rng.IntN(2) == 0 {
			n = -n
		}
		v.SetInt(n | 1)
	case reflect.Uint16:
		v.SetUint(uint64(rng.UintN(math.MaxUint16) + 1))
	case reflect.Float64:
		f := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
		if f == 0 {
			f = 1
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			t.Fatalf("%s: a slice of %s: teach the record codecs and this test about it", path, v.Type().Elem())
		}
		n := 1 + rng.IntN(4)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fillRandom(t, rng, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		t.Fatalf("%s: a field of kind %s: teach appendRecord/decodeRecord and this test about it", path, v.Kind())
	}
}

// randomBytes includes what JSON would have mangled: invalid UTF-8, NUL.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// randomTime is a non-zero time between years 1 and 9999 as the decoder
// returns it: UTC for offset 0, Local at Local's offset, else a fixed zone.
func randomTime(rng *rand.Rand) time.Time {
	lo := time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC).Unix()
	t := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).UTC()
	switch rng.IntN(3) {
	case 1:
		off := (rng.IntN(2*14*4+1) - 14*4) * 15 * 60 // ±14 h in quarters
		if _, local := t.In(time.Local).Zone(); off != 0 && off != local {
			return t.In(time.FixedZone("", off))
		}
	case 2:
		if _, local := t.In(time.Local).Zone(); local != 0 {
			return t.In(time.Local)
		}
	}
	return t
}

func randomTicket(t testing.TB, rng *rand.Rand) *agent.Ticket {
	tk := new(agent.Ticket)
	fillRandom(t, rng, reflect.ValueOf(tk).Elem(), "Ticket")
	return tk
}

func roundTrip(t *testing.T, in *agent.Ticket) *agent.Ticket {
	t.Helper()
	b, err := appendRecord(nil, in)
	if err != nil {
		t.Fatalf("appendRecord: %v", err)
	}
	var out record
	if err := decodeRecord(b, &out); err != nil {
		t.Fatalf("decodeRecord of appendRecord's bytes: %v", err)
	}
	return &out.Ticket
}

// Every field, set to a random non-zero value, comes back equal. A field
// the codec forgot comes back zero and fails here.
func TestRecordRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		in := randomTicket(t, rng)
		if out := roundTrip(t, in); !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip %d changed the ticket:\n in %+v\nout %+v", i, in, out)
		}
	}
	// The zero ticket, and an empty body, which is stored as none.
	zero := &agent.Ticket{CreateBody: json.RawMessage{}}
	if out := roundTrip(t, zero); !reflect.DeepEqual(out, &agent.Ticket{}) {
		t.Fatalf("zero ticket came back as %+v", out)
	}
}

// The body is stored byte for byte; the JSON layout compacted it.
func TestRecordKeepsBodyVerbatim(t *testing.T) {
	body := json.RawMessage("{ \"description\" : \"Lâmpada apagada\\u00e0\",\n\t\"id\": 1 }")
	out := roundTrip(t, &agent.Ticket{Protocol: 1, State: pending, CreateBody: body})
	if !bytes.Equal(out.CreateBody, body) {
		t.Fatalf("body %q, want %q", out.CreateBody, body)
	}
}

// Times come back as the JSON layout gave them back: same instant,
// nanoseconds kept, UTC for offset 0, Local at Local's offset, otherwise a
// fixed zone of the same offset; no monotonic reading.
func TestRecordTimesAsJSON(t *testing.T) {
	base := time.Date(2026, 3, 1, 21, 10, 0, 123456789, time.UTC)
	for _, in := range []time.Time{
		{},
		base,
		time.Now(), // monotonic reading
		base.Local(),
		base.In(time.FixedZone("BRT", -3*3600)),
		base.In(time.FixedZone("", 5*3600+45*60)),
		base.In(time.FixedZone("UTC0", 0)),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		js, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var want time.Time
		if err := json.Unmarshal(js, &want); err != nil {
			t.Fatal(err)
		}
		out := roundTrip(t, &agent.Ticket{TicketDraft: agent.TicketDraft{RaisedAt: in}, State: pending})
		if !reflect.DeepEqual(out.RaisedAt, want) {
			t.Errorf("%v: came back as %v (%#v), JSON gave %v (%#v)", in, out.RaisedAt, out.RaisedAt, want, want)
		}
	}
}

// What the status API could not show as JSON is refused, as json.Marshal
// refused it in the JSON layout.
func TestRecordRefusesWhatJSONCannot(t *testing.T) {
	for name, mod := range map[string]func(*agent.Ticket){
		"NaN measurement":      func(tk *agent.Ticket) { tk.Reading.Voltage = math.NaN() },
		"infinite measurement": func(tk *agent.Ticket) { tk.Reading.SwitchCount = math.Inf(-1) },
		"year 10000":           func(tk *agent.Ticket) { tk.NextAttemptAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year -1":              func(tk *agent.Ticket) { tk.Since = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zone a day off":       func(tk *agent.Ticket) { tk.SentAt = time.Now().In(time.FixedZone("", 25*3600)) },
	} {
		t.Run(name, func(t *testing.T) {
			tk := &agent.Ticket{State: pending}
			mod(tk)
			if _, err := appendRecord(nil, tk); !errors.Is(err, ErrInvalid) {
				t.Fatalf("appendRecord: %v, want ErrInvalid", err)
			}
			if _, err := json.Marshal(tk); err == nil {
				t.Fatal("json.Marshal takes it: the refusal is not needed")
			}
		})
	}
}

// A raise the record cannot hold is refused with ErrInvalid and writes
// nothing.
func TestRaiseWithNaNRefused(t *testing.T) {
	s := openT(t, Options{})
	d := draft("LP1", agent.FaultLampFailure, s.now())
	d.Reading.Power = math.NaN()
	ok := raiseC(draft("LP2", agent.FaultLampFailure, s.now()))
	if _, err := s.ApplyChanges(t.Context(), []agent.TicketChange{ok, raiseC(d)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("raise with NaN: %v, want ErrInvalid", err)
	}
	if c, _ := s.Counts(); c[pending] != 0 || s.Stats().HighWater != 0 {
		t.Fatalf("a refused call wrote something: %v, high water %d", c, s.Stats().HighWater)
	}
	closeAndVerify(t, s)
}

// Every malformed record is an error wrapping errCorrupt, never a panic:
// every truncation, trailing bytes, an unknown format, a bad bool, time
// kind, nanosecond count or length.
func TestRecordDecodeErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	good, err := appendRecord(nil, randomTicket(t, rng))
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	for n := range len(good) {
		if err := decodeRecord(good[:n], &rec); !errors.Is(err, errCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v, want errCorrupt", n, len(good), err)
		}
	}
	minimal, err := appendRecord(nil, &agent.Ticket{})
	if err != nil {
		t.Fatal(err)
	}
	// The minimal record: [0] format, [1] nameplate length 0, [2] fault
	// length 0, [3] raised_at kind 0, [4] since kind 0, [5] fields 0,
	// [6:46] five measurements, [46] lamp_on, ...
	const raisedAt, lampOn = 3, 46
	set := func(i int, v ...byte) []byte {
		b := bytes.Clone(minimal)
		return append(b[:i], append(v, b[i+1:]...)...)
	}
	utc := func(sec int64, nsec uint64) []byte {
		b := binary.AppendVarint([]byte{timeUTC}, sec)
		return binary.AppendUvarint(b, nsec)
	}
	zeroInstant := time.Time{}.Unix()
	for name, b := range map[string][]byte{
		"trailing byte":          append(bytes.Clone(good), 0),
		"unknown format":         append([]byte{0x7f}, good[1:]...),
		"length past the end":    set(1, 0xff, 0x01),
		"unknown time kind":      set(raisedAt, 9),
		"nanoseconds ≥ 1e9":      set(raisedAt, utc(1, 1e9)...),
		"offset kind, offset 0":  set(raisedAt, append(utc(1, 0), 0)...),
		"zero instant, non-zero": set(raisedAt, utc(zeroInstant, 0)...),
		"bool 2":                 set(lampOn, 2),
		"empty":                  nil,
	} {
		if err := decodeRecord(b, &rec); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
	// The fixtures above are built on what they say they are.
	if minimal[raisedAt] != timeZero || minimal[lampOn] != 0 || decodeRecord(set(lampOn, 1), &rec) != nil || !rec.Reading.LampOn {
		t.Fatal("the offsets of the minimal record are not what this test assumes")
	}
	if err := decodeRecord(set(raisedAt, utc(1, 999999999)...), &rec); err != nil || rec.RaisedAt.Nanosecond() != 999999999 {
		t.Fatalf("a good time at raised_at: %v %v", rec.RaisedAt, err)
	}
	if err := decodeRecord(minimal, &rec); err != nil {
		t.Fatalf("minimal record: %v", err)
	}
}

// decodeRecord never panics, fails only with errCorrupt, and what it
// accepts in the binary layout is a fixed point of the codec: encoding it
// again and decoding gives the same ticket. A schema-1 JSON record may hold
// what the binary layout refuses (a zone offset of 24 h) or normalises (a
// zero instant outside UTC); once encoded, it is a fixed point too.
func FuzzDecodeRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 4 {
		b, err := appendRecord(nil, randomTicket(f, rng))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	minimal, _ := appendRecord(nil, &agent.Ticket{})
	f.Add(minimal)
	js, _ := json.Marshal(record{Ticket: agent.Ticket{Protocol: 7, State: sent, CreateBody: json.RawMessage(`{"a":1}`),
		SentAt: time.Date(2026, 3, 1, 21, 0, 0, 5, time.FixedZone("", -3*3600))}})
	f.Add(js)
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec record
		if err := decodeRecord(b, &rec); err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error not wrapping errCorrupt: %v", err)
			}
			return
		}
		again, err := appendRecord(nil, &rec.Ticket)
		if err != nil {
			if b[0] == recordBinary {
				t.Fatalf("a decoded binary record does not encode again: %v", err)
			}
			return
		}
		var rec2 record
		if err := decodeRecord(again, &rec2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if b[0] == recordBinary && !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("not a fixed point:\n%+v\n%+v", rec, rec2)
		}
		again2, err := appendRecord(nil, &rec2.Ticket)
		if err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("encoding is not stable: %v\n%x\n%x", err, again, again2)
		}
	})
}

// A file of schema 1 (JSON records) is read as it is: read-only it is left
// untouched; read-write its mark is raised to 2 (an older edge-agent then
// refuses it), its tickets read, and each is written in the binary layout
// when it next changes.
func TestOpenSchema1File(t *testing.T) {
	path := dbPath(t)
	s := openT(t, Options{Path: path})
	a := mustRaise(t, s, "LP1", agent.FaultLampFailure)
	b := mustRaise(t, s, "LP2", agent.FaultLampFailure)
	mustUpdate(t, s, b.Protocol, func(t *agent.Ticket) { t.State, t.SentAt, t.IDDemanda = sent, time.Now(), 99 })
	want, err := s.ListTickets(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite it as schema 1 wrote it.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bktTickets)
		recs := map[string][]byte{}
		if err := tb.ForEach(func(k, v []byte) error {
			var rec record
			if err := decodeRecord(v, &rec); err != nil {
				return err
			}
			js, err := json.Marshal(rec)
			recs[string(k)] = js
			return err
		}); err != nil {
			return err
		}
		for k, v := range recs {
			if err := tb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bktMeta).Put(metaSchema, u64(1))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	schema := func(s *Store) uint64 {
		var v uint64
		if err := s.db.View(func(tx *bolt.Tx) error { v = u64Decode(tx.Bucket(bktMeta).Get(metaSchema)); return nil }); err != nil {
			t.Fatal(err)
		}
		return v
	}

	before := fileBytes(t, path)
	ro := openT(t, Options{Path: path, ReadOnly: true})
	if got, err := ro.ListTickets(Filter{}); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read-only, schema 1: %v\n got %+v\nwant %+v", err, got, want)
	}
	if schema(ro) != 1 {
		t.Fatal("read-only open changed the schema mark")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fileBytes(t, path), before) {
		t.Fatal("read-only open changed the file")
	}

	rw := openT(t, Options{Path: path})
	if schema(rw) != schemaVersion {
		t.Fatalf("schema mark %d after a read-write open, want %d", schema(rw), schemaVersion)
	}
	if got, err := rw.ListTickets(Filter{}); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read-write, schema 1 records: %v\n got %+v\nwant %+v", err, got, want)
	}
	mustUpdate(t, rw, a.Protocol, func(t *agent.Ticket) { t.Attempts = 1 })
	if raw := rawTicket(t, rw, a.Protocol); raw[0] != recordBinary {
		t.Fatalf("an updated ticket is still stored as %q...", raw[:1])
	}
	if raw := rawTicket(t, rw, b.Protocol); raw[0] != '{' {
		t.Fatalf("an untouched ticket was rewritten: %q...", raw[:1])
	}
	if c := mustRaise(t, rw, "LP3", agent.FaultLampFailure); c.Protocol != b.Protocol+1 {
		t.Fatalf("numbering went on at %d, want %d", c.Protocol, b.Protocol+1)
	}
	closeAndVerify(t, rw)
}
