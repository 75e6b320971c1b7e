package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/edge-agent/edge-agent/agent"
)

// The attribute record codec.
//
// Every device has one attribute record, rewritten at each attribute round
// in which it changed, so that at 100,000 devices the records are most of
// the file and of what the agent maps of it. Schema 2 stored each as JSON
// holding the JSON of agent.DeviceAttributes (300–400 bytes, the nameplate
// twice); this layout is about 40 bytes. The nameplate is the key and is not
// repeated. A record is
//
//	byte     attrBinary
//	byte     dirty: 0 or 1
//	uvarint  version (the store-wide counter of attrs.go)
//	-- the attributes: an unchanged write is found by comparing these bytes --
//	byte     bit 0 online, bit 1 lamp_on; the other bits 0
//	uvarint  the reading's fields (agent.Field)
//	number   voltage, current, power, power_factor, energy, dim, lux,
//	         temperature, burn_hours, switch_count (each, set or not)
//	time     last_seen, as in record.go
//	uvarint  active faults: 0 for none (nil), else their count + 1; then
//	         each as a uvarint code: k ≥ 1 the known name attrFaults[k-1],
//	         0 a string (uvarint length, bytes) follows
//
// and nothing after. A number is exact, never rounded: the API is sent the
// float64 the detector gave, as the JSON layout kept it. It is a uvarint
// t: t = zigzag(m)<<3 | e with e in 0–6 for the value m/10^e (|m| < 2^53);
// t = 7 for the value's 8 IEEE 754 bytes, little endian, following. The
// encoder takes the smallest e whose m/10^e gives back exactly the same
// float64 (dividing two exactly representable numbers is correctly rounded
// on every platform, so the decoder's m/10^e is that same float64), and the
// raw bytes when none does (-0, 1e-9, a value of more than 15 digits).
// The detector keeps measurements as float32 and hands them out as their
// shortest decimal (221.4, 0.96, 12345.68): 2–4 bytes each, 1 for 0.
// float32 storage would round-trip only values that passed through the
// detector, and would take 4; this holds any float64.
//
// The decoder accepts exactly what the encoder writes: it decodes, encodes
// again and compares the bytes, so that a stored record has one form (and
// an unchanged write is recognised by its bytes). It never panics
// (FuzzDecodeAttrRecord). Records of schemas 1 and 2 are JSON (first byte
// '{') and are still read; any record written again is written in this
// layout.
//
// Every field of agent.DeviceAttributes must be here: TestAttrRecordRoundTrip
// fills every field by reflection and fails on one the codec drops.

// attrBinary is the first byte of a binary attribute record (introduced
// with schema 3). JSON records begin with '{'.
const attrBinary byte = 0x03

// attrHeaderMax is the most bytes the header (format, dirty, version) takes.
const attrHeaderMax = 2 + binary.MaxVarintLen64

// Flag bits of the attributes' first byte.
const (
	attrOnline byte = 1 << iota
	attrLampOn
	attrFlagsKnown = attrOnline | attrLampOn
)

// attrFaults are the fault names stored as a one-byte code, in the order
// of their codes: append only, never reorder or remove (stored records
// refer to them). Any other name (a controller's own alarm) is stored as
// its text.
var attrFaults = [...]string{
	"lampFailure", "lampUnexpectedOn", "supplyVoltageTooHigh", "supplyVoltageTooLow",
	"powerFactorTooLow", "lampPowerTooHigh", "cyclingFailure", "communicationFailure",
}

// numRaw is the number tag of an 8-byte IEEE 754 value.
const numRaw = 7

// pow10 are the divisors of the decimal numbers, each exact in float64.
var pow10 = [numRaw]float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6}

// maxExactInt bounds a decimal mantissa: below it every integer is exact
// in float64.
const maxExactInt = 1 << 53

// attrRecord is one device's decoded record.
type attrRecord struct {
	Attributes agent.DeviceAttributes
	// Version is given from one store-wide counter, so that a record
	// rewritten after a sync never matches a version seen before it.
	Version uint64
	Dirty   bool
}

// jsonAttrRecord is the record of schemas 1 and 2: Attributes held the
// JSON of agent.DeviceAttributes.
type jsonAttrRecord struct {
	Attributes json.RawMessage `json:"attributes"`
	Version    uint64          `json:"version"`
	Dirty      bool            `json:"dirty"`
}

// appendAttrHeader appends the record header.
func appendAttrHeader(b []byte, version uint64, dirty bool) []byte {
	d := byte(0)
	if dirty {
		d = 1
	}
	b = append(b, attrBinary, d)
	return binary.AppendUvarint(b, version)
}

// appendAttrPayload appends the attributes part of a record (everything
// after the header). It fails, wrapping ErrInvalid, for a value the API
// could not be sent as JSON (a NaN or infinite measurement, a year outside
// 0–9999, a zone offset of a day or more).
func appendAttrPayload(b []byte, a *agent.DeviceAttributes) ([]byte, error) {
	e := recordEncoder{b: b}
	var flags byte
	if a.Online {
		flags |= attrOnline
	}
	r := &a.Reading
	if r.LampOn {
		flags |= attrLampOn
	}
	e.byte(flags)
	e.uvarint(uint64(r.Fields))
	e.number("voltage", r.Voltage)
	e.number("current", r.Current)
	e.number("power", r.Power)
	e.number("power_factor", r.PowerFactor)
	e.number("energy", r.Energy)
	e.number("dim", r.Dim)
	e.number("lux", r.Lux)
	e.number("temperature", r.Temperature)
	e.number("burn_hours", r.BurnHours)
	e.number("switch_count", r.SwitchCount)
	e.time("last_seen", a.LastSeen)
	if a.ActiveFaults == nil {
		e.uvarint(0)
	} else {
		e.uvarint(uint64(len(a.ActiveFaults)) + 1)
	}
	for _, f := range a.ActiveFaults {
		code := 0
		for i, known := range attrFaults {
			if f == known {
				code = i + 1
				break
			}
		}
		e.uvarint(uint64(code))
		if code == 0 {
			e.string(f)
		}
	}
	return e.b, e.err
}

// appendAttrRecord appends a whole record.
func appendAttrRecord(b []byte, rec *attrRecord) ([]byte, error) {
	return appendAttrPayload(appendAttrHeader(b, rec.Version, rec.Dirty), &rec.Attributes)
}

// number appends v exactly: as a short decimal when one gives back the
// same float64, else as its 8 bytes.
func (e *recordEncoder) number(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		e.fail(fmt.Sprintf("measurement %s is %v", name, v))
	} else if v != 0 || !math.Signbit(v) { // -0 would come back as 0
		for i, p := range pow10 {
			m := math.Round(v * p)
			if math.Abs(m) < maxExactInt && m/p == v {
				z := uint64(int64(m)<<1) ^ uint64(int64(m)>>63) // zig-zag
				e.uvarint(z<<3 | uint64(i))
				return
			}
		}
	}
	e.uvarint(numRaw)
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}

// number reads what recordEncoder.number wrote.
func (d *recordDecoder) number(field string) float64 {
	t := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if t == numRaw {
		return d.float(field)
	}
	e, z := t&7, t>>3
	if e == numRaw {
		d.fail(field)
		return 0
	}
	m := int64(z>>1) ^ -int64(z&1)
	if m <= -maxExactInt || m >= maxExactInt {
		d.fail(field)
		return 0
	}
	return float64(m) / pow10[e]
}

// attrHeader is a record's header, read without decoding the attributes.
type attrHeader struct {
	version uint64
	dirty   bool
	// payload is the attributes part of a binary record.
	payload []byte
}

// parseAttrHeader reads the header of a binary record. ok is false for a
// JSON record or anything that is not a well-formed header.
func parseAttrHeader(v []byte) (h attrHeader, ok bool) {
	if len(v) < 3 || v[0] != attrBinary || v[1] > 1 {
		return h, false
	}
	ver, n := binary.Uvarint(v[2:])
	// n > 1 ending in a zero byte is a longer form of a shorter varint:
	// binary.Uvarint takes it, the encoder never writes it.
	if n <= 0 || n > 1 && v[2+n-1] == 0 {
		return h, false
	}
	return attrHeader{version: ver, dirty: v[1] == 1, payload: v[2+n:]}, true
}

// decodeAttrRecord reads a stored attribute record, binary or (schemas 1
// and 2) JSON, of the device nameplate (its key). Anything malformed, or a
// binary record not exactly as the encoder writes it, is an error wrapping
// errCorrupt; it never panics.
func decodeAttrRecord(nameplate string, v []byte) (attrRecord, error) {
	if len(v) == 0 {
		return attrRecord{}, fmt.Errorf("%w: empty attribute record", errCorrupt)
	}
	switch v[0] {
	case '{':
		return decodeJSONAttrRecord(v)
	case attrBinary:
	default:
		return attrRecord{}, fmt.Errorf("%w: attribute record of unknown format %#x", errCorrupt, v[0])
	}
	h, ok := parseAttrHeader(v)
	if !ok {
		return attrRecord{}, fmt.Errorf("%w: attribute record: bad header", errCorrupt)
	}
	rec := attrRecord{Version: h.version, Dirty: h.dirty}
	a := &rec.Attributes
	a.Nameplate = nameplate
	d := recordDecoder{b: h.payload, what: "attribute record"}
	flags := d.byte("flags")
	a.Online = flags&attrOnline != 0
	r := &a.Reading
	r.LampOn = flags&attrLampOn != 0
	fields := d.uvarint("fields")
	if fields > math.MaxUint16 {
		d.fail("fields")
	}
	r.Fields = agent.Field(fields)
	r.Voltage = d.number("voltage")
	r.Current = d.number("current")
	r.Power = d.number("power")
	r.PowerFactor = d.number("power_factor")
	r.Energy = d.number("energy")
	r.Dim = d.number("dim")
	r.Lux = d.number("lux")
	r.Temperature = d.number("temperature")
	r.BurnHours = d.number("burn_hours")
	r.SwitchCount = d.number("switch_count")
	a.LastSeen = d.time("last_seen")
	if n := d.uvarint("active_faults"); n > 0 {
		// Each takes at least one byte: a count beyond what is left is
		// corrupt, and must not size an allocation.
		if n-1 > uint64(len(d.b)) {
			d.fail("active_faults")
		} else {
			a.ActiveFaults = make([]string, 0, n-1)
		}
		for i := uint64(0); i < n-1 && d.err == nil; i++ {
			switch code := d.uvarint("active_faults"); {
			case code == 0:
				a.ActiveFaults = append(a.ActiveFaults, d.string("active_faults"))
			case code <= uint64(len(attrFaults)):
				a.ActiveFaults = append(a.ActiveFaults, attrFaults[code-1])
			default:
				d.fail("active_faults")
			}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Sprintf("%d bytes after the last field", len(d.b)))
	}
	if d.err != nil {
		return attrRecord{}, d.err
	}
	// One form per record: what decodes must be what the encoder writes
	// (flag bits it never sets, a known fault spelt out, a number in a
	// longer form than needed are all refused here).
	again, err := appendAttrPayload(make([]byte, 0, len(h.payload)), a)
	if err != nil || string(again) != string(h.payload) {
		return attrRecord{}, fmt.Errorf("%w: attribute record: not in the form this edge-agent writes", errCorrupt)
	}
	return rec, nil
}

func decodeJSONAttrRecord(v []byte) (attrRecord, error) {
	var js jsonAttrRecord
	if err := json.Unmarshal(v, &js); err != nil {
		return attrRecord{}, fmt.Errorf("%w: attribute record (JSON): %v", errCorrupt, err)
	}
	rec := attrRecord{Version: js.Version, Dirty: js.Dirty}
	if err := json.Unmarshal(js.Attributes, &rec.Attributes); err != nil {
		return attrRecord{}, fmt.Errorf("%w: attribute record (JSON): attributes: %v", errCorrupt, err)
	}
	return rec, nil
}

func (d *recordDecoder) byte(field string) byte {
	if len(d.b) == 0 {
		d.fail(field)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}
