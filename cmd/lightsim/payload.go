package main

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// appendTelemetry appends the CONTRACT §3 JSON of s to b. It is written by
// hand, not with encoding/json, because the load mode encodes tens of
// thousands of messages a second; the tests decode its output with
// encoding/json to keep it honest.
func appendTelemetry(b []byte, s *Sample) []byte {
	b = append(b, '{')
	switch s.TS {
	case tsRFC3339:
		b = append(b, `"ts":"`...)
		b = s.At.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, `",`...)
	case tsUnix:
		b = append(b, `"ts":`...)
		b = strconv.AppendInt(b, s.At.Unix(), 10)
		b = append(b, ',')
	case tsUnixMs:
		b = append(b, `"ts":`...)
		b = strconv.AppendInt(b, s.At.UnixMilli(), 10)
		b = append(b, ',')
	}
	b = appendNum(b, `"voltage":`, s.Voltage, 1)
	b = appendNum(b, `,"current":`, s.Current, 3)
	b = appendNum(b, `,"power":`, s.Power, 1)
	b = appendNum(b, `,"power_factor":`, s.PowerFactor, 2)
	b = appendNum(b, `,"energy":`, s.Energy, 3)
	b = append(b, `,"lamp_on":`...)
	b = strconv.AppendBool(b, s.LampOn)
	b = append(b, `,"dim":`...)
	b = strconv.AppendInt(b, int64(s.Dim), 10)
	if s.HasLux {
		b = appendNum(b, `,"lux":`, s.Lux, 1)
	}
	b = appendNum(b, `,"temperature":`, s.Temperature, 1)
	b = appendNum(b, `,"burn_hours":`, s.BurnHours, 3)
	b = append(b, `,"switch_count":`...)
	b = strconv.AppendInt(b, s.SwitchCount, 10)
	b = appendNum(b, `,"lat":`, s.Lat, 6)
	b = appendNum(b, `,"lon":`, s.Lon, 6)
	b = append(b, `,"alarms":[`...)
	for i, a := range s.Alarms {
		if i > 0 {
			b = append(b, ',')
		}
		// Alarm names are validated to [A-Za-z0-9._-]: no escaping needed.
		b = append(b, '"')
		b = append(b, a...)
		b = append(b, '"')
	}
	b = append(b, "]}"...)
	return b
}

func appendNum(b []byte, key string, v float64, prec int) []byte {
	b = append(b, key...)
	// +0 turns a negative zero into zero: "-0.0" is valid JSON but odd.
	return strconv.AppendFloat(b, v+0, 'f', prec, 64)
}

// garbageKind is one way a payload or topic is invalid.
type garbageKind uint8

const (
	garbageNotJSON     garbageKind = iota // truncated JSON
	garbageWrongType                      // fields of the wrong JSON type
	garbageNotObject                      // valid JSON, but an array
	garbageNaN                            // NaN / Infinity literals (not JSON numbers)
	garbageOverflow                       // a number beyond float64: not finite once decoded
	garbageOversize                       // valid JSON, larger than the agent's 16 KiB default limit
	garbageBadTopic                       // a valid payload on a topic with an invalid nameplate
	garbageTooLongName                    // a valid payload, nameplate of 65 characters
	garbageKinds                          // how many
)

var garbageNames = [...]string{"not_json", "wrong_type", "not_object", "nan", "overflow", "oversize", "bad_topic", "long_nameplate"}

func (k garbageKind) String() string { return garbageNames[k] }

// oversizeBytes is the size of the oversize garbage: twice the agent's
// default EDGE_MQTT_MAX_PAYLOAD (16384).
const oversizeBytes = 32 * 1024

// garbage returns the next invalid message of a garbage device: the kinds
// rotate with each message, starting at a point given by the device's
// index, so a fleet sends all of them at once.
func (d *Device) garbage(prefix string, s *Sample) (topic string, payload []byte, kind garbageKind) {
	kind = garbageKind((d.garbageSeq + uint64(d.Index)) % uint64(garbageKinds))
	d.garbageSeq++
	topic = telemetryTopic(prefix, d.Nameplate)
	valid := appendTelemetry(nil, s)
	switch kind {
	case garbageNotJSON:
		payload = valid[:len(valid)/2]
	case garbageWrongType:
		payload = []byte(`{"voltage":"221.4","lamp_on":"yes","dim":[100],"alarms":"none"}`)
	case garbageNotObject:
		payload = []byte(`[221.4,0.42,true]`)
	case garbageNaN:
		payload = []byte(`{"voltage":NaN,"power":Infinity,"lamp_on":true}`)
	case garbageOverflow:
		payload = []byte(`{"voltage":1e999,"power":-1e999,"lamp_on":true}`)
	case garbageOversize:
		var buf bytes.Buffer
		buf.Write(valid[:len(valid)-1])
		buf.WriteString(`,"pad":"`)
		buf.WriteString(strings.Repeat("x", oversizeBytes))
		buf.WriteString(`"}`)
		payload = buf.Bytes()
	case garbageBadTopic:
		// Space and '!' are legal in an MQTT topic but not in a nameplate.
		topic = telemetryTopic(prefix, d.Nameplate+" bad!")
		payload = valid
	case garbageTooLongName:
		topic = telemetryTopic(prefix, strings.Repeat("N", 65))
		payload = valid
	}
	return topic, payload, kind
}

func telemetryTopic(prefix, nameplate string) string { return prefix + "/" + nameplate + "/telemetry" }
func statusTopic(prefix, nameplate string) string    { return prefix + "/" + nameplate + "/status" }
