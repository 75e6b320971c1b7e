package mqtt

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// testNow is the gateway clock of the decoder tests.
var testNow = time.Date(2026, 12, 4, 21, 15, 0, 0, time.UTC)

// contractPayload is the example of CONTRACT §3.
const contractPayload = `{
  "ts": "2026-12-04T21:10:00Z",
  "voltage": 221.4, "current": 0.42, "power": 88.1, "power_factor": 0.96,
  "energy": 1234.5, "lamp_on": true, "dim": 100, "lux": 2.1,
  "temperature": 38.5, "burn_hours": 10234, "switch_count": 5531,
  "lat": -19.7472, "lon": -47.9381,
  "alarms": ["relayFailure"]
}`

func TestDecodeTelemetryContractExample(t *testing.T) {
	got := agent.Telemetry{Nameplate: "LP-0001"}
	if err := DecodeTelemetry([]byte(contractPayload), testNow, &got); err != nil {
		t.Fatal(err)
	}
	want := agent.Telemetry{
		Nameplate: "LP-0001",
		At:        time.Date(2026, 12, 4, 21, 10, 0, 0, time.UTC),
		Received:  testNow,
		Reading: agent.Reading{
			Fields: agent.FieldVoltage | agent.FieldCurrent | agent.FieldPower | agent.FieldPowerFactor |
				agent.FieldEnergy | agent.FieldLampOn | agent.FieldDim | agent.FieldLux | agent.FieldTemperature |
				agent.FieldBurnHours | agent.FieldSwitchCount | agent.FieldPosition | agent.FieldAlarms | agent.FieldTime,
			Voltage: 221.4, Current: 0.42, Power: 88.1, PowerFactor: 0.96, Energy: 1234.5, LampOn: true,
			Dim: 100, Lux: 2.1, Temperature: 38.5, BurnHours: 10234, SwitchCount: 5531,
		},
		Lat: -19.7472, Lon: -47.9381,
		Alarms: []string{"relayFailure"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestDecodeTelemetryEachField sends each field alone and checks that it
// lands in its place and sets only its bit (plus FieldTime for ts).
func TestDecodeTelemetryEachField(t *testing.T) {
	cases := []struct {
		json  string
		field agent.Field
		check func(*agent.Telemetry) bool
	}{
		{`{"voltage": 230.5}`, agent.FieldVoltage, func(x *agent.Telemetry) bool { return x.Voltage == 230.5 }},
		{`{"current": 0.5}`, agent.FieldCurrent, func(x *agent.Telemetry) bool { return x.Current == 0.5 }},
		{`{"power": 120}`, agent.FieldPower, func(x *agent.Telemetry) bool { return x.Power == 120 }},
		{`{"power_factor": 0.9}`, agent.FieldPowerFactor, func(x *agent.Telemetry) bool { return x.PowerFactor == 0.9 }},
		{`{"energy": 1e3}`, agent.FieldEnergy, func(x *agent.Telemetry) bool { return x.Energy == 1000 }},
		{`{"lamp_on": true}`, agent.FieldLampOn, func(x *agent.Telemetry) bool { return x.LampOn }},
		{`{"lamp_on": false}`, agent.FieldLampOn, func(x *agent.Telemetry) bool { return !x.LampOn }},
		{`{"dim": 0}`, agent.FieldDim, func(x *agent.Telemetry) bool { return x.Dim == 0 }},
		{`{"dim": 55.5}`, agent.FieldDim, func(x *agent.Telemetry) bool { return x.Dim == 55.5 }},
		{`{"lux": 0.25}`, agent.FieldLux, func(x *agent.Telemetry) bool { return x.Lux == 0.25 }},
		{`{"temperature": -12.5}`, agent.FieldTemperature, func(x *agent.Telemetry) bool { return x.Temperature == -12.5 }},
		{`{"burn_hours": 42}`, agent.FieldBurnHours, func(x *agent.Telemetry) bool { return x.BurnHours == 42 }},
		{`{"switch_count": 7}`, agent.FieldSwitchCount, func(x *agent.Telemetry) bool { return x.SwitchCount == 7 }},
		{`{"lat": 51.5, "lon": -0.12}`, agent.FieldPosition, func(x *agent.Telemetry) bool { return x.Lat == 51.5 && x.Lon == -0.12 }},
		{`{"alarms": ["lampFailure", "x.y_z-1"]}`, agent.FieldAlarms, func(x *agent.Telemetry) bool {
			return reflect.DeepEqual(x.Alarms, []string{"lampFailure", "x.y_z-1"})
		}},
		{`{"alarms": []}`, agent.FieldAlarms, func(x *agent.Telemetry) bool { return len(x.Alarms) == 0 }},
		{`{"ts": "2026-12-04T20:00:00Z"}`, agent.FieldTime, func(x *agent.Telemetry) bool {
			return x.At.Equal(time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC))
		}},
	}
	for _, c := range cases {
		t.Run(c.json, func(t *testing.T) {
			var got agent.Telemetry
			if err := DecodeTelemetry([]byte(c.json), testNow, &got); err != nil {
				t.Fatal(err)
			}
			if got.Fields != c.field {
				t.Errorf("Fields = %b, want %b", got.Fields, c.field)
			}
			if !c.check(&got) {
				t.Errorf("value wrong: %+v", got)
			}
			if c.field != agent.FieldTime && !got.At.Equal(testNow) {
				t.Errorf("At = %v, want the receive time %v", got.At, testNow)
			}
			if !got.Received.Equal(testNow) {
				t.Errorf("Received = %v, want %v", got.Received, testNow)
			}
		})
	}
}

func TestDecodeTelemetryTime(t *testing.T) {
	at := time.Date(2026, 12, 4, 21, 10, 0, 0, time.UTC)
	secs := at.Unix()
	cases := []struct {
		name string
		ts   string // the JSON value
		want time.Time
		sane bool // else At is the receive time and FieldTime is unset
	}{
		{"rfc3339 Z", `"2026-12-04T21:10:00Z"`, at, true},
		{"rfc3339 offset", `"2026-12-04T18:10:00-03:00"`, at, true},
		{"rfc3339 positive offset", `"2026-12-05T02:40:00+05:30"`, at, true},
		{"rfc3339 fraction", `"2026-12-04T21:10:00.123456789Z"`, at.Add(123456789), true},
		{"rfc3339 long fraction truncated", `"2026-12-04T21:10:00.1234567899999Z"`, at.Add(123456789), true},
		{"rfc3339 escaped", `"2026-12-04T21:10:00\u005A"`, at, true},
		{"unix seconds", strconv.FormatInt(secs, 10), at, true},
		{"unix seconds fraction", strconv.FormatInt(secs, 10) + ".5", at.Add(500 * time.Millisecond), true},
		{"unix seconds exponent", "1.7964e9", time.Unix(1796400000, 0), true},
		{"unix milliseconds", strconv.FormatInt(secs*1000+250, 10), at.Add(250 * time.Millisecond), true},
		{"unix milliseconds fraction", strconv.FormatInt(secs*1000, 10) + ".5", at.Add(500 * time.Microsecond), true},
		{"2020-01-01 is sane", `"2020-01-01T00:00:00Z"`, minTime, true},
		{"a day ahead is sane", `"2026-12-05T21:15:00Z"`, testNow.Add(24 * time.Hour), true},
		{"before 2020", `"2019-12-31T23:59:59Z"`, time.Time{}, false},
		{"more than a day ahead", `"2026-12-05T21:15:01Z"`, time.Time{}, false},
		{"unix seconds before 2020", "1577836799", time.Time{}, false},
		{"unix seconds 2020", "1577836800", minTime, true},
		{"zero", "0", time.Time{}, false},
		{"negative", "-1796418600", time.Time{}, false},
		{"1e11 is milliseconds (1973)", "1e11", time.Time{}, false},
		{"microseconds are read as milliseconds: absurd", strconv.FormatInt(secs*1000000, 10), time.Time{}, false},
		{"huge", "1e300", time.Time{}, false},
		{"year 9999", `"9999-12-31T23:59:59Z"`, time.Time{}, false},
		{"year 0", `"0000-01-01T00:00:00Z"`, time.Time{}, false},
		{"null", "null", time.Time{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got agent.Telemetry
			if err := DecodeTelemetry([]byte(`{"ts":`+c.ts+`,"dim":1}`), testNow, &got); err != nil {
				t.Fatal(err)
			}
			if c.sane {
				if !got.Has(agent.FieldTime) || !got.At.Equal(c.want) {
					t.Errorf("At = %v (FieldTime %v), want %v", got.At, got.Has(agent.FieldTime), c.want)
				}
			} else if got.Has(agent.FieldTime) || !got.At.Equal(testNow) {
				t.Errorf("At = %v (FieldTime %v), want the receive time", got.At, got.Has(agent.FieldTime))
			}
			if !got.Received.Equal(testNow) || !got.Has(agent.FieldDim) {
				t.Errorf("rest of the message lost: %+v", got)
			}
		})
	}
}

func TestDecodeTelemetryAccepts(t *testing.T) {
	deep := strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1)
	cases := []struct {
		name string
		json string
		want func(*agent.Telemetry) bool
	}{
		{"empty object", `{}`, func(x *agent.Telemetry) bool { return x.Fields == 0 && x.At.Equal(testNow) }},
		{"whitespace everywhere", " \t\r\n{ \"dim\" \n: 5 ,\"lux\":1 } \n", func(x *agent.Telemetry) bool { return x.Dim == 5 && x.Lux == 1 }},
		{"unknown fields of every type", `{"s":"x\"\\\/\b\f\n\r\t\u00e9","n":-1.5e-3,"t":true,"f":false,"z":null,"o":{"a":[1,{"b":[]}],"c":{}},"a":[],"dim":7}`,
			func(x *agent.Telemetry) bool { return x.Fields == agent.FieldDim && x.Dim == 7 }},
		{"nested to encoding/json's limit", `{"x":` + deep + `,"dim":3}`, func(x *agent.Telemetry) bool { return x.Dim == 3 }},
		{"unknown big number is fine", `{"x":1e999,"dim":3}`, func(x *agent.Telemetry) bool { return x.Dim == 3 }},
		{"non-ASCII in unknown values", "{\"nome\":\"iluminação \xff\",\"dim\":3}", func(x *agent.Telemetry) bool { return x.Dim == 3 }},
		{"duplicate key: last wins", `{"dim":500,"dim":50}`, func(x *agent.Telemetry) bool { return x.Dim == 50 }},
		{"duplicate key: a wrong type overridden", `{"voltage":"x","voltage":220}`, func(x *agent.Telemetry) bool { return x.Voltage == 220 }},
		{"duplicate key: null clears", `{"voltage":220,"voltage":null}`, func(x *agent.Telemetry) bool { return !x.Has(agent.FieldVoltage) }},
		{"null is absent", `{"voltage":null,"lamp_on":null,"alarms":null,"lat":null,"lon":1}`,
			func(x *agent.Telemetry) bool { return x.Fields == 0 && x.Alarms == nil }},
		{"escaped key", `{"\u0076oltage":220}`, func(x *agent.Telemetry) bool { return x.Voltage == 220 }},
		{"key with non-ASCII escape is unknown", `{"voltag\u00e9":220}`, func(x *agent.Telemetry) bool { return x.Fields == 0 }},
		{"keys are case-sensitive", `{"Voltage":220}`, func(x *agent.Telemetry) bool { return x.Fields == 0 }},
		{"negative zero", `{"voltage":-0}`, func(x *agent.Telemetry) bool { return x.Has(agent.FieldVoltage) && x.Voltage == 0 }},
		{"underflow is zero", `{"current":1e-400}`, func(x *agent.Telemetry) bool { return x.Has(agent.FieldCurrent) && x.Current == 0 }},
		{"bounds", `{"dim":100,"power_factor":1,"temperature":-273.15}`, func(x *agent.Telemetry) bool { return x.Dim == 100 && x.PowerFactor == 1 }},
		{"latitude out of range is ignored", `{"lat":91,"lon":10,"dim":1}`, func(x *agent.Telemetry) bool { return x.Fields == agent.FieldDim && x.Lat == 0 }},
		{"longitude out of range is ignored", `{"lat":10,"lon":-180.5}`, func(x *agent.Telemetry) bool { return x.Fields == 0 }},
		{"lat without lon is ignored", `{"lat":10}`, func(x *agent.Telemetry) bool { return x.Fields == 0 }},
		{"0,0 is no GPS fix", `{"lat":0,"lon":0}`, func(x *agent.Telemetry) bool { return x.Fields == 0 }},
		{"edges of the globe", `{"lat":-90,"lon":180}`, func(x *agent.Telemetry) bool { return x.Has(agent.FieldPosition) && x.Lat == -90 && x.Lon == 180 }},
		{"alarms deduplicated", `{"alarms":["a","b","a"]}`, func(x *agent.Telemetry) bool { return reflect.DeepEqual(x.Alarms, []string{"a", "b"}) }},
		{"alarm with escapes", `{"alarms":["\u0072elay\u0046ailure","x"]}`, func(x *agent.Telemetry) bool { return reflect.DeepEqual(x.Alarms, []string{"relayFailure", "x"}) }},
		{"32 alarms", `{"alarms":[` + alarmList(32) + `]}`, func(x *agent.Telemetry) bool { return len(x.Alarms) == 32 }},
		{"alarm of 64 characters", `{"alarms":["` + strings.Repeat("a", 64) + `"]}`, func(x *agent.Telemetry) bool { return len(x.Alarms[0]) == 64 }},
		{"duplicate alarms key: last wins", `{"alarms":[1],"alarms":["b"]}`, func(x *agent.Telemetry) bool { return reflect.DeepEqual(x.Alarms, []string{"b"}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got agent.Telemetry
			if err := DecodeTelemetry([]byte(c.json), testNow, &got); err != nil {
				t.Fatal(err)
			}
			if !c.want(&got) {
				t.Errorf("unexpected result: %+v", got)
			}
		})
	}
}

func alarmList(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = `"alarm` + strconv.Itoa(i) + `"`
	}
	return strings.Join(names, ",")
}

func TestDecodeTelemetryRejects(t *testing.T) {
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	cases := []struct {
		name   string
		json   string
		reason Reason
	}{
		{"empty", ``, ReasonNotJSON},
		{"blank", " \n", ReasonNotJSON},
		{"plain text", `online`, ReasonNotJSON},
		{"unterminated", `{"dim":1`, ReasonNotJSON},
		{"missing value", `{"dim":}`, ReasonNotJSON},
		{"trailing comma", `{"dim":1,}`, ReasonNotJSON},
		{"trailing garbage", `{"dim":1}x`, ReasonNotJSON},
		{"two objects", `{"dim":1}{"dim":2}`, ReasonNotJSON},
		{"single quotes", `{'dim':1}`, ReasonNotJSON},
		{"missing colon", `{"dim" 1}`, ReasonNotJSON},
		{"leading zero", `{"dim":01}`, ReasonNotJSON},
		{"bare dot", `{"dim":1.}`, ReasonNotJSON},
		{"leading dot", `{"dim":.5}`, ReasonNotJSON},
		{"plus sign", `{"dim":+5}`, ReasonNotJSON},
		{"empty exponent", `{"dim":1e}`, ReasonNotJSON},
		{"hex", `{"dim":0x10}`, ReasonNotJSON},
		{"control character in string", "{\"x\":\"a\x01b\"}", ReasonNotJSON},
		{"bad escape", `{"x":"\x41"}`, ReasonNotJSON},
		{"short unicode escape", `{"x":"\u12"}`, ReasonNotJSON},
		{"bad literal", `{"lamp_on":tru}`, ReasonNotJSON},
		{"bad literal in unknown field", `{"x":nul}`, ReasonNotJSON},
		{"unterminated nested", `{"x":{"a":[1,2}}`, ReasonNotJSON},
		{"bad nested key", `{"x":{a:1}}`, ReasonNotJSON},
		{"syntax error after a type error", `{"voltage":"x",}`, ReasonNotJSON},
		{"nested deeper than encoding/json allows", `{"x":` + deep + `}`, ReasonNotJSON},
		{"comment", `{"dim":1 /* no */}`, ReasonNotJSON},

		{"array", `[1,2]`, ReasonWrongType},
		{"number", `42`, ReasonWrongType},
		{"string", `"online"`, ReasonWrongType},
		{"null payload", `null`, ReasonWrongType},
		{"voltage as string", `{"voltage":"221"}`, ReasonWrongType},
		{"voltage as object", `{"voltage":{"v":221}}`, ReasonWrongType},
		{"voltage as bool", `{"voltage":true}`, ReasonWrongType},
		{"lamp_on as number", `{"lamp_on":1}`, ReasonWrongType},
		{"lamp_on as string", `{"lamp_on":"true"}`, ReasonWrongType},
		{"ts as bool", `{"ts":true}`, ReasonWrongType},
		{"ts as array", `{"ts":[2026]}`, ReasonWrongType},
		{"alarms as string", `{"alarms":"relayFailure"}`, ReasonWrongType},
		{"alarm as number", `{"alarms":[1]}`, ReasonWrongType},
		{"alarm as object", `{"alarms":[{"name":"x"}]}`, ReasonWrongType},
		{"lat as string", `{"lat":"-19.7","lon":-47.9}`, ReasonWrongType},

		{"NaN", `{"voltage":NaN}`, ReasonNonFinite},
		{"nan", `{"voltage":nan}`, ReasonNonFinite},
		{"Infinity", `{"power":Infinity}`, ReasonNonFinite},
		{"-Infinity", `{"power":-Infinity}`, ReasonNonFinite},
		{"-inf", `{"power":-inf}`, ReasonNonFinite},
		{"NaN in an unknown field", `{"x":NaN}`, ReasonNonFinite},
		{"NaN in a nested array", `{"x":[1,NaN]}`, ReasonNonFinite},
		{"NaN in lamp_on", `{"lamp_on":NaN}`, ReasonNonFinite},
		{"beyond float64", `{"energy":1e309}`, ReasonNonFinite},
		{"beyond float64 negative", `{"temperature":-1.8e308}`, ReasonNonFinite},
		{"ts beyond float64", `{"ts":1e400}`, ReasonNonFinite},

		{"negative voltage", `{"voltage":-1}`, ReasonBadValue},
		{"negative current", `{"current":-0.1}`, ReasonBadValue},
		{"negative power", `{"power":-5}`, ReasonBadValue},
		{"negative energy", `{"energy":-5}`, ReasonBadValue},
		{"negative lux", `{"lux":-5}`, ReasonBadValue},
		{"negative burn hours", `{"burn_hours":-5}`, ReasonBadValue},
		{"negative switch count", `{"switch_count":-1}`, ReasonBadValue},
		{"dim above 100", `{"dim":100.5}`, ReasonBadValue},
		{"dim below 0", `{"dim":-1}`, ReasonBadValue},
		{"power factor above 1", `{"power_factor":1.01}`, ReasonBadValue},
		{"power factor below 0", `{"power_factor":-0.5}`, ReasonBadValue},
		{"below absolute zero", `{"temperature":-274}`, ReasonBadValue},
		{"duplicate key: bad value last", `{"dim":50,"dim":500}`, ReasonBadValue},
		{"33 alarms", `{"alarms":[` + alarmList(33) + `]}`, ReasonBadValue},
		{"alarm of 65 characters", `{"alarms":["` + strings.Repeat("a", 65) + `"]}`, ReasonBadValue},
		{"empty alarm", `{"alarms":[""]}`, ReasonBadValue},
		{"alarm with a space", `{"alarms":["relay failure"]}`, ReasonBadValue},
		{"alarm with non-ASCII", `{"alarms":["falha_lâmpada"]}`, ReasonBadValue},
		{"alarm with escaped non-ASCII", `{"alarms":["falha_l\u00e2mpada"]}`, ReasonBadValue},
		{"null alarm", `{"alarms":["a",null]}`, ReasonBadValue},

		{"ts not a time", `{"ts":"yesterday"}`, ReasonBadTime},
		{"ts with a space", `{"ts":"2026-12-04 21:10:00Z"}`, ReasonBadTime},
		{"ts lower-case t", `{"ts":"2026-12-04t21:10:00Z"}`, ReasonBadTime},
		{"ts without zone", `{"ts":"2026-12-04T21:10:00"}`, ReasonBadTime},
		{"ts 30 February", `{"ts":"2026-02-30T00:00:00Z"}`, ReasonBadTime},
		{"ts hour 24", `{"ts":"2026-12-04T24:00:00Z"}`, ReasonBadTime},
		{"ts leap second", `{"ts":"2016-12-31T23:59:60Z"}`, ReasonBadTime},
		{"ts offset hour 24", `{"ts":"2026-12-04T21:10:00+24:00"}`, ReasonBadTime},
		{"ts comma fraction", `{"ts":"2026-12-04T21:10:00,5Z"}`, ReasonBadTime},
		{"ts empty", `{"ts":""}`, ReasonBadTime},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := agent.Telemetry{Nameplate: "keep", Reading: agent.Reading{Voltage: 1}}
			before := got
			err := DecodeTelemetry([]byte(c.json), testNow, &got)
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RejectError", err)
			}
			if re.Reason != c.reason {
				t.Errorf("reason = %s, want %s (%v)", re.Reason, c.reason, err)
			}
			if re.Detail == "" || !errors.Is(err, ErrRejected) {
				t.Errorf("error %v: want a detail and errors.Is ErrRejected", err)
			}
			if !reflect.DeepEqual(got, before) {
				t.Errorf("a rejected decode changed t: %+v", got)
			}
		})
	}
}

func TestEpochTime(t *testing.T) {
	for _, v := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), -1, 0, 1e11 * 1000, 9.3e18, -9.3e18} {
		if _, ok := epochTime(v); ok {
			t.Errorf("epochTime(%g) ok, want not ok", v)
		}
	}
	if tm, ok := epochTime(1796418600.25); !ok || !tm.Equal(time.Unix(1796418600, 250000000)) {
		t.Errorf("epochTime(1796418600.25) = %v, %v", tm, ok)
	}
}

func TestParseTopic(t *testing.T) {
	long := strings.Repeat("a", 64)
	cases := []struct {
		prefix, topic string
		nameplate     string
		kind          TopicKind
	}{
		{"streetlights", "streetlights/LP-0001/telemetry", "LP-0001", TopicTelemetry},
		{"streetlights", "streetlights/LP-0001/status", "LP-0001", TopicStatus},
		{"streetlights", "streetlights/a.b_c-D9/telemetry", "a.b_c-D9", TopicTelemetry},
		{"streetlights", "streetlights/" + long + "/status", long, TopicStatus},
		{"city/lights", "city/lights/x/telemetry", "x", TopicTelemetry},
		{"streetlights", "streetlights//telemetry", "", 0},
		{"streetlights", "streetlights/" + long + "a/telemetry", "", 0},
		{"streetlights", "streetlights/has space/telemetry", "", 0},
		{"streetlights", "streetlights/ção/telemetry", "", 0},
		{"streetlights", "streetlights/a+b/telemetry", "", 0},
		{"streetlights", "streetlights/x/other", "", 0},
		{"streetlights", "streetlights/x/telemetry/more", "", 0},
		{"streetlights", "streetlights/_gateways/gw/status", "", 0},
		{"streetlights", "streetlights/x", "", 0},
		{"streetlights", "streetlights", "", 0},
		{"streetlights", "streetlightsX/x/telemetry", "", 0},
		{"streetlights", "other/x/telemetry", "", 0},
		{"streetlights", "", "", 0},
		{"streetlights", "streetlights/x/Telemetry", "", 0},
	}
	for _, c := range cases {
		np, kind, err := ParseTopic(c.prefix, c.topic)
		if c.kind == 0 {
			var re *RejectError
			if !errors.As(err, &re) || re.Reason != ReasonBadTopic {
				t.Errorf("ParseTopic(%q, %q) = %q, %v, %v; want a bad_topic rejection", c.prefix, c.topic, np, kind, err)
			}
			continue
		}
		if err != nil || np != c.nameplate || kind != c.kind {
			t.Errorf("ParseTopic(%q, %q) = %q, %v, %v; want %q, %v", c.prefix, c.topic, np, kind, err, c.nameplate, c.kind)
		}
	}
}

func TestDecodeStatus(t *testing.T) {
	cases := []struct {
		payload string
		online  bool
		ok      bool
	}{
		{"online", true, true},
		{"offline", false, true},
		{"ONLINE", true, true},
		{" Offline\r\n", false, true},
		{`{"online": true}`, true, true},
		{`{"online":false,"reason":"power"}`, false, true},
		{` {"online" : true} `, true, true},
		{"", false, false},
		{"on", false, false},
		{"online!", false, false},
		{"1", false, false},
		{"true", false, false},
		{`{"online": "true"}`, false, false},
		{`{"online": 1}`, false, false},
		{`{"Online": true}`, false, false},
		{`{"state": "online"}`, false, false},
		{`{"online": true`, false, false},
		{`{"online": null}`, false, false},
		{`["online"]`, false, false},
	}
	for _, c := range cases {
		online, err := DecodeStatus([]byte(c.payload))
		if !c.ok {
			var re *RejectError
			if !errors.As(err, &re) || re.Reason != ReasonBadStatus {
				t.Errorf("DecodeStatus(%q) = %v, %v; want a bad_status rejection", c.payload, online, err)
			}
			continue
		}
		if err != nil || online != c.online {
			t.Errorf("DecodeStatus(%q) = %v, %v; want %v", c.payload, online, err, c.online)
		}
	}
}

func TestReasons(t *testing.T) {
	seen := map[Reason]bool{}
	for i, r := range Reasons() {
		if seen[r] || r.index() != i {
			t.Errorf("reason %q duplicated or misindexed", r)
		}
		seen[r] = true
	}
	if Reason("nope").index() != -1 {
		t.Error("an unknown reason has an index")
	}
}

// TestDepthLimitMatchesEncodingJSON: the nesting limit is encoding/json's,
// to the level (the fuzzer rarely builds 10 000 brackets).
func TestDepthLimitMatchesEncodingJSON(t *testing.T) {
	for _, n := range []int{maxDepth - 2, maxDepth - 1, maxDepth, maxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			payload := []byte(`{"x":` + strings.Repeat(open, n) + "1" + strings.Repeat(close, n) + "}")
			var tel agent.Telemetry
			err := DecodeTelemetry(payload, testNow, &tel)
			valid := json.Valid(payload)
			if (err == nil) != valid {
				t.Errorf("depth %d of %q: decoder err = %v, json.Valid = %v", n+1, open, err, valid)
			}
			if valid != (n < maxDepth) {
				t.Errorf("depth %d: json.Valid = %v; encoding/json's limit moved", n+1, valid)
			}
		}
	}
}
