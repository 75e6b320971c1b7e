package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/agent/httpapi"
	"github.com/edge-agent/edge-agent/store"
)

// notifySyncer stands in for the syncer in the CLI tests: a real one would
// send the queued tickets while the test looks at them. It records Notify.
type notifySyncer struct {
	notified atomic.Int64
	health   agent.APIHealth
}

func (s *notifySyncer) Health() agent.APIHealth { return s.health }
func (s *notifySyncer) Notify()                 { s.notified.Add(1) }

// cliFixture is a store with tickets in several states, a detector fed
// faulty telemetry, and the status API on a control socket, as the daemon
// serves it.
type cliFixture struct {
	dataDir, socket string
	env             []string
	st              *store.Store
	det             *agent.Detector
	syncer          *notifySyncer
	failed, sent    int64 // protocols
	stop            func()
}

// A night in Uberaba (−19.75, −47.93): 03:00 UTC is midnight local time.
var testNight = time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)

func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ea")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func newCLIFixture(t *testing.T) *cliFixture {
	t.Helper()
	f := &cliFixture{dataDir: t.TempDir(), socket: filepath.Join(shortDir(t), "control.sock"), syncer: &notifySyncer{}}
	f.env = []string{"EDGE_CONTROL_SOCKET=" + f.socket, "EDGE_DATA_DIR=" + f.dataDir, "EDGE_GATEWAY_ID=gw-cli"}
	st, err := store.Open(store.Options{Path: filepath.Join(f.dataDir, storeFileName), Now: func() time.Time { return testNight.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	t.Cleanup(func() { _ = f.st.Close() })

	ctx := context.Background()
	raise := func(name, fault string, at time.Time) agent.Ticket {
		res, err := st.ApplyChanges(ctx, []agent.TicketChange{{Kind: agent.Raise, Draft: agent.TicketDraft{
			Nameplate: name, Fault: fault, RaisedAt: at, Since: at.Add(-10 * time.Minute), Description: "teste",
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Ticket
	}
	lamp := raise("LP-0001", agent.FaultLampFailure, testNight)
	volt := raise("LP-0002", agent.FaultSupplyVoltageTooHigh, testNight)
	raise("LP-0003", "relayFailure", testNight)
	if _, err := st.UpdateTicket(ctx, lamp.Protocol, func(tk *agent.Ticket) error {
		tk.State, tk.Attempts, tk.LastStatus = agent.StateFailed, 1, 422
		tk.LastError = "422 Unprocessable Entity: address_number must be a number"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateTicket(ctx, volt.Protocol, func(tk *agent.Ticket) error {
		tk.State, tk.Attempts, tk.IDDemanda, tk.SentAt = agent.StateSent, 1, 4711, testNight
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.failed, f.sent = lamp.Protocol, volt.Protocol
	if err := st.PutAttributes(ctx, []agent.DeviceAttributes{{Nameplate: "LP-0001", Online: true, LastSeen: testNight,
		Reading:      agent.Reading{Fields: agent.FieldPower | agent.FieldVoltage | agent.FieldLampOn, Power: 0, Voltage: 221, LampOn: true},
		ActiveFaults: []string{agent.FaultLampFailure}}}); err != nil {
		t.Fatal(err)
	}

	f.det = agent.NewDetector(agent.DetectorConfig{
		ConfirmCount: 1, NominalVoltage: 220, VoltageTolerance: 0.1, LampMinPower: 5, MinPowerFactor: 0.85,
		DayLux: 50, CommLossAfter: time.Hour, Latitude: -19.7472, Longitude: -47.9381, HasPosition: true,
	}, nil, testNight.Add(-time.Hour))
	obs := func(name string, r agent.Reading, alarms ...string) {
		tm := &agent.Telemetry{Nameplate: name, At: testNight, Received: testNight, Reading: r}
		if alarms != nil {
			tm.Fields |= agent.FieldAlarms
			tm.Alarms = alarms
		}
		if err := f.det.Observe(tm, func([]agent.Event) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	base := agent.FieldLampOn | agent.FieldPower | agent.FieldVoltage
	obs("LP-0001", agent.Reading{Fields: base, LampOn: true, Power: 0, Voltage: 221})
	obs("LP-0002", agent.Reading{Fields: base, LampOn: true, Power: 97, Voltage: 258})
	obs("LP-0003", agent.Reading{Fields: base, LampOn: true, Power: 98, Voltage: 220}, "relayFailure")
	obs("LP-0004", agent.Reading{Fields: base, LampOn: true, Power: 99, Voltage: 222})
	f.start(t)
	return f
}

// start serves the status API on the control socket, as the daemon does.
func (f *cliFixture) start(t *testing.T) {
	t.Helper()
	src := newStatusSource(statusParts{
		Version: "9.9.9", GatewayID: "gw-cli", Started: testNight.Add(-time.Hour), Now: func() time.Time { return testNight.Add(time.Hour) },
		Detector: f.det, Store: f.st, Syncer: f.syncer, Broker: "tcp://user:pw@127.0.0.1:1883",
	})
	srv := httpapi.New(httpapi.Config{Token: "not-asked-on-the-socket"}, src, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, f.socket) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", f.socket)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control socket never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	f.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeUnix: %v", err)
		}
	}
	t.Cleanup(f.stop)
}

// daemonGone stops serving and closes the store, as a stopped daemon
// leaves them.
func (f *cliFixture) daemonGone(t *testing.T) {
	t.Helper()
	f.stop()
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
}

type cliResult struct {
	code           int
	stdout, stderr string
}

type cliFunc = func(args, env []string, stdout, stderr io.Writer) int

func runCLI(cmd cliFunc, env []string, args ...string) cliResult {
	var out, errb bytes.Buffer
	code := cmd(args, env, &out, &errb)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

var (
	cliStatus  cliFunc = cmdStatus
	cliDevices cliFunc = cmdDevices
	cliTickets cliFunc = cmdTickets
	cliRetry   cliFunc = cmdRetry
)

func want(t *testing.T, r cliResult, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

// fits80 checks the human output fits an 80-column terminal.
func fits80(t *testing.T, out string) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line %d is %d columns: %q", i+1, n, l)
		}
	}
}

func TestCLIAgainstDaemon(t *testing.T) {
	f := newCLIFixture(t)

	r := runCLI(cliStatus, f.env)
	want(t, r, 0, "edge-agent gw-cli 9.9.9", "Overall: FAIL", "NOT connected to tcp://127.0.0.1:1883",
		"to send: pending 1, cancel_pending 0; failed 1", "done:    sent 1, cancelled 0, suppressed 0", "4 known",
		"Faulty devices (3):", "Lamp out at night", "Supply voltage too high", "relayFailure", "1 ticket(s) failed")
	if strings.Contains(r.stdout, "user:pw") {
		t.Error("status shows the broker's credentials")
	}
	fits80(t, r.stdout)

	r = runCLI(cliStatus, f.env, "--json")
	want(t, r, 0)
	var snap map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &snap); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if snap["source"] != "daemon" || snap["gateway_id"] != "gw-cli" {
		t.Errorf("status --json: source %v gateway %v", snap["source"], snap["gateway_id"])
	}
	if tk := snap["tickets"].(map[string]any); tk["failed"] != float64(1) || tk["pending"] != float64(1) {
		t.Errorf("status --json tickets %v", tk)
	}

	r = runCLI(cliDevices, f.env)
	want(t, r, 0, "NAMEPLATE", "LP-0001", "LP-0004", "Lamp out at night", "4 device(s)")
	fits80(t, r.stdout)
	r = runCLI(cliDevices, f.env, "--faulty")
	want(t, r, 0, "LP-0001", "LP-0002", "LP-0003", "3 device(s)")
	if strings.Contains(r.stdout, "LP-0004") {
		t.Errorf("devices --faulty lists a healthy device:\n%s", r.stdout)
	}
	r = runCLI(cliDevices, f.env, "--faulty", "--json")
	want(t, r, 0)
	var dl httpapi.DeviceList
	if err := json.Unmarshal([]byte(r.stdout), &dl); err != nil || dl.Total != 3 || dl.Devices[0].Faults[0].Label.PT != "Lâmpada apagada à noite" {
		t.Errorf("devices --faulty --json: %v %+v", err, dl)
	}

	r = runCLI(cliTickets, f.env)
	want(t, r, 0, "PROTOCOL", "lampFailure", "supplyVoltageTooHigh", "4711", "error: 422 Unprocessable Entity", "3 ticket(s)")
	fits80(t, r.stdout)
	r = runCLI(cliTickets, f.env, "--state", "failed", "--json")
	want(t, r, 0)
	var tl httpapi.TicketList
	if err := json.Unmarshal([]byte(r.stdout), &tl); err != nil || tl.Count != 1 || tl.Tickets[0].Protocol != f.failed {
		t.Errorf("tickets --state failed --json: %v %+v", err, tl)
	}

	// retry: a sent ticket is refused, an unknown one is not found, the
	// failed one goes back to the queue and the syncer is woken.
	r = runCLI(cliRetry, f.env, itoa(f.sent))
	want(t, r, 1, "not failed")
	r = runCLI(cliRetry, f.env, "999999")
	want(t, r, 1, "not found")
	r = runCLI(cliRetry, f.env, itoa(f.failed))
	want(t, r, 0, "back in the queue (pending)")
	if tk, err := f.st.Ticket(f.failed); err != nil || tk.State != agent.StatePending {
		t.Errorf("after retry: %v %v", tk.State, err)
	}
	if f.syncer.notified.Load() != 1 {
		t.Errorf("the syncer was notified %d times, want 1", f.syncer.notified.Load())
	}
	r = runCLI(cliRetry, f.env, "--failed", "--json")
	want(t, r, 0, `"retried": 0`)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCLIWithoutDaemon(t *testing.T) {
	f := newCLIFixture(t)
	f.daemonGone(t)
	// A crashed daemon leaves its socket behind: nobody answers on it.
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = ln.Close()

	r := runCLI(cliStatus, f.env)
	want(t, r, 0, "NOT RUNNING", "connection refused", "read-only", "pending 1, cancel_pending 0; failed 1", "sent 1",
		"Devices with an open ticket (from the store) (3):", "Lamp out at night")
	fits80(t, r.stdout)
	r = runCLI(cliStatus, f.env, "--json")
	want(t, r, 0)
	var snap httpapi.Snapshot
	if err := json.Unmarshal([]byte(r.stdout), &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Source != httpapi.SourceStore || snap.Tickets.Failed != 1 || !snap.Store.ReadOnly || snap.Health.Broker != httpapi.StatusUnknown {
		t.Errorf("status --json from the store: %+v", snap)
	}

	r = runCLI(cliDevices, f.env)
	want(t, r, 0, "LP-0001", "221V", "LP-0003", "only devices with an open ticket")
	fits80(t, r.stdout)
	r = runCLI(cliTickets, f.env, "--state", "failed")
	want(t, r, 0, "lampFailure", "1 failed ticket(s)")
	if strings.Contains(r.stdout, "supplyVoltageTooHigh") {
		t.Errorf("--state failed lists another state:\n%s", r.stdout)
	}
	r = runCLI(cliRetry, f.env, "--failed")
	want(t, r, 1, "retry needs the running daemon")

	// The read-only open left the file as it was: a daemon can open it.
	st, err := store.Open(store.Options{Path: filepath.Join(f.dataDir, storeFileName)})
	if err != nil {
		t.Fatalf("the store after the CLI read it: %v", err)
	}
	_ = st.Close()
}

// The daemon holds the store but its socket is elsewhere: say so, exit 1.
func TestCLIStoreLockedNoSocket(t *testing.T) {
	f := newCLIFixture(t)
	f.stop()
	r := runCLI(cliStatus, f.env)
	want(t, r, 1, "daemon:", "store:", "holds the store but does not answer")
	if r.stdout != "" {
		t.Errorf("printed something on a failure: %q", r.stdout)
	}
}

func TestCLINeitherDaemonNorStore(t *testing.T) {
	env := []string{"EDGE_CONTROL_SOCKET=" + filepath.Join(shortDir(t), "none.sock"), "EDGE_DATA_DIR=" + t.TempDir()}
	for name, cmd := range map[string]cliFunc{
		"status": cliStatus, "devices": cliDevices, "tickets": cliTickets,
	} {
		r := runCLI(cmd, env)
		if r.code != 1 || !strings.Contains(r.stderr, "no such socket") || !strings.Contains(r.stderr, "no store file") {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
}

func TestCLIUsage(t *testing.T) {
	env := []string{"EDGE_CONTROL_SOCKET=/nonexistent/x.sock", "EDGE_DATA_DIR=/nonexistent"}
	cases := []struct {
		cmd  cliFunc
		args []string
		code int
	}{
		{cliStatus, []string{"--bogus"}, 2},
		{cliStatus, []string{"extra"}, 2},
		{cliStatus, []string{"-h"}, 0},
		{cliDevices, []string{"--faulty=maybe"}, 2},
		{cliDevices, []string{"LP-1"}, 2},
		{cliTickets, []string{"--state", "open"}, 2},
		{cliTickets, []string{"--limit", "0"}, 2},
		{cliTickets, []string{"--limit", "x"}, 2},
		{cliRetry, nil, 2},
		{cliRetry, []string{"12", "13"}, 2},
		{cliRetry, []string{"12", "--failed"}, 2},
		{cliRetry, []string{"abc"}, 2},
		{cliRetry, []string{"-5"}, 2},
		{cliRetry, []string{"0"}, 2},
	}
	for _, c := range cases {
		r := runCLI(c.cmd, env, c.args...)
		if r.code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, r.code, c.code, r.stderr)
		}
		if c.code == 2 && !strings.Contains(r.stderr, "usage: edge-agent") {
			t.Errorf("%v: no usage on stderr: %q", c.args, r.stderr)
		}
	}
	// Flags after the id work too.
	r := runCLI(cliRetry, env, "12", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "needs the running daemon") {
		t.Errorf("retry 12 --json without daemon: %d %q", r.code, r.stderr)
	}
}

// The subcommands are reached through main's dispatch, with the process
// environment.
func TestCLIDispatch(t *testing.T) {
	f := newCLIFixture(t)
	for _, kv := range f.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	for _, args := range [][]string{{"status"}, {"devices", "--faulty"}, {"tickets", "--state", "sent"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || out.Len() == 0 {
			t.Errorf("edge-agent %v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"retry", itoa(f.failed)}, &out, &errb); code != 0 || !strings.Contains(out.String(), "back in the queue") {
		t.Errorf("edge-agent retry: exit %d: %q %q", code, out.String(), errb.String())
	}
}

func TestWrapAndFit(t *testing.T) {
	long := strings.Repeat("word ", 40) + strings.Repeat("x", 100)
	out := wrap("  WARN  ", long, 80)
	fits80(t, out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "  WARN  word") || !strings.HasPrefix(lines[1], "        word") {
		t.Errorf("wrap: %q", lines[:2])
	}
	if got := fit("Lâmpada apagada à noite", 10); got != "Lâmpada a…" {
		t.Errorf("fit: %q", got)
	}
	if got := fit("short", 10); got != "short" {
		t.Errorf("fit: %q", got)
	}
}
