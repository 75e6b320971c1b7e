package httpapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// fleetDevices feeds a real detector n devices (every 50th with a supply
// voltage too high) and returns their views as the daemon's Source would.
func fleetDevices(b *testing.B, n int) []agent.DeviceView {
	b.Helper()
	return fleetDetector(b, n).Devices(true)
}

func fleetDetector(b *testing.B, n int) *agent.Detector {
	b.Helper()
	det := agent.NewDetector(agent.DetectorConfig{ConfirmCount: 1, NominalVoltage: 220, VoltageTolerance: 0.1,
		LampMinPower: 5, MinPowerFactor: 0.85, CommLossAfter: time.Hour}, nil, started)
	for i := 0; i < n; i++ {
		v := 221.0
		if i%50 == 0 {
			v = 260
		}
		for h := 0; h < 4; h++ {
			at := night.Add(time.Duration(h-3) * 30 * time.Minute)
			tm := &agent.Telemetry{Nameplate: fmt.Sprintf("LP-%06d", i), At: at, Received: at,
				Reading: agent.Reading{Fields: agent.FieldVoltage | agent.FieldPower | agent.FieldLampOn, Voltage: v, Power: 98, LampOn: true}}
			if err := det.Observe(tm, func([]agent.Event) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	}
	return det
}

func benchGet(b *testing.B, s *Server, target string) {
	b.Helper()
	h := s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for b.Loop() {
		req := httptest.NewRequest("GET", target, nil)
		req.Host = "127.0.0.1:8080"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", target, rec.Code, rec.Body.String())
		}
		n = rec.Body.Len()
	}
	b.ReportMetric(float64(n), "resp-bytes")
}

// BenchmarkStatus is one /api/status: the page asks every 10 s.
func BenchmarkStatus(b *testing.B) {
	s := New(Config{}, &fakeSource{snap: healthySnapshot()}, nil, nil)
	benchGet(b, s, "/api/status")
}

// BenchmarkMetricsScrape is one /metrics (status collector, Go and process
// collectors, the fault and API counters).
func BenchmarkMetricsScrape(b *testing.B) {
	m := NewMetrics()
	for _, c := range []string{"create", "cancel", "update_devices"} {
		m.ObserveAPI(c, agent.OutcomeOK, 200, 100*time.Millisecond)
	}
	s := New(Config{}, &fakeSource{snap: healthySnapshot()}, m, nil)
	benchGet(b, s, "/metrics")
}

// BenchmarkDevices lists a fleet: all of it (the CLI), the faulty ones (the
// page, every 10 s) and a search (the page's search box, limit 100).
func BenchmarkDevices(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		views := fleetDevices(b, n)
		s := New(Config{}, &fakeSource{snap: healthySnapshot(), devices: views}, nil, nil)
		b.Run(fmt.Sprintf("all/%d", n), func(b *testing.B) { benchGet(b, s, "/api/devices") })
		b.Run(fmt.Sprintf("faulty/%d", n), func(b *testing.B) { benchGet(b, s, "/api/devices?faulty=1") })
		b.Run(fmt.Sprintf("search/%d", n), func(b *testing.B) { benchGet(b, s, "/api/devices?q=lp-0001&limit=100") })
	}
}

// BenchmarkDevice is one device with its 24-hour history.
func BenchmarkDevice(b *testing.B) {
	s := New(Config{}, &fakeSource{snap: healthySnapshot(), devices: fleetDevices(b, 100)}, nil, nil)
	benchGet(b, s, "/api/devices/LP-000050")
}

// BenchmarkPageRefresh is what one refresh of the page costs the daemon on a
// fleet, Source included: the detector copies every device (with its
// history) for each of the two device lists the page asks for.
func BenchmarkPageRefresh(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		det := fleetDetector(b, n)
		src := &detectorSource{fakeSource: fakeSource{snap: healthySnapshot()}, det: det}
		s := New(Config{}, src, nil, nil)
		h := s.Handler()
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, target := range []string{"/api/status", "/api/devices?faulty=1&limit=500", "/api/devices?limit=100", "/api/tickets?limit=50"} {
					req := httptest.NewRequest("GET", target, nil)
					req.Host = "127.0.0.1:8080"
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("%s: %d", target, rec.Code)
					}
				}
			}
		})
	}
}

// detectorSource answers Devices from a real detector.
type detectorSource struct {
	fakeSource
	det *agent.Detector
}

func (d *detectorSource) Devices(context.Context) ([]agent.DeviceView, error) {
	return d.det.Devices(true), nil
}
