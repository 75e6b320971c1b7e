package main

// End-to-end tests: the real edge-agent binary, a real mosquitto, the real
// m2m-sim binary, and (for chaos) lightsim, all as separate processes on
// loopback (cmd/internal/rig). They prove the product's promise: every fault
// becomes exactly one ticket at the API and every clear cancels it, through
// kill -9, dead uplinks, lost answers and broker restarts.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/cmd/internal/rig"
	"github.com/edge-agent/edge-agent/m2m/m2mtest"
	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
	"github.com/edge-agent/edge-agent/store"
)

var (
	buildOnce sync.Once
	builtBins rig.Binaries
	buildErr  error
)

// binaries builds the three programs once per test run.
func binaries(t *testing.T) rig.Binaries {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edge-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		builtBins, buildErr = rig.Build(ctx, "../..", dir, false)
	})
	require.NoError(t, buildErr)
	return builtBins
}

// system is one end-to-end setup: broker, simulator, and an agent that can
// be started, stopped and killed.
type system struct {
	t        *testing.T
	dir      string
	bins     rig.Binaries
	broker   *mqtttest.Broker
	sim      *rig.Sim
	agent    *rig.Proc
	httpAddr string
	env      map[string]string
	runs     int
}

func newSystem(t *testing.T, env map[string]string, simFlags ...string) *system {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if _, err := mqtttest.Binary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	s := &system{t: t, dir: t.TempDir(), bins: binaries(t), env: env}
	s.broker = mqtttest.StartT(t)
	var err error
	s.sim, err = rig.StartSim(s.dir, s.bins, simFlags...)
	require.NoError(t, err)
	s.httpAddr, err = rig.FreeAddr()
	require.NoError(t, err)
	t.Cleanup(func() {
		if s.agent != nil {
			s.agent.Kill()
		}
		s.sim.Kill()
		if t.Failed() {
			for _, name := range []string{"edge-agent.log", "m2m-sim.log", "lightsim.log"} {
				if b, err := os.ReadFile(filepath.Join(s.dir, name)); err == nil {
					t.Logf("--- %s (tail)\n%s", name, tailString(string(b), 6000))
				}
			}
		}
	})
	return s
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startAgent starts the agent and waits until it has subscribed.
func (s *system) startAgent() {
	s.t.Helper()
	env := map[string]string{
		"EDGE_REPORT_INTERVAL":     "1s",
		"EDGE_COMM_LOSS_AFTER":     "4s",
		"EDGE_ATTRIBUTES_INTERVAL": "2s",
		"EDGE_M2M_RETRY_MIN":       "100ms",
		"EDGE_M2M_RETRY_MAX":       "1s",
		"EDGE_M2M_TIMEOUT":         "2s",
		"EDGE_LOG_LEVEL":           "debug",
	}
	for k, v := range s.env {
		env[k] = v
	}
	s.runs++
	p, err := rig.Start(s.dir, "edge-agent", s.bins.Agent, []string{"run"},
		rig.AgentEnv(s.dir, s.broker.URL, s.sim.URL, s.httpAddr, env), false)
	require.NoError(s.t, err)
	s.agent = p
	s.waitLog("mqtt subscribed", s.runs, 20*time.Second)
}

// waitLog waits until the agent's log holds the text at least n times.
func (s *system) waitLog(text string, n int, timeout time.Duration) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		b, _ := os.ReadFile(s.agent.Log)
		return strings.Count(string(b), text) >= n
	}, timeout, 20*time.Millisecond, "agent log never said %q %d times", text, n)
}

// stopAgent stops the agent cleanly and checks it took less than 10 s.
func (s *system) stopAgent() {
	s.t.Helper()
	began := time.Now()
	require.True(s.t, s.agent.Stop(15*time.Second), "the agent did not stop on SIGTERM")
	require.Less(s.t, time.Since(began), 10*time.Second, "clean stop within 10 s")
	require.Equal(s.t, 0, s.agent.ExitCode())
}

// tickets reads every ticket from the agent's store (read-only: the agent
// must be stopped).
func (s *system) tickets() []agent.Ticket {
	s.t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(s.dir, "state", storeFileName), ReadOnly: true})
	require.NoError(s.t, err)
	defer st.Close()
	ts, err := st.ListTickets(store.Filter{})
	require.NoError(s.t, err)
	slices.SortFunc(ts, func(a, b agent.Ticket) int { return int(a.Protocol - b.Protocol) })
	return ts
}

func (s *system) record() m2mtest.Record {
	s.t.Helper()
	rec, err := s.sim.Record()
	require.NoError(s.t, err)
	return rec
}

// publisher is a controller fleet driven by the test itself, message by
// message, through a real paho client at QoS 1.
type publisher struct {
	t *testing.T
	c paho.Client
}

func newPublisher(t *testing.T, brokerURL string) *publisher {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("e2e-pub-%d", time.Now().UnixNano())).
		SetAutoReconnect(true).SetConnectRetry(true)
	c := paho.NewClient(opts)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{t: t, c: c}
}

func (p *publisher) send(nameplate string, payload map[string]any) {
	p.t.Helper()
	if _, ok := payload["ts"]; !ok {
		payload["ts"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(payload)
	require.NoError(p.t, err)
	tok := p.c.Publish("streetlights/"+nameplate+"/telemetry", 1, false, b)
	require.True(p.t, tok.WaitTimeout(10*time.Second))
	require.NoError(p.t, tok.Error())
}

// voltage sends n readings of the given supply voltage, 50 ms apart.
func (p *publisher) voltage(nameplate string, v float64, n int) {
	for range n {
		p.send(nameplate, map[string]any{"voltage": v, "lat": -19.7472, "lon": -47.9381})
		time.Sleep(50 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, timeout, 50*time.Millisecond, "timed out waiting for %s", what)
}

// Raise, clear, cancel.
func TestE2ERaiseClearCancel(t *testing.T) {
	s := newSystem(t, map[string]string{"EDGE_COMM_LOSS_AFTER": "1h"})
	s.startAgent()
	pub := newPublisher(t, s.broker.URL)

	pub.voltage("IP05", 262, 3)
	waitFor(t, "the create at the API", 15*time.Second, func() bool { return s.record().Counts.Created == 1 })
	rec := s.record()
	require.Equal(t, "IP05", rec.Tickets[0].Nameplate)
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Tickets[0].Body, &body))
	require.Contains(t, body["description"], "262", "the description shows the measured voltage")
	require.Equal(t, "-19.7472", body["latitude"])

	pub.voltage("IP05", 221, 3)
	waitFor(t, "the cancel at the API", 15*time.Second, func() bool { return s.record().Counts.Cancelled == 1 })
	rec = s.record()
	require.True(t, rec.Tickets[0].Cancelled)
	require.Contains(t, rec.Tickets[0].Justification, "normaliz")

	s.stopAgent()
	ts := s.tickets()
	require.Len(t, ts, 1)
	require.Equal(t, agent.FaultSupplyVoltageTooHigh, ts[0].Fault)
	require.Equal(t, agent.StateCancelled, ts[0].State)
	require.Zero(t, s.record().Counts.Conflicts)
}

// A device that goes silent gets a communicationFailure ticket, cancelled
// when it speaks again.
func TestE2EDeviceGoesSilent(t *testing.T) {
	s := newSystem(t, map[string]string{"EDGE_COMM_LOSS_AFTER": "3s"})
	s.startAgent()
	pub := newPublisher(t, s.broker.URL)
	pub.voltage("IP07", 221, 1)
	waitFor(t, "the silence ticket", 20*time.Second, func() bool { return s.record().Counts.Created == 1 })
	pub.voltage("IP07", 221, 1)
	waitFor(t, "the silence ticket cancelled", 15*time.Second, func() bool { return s.record().Counts.Cancelled == 1 })
	s.stopAgent()
	ts := s.tickets()
	require.Len(t, ts, 1)
	require.Equal(t, agent.FaultCommunicationFailure, ts[0].Fault)
	require.Equal(t, "IP07", ts[0].Nameplate)
	require.Equal(t, agent.StateCancelled, ts[0].State)
}

// Messages published while the agent is down are processed when it comes
// back: the broker keeps them for the agent's persistent session.
func TestE2EMessagesWhileDownAreProcessed(t *testing.T) {
	s := newSystem(t, map[string]string{"EDGE_COMM_LOSS_AFTER": "1h"})
	s.startAgent()
	s.stopAgent()

	pub := newPublisher(t, s.broker.URL)
	for _, n := range []string{"IP01", "IP02", "IP03"} {
		pub.voltage(n, 180, 3)
	}
	require.Zero(t, s.record().Counts.Created)
	s.startAgent()
	waitFor(t, "three tickets", 20*time.Second, func() bool { return s.record().Counts.Created == 3 })
	s.stopAgent()
	for _, tk := range s.tickets() {
		require.Equal(t, agent.FaultSupplyVoltageTooLow, tk.Fault)
		require.Equal(t, agent.StateSent, tk.State)
	}
}

// An API outage: tickets wait safely, and once the API is back the queue
// drains completely, in raise order, each ticket once.
func TestE2EOutageDrainsInOrder(t *testing.T) {
	s := newSystem(t, map[string]string{"EDGE_M2M_CONCURRENCY": "1", "EDGE_COMM_LOSS_AFTER": "1h"}, "--down")
	s.startAgent()
	pub := newPublisher(t, s.broker.URL)
	const n = 12
	for i := range n {
		pub.voltage(fmt.Sprintf("IP%02d", i), 262, 3)
	}
	s.waitLog("fault raised", n, 20*time.Second)
	s.waitLog("the API is unreachable", 1, 10*time.Second)
	time.Sleep(2 * time.Second) // the outage lasts a while: probes back off
	require.Zero(t, s.record().Counts.Created)

	require.NoError(t, s.sim.SetFaults(m2mtest.Faults{}))
	waitFor(t, "the queue drained", 30*time.Second, func() bool { return s.record().Counts.Created == n })
	s.stopAgent()

	rec := s.record()
	require.Zero(t, rec.Counts.Conflicts)
	byCreation := slices.Clone(rec.Tickets)
	slices.SortFunc(byCreation, func(a, b m2mtest.TicketRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for i := range byCreation {
		require.EqualValues(t, i+1, byCreation[i].Protocol, "created in raise order")
	}
	for _, tk := range s.tickets() {
		require.Equal(t, agent.StateSent, tk.State)
	}
}

// A store at its size cap keeps every pending ticket, says so, and keeps
// consuming: intake does not stall. Once the API is back, every kept
// ticket is delivered.
func TestE2EStoreAtCapKeepsPendingTickets(t *testing.T) {
	s := newSystem(t, map[string]string{"EDGE_STORE_MAX_MB": "1", "EDGE_COMM_LOSS_AFTER": "1h", "EDGE_LOG_LEVEL": "info", "EDGE_M2M_RATE": "500"}, "--down")
	s.startAgent()
	pub := newPublisher(t, s.broker.URL)
	const devices = 1500
	published := 0
	full := func() bool {
		st, err := rig.Status(s.httpAddr)
		return err == nil && rig.Num(st, "store.full") == 1
	}
	for i := 0; i < devices && !full(); i += 50 {
		for d := i; d < i+50; d++ {
			for range 3 {
				pub.send(fmt.Sprintf("LP%05d", d), map[string]any{"voltage": 180.0})
				published++
			}
		}
	}
	waitFor(t, "the store to report itself full", 30*time.Second, full)

	// Intake goes on: every message is consumed and acknowledged.
	for d := range 50 {
		pub.send(fmt.Sprintf("LP%05d", d), map[string]any{"voltage": 180.0})
		published++
	}
	waitFor(t, "every message consumed", 30*time.Second, func() bool {
		st, err := rig.Status(s.httpAddr)
		return err == nil && int(rig.Num(st, "mqtt.messages_received")) >= published
	})
	s.waitLog("the store is full", 1, 10*time.Second)
	s.stopAgent()

	ts := s.tickets()
	kept := len(ts)
	require.Positive(t, kept)
	require.Less(t, kept, devices, "the cap was reached before every fault had its ticket")
	for _, tk := range ts {
		require.Equal(t, agent.StatePending, tk.State, "ticket %d", tk.Protocol)
		require.NotEmpty(t, tk.CreateBody, "ticket %d", tk.Protocol)
	}
	t.Logf("a 1 MiB store kept %d pending tickets", kept)

	// The API comes back: every kept ticket goes out, once.
	require.NoError(t, s.sim.SetFaults(m2mtest.Faults{}))
	s.startAgent()
	waitFor(t, "every kept ticket delivered", 60*time.Second, func() bool { return int(s.record().Counts.Created) == kept })
	s.stopAgent()
	require.Zero(t, s.record().Counts.Conflicts)
	for _, tk := range s.tickets() {
		require.Equal(t, agent.StateSent, tk.State)
	}
}

// SIGTERM stops the agent cleanly (exit 0); a second signal during the stop
// exits at once (exit 1).
func TestE2ESignals(t *testing.T) {
	s := newSystem(t, nil, "--latency", "3s") // requests in flight at the stop
	s.startAgent()
	pub := newPublisher(t, s.broker.URL)
	pub.voltage("IP01", 262, 3)
	s.waitLog("fault raised", 1, 10*time.Second)
	s.waitLog("m2m request", 1, 10*time.Second) // a create in flight (the simulator answers after 3 s)
	require.NoError(t, s.agent.Signal(syscall.SIGTERM))
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, s.agent.Signal(syscall.SIGINT))
	select {
	case <-s.agent.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not end the agent at once")
	}
	require.Equal(t, 1, s.agent.ExitCode())
	s.waitLog("second signal", 1, time.Second)
}
