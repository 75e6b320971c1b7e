package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/agent/httpapi"
	"github.com/edge-agent/edge-agent/mqtt"
	"github.com/edge-agent/edge-agent/store"
)

// fakeMQTT is what the adapter reads of the subscriber, fixed.
type fakeMQTT struct {
	stats     mqtt.Stats
	connected bool
}

func (f *fakeMQTT) Stats() mqtt.Stats { return f.stats }
func (f *fakeMQTT) Connected() bool   { return f.connected }

func TestStatusSourceSnapshot(t *testing.T) {
	f := newCLIFixture(t)
	since := testNight.Add(-30 * time.Minute)
	m := &fakeMQTT{connected: true, stats: mqtt.Stats{
		Connected: true, Subscribed: true, ConnectedSince: since, Reconnects: 2, Received: 500, RejectedTotal: 7,
		Rejected: map[mqtt.Reason]int64{mqtt.ReasonNotJSON: 5, mqtt.ReasonBadValue: 2}, HandlerErrors: 1,
	}}
	okAt := testNight.Add(50 * time.Minute)
	f.syncer.health = agent.APIHealth{LastSuccessAt: okAt, ConsecutiveFailures: 0, Collisions: 1}
	now := testNight.Add(time.Hour)
	src := newStatusSource(statusParts{
		Version: "1.0.0", GatewayID: "gw-x", Started: testNight, Now: func() time.Time { return now },
		Detector: f.det, Store: f.st, MQTT: m, Broker: "mqtts://tech:secret@broker.example:8883", Syncer: f.syncer,
		RegistryPath: "/etc/edge-agent/devices.csv",
	})
	src.SetRegistry("/etc/edge-agent/devices.csv", []agent.RowError{
		{Line: 3, Reason: "bad latitude"}, {Line: 4, Reason: "x"}, {Line: 5, Reason: "x"}, {Line: 6, Reason: "x"},
		{Line: 7, Reason: "x"}, {Line: 8, Reason: "x"},
	})
	s := src.Status(context.Background())
	s.Assess()

	if s.UptimeS != 3600 || s.Source != httpapi.SourceDaemon || s.Version != "1.0.0" {
		t.Errorf("head: %+v", s)
	}
	if !s.MQTT.Connected || s.MQTT.MessagesReceived != 500 || s.MQTT.MessagesRejected != 7 || s.MQTT.Reconnects != 2 ||
		s.MQTT.RejectedByReason["not_json"] != 5 || s.MQTT.RejectedByReason["too_large"] != 0 || len(s.MQTT.RejectedByReason) != len(mqtt.Reasons()) {
		t.Errorf("mqtt: %+v", s.MQTT)
	}
	if strings.Contains(s.MQTT.Broker, "secret") || strings.Contains(s.MQTT.Broker, "tech") || s.MQTT.Broker != "mqtts://broker.example:8883" {
		t.Errorf("broker shown as %q", s.MQTT.Broker)
	}
	if s.M2M.LastSuccessAt == nil || !s.M2M.LastSuccessAt.Equal(okAt) || s.M2M.ProtocolCollisions != 1 {
		t.Errorf("m2m: %+v", s.M2M)
	}
	if tk := s.Tickets; tk.Pending != 1 || tk.Sent != 1 || tk.Failed != 1 || tk.Queued != 1 || tk.OldestQueuedProtocol == 0 || tk.OldestQueuedAt == nil {
		t.Errorf("tickets: %+v", tk)
	}
	if s.Devices.Known != 4 || s.Devices.Faulty != 3 {
		t.Errorf("devices: %+v", s.Devices)
	}
	if !s.Store.Open || s.Store.SizeBytes <= 0 || s.Store.Path != filepath.Join(f.dataDir, storeFileName) {
		t.Errorf("store: %+v", s.Store)
	}
	if !s.Clock.Trusted {
		t.Errorf("clock: %+v", s.Clock)
	}
	if r := s.Registry; r.RowErrors != 6 || len(r.RowErrorSamples) != maxRowErrorSamples || r.RowErrorSamples[0] != "line 3: bad latitude" {
		t.Errorf("registry: %+v", r)
	}
	codes := map[string]bool{}
	for _, p := range s.Problems {
		codes[p.Code] = true
	}
	for _, c := range []string{httpapi.CodeProtocolCollision, httpapi.CodeTicketsFailed, httpapi.CodeRegistryRowErrors} {
		if !codes[c] {
			t.Errorf("problem %s missing: %+v", c, s.Problems)
		}
	}

	if err := src.Ready(context.Background()); err != nil {
		t.Errorf("Ready with the store open and the broker connected: %v", err)
	}
	m.connected = false
	m.stats.LastError = "dial tcp: connection refused"
	if err := src.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Ready without the broker: %v", err)
	}

	// A closed store (the daemon shutting down) is reported, not a crash.
	m.connected = true
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	s = src.Status(context.Background())
	s.Assess()
	if s.Store.Open || s.Health.Store != httpapi.StatusFail || s.Tickets.Error == "" {
		t.Errorf("closed store: store %+v, health %+v", s.Store, s.Health)
	}
	if err := src.Ready(context.Background()); err == nil {
		t.Error("Ready with the store closed")
	}
	if _, err := src.Tickets(context.Background(), httpapi.TicketQuery{}); !errors.Is(err, httpapi.ErrUnavailable) {
		t.Errorf("Tickets on a closed store: %v, want ErrUnavailable", err)
	}
}

func TestStatusSourceHealthy(t *testing.T) {
	start := testNight
	now := start
	var syncBeat, sweepBeat time.Time
	src := newStatusSource(statusParts{Started: start, Now: func() time.Time { return now }, Loops: []statusLoop{
		{Name: "ticket sync", Beat: func() time.Time { return syncBeat }, Within: time.Minute},
		{Name: "silence sweep", Beat: func() time.Time { return sweepBeat }, Within: 90 * time.Second},
	}})
	ctx := context.Background()
	now = start.Add(10 * time.Second)
	if err := src.Healthy(ctx); err != nil {
		t.Errorf("young agent, loops not started: %v", err)
	}
	now = start.Add(2 * time.Minute)
	if err := src.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "ticket sync") {
		t.Errorf("a loop that never turned: %v", err)
	}
	syncBeat, sweepBeat = now.Add(-5*time.Second), now.Add(-30*time.Second)
	if err := src.Healthy(ctx); err != nil {
		t.Errorf("loops turning: %v", err)
	}
	now = now.Add(80 * time.Second)
	err := src.Healthy(ctx)
	if err == nil || !strings.Contains(err.Error(), "ticket sync loop last turned 1m") {
		t.Errorf("stalled syncer: %v", err)
	}
	syncBeat = now
	if err := src.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "silence sweep") {
		t.Errorf("stalled sweeper: %v", err)
	}
}

func TestStoreErrMapping(t *testing.T) {
	for in, want := range map[error]error{
		store.ErrNotFound:          httpapi.ErrNotFound,
		store.ErrNotFailed:         httpapi.ErrConflict,
		agent.ErrIllegalTransition: httpapi.ErrConflict,
		store.ErrInvalid:           httpapi.ErrInvalid,
		store.ErrClosed:            httpapi.ErrUnavailable,
		store.ErrFull:              httpapi.ErrUnavailable,
		store.ErrReadOnly:          httpapi.ErrUnavailable,
	} {
		got := storeErr(errors.Join(errors.New("context"), in))
		if !errors.Is(got, want) || !errors.Is(got, in) {
			t.Errorf("storeErr(%v) = %v, want it to wrap %v and the original", in, got, want)
		}
	}
	if storeErr(nil) != nil {
		t.Error("storeErr(nil) is not nil")
	}
	plain := errors.New("disk on fire")
	if got := storeErr(plain); got != plain {
		t.Errorf("an unknown error changed: %v", got)
	}
}

func TestDisplayURL(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://127.0.0.1:1883":                "tcp://127.0.0.1:1883",
		"ssl://user:pass@broker.example:8883": "ssl://broker.example:8883",
		"wss://user@broker.example/mqtt":      "wss://broker.example/mqtt",
		"":                                    "",
		"tcp://[::1":                          "[unparsable URL]",
	} {
		if got := displayURL(in); got != want {
			t.Errorf("displayURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// One copy of the fleet serves the requests of a second; then a new one.
func TestStatusSourceDevicesShared(t *testing.T) {
	f := newCLIFixture(t)
	src := newStatusSource(statusParts{Detector: f.det, Store: f.st})
	ctx := context.Background()
	a, err := src.Devices(ctx)
	if err != nil || len(a) != 4 {
		t.Fatalf("devices: %v %d", err, len(a))
	}
	obs := &agent.Telemetry{Nameplate: "LP-0099", At: testNight, Received: testNight,
		Reading: agent.Reading{Fields: agent.FieldVoltage, Voltage: 220}}
	if err := f.det.Observe(obs, func([]agent.Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if b, _ := src.Devices(ctx); len(b) != 4 {
		t.Errorf("within the TTL: %d devices, want the shared copy of 4", len(b))
	}
	src.devTTL = 0
	if b, _ := src.Devices(ctx); len(b) != 5 {
		t.Errorf("after the TTL: %d devices, want 5", len(b))
	}
	// One device is always read live.
	if _, err := src.Device(ctx, "LP-0099"); err != nil {
		t.Errorf("Device: %v", err)
	}
	if _, err := src.Device(ctx, "LP-7777"); !errors.Is(err, httpapi.ErrNotFound) {
		t.Errorf("unknown device: %v", err)
	}
}
