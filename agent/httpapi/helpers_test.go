package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// fakeSource is a hand-written Source: each method calls its function field
// when set, else answers from the fixed data. Calls are recorded.
type fakeSource struct {
	mu      sync.Mutex
	snap    Snapshot
	devices []agent.DeviceView
	tickets []agent.Ticket
	calls   []string
	lastQ   TicketQuery

	status      func(ctx context.Context) Snapshot
	retry       func(ctx context.Context, p int64) (agent.Ticket, error)
	retryFailed func(ctx context.Context) (int, error)
	ready       func(ctx context.Context) error
	healthy     func(ctx context.Context) error
	devicesErr  error
}

func (f *fakeSource) record(c string) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *fakeSource) Status(ctx context.Context) Snapshot {
	f.record("status")
	if f.status != nil {
		return f.status(ctx)
	}
	return f.snap
}

func (f *fakeSource) Devices(context.Context) ([]agent.DeviceView, error) {
	f.record("devices")
	return f.devices, f.devicesErr
}

func (f *fakeSource) Device(_ context.Context, name string) (agent.DeviceView, error) {
	f.record("device " + name)
	for _, d := range f.devices {
		if d.Nameplate == name {
			return d, nil
		}
	}
	return agent.DeviceView{}, fmt.Errorf("device %s: %w", name, ErrNotFound)
}

func (f *fakeSource) Tickets(_ context.Context, q TicketQuery) ([]agent.Ticket, error) {
	f.record("tickets")
	f.mu.Lock()
	f.lastQ = q
	f.mu.Unlock()
	var out []agent.Ticket
	for _, t := range f.tickets {
		if (q.State == "" || t.State == q.State) && (q.Nameplate == "" || t.Nameplate == q.Nameplate) {
			out = append(out, t)
		}
		if q.Limit > 0 && len(out) >= q.Limit {
			break
		}
	}
	return out, nil
}

func (f *fakeSource) Ticket(_ context.Context, p int64) (agent.Ticket, error) {
	for _, t := range f.tickets {
		if t.Protocol == p {
			return t, nil
		}
	}
	return agent.Ticket{}, fmt.Errorf("ticket %d: %w", p, ErrNotFound)
}

func (f *fakeSource) Retry(ctx context.Context, p int64) (agent.Ticket, error) {
	f.record(fmt.Sprintf("retry %d", p))
	if f.retry != nil {
		return f.retry(ctx, p)
	}
	return agent.Ticket{}, fmt.Errorf("retry: %w", ErrUnavailable)
}

func (f *fakeSource) RetryFailed(ctx context.Context) (int, error) {
	f.record("retry-failed")
	if f.retryFailed != nil {
		return f.retryFailed(ctx)
	}
	return 0, nil
}

func (f *fakeSource) Ready(ctx context.Context) error {
	if f.ready != nil {
		return f.ready(ctx)
	}
	return nil
}

func (f *fakeSource) Healthy(ctx context.Context) error {
	if f.healthy != nil {
		return f.healthy(ctx)
	}
	return nil
}

func (f *fakeSource) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// A night in Uberaba (−19.75, −47.93): 03:00 UTC is midnight local time.
var (
	night   = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	gwLat   = -19.7472
	gwLon   = -47.9381
	started = night.Add(-2 * time.Hour)
)

// realDevices feeds a real detector with telemetry that raises faults and
// returns its views: LP-0001 dark at night (lampFailure), LP-0002 with a
// supply voltage too high, LP-0003 reporting a controller alarm, LP-0004 and
// lp-0005 healthy.
func realDevices(t *testing.T) []agent.DeviceView {
	t.Helper()
	reg, rowErrs, err := agent.ParseRegistry(strings.NewReader("nameplate_num,address,address_number,neighborhood,municipality,state_abbreviation,latitude,longitude,nominal_power\n" +
		"LP-0001,Rua das Flores,120,Centro,Uberaba,MG,-19.7472,-47.9381,100\n" +
		"LP-0002,Avenida Leopoldino de Oliveira,3000,Centro,Uberaba,MG,-19.7480,-47.9390,100\n"))
	if err != nil || len(rowErrs) > 0 {
		t.Fatalf("registry: %v %v", err, rowErrs)
	}
	det := agent.NewDetector(agent.DetectorConfig{
		ConfirmCount: 1, NominalVoltage: 220, VoltageTolerance: 0.1, LampMinPower: 5, MinPowerFactor: 0.85,
		DayLux: 50, CommLossAfter: time.Hour, ReportInterval: 5 * time.Minute,
		Latitude: gwLat, Longitude: gwLon, HasPosition: true,
	}, reg, started)
	obs := func(name string, at time.Time, r agent.Reading, alarms ...string) {
		tm := &agent.Telemetry{Nameplate: name, At: at, Received: at, Reading: r}
		if alarms != nil {
			tm.Fields |= agent.FieldAlarms
			tm.Alarms = alarms
		}
		if err := det.Observe(tm, func([]agent.Event) error { return nil }); err != nil {
			t.Fatalf("observe %s: %v", name, err)
		}
	}
	lit := agent.Reading{Fields: agent.FieldLampOn | agent.FieldPower | agent.FieldVoltage, LampOn: true, Power: 98, Voltage: 221}
	for i := 0; i < 4; i++ {
		at := night.Add(time.Duration(i-3) * 30 * time.Minute)
		obs("LP-0001", at, lit)
		obs("LP-0004", at, lit)
		obs("lp-0005", at, lit)
	}
	obs("LP-0001", night.Add(30*time.Minute), agent.Reading{Fields: agent.FieldLampOn | agent.FieldPower | agent.FieldVoltage, LampOn: true, Power: 0, Voltage: 222})
	obs("LP-0002", night, agent.Reading{Fields: agent.FieldVoltage | agent.FieldPower | agent.FieldLampOn, Voltage: 258, Power: 97, LampOn: true})
	obs("LP-0003", night, lit, "relayFailure")
	return det.Devices(true)
}

// healthySnapshot is a gateway with nothing wrong.
func healthySnapshot() Snapshot {
	now := night.Add(time.Hour)
	ok := now.Add(-time.Minute)
	return Snapshot{
		Version: "1.2.3", GatewayID: "gw-test", UptimeS: 3600, StartedAt: TimePtr(started), Now: TimePtr(now),
		MQTT: MQTTStatus{Connected: true, Broker: "tcp://127.0.0.1:1883", ConnectedSince: TimePtr(started),
			MessagesReceived: 120, MessagesRejected: 3, RejectedByReason: map[string]int64{"not_json": 2, "bad_value": 1}, Reconnects: 1},
		M2M:      M2MStatus{LastSuccessAt: &ok},
		Tickets:  TicketCounts{Pending: 1, Sent: 5, Cancelled: 2, Queued: 1, OldestQueuedProtocol: 9, OldestQueuedAt: TimePtr(now.Add(-10 * time.Second)), OldestQueuedAgeS: 10},
		Devices:  DeviceCounts{Known: 5, Online: 5, Faulty: 3},
		Store:    StoreStatus{Path: "/var/lib/edge-agent/edge-agent.db", Open: true, SizeBytes: 1 << 20, MaxBytes: 256 << 20},
		Clock:    ClockStatus{Trusted: true},
		Registry: RegistryStatus{Path: "/etc/edge-agent/devices.csv", Devices: 2},
	}
}

func newTestServer(t *testing.T, src Source, cfg Config) (*Server, *Metrics) {
	t.Helper()
	m := NewMetrics()
	return New(cfg, src, m, nil), m
}

// do runs one request through h and returns the recorder.
func do(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "127.0.0.1:8080"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q, body %s", ct, rec.Body.String())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body.String(), err)
	}
	return v
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d; body %s", rec.Code, code, rec.Body.String())
	}
}

func newRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = "127.0.0.1:8080"
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
