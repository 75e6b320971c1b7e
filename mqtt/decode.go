package mqtt

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Limits of the alarms list: its entries are fault names.
const (
	MaxAlarms       = 32
	MaxAlarmNameLen = 64
)

// maxDepth is encoding/json's nesting limit (the top-level object counts
// as 1); the scanner enforces the same one so that both agree on what is
// valid JSON.
const maxDepth = 10000

// The absurd-time rule (CONTRACT §3): a ts before minTime, or more than
// maxFuture ahead of the gateway's clock, is not believed.
var minTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

const maxFuture = 24 * time.Hour

// msThreshold tells a numeric ts in milliseconds from one in seconds: at or
// above it (in absolute value) it is milliseconds. 1e11 seconds is the year
// 5138 and 1e11 milliseconds is March 1973; both are absurd, so no sane
// time is ambiguous.
const msThreshold = 1e11

// fieldID names the payload's known keys.
type fieldID uint8

const (
	fUnknown fieldID = iota
	fTS
	fVoltage
	fCurrent
	fPower
	fPowerFactor
	fEnergy
	fLampOn
	fDim
	fLux
	fTemperature
	fBurnHours
	fSwitchCount
	fLat
	fLon
	fAlarms
	numFieldIDs
)

var fieldNames = [numFieldIDs]string{
	fTS: "ts", fVoltage: "voltage", fCurrent: "current", fPower: "power", fPowerFactor: "power_factor",
	fEnergy: "energy", fLampOn: "lamp_on", fDim: "dim", fLux: "lux", fTemperature: "temperature",
	fBurnHours: "burn_hours", fSwitchCount: "switch_count", fLat: "lat", fLon: "lon", fAlarms: "alarms",
}

// maxKeyLen is the longest known key; an escaped key whose raw form is
// longer than 6 bytes per character of it cannot be a known key.
const maxKeyLen = len("power_factor")

func lookupField(k []byte) fieldID {
	switch string(k) { // no allocation: the compiler compares in place
	case "ts":
		return fTS
	case "voltage":
		return fVoltage
	case "current":
		return fCurrent
	case "power":
		return fPower
	case "power_factor":
		return fPowerFactor
	case "energy":
		return fEnergy
	case "lamp_on":
		return fLampOn
	case "dim":
		return fDim
	case "lux":
		return fLux
	case "temperature":
		return fTemperature
	case "burn_hours":
		return fBurnHours
	case "switch_count":
		return fSwitchCount
	case "lat":
		return fLat
	case "lon":
		return fLon
	case "alarms":
		return fAlarms
	}
	return fUnknown
}

// numSpec is which bit a numeric field sets in agent.Reading and which
// values make physical sense. Lat/lon are not here: out-of-range
// coordinates are ignored rather than rejected.
type numSpec struct {
	bit      agent.Field
	min, max float64
}

var numSpecs = [numFieldIDs]numSpec{
	fVoltage:     {agent.FieldVoltage, 0, math.MaxFloat64},
	fCurrent:     {agent.FieldCurrent, 0, math.MaxFloat64},
	fPower:       {agent.FieldPower, 0, math.MaxFloat64},
	fPowerFactor: {agent.FieldPowerFactor, 0, 1},
	fEnergy:      {agent.FieldEnergy, 0, math.MaxFloat64},
	fDim:         {agent.FieldDim, 0, 100},
	fLux:         {agent.FieldLux, 0, math.MaxFloat64},
	// Below absolute zero is a broken sensor, not a cold night.
	fTemperature: {agent.FieldTemperature, -273.15, math.MaxFloat64},
	fBurnHours:   {agent.FieldBurnHours, 0, math.MaxFloat64},
	fSwitchCount: {agent.FieldSwitchCount, 0, math.MaxFloat64},
}

// setReading stores a numeric field. A switch rather than a table of
// field pointers: a pointer taken through a func value would move the
// Reading to the heap.
func setReading(r *agent.Reading, f fieldID, v float64) {
	switch f {
	case fVoltage:
		r.Voltage = v
	case fCurrent:
		r.Current = v
	case fPower:
		r.Power = v
	case fPowerFactor:
		r.PowerFactor = v
	case fEnergy:
		r.Energy = v
	case fDim:
		r.Dim = v
	case fLux:
		r.Lux = v
	case fTemperature:
		r.Temperature = v
	case fBurnHours:
		r.BurnHours = v
	case fSwitchCount:
		r.SwitchCount = v
	}
}

type slotState uint8

const (
	slotAbsent slotState = iota // missing, or null
	slotSet
	slotBad
)

// slot is the decoded state of one known key. A key that appears twice
// counts by its last occurrence, as encoding/json does.
type slot struct {
	state  slotState
	reason Reason // when bad
	got    byte   // when wrong_type: the first byte of the offending value
	detail string // when bad, and not wrong_type: a constant explanation
	num    float64
	isStr  bool // ts: it was a string, parsed into decoder.tsTime
}

// span locates one alarm name in the payload.
type span struct {
	start, end int
	esc        bool // has escapes: unescape when copying
	n          int  // length once unescaped
}

// decoder scans one payload. It lives on the caller's stack: nothing in it
// escapes, which is what keeps a typical decode free of allocations.
type decoder struct {
	data    []byte
	pos     int
	slots   [numFieldIDs]slot
	tsTime  time.Time
	alarms  [MaxAlarms]span
	nAlarms int
}

// DecodeTelemetry decodes a telemetry payload (CONTRACT §3) into t. It
// sets every field of t except Nameplate, which the caller sets from the
// topic. now is the receive time: t.Received, and t.At when ts is missing
// or absurd. An error is always a *RejectError, and t is left unchanged.
//
// Numeric ts: at or above 1e11 in absolute value it is Unix milliseconds,
// below it Unix seconds (fractions allowed). Duplicate keys count by their
// last occurrence; null is the same as an absent key.
func DecodeTelemetry(payload []byte, now time.Time, t *agent.Telemetry) error {
	d := decoder{data: payload}
	if err := d.object(); err != nil {
		return err
	}
	return d.finish(now, t)
}

func (d *decoder) object() error {
	d.ws()
	if d.pos >= len(d.data) {
		return reject(ReasonNotJSON, "empty payload")
	}
	if c := d.data[d.pos]; c != '{' {
		// Valid JSON of another type is a wrong type, anything else is
		// not JSON: validate it all to tell which.
		if err := d.skipValue(0); err != nil {
			return err
		}
		if err := d.end(); err != nil {
			return err
		}
		return reject(ReasonWrongType, "payload is "+kindName(c)+", want a JSON object")
	}
	d.pos++
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return d.end()
	}
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return d.syntaxError("want a key")
		}
		start, end, esc, err := d.scanString()
		if err != nil {
			return err
		}
		f := d.fieldOf(start, end, esc)
		d.ws()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return d.syntaxError("want ':' after a key")
		}
		d.pos++
		d.ws()
		if err := d.value(f); err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.data) {
			return d.syntaxError("unterminated object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.ws()
		case '}':
			d.pos++
			return d.end()
		default:
			return d.syntaxError("want ',' or '}'")
		}
	}
}

// end checks that only whitespace follows the top-level value.
func (d *decoder) end() error {
	d.ws()
	if d.pos != len(d.data) {
		return d.syntaxError("data after the top-level value")
	}
	return nil
}

func (d *decoder) fieldOf(start, end int, esc bool) fieldID {
	raw := d.data[start:end]
	if !esc {
		return lookupField(raw)
	}
	if len(raw) > 6*maxKeyLen {
		return fUnknown
	}
	var buf [6 * maxKeyLen]byte
	return lookupField(unescape(buf[:0], raw))
}

// value decodes the value of key f at d.pos.
func (d *decoder) value(f fieldID) error {
	if d.pos >= len(d.data) {
		return d.syntaxError("want a value")
	}
	c := d.data[d.pos]
	if c == 'n' && d.hasLiteral("null") {
		d.pos += 4
		d.slots[f] = slot{}
		return nil
	}
	switch f {
	case fUnknown:
		return d.skipValue(1)
	case fLampOn:
		switch {
		case c == 't' && d.hasLiteral("true"):
			d.pos += 4
			d.slots[f] = slot{state: slotSet, num: 1}
		case c == 'f' && d.hasLiteral("false"):
			d.pos += 5
			d.slots[f] = slot{state: slotSet, num: 0}
		default:
			return d.wrongType(f, c)
		}
		return nil
	case fTS:
		switch {
		case c == '"':
			start, end, esc, err := d.scanString()
			if err != nil {
				return err
			}
			raw := d.data[start:end]
			if esc {
				var buf [64]byte
				raw = unescape(buf[:0], raw)
			}
			tm, ok := parseRFC3339(raw)
			if !ok {
				d.slots[f] = slot{state: slotBad, reason: ReasonBadTime, detail: "ts: not an RFC 3339 time"}
				return nil
			}
			d.slots[f] = slot{state: slotSet, isStr: true}
			d.tsTime = tm
			return nil
		case c == '-' || isDigit(c):
			return d.number(f)
		}
		return d.wrongType(f, c)
	case fAlarms:
		if c == '[' {
			return d.alarmList()
		}
		return d.wrongType(f, c)
	}
	if c == '-' || isDigit(c) {
		return d.number(f)
	}
	return d.wrongType(f, c)
}

// wrongType records that key f has a value of the wrong JSON type, after
// validating the value: a syntax error anywhere wins over a type error.
func (d *decoder) wrongType(f fieldID, c byte) error {
	if err := d.skipValue(1); err != nil {
		return err
	}
	d.slots[f] = slot{state: slotBad, reason: ReasonWrongType, got: c}
	return nil
}

func (d *decoder) number(f fieldID) error {
	start := d.pos
	if err := d.scanNumber(); err != nil {
		return err
	}
	// The grammar is checked, so the only error left is a value beyond
	// float64 (ErrRange, ±Inf). Underflow rounds to zero, as in encoding/json.
	v, err := strconv.ParseFloat(string(d.data[start:d.pos]), 64)
	if err != nil {
		d.slots[f] = slot{state: slotBad, reason: ReasonNonFinite, detail: fieldNames[f] + ": number out of float64 range"}
		return nil
	}
	d.slots[f] = slot{state: slotSet, num: v}
	return nil
}

// alarmList decodes the alarms array at d.pos ('['). Each occurrence of the
// key starts over: the last one counts.
func (d *decoder) alarmList() error {
	d.pos++
	d.nAlarms = 0
	s := slot{state: slotSet}
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.slots[fAlarms] = s
		return nil
	}
	for {
		d.ws()
		if d.pos >= len(d.data) {
			return d.syntaxError("unterminated array")
		}
		switch c := d.data[d.pos]; {
		case c == '"':
			start, end, esc, err := d.scanString()
			if err != nil {
				return err
			}
			if s.state == slotSet {
				if detail := d.addAlarm(start, end, esc); detail != "" {
					s = slot{state: slotBad, reason: ReasonBadValue, detail: detail}
				}
			}
		case c == 'n' && d.hasLiteral("null"):
			d.pos += 4
			if s.state == slotSet {
				s = slot{state: slotBad, reason: ReasonBadValue, detail: "alarms: null entry"}
			}
		default:
			if err := d.skipValue(2); err != nil {
				return err
			}
			if s.state == slotSet {
				s = slot{state: slotBad, reason: ReasonWrongType, got: c, detail: "alarms: entries must be strings"}
			}
		}
		d.ws()
		if d.pos >= len(d.data) {
			return d.syntaxError("unterminated array")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.slots[fAlarms] = s
			return nil
		default:
			return d.syntaxError("want ',' or ']'")
		}
	}
}

// addAlarm validates one alarm name and remembers where it is; it returns
// a detail when the name or the list is not acceptable.
func (d *decoder) addAlarm(start, end int, esc bool) string {
	if d.nAlarms == MaxAlarms {
		return "alarms: more than 32 entries"
	}
	raw := d.data[start:end]
	if esc {
		if len(raw) > 6*MaxAlarmNameLen {
			return "alarms: a name longer than 64 characters"
		}
		var buf [6 * MaxAlarmNameLen]byte
		raw = unescape(buf[:0], raw)
	}
	if len(raw) == 0 || len(raw) > MaxAlarmNameLen {
		return "alarms: a name is empty or longer than 64 characters"
	}
	for _, c := range raw {
		if !nameChar(c) {
			return "alarms: a name has characters outside A-Z a-z 0-9 . _ -"
		}
	}
	d.alarms[d.nAlarms] = span{start: start, end: end, esc: esc, n: len(raw)}
	d.nAlarms++
	return ""
}

// finish checks the final value of every key and fills t.
func (d *decoder) finish(now time.Time, t *agent.Telemetry) error {
	for f := fTS; f < numFieldIDs; f++ {
		if s := &d.slots[f]; s.state == slotBad {
			detail := s.detail
			if s.reason == ReasonWrongType && detail == "" {
				detail = fieldNames[f] + ": want " + wantKind(f) + ", got " + kindName(s.got)
			}
			return reject(s.reason, detail)
		}
	}
	var r agent.Reading
	for f := fVoltage; f < numFieldIDs; f++ {
		spec := &numSpecs[f]
		if spec.bit == 0 || d.slots[f].state != slotSet {
			continue
		}
		v := d.slots[f].num
		if v < spec.min || v > spec.max {
			return reject(ReasonBadValue, fmt.Sprintf("%s: %g is outside %g..%g", fieldNames[f], v, spec.min, spec.max))
		}
		setReading(&r, f, v)
		r.Fields |= spec.bit
	}
	if d.slots[fLampOn].state == slotSet {
		r.LampOn = d.slots[fLampOn].num == 1
		r.Fields |= agent.FieldLampOn
	}

	at := now
	if s := d.slots[fTS]; s.state == slotSet {
		tm, ok := d.tsTime, true
		if !s.isStr {
			tm, ok = epochTime(s.num)
		}
		if ok && saneTime(tm, now) {
			at = tm
			r.Fields |= agent.FieldTime
		}
	}

	var lat, lon float64
	if d.slots[fLat].state == slotSet && d.slots[fLon].state == slotSet {
		la, lo := d.slots[fLat].num, d.slots[fLon].num
		// Out-of-range coordinates are ignored, not rejected: the rest of the
		// reading is good. (0, 0) is what a controller without a GPS fix
		// sends; taking it would put the device in the Gulf of Guinea and
		// the sun clock with it.
		if la >= -90 && la <= 90 && lo >= -180 && lo <= 180 && (la != 0 || lo != 0) {
			lat, lon = la, lo
			r.Fields |= agent.FieldPosition
		}
	}

	var alarms []string
	if d.slots[fAlarms].state == slotSet {
		r.Fields |= agent.FieldAlarms
		if d.nAlarms > 0 {
			alarms = d.alarmNames()
		}
	}

	t.At = at
	t.Received = now
	t.Reading = r
	t.Lat, t.Lon = lat, lon
	t.Alarms = alarms
	return nil
}

// alarmNames copies the alarm names out of the payload: one string holds
// them all (one allocation) and the slice another; duplicates are dropped,
// as alarms is a set.
func (d *decoder) alarmNames() []string {
	total := 0
	for _, a := range d.alarms[:d.nAlarms] {
		total += a.n
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, a := range d.alarms[:d.nAlarms] {
		raw := d.data[a.start:a.end]
		if a.esc {
			var buf [6 * MaxAlarmNameLen]byte
			raw = unescape(buf[:0], raw)
		}
		sb.Write(raw)
	}
	all := sb.String()
	out := make([]string, 0, d.nAlarms)
	off := 0
	for _, a := range d.alarms[:d.nAlarms] {
		name := all[off : off+a.n]
		off += a.n
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// epochTime converts a numeric ts (seconds, or milliseconds at or above
// msThreshold). ok is false for values far outside any sane time, which
// also keeps the int64 conversions from overflowing.
func epochTime(v float64) (tm time.Time, ok bool) {
	ms := math.Abs(v) >= msThreshold
	secs := v
	if ms {
		secs = v / 1000
	}
	// Generous bounds: saneTime decides exactly; these only guard the
	// conversion below.
	if !(secs > 0 && secs < 1e11) {
		return time.Time{}, false
	}
	// v - Floor(v) is exact in floating point, so whole units and the
	// fraction are converted separately: no rounding error in the whole
	// part, and the fraction keeps what precision v had.
	whole := math.Floor(v)
	frac := v - whole
	if ms {
		return time.UnixMilli(int64(whole)).Add(time.Duration(math.Round(frac * 1e6))).UTC(), true
	}
	return time.Unix(int64(whole), int64(math.Round(frac*1e9))).UTC(), true
}

// saneTime is the absurd-time rule: not before 2020, not more than a day
// ahead of the gateway's clock.
func saneTime(tm, now time.Time) bool {
	return !tm.Before(minTime) && !tm.After(now.Add(maxFuture))
}

// ---- the JSON scanner ----

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) hasLiteral(lit string) bool {
	return len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit
}

func (d *decoder) syntaxError(what string) error {
	if d.nonFiniteHere() {
		return reject(ReasonNonFinite, fmt.Sprintf("NaN or Infinity at byte %d (not JSON)", d.pos))
	}
	if d.pos >= len(d.data) {
		return reject(ReasonNotJSON, "invalid JSON: unexpected end ("+what+")")
	}
	return reject(ReasonNotJSON, fmt.Sprintf("invalid JSON at byte %d: %s, got %q", d.pos, what, d.data[d.pos]))
}

// nonFiniteHere reports whether NaN or Infinity, in the spellings of
// Python, JavaScript and C, starts at d.pos: such a payload is not JSON,
// but "non_finite" tells the operator what the controller did wrong.
func (d *decoder) nonFiniteHere() bool {
	p := d.pos
	if p < len(d.data) && (d.data[p] == '-' || d.data[p] == '+') {
		p++
	}
	if len(d.data)-p < 3 {
		return false
	}
	w := d.data[p : p+3]
	return strings.EqualFold(string(w), "nan") || strings.EqualFold(string(w), "inf")
}

// scanNumber checks JSON's number grammar at d.pos and moves past it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) scanNumber() error {
	b, p := d.data, d.pos
	if p < len(b) && b[p] == '-' {
		p++
	}
	switch {
	case p < len(b) && b[p] == '0':
		p++
	case p < len(b) && '1' <= b[p] && b[p] <= '9':
		p++
		for p < len(b) && isDigit(b[p]) {
			p++
		}
	default:
		return d.syntaxError("want a digit")
	}
	if p < len(b) && b[p] == '.' {
		p++
		if p >= len(b) || !isDigit(b[p]) {
			d.pos = p
			return d.syntaxError("want a digit after '.'")
		}
		for p < len(b) && isDigit(b[p]) {
			p++
		}
	}
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		p++
		if p < len(b) && (b[p] == '+' || b[p] == '-') {
			p++
		}
		if p >= len(b) || !isDigit(b[p]) {
			d.pos = p
			return d.syntaxError("want a digit in the exponent")
		}
		for p < len(b) && isDigit(b[p]) {
			p++
		}
	}
	d.pos = p
	return nil
}

// scanString checks the string at d.pos ('"') and moves past it. It
// returns the bounds of its content and whether it holds escapes. Bytes
// of 0x80 and above pass unchecked, as in encoding/json (which replaces
// invalid UTF-8 when decoding; no known field accepts non-ASCII anyway).
func (d *decoder) scanString() (start, end int, esc bool, err error) {
	b := d.data
	p := d.pos + 1
	start = p
	for p < len(b) {
		c := b[p]
		switch {
		case c == '"':
			d.pos = p + 1
			return start, p, esc, nil
		case c == '\\':
			esc = true
			p++
			if p >= len(b) {
				d.pos = p
				return 0, 0, false, d.syntaxError("unterminated string")
			}
			switch b[p] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p++
			case 'u':
				if len(b)-p < 5 || !isHex(b[p+1]) || !isHex(b[p+2]) || !isHex(b[p+3]) || !isHex(b[p+4]) {
					d.pos = p
					return 0, 0, false, d.syntaxError("bad \\u escape")
				}
				p += 5
			default:
				d.pos = p
				return 0, 0, false, d.syntaxError("bad escape")
			}
		case c < 0x20:
			d.pos = p
			return 0, 0, false, d.syntaxError("control character in string")
		default:
			p++
		}
	}
	d.pos = p
	return 0, 0, false, d.syntaxError("unterminated string")
}

// skipValue checks and moves past the value at d.pos. depth is the nesting
// depth of the container holding it (0 at the top level).
func (d *decoder) skipValue(depth int) error {
	if d.pos < len(d.data) && (d.data[d.pos] == '{' || d.data[d.pos] == '[') {
		return d.skipContainer(depth)
	}
	return d.skipScalar()
}

func (d *decoder) skipScalar() error {
	if d.pos >= len(d.data) {
		return d.syntaxError("want a value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		_, _, _, err := d.scanString()
		return err
	case c == '-' || isDigit(c):
		return d.scanNumber()
	case c == 't' && d.hasLiteral("true"):
		d.pos += 4
	case c == 'f' && d.hasLiteral("false"):
		d.pos += 5
	case c == 'n' && d.hasLiteral("null"):
		d.pos += 4
	default:
		return d.syntaxError("want a value")
	}
	return nil
}

// skipContainer checks and moves past the object or array at d.pos,
// without recursion: a bit per level says object or array.
func (d *decoder) skipContainer(depth int) error {
	var isObj [maxDepth/64 + 1]uint64
	n := 0 // open containers
	b := d.data
	for {
		// At the start of a value.
		d.ws()
		if d.pos >= len(b) {
			return d.syntaxError("want a value")
		}
		c := b[d.pos]
		closed := false
		if c == '{' || c == '[' {
			if depth+n+1 > maxDepth {
				return reject(ReasonNotJSON, "invalid JSON: nested deeper than 10000")
			}
			if c == '{' {
				isObj[n/64] |= 1 << (n % 64)
			} else {
				isObj[n/64] &^= 1 << (n % 64)
			}
			n++
			d.pos++
			d.ws()
			if d.pos >= len(b) {
				return d.syntaxError("unterminated container")
			}
			switch {
			case c == '{' && b[d.pos] == '}', c == '[' && b[d.pos] == ']':
				d.pos++
				n--
				closed = true
			case c == '{':
				if err := d.skipKey(); err != nil {
					return err
				}
			}
		} else {
			if err := d.skipScalar(); err != nil {
				return err
			}
			closed = true
		}
		// After a value: close containers until one continues.
		for closed {
			if n == 0 {
				return nil
			}
			d.ws()
			if d.pos >= len(b) {
				return d.syntaxError("unterminated container")
			}
			obj := isObj[(n-1)/64]&(1<<((n-1)%64)) != 0
			switch c := b[d.pos]; {
			case c == ',':
				d.pos++
				if obj {
					d.ws()
					if err := d.skipKey(); err != nil {
						return err
					}
				}
				closed = false
			case obj && c == '}', !obj && c == ']':
				d.pos++
				n--
			default:
				if obj {
					return d.syntaxError("want ',' or '}'")
				}
				return d.syntaxError("want ',' or ']'")
			}
		}
	}
}

// skipKey moves past `"key" :` in an object being skipped.
func (d *decoder) skipKey() error {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return d.syntaxError("want a key")
	}
	if _, _, _, err := d.scanString(); err != nil {
		return err
	}
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		return d.syntaxError("want ':' after a key")
	}
	d.pos++
	return nil
}

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) rune {
	switch {
	case isDigit(c):
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	}
	return rune(c - 'A' + 10)
}

// unescape appends the content of a checked JSON string to dst. Only
// ASCII matters to its callers (keys, times, alarm names), so any
// character from a \u escape at or above 0x80 becomes the byte 0xFF, which
// matches nothing they accept.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexVal(raw[i+1])<<12 | hexVal(raw[i+2])<<8 | hexVal(raw[i+3])<<4 | hexVal(raw[i+4])
			i += 4
			if r < 0x80 {
				dst = append(dst, byte(r))
			} else {
				dst = append(dst, 0xFF)
			}
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

func kindName(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || isDigit(c):
		return "a number"
	}
	return "something else"
}

func wantKind(f fieldID) string {
	switch f {
	case fLampOn:
		return "a boolean"
	case fTS:
		return "an RFC 3339 string or a Unix time"
	case fAlarms:
		return "an array of strings"
	}
	return "a number"
}
