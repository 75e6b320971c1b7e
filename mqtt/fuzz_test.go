package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// The seed corpora are in testdata/fuzz/<target>; go test runs them as
// regression tests, `go test -fuzz` grows them.

// FuzzDecodeTelemetry checks the hand-written decoder against an oracle
// built on encoding/json: it never panics, it accepts only what
// json.Valid accepts and only objects, and on any valid JSON object both
// agree on accept/reject and, when accepted, on every value.
func FuzzDecodeTelemetry(f *testing.F) {
	f.Add([]byte(contractPayload))
	f.Add([]byte(typicalPayload))
	f.Add([]byte(`{"ts":1796418600123,"alarms":[],"x":{"y":[null,true,"\u00e9"]}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		now := testNow
		var got agent.Telemetry
		err := DecodeTelemetry(payload, now, &got)
		var re *RejectError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("error %v is not a *RejectError", err)
		}
		valid := json.Valid(payload)
		if err == nil && !valid {
			t.Fatalf("accepted invalid JSON %q", payload)
		}
		if !valid {
			if re.Reason != ReasonNotJSON && re.Reason != ReasonNonFinite {
				t.Fatalf("invalid JSON %q rejected as %s, want not_json or non_finite", payload, re.Reason)
			}
			return
		}
		if re != nil && re.Reason == ReasonNotJSON {
			t.Fatalf("valid JSON %q rejected as not_json: %v", payload, err)
		}
		want, ok := oracleDecode(payload, now)
		if ok != (err == nil) {
			t.Fatalf("payload %q: decoder err = %v, oracle accepts = %v", payload, err, ok)
		}
		if ok && !sameTelemetry(got, want) {
			t.Fatalf("payload %q:\ndecoder %+v\noracle  %+v", payload, got, want)
		}
	})
}

// oracleDecode is the contract's telemetry rules over encoding/json: a map
// of raw values (so a repeated key counts by its last occurrence, as in
// the decoder), each known value unmarshalled into its Go type.
func oracleDecode(payload []byte, now time.Time) (agent.Telemetry, bool) {
	var t agent.Telemetry
	if trimmed := bytes.TrimLeft(payload, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return t, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return t, false
	}
	present := func(k string) (json.RawMessage, bool) {
		raw, ok := m[k]
		return raw, ok && string(raw) != "null"
	}
	nums := []struct {
		key      string
		bit      agent.Field
		dst      *float64
		min, max float64
	}{
		{"voltage", agent.FieldVoltage, &t.Voltage, 0, math.MaxFloat64},
		{"current", agent.FieldCurrent, &t.Current, 0, math.MaxFloat64},
		{"power", agent.FieldPower, &t.Power, 0, math.MaxFloat64},
		{"power_factor", agent.FieldPowerFactor, &t.PowerFactor, 0, 1},
		{"energy", agent.FieldEnergy, &t.Energy, 0, math.MaxFloat64},
		{"dim", agent.FieldDim, &t.Dim, 0, 100},
		{"lux", agent.FieldLux, &t.Lux, 0, math.MaxFloat64},
		{"temperature", agent.FieldTemperature, &t.Temperature, -273.15, math.MaxFloat64},
		{"burn_hours", agent.FieldBurnHours, &t.BurnHours, 0, math.MaxFloat64},
		{"switch_count", agent.FieldSwitchCount, &t.SwitchCount, 0, math.MaxFloat64},
	}
	for _, n := range nums {
		raw, ok := present(n.key)
		if !ok {
			continue
		}
		var v float64
		if json.Unmarshal(raw, &v) != nil || v < n.min || v > n.max {
			return t, false
		}
		*n.dst = v
		t.Fields |= n.bit
	}
	if raw, ok := present("lamp_on"); ok {
		if json.Unmarshal(raw, &t.LampOn) != nil {
			return t, false
		}
		t.Fields |= agent.FieldLampOn
	}
	var lat, lon float64
	rawLat, okLat := present("lat")
	rawLon, okLon := present("lon")
	if okLat && json.Unmarshal(rawLat, &lat) != nil || okLon && json.Unmarshal(rawLon, &lon) != nil {
		return t, false
	}
	if okLat && okLon && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 && (lat != 0 || lon != 0) {
		t.Lat, t.Lon = lat, lon
		t.Fields |= agent.FieldPosition
	}
	if raw, ok := present("alarms"); ok {
		var alarms []string
		if json.Unmarshal(raw, &alarms) != nil || len(alarms) > MaxAlarms {
			return t, false
		}
		for _, a := range alarms {
			if !alarmRE.MatchString(a) {
				return t, false
			}
			if !slices.Contains(t.Alarms, a) {
				t.Alarms = append(t.Alarms, a)
			}
		}
		t.Fields |= agent.FieldAlarms
	}
	t.At, t.Received = now, now
	if raw, ok := present("ts"); ok {
		var tm time.Time
		switch raw[0] {
		case '"':
			var s string
			var ok bool
			if json.Unmarshal(raw, &s) != nil {
				return t, false
			}
			if tm, ok = oracleRFC3339([]byte(s)); !ok {
				return t, false
			}
		case '[', '{', 't', 'f':
			return t, false
		default:
			var v float64
			if json.Unmarshal(raw, &v) != nil {
				return t, false
			}
			var ok bool
			if tm, ok = epochTime(v); !ok {
				tm = time.Time{}
			}
		}
		if !tm.IsZero() && !tm.Before(minTime) && !tm.After(now.Add(24*time.Hour)) {
			t.At = tm
			t.Fields |= agent.FieldTime
		}
	}
	return t, true
}

var topicRE = regexp.MustCompile(`^([A-Za-z0-9._-]{1,64})/(telemetry|status)$`)

var alarmRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func sameTelemetry(a, b agent.Telemetry) bool {
	if !a.At.Equal(b.At) || !a.Received.Equal(b.Received) || len(a.Alarms) != len(b.Alarms) {
		return false
	}
	if len(a.Alarms) > 0 && !slices.Equal(a.Alarms, b.Alarms) {
		return false
	}
	return a.Reading == b.Reading && a.Lat == b.Lat && a.Lon == b.Lon && a.Nameplate == b.Nameplate
}

// FuzzParseTopic checks ParseTopic against a regular expression of the
// contract's topic rule, and that what it returns rebuilds the topic.
func FuzzParseTopic(f *testing.F) {
	f.Add("streetlights", "streetlights/LP-0001/telemetry")
	f.Add("streetlights", "streetlights/LP-0001/status")
	f.Add("city/lights", "city/lights/a.b_c/status")
	f.Add("streetlights", "streetlights/_gateways/gw/status")
	f.Fuzz(func(t *testing.T, prefix, topic string) {
		nameplate, kind, err := ParseTopic(prefix, topic)
		var m []string
		if rest, ok := strings.CutPrefix(topic, prefix+"/"); ok {
			m = topicRE.FindStringSubmatch(rest)
		}
		if (err == nil) != (m != nil) {
			t.Fatalf("ParseTopic(%q, %q) = %q, %v, %v; the rule says match = %v", prefix, topic, nameplate, kind, err, m != nil)
		}
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || re.Reason != ReasonBadTopic {
				t.Fatalf("error %v is not a bad_topic rejection", err)
			}
			return
		}
		if nameplate != m[1] || kind.String() != m[2] || prefix+"/"+nameplate+"/"+kind.String() != topic {
			t.Fatalf("ParseTopic(%q, %q) = %q, %v; want %q, %s", prefix, topic, nameplate, kind, m[1], m[2])
		}
	})
}

// FuzzParseRFC3339 checks the decoder's time parser against the standard
// library (time.Time.UnmarshalText) restricted to the strict RFC 3339
// syntax: the library's lenient fallback accepts a few forms the RFC does
// not (a comma before the fraction, one-digit hours, offsets up to 24:60),
// which the decoder rejects on purpose.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2026-12-04T21:10:00Z", "2026-12-04T21:10:00.123456789-03:00", "2024-02-29T23:59:59+14:00",
		"2026-12-04T21:10:00,5Z", "2026-12-04t21:10:00z", "0000-01-01T00:00:00Z", "2026-12-04T21:10:00.Z", "2026-12-04T21:10:00+24:00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		got, ok := parseRFC3339(s)
		want, wantOK := oracleRFC3339(s)
		if ok != wantOK {
			t.Fatalf("parseRFC3339(%q) ok = %v, want %v", s, ok, wantOK)
		}
		if ok && !got.Equal(want) {
			t.Fatalf("parseRFC3339(%q) = %v, want %v", s, got, want)
		}
	})
}

// oracleRFC3339 is the standard library's parsing limited to the strict
// syntax and offset ranges of RFC 3339.
func oracleRFC3339(s []byte) (time.Time, bool) {
	var tm time.Time
	if tm.UnmarshalText(s) != nil || !strictRFC3339.Match(s) {
		return time.Time{}, false
	}
	if n := len(s); s[n-1] != 'Z' {
		oh, om := int(s[n-5]-'0')*10+int(s[n-4]-'0'), int(s[n-2]-'0')*10+int(s[n-1]-'0')
		if oh > 23 || om > 59 {
			return time.Time{}, false
		}
	}
	return tm, true
}

var strictRFC3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)
