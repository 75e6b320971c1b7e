package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// The ticket record codec.
//
// A ticket is stored as a hand-written binary record instead of JSON: the
// single writer goroutine encodes one record per raise and per state change,
// and encoding/json's reflection (and its re-validation and compaction of
// the embedded create body) was a third of the writer's time in a fault
// storm. The record is a version byte followed by the ticket's fields in the
// order of agent.Ticket, each as
//
//	string, []byte   uvarint length, then the bytes (verbatim: the create
//	                 body is stored exactly as EncodeCreate built it)
//	int, int64       varint (zig-zag)
//	bool             one byte, 0 or 1
//	float64          8 bytes, IEEE 754 bits, little endian
//	uint16           uvarint
//	time.Time        one kind byte: 0 zero time; 1 UTC: varint Unix seconds,
//	                 uvarint nanoseconds; 2 other offset: the same, then
//	                 varint offset in seconds
//
// and nothing after the last field. Times decode as the JSON layout did
// (time.Parse's rule): UTC for offset 0, Local when the offset is Local's at
// that instant, else a fixed zone; no monotonic reading.
//
// Schema 1 files stored JSON records (first byte '{'); decodeRecord still
// reads them, and any ticket written again is written in this layout. The
// encoder refuses what the status API could not show as JSON later (a NaN
// or infinite measurement, a year outside 0–9999, a zone offset of a day or
// more), as the JSON layout did; the decoder refuses them too, so that it
// accepts exactly what the encoder writes.
//
// Every field of agent.Ticket must be here: TestRecordRoundTrip fills every
// field by reflection, fails on one the codec drops, and fails on a field
// of a kind it does not know (a new one in the domain types).

// recordBinary is the first byte of a binary ticket record. JSON records
// of schema 1 begin with '{'.
const recordBinary byte = 0x02

// Time kinds.
const (
	timeZero   byte = 0
	timeUTC    byte = 1
	timeOffset byte = 2
)

// maxZoneOffset bounds a stored zone offset: no real zone is a day off UTC.
const maxZoneOffset = 24 * 60 * 60

// appendRecord appends the binary record of t to b. It fails, wrapping
// ErrInvalid, for a value the status API could not encode as JSON.
func appendRecord(b []byte, t *agent.Ticket) ([]byte, error) {
	e := recordEncoder{b: b}
	e.byte(recordBinary)
	// agent.TicketDraft
	e.string(t.Nameplate)
	e.string(t.Fault)
	e.time("raised_at", t.RaisedAt)
	e.time("since", t.Since)
	r := &t.Reading
	e.uvarint(uint64(r.Fields))
	e.float("voltage", r.Voltage)
	e.float("current", r.Current)
	e.float("power", r.Power)
	e.float("power_factor", r.PowerFactor)
	e.float("energy", r.Energy)
	e.bool(r.LampOn)
	e.float("dim", r.Dim)
	e.float("lux", r.Lux)
	e.float("temperature", r.Temperature)
	e.float("burn_hours", r.BurnHours)
	e.float("switch_count", r.SwitchCount)
	s := &t.Site
	e.string(s.Address)
	e.varint(int64(s.AddressNumber))
	e.string(s.Neighborhood)
	e.string(s.Municipality)
	e.string(s.State)
	e.string(s.ZipCode)
	e.string(s.ReferencePoint)
	e.string(s.Latitude)
	e.string(s.Longitude)
	e.string(t.Description)
	// agent.Ticket
	e.varint(t.Protocol)
	e.string(string(t.State))
	e.bytes(t.CreateBody)
	e.varint(t.IDDemanda)
	e.time("sent_at", t.SentAt)
	e.time("cleared_at", t.ClearedAt)
	e.string(t.Justification)
	e.bool(t.CancelWanted)
	e.varint(int64(t.Attempts))
	e.time("last_attempt_at", t.LastAttemptAt)
	e.time("next_attempt_at", t.NextAttemptAt)
	e.bool(t.InFlight)
	e.bool(t.Uncertain)
	e.string(t.LastError)
	e.varint(int64(t.LastStatus))
	e.string(t.ResponseBody)
	e.time("created_at", t.CreatedAt)
	e.time("updated_at", t.UpdatedAt)
	e.time("finished_at", t.FinishedAt)
	return e.b, e.err
}

// recordSize is about the size of t's record, for one allocation: its
// variable parts plus room for the fixed ones.
func recordSize(t *agent.Ticket) int {
	return 256 + len(t.Nameplate) + len(t.Fault) + len(t.Description) + len(t.CreateBody) +
		len(t.Site.Address) + len(t.Site.Neighborhood) + len(t.Site.Municipality) + len(t.Site.ReferencePoint) +
		len(t.Justification) + len(t.LastError) + len(t.ResponseBody)
}

type recordEncoder struct {
	b   []byte
	err error
}

func (e *recordEncoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *recordEncoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *recordEncoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *recordEncoder) string(v string)  { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *recordEncoder) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }

// fail keeps the first refusal; encoding goes on (the bytes are dropped).
func (e *recordEncoder) fail(msg string) {
	if e.err == nil {
		e.err = fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
}

func (e *recordEncoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

func (e *recordEncoder) float(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		e.fail(fmt.Sprintf("measurement %s is %v", name, v))
	}
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}

func (e *recordEncoder) time(name string, t time.Time) {
	if t.IsZero() {
		e.byte(timeZero)
		return
	}
	if y := t.Year(); y < 0 || y > 9999 {
		e.fail(fmt.Sprintf("%s %v: year outside 0–9999", name, t))
	}
	_, off := t.Zone()
	if off <= -maxZoneOffset || off >= maxZoneOffset {
		e.fail(fmt.Sprintf("%s %v: zone offset of a day or more", name, t))
		off = 0
	}
	if off == 0 {
		e.byte(timeUTC)
	} else {
		e.byte(timeOffset)
	}
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
	if off != 0 {
		e.varint(int64(off))
	}
}

// decodeRecord reads a stored ticket record, binary or (schema 1) JSON,
// into rec. Anything malformed (truncated, trailing bytes, a bad length, an
// unknown kind byte) is an error wrapping errCorrupt; it never panics.
func decodeRecord(v []byte, rec *record) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: empty ticket record", errCorrupt)
	}
	switch v[0] {
	case '{':
		if err := json.Unmarshal(v, rec); err != nil {
			return fmt.Errorf("%w: ticket record (JSON): %v", errCorrupt, err)
		}
		return nil
	case recordBinary:
	default:
		return fmt.Errorf("%w: ticket record of unknown format %#x", errCorrupt, v[0])
	}
	d := recordDecoder{b: v[1:]}
	t := &rec.Ticket
	*t = agent.Ticket{}
	t.Nameplate = d.string("nameplate")
	t.Fault = d.string("fault")
	t.RaisedAt = d.time("raised_at")
	t.Since = d.time("since")
	r := &t.Reading
	fields := d.uvarint("fields")
	if fields > math.MaxUint16 {
		d.fail("fields")
	}
	r.Fields = agent.Field(fields)
	r.Voltage = d.float("voltage")
	r.Current = d.float("current")
	r.Power = d.float("power")
	r.PowerFactor = d.float("power_factor")
	r.Energy = d.float("energy")
	r.LampOn = d.bool("lamp_on")
	r.Dim = d.float("dim")
	r.Lux = d.float("lux")
	r.Temperature = d.float("temperature")
	r.BurnHours = d.float("burn_hours")
	r.SwitchCount = d.float("switch_count")
	s := &t.Site
	s.Address = d.string("address")
	s.AddressNumber = d.int("address_number")
	s.Neighborhood = d.string("neighborhood")
	s.Municipality = d.string("municipality")
	s.State = d.string("state_abbreviation")
	s.ZipCode = d.string("zip_code")
	s.ReferencePoint = d.string("reference_point")
	s.Latitude = d.string("latitude")
	s.Longitude = d.string("longitude")
	t.Description = d.string("description")
	t.Protocol = d.varint("protocol")
	t.State = agent.TicketState(d.string("state"))
	if body := d.bytes("create_body"); len(body) > 0 {
		t.CreateBody = append(json.RawMessage(nil), body...)
	}
	t.IDDemanda = d.varint("id_demanda")
	t.SentAt = d.time("sent_at")
	t.ClearedAt = d.time("cleared_at")
	t.Justification = d.string("justification")
	t.CancelWanted = d.bool("cancel_wanted")
	t.Attempts = d.int("attempts")
	t.LastAttemptAt = d.time("last_attempt_at")
	t.NextAttemptAt = d.time("next_attempt_at")
	t.InFlight = d.bool("in_flight")
	t.Uncertain = d.bool("uncertain")
	t.LastError = d.string("last_error")
	t.LastStatus = d.int("last_status")
	t.ResponseBody = d.string("response_body")
	t.CreatedAt = d.time("created_at")
	t.UpdatedAt = d.time("updated_at")
	t.FinishedAt = d.time("finished_at")
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Sprintf("%d bytes after the last field", len(d.b)))
	}
	if d.err != nil {
		*t = agent.Ticket{}
		return d.err
	}
	return nil
}

// recordDecoder reads fields until the first error, after which every read
// returns a zero value and the first error is kept.
type recordDecoder struct {
	b   []byte
	err error
	// what names the record in errors; "" is a ticket record.
	what string
}

func (d *recordDecoder) fail(field string) {
	if d.err == nil {
		what := d.what
		if what == "" {
			what = "ticket record"
		}
		d.err = fmt.Errorf("%w: %s: bad or truncated %s", errCorrupt, what, field)
	}
	d.b = nil
}

func (d *recordDecoder) uvarint(field string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint(field string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a varint that must fit the platform's int (32 bits on ARMv7).
func (d *recordDecoder) int(field string) int {
	v := d.varint(field)
	if int64(int(v)) != v {
		d.fail(field)
		return 0
	}
	return int(v)
}

func (d *recordDecoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if n > uint64(len(d.b)) {
		d.fail(field)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) string(field string) string { return string(d.bytes(field)) }

func (d *recordDecoder) bool(field string) bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail(field)
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *recordDecoder) float(field string) float64 {
	if len(d.b) < 8 {
		d.fail(field)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.fail(field)
		return 0
	}
	d.b = d.b[8:]
	return v
}

func (d *recordDecoder) time(field string) time.Time {
	if len(d.b) == 0 {
		d.fail(field)
		return time.Time{}
	}
	kind := d.b[0]
	d.b = d.b[1:]
	if kind == timeZero {
		return time.Time{}
	}
	if kind != timeUTC && kind != timeOffset {
		d.fail(field)
		return time.Time{}
	}
	sec := d.varint(field)
	nsec := d.uvarint(field)
	if d.err != nil || nsec >= 1e9 {
		d.fail(field)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if kind == timeOffset {
		off := d.varint(field)
		if d.err != nil || off == 0 || off <= -maxZoneOffset || off >= maxZoneOffset {
			d.fail(field)
			return time.Time{}
		}
		if _, local := t.In(time.Local).Zone(); int64(local) == off {
			t = t.In(time.Local) // as time.Parse picks Local for Local's offset
		} else {
			t = t.In(time.FixedZone("", int(off)))
		}
	}
	if y := t.Year(); y < 0 || y > 9999 || t.IsZero() {
		d.fail(field) // the encoder writes neither (the zero instant is kind 0)
		return time.Time{}
	}
	return t
}
