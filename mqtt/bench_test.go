package mqtt

import (
	"testing"

	"github.com/edge-agent/edge-agent/agent"
)

// typicalPayload is what a controller sends every report interval: the
// contract's fields without alarms (an alarm is the exception).
const typicalPayload = `{"ts":"2026-12-04T21:10:00Z","voltage":221.4,"current":0.42,"power":88.1,"power_factor":0.96,` +
	`"energy":1234.5,"lamp_on":true,"dim":100,"lux":2.1,"temperature":38.5,"burn_hours":10234,"switch_count":5531,` +
	`"lat":-19.7472,"lon":-47.9381}`

func BenchmarkDecodeTelemetry(b *testing.B) {
	for _, bc := range []struct{ name, payload string }{
		{"typical", typicalPayload},
		{"contract_with_alarm", contractPayload},
		{"unix_ms_and_unknown_fields", `{"ts":1796418600000,"voltage":221.4,"power":88.1,"lamp_on":true,` +
			`"fw":{"version":"2.1.0","build":[1,2,3]},"rssi":-71,"dim":100}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			payload := []byte(bc.payload)
			var t agent.Telemetry
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if err := DecodeTelemetry(payload, testNow, &t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseTopic(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseTopic("streetlights", "streetlights/LP-000123/telemetry"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeTelemetryAllocs pins the hot path's allocation budget: none
// for a typical message, two (the names and the slice) with alarms.
func TestDecodeTelemetryAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumented builds allocate differently")
	}
	for _, c := range []struct {
		payload string
		max     float64
	}{{typicalPayload, 0}, {contractPayload, 2}} {
		payload := []byte(c.payload)
		var tel agent.Telemetry
		n := testing.AllocsPerRun(100, func() {
			if err := DecodeTelemetry(payload, testNow, &tel); err != nil {
				t.Fatal(err)
			}
		})
		if n > c.max {
			t.Errorf("DecodeTelemetry allocates %v times per message, want at most %v: %s", n, c.max, c.payload)
		}
	}
	n := testing.AllocsPerRun(100, func() { _, _, _ = ParseTopic("streetlights", "streetlights/LP-1/telemetry") })
	if n != 0 {
		t.Errorf("ParseTopic allocates %v times, want 0", n)
	}
}
