package mqtt

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
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

// BenchmarkSubscriberThroughput is the whole intake through a real
// mosquitto: QoS 1 telemetry published as fast as one client can, received,
// decoded, handed to a handler that keeps nothing, and acked. msgs/s is
// what one agent ingests on this machine (the broker shares its CPU).
func BenchmarkSubscriberThroughput(b *testing.B) {
	br := mqtttest.StartT(b)
	var handled atomic.Int64
	cfg := Config{Broker: br.URL, ClientID: "bench", GatewayID: "gw-bench", MaxReconnectInterval: time.Second}
	s, err := New(cfg, countingHandler{&handled})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	for !s.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	o := paho.NewClientOptions().AddBroker(br.URL).SetClientID("bench-pub").SetMaxResumePubInFlight(100)
	pub := paho.NewClient(o)
	if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	payload := []byte(typicalPayload)

	b.ResetTimer()
	start := handled.Load()
	toks := make([]paho.Token, 0, 256)
	for i := range b.N {
		toks = append(toks, pub.Publish(fmt.Sprintf("streetlights/LP-%d/telemetry", i%500), 1, false, payload))
		if len(toks) == cap(toks) { // bound the publisher's own backlog
			for _, t := range toks {
				t.Wait()
			}
			toks = toks[:0]
		}
	}
	for _, t := range toks {
		t.Wait()
	}
	for handled.Load()-start < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) HandleTelemetry(context.Context, *agent.Telemetry) error {
	h.n.Add(1)
	return nil
}

func (h countingHandler) HandleStatus(context.Context, agent.StatusReport) error { return nil }
