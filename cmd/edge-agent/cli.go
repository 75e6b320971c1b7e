package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/agent/httpapi"
	"github.com/edge-agent/edge-agent/store"
)

// The operator's CLI: status, devices, tickets, retry (CONTRACT §1). Each
// asks the running daemon over the control socket; when no daemon answers,
// the read commands open the store file read-only instead (retry needs the
// daemon: it owns the queue). Exit codes: 0 ok, 1 failure (neither the
// daemon nor the store could answer, or the daemon refused), 2 bad usage.

// cliTimeout bounds one exchange with the daemon.
const cliTimeout = 15 * time.Second

// width is the terminal width the human output fits.
const width = 80

// errNoDaemon: nothing answers on the control socket.
var errNoDaemon = errors.New("no daemon answers on the control socket")

// cliEnv is what the CLI needs of the configuration: only where the socket
// and the store are. It takes them from the configuration loader, so the
// defaults ($RUNTIME_DIRECTORY, $STATE_DIRECTORY, /run, /var/lib) are the
// daemon's, and it does not care about problems elsewhere (a CLI run from a
// shell without EDGE_M2M_BASE_URL must still work).
type cliEnv struct {
	socket, dataDir, gatewayID string
	now                        func() time.Time
}

func newCLIEnv(env []string) cliEnv {
	l := load(env, osDeps())
	return cliEnv{socket: l.cfg.ControlSocket, dataDir: l.cfg.DataDir, gatewayID: l.cfg.GatewayID, now: time.Now}
}

func (e cliEnv) storePath() string { return filepath.Join(e.dataDir, storeFileName) }

// apiError is a refusal from the daemon (4xx/5xx with its JSON error).
type apiError struct {
	status int
	body   httpapi.ErrorBody
}

func (e *apiError) Error() string {
	if e.body.Error != "" {
		return e.body.Error
	}
	return fmt.Sprintf("the daemon answered %d %s", e.status, http.StatusText(e.status))
}

// daemonClient speaks HTTP over the control socket.
type daemonClient struct {
	socket string
	hc     *http.Client
}

func newDaemonClient(socket string) *daemonClient {
	return &daemonClient{socket: socket, hc: &http.Client{
		Timeout: cliTimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			DisableKeepAlives: true,
		},
	}}
}

// do sends one request and returns the body of a 2xx answer.
func (c *daemonClient) do(method, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://edge-agent"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w (%s): %v", errNoDaemon, c.socket, dialReason(err))
		}
		return nil, fmt.Errorf("control socket %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("control socket %s: reading the answer: %w", c.socket, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{status: resp.StatusCode}
		_ = json.Unmarshal(body, &e.body)
		return nil, e
	}
	return body, nil
}

func dialReason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no such socket: is the daemon running? (systemctl status edge-agent)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: the daemon is not running (a stale socket)"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied: run as root or as a member of the daemon's group"
	}
	return err.Error()
}

func (c *daemonClient) getJSON(path string, v any) ([]byte, error) {
	body, err := c.do(http.MethodGet, path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("control socket: the answer to %s is not what this CLI understands: %w", path, err)
	}
	return body, nil
}

// openStoreRO opens the store read-only, for when no daemon answers.
func openStoreRO(e cliEnv) (*store.Store, error) {
	return store.Open(store.Options{Path: e.storePath(), ReadOnly: true, LockTimeout: 500 * time.Millisecond})
}

// cliCommand holds what every subcommand shares.
type cliCommand struct {
	name           string
	env            cliEnv
	stdout, stderr io.Writer
	asJSON         bool
}

func (c *cliCommand) failf(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "edge-agent %s: "+format+"\n", append([]any{c.name}, args...)...)
	return 1
}

// neither reports that the daemon did not answer and the store could not be
// read either: both reasons, exit 1.
func (c *cliCommand) neither(daemonErr, storeErr error) int {
	fmt.Fprintf(c.stderr, "edge-agent %s: cannot get the agent's state:\n  daemon: %v\n  store:  %v\n", c.name, daemonErr, storeErr)
	if errors.Is(storeErr, store.ErrLocked) {
		fmt.Fprintf(c.stderr, "  A process holds the store but does not answer on %s: check EDGE_CONTROL_SOCKET and the daemon's log.\n", c.env.socket)
	}
	return 1
}

// storeNote tells the reader that what follows is the store's, not live.
func (c *cliCommand) storeNote(daemonErr error) {
	fmt.Fprintf(c.stderr, "note: %v\nnote: showing what the store file %s holds (read-only); live state needs the daemon\n", daemonErr, c.env.storePath())
}

func (c *cliCommand) printJSON(v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return c.failf("%v", err)
	}
	return 0
}

// printRaw prints the daemon's JSON as it came, indented: fields this CLI
// does not know (a newer daemon) are kept.
func (c *cliCommand) printRaw(body []byte) int {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(body), "", "  "); err != nil {
		return c.failf("the daemon's answer is not JSON: %v", err)
	}
	b.WriteByte('\n')
	if _, err := c.stdout.Write(b.Bytes()); err != nil {
		return c.failf("%v", err)
	}
	return 0
}

// parseFlags parses flags that may come before or after the positional
// arguments ("retry 12 --json" as well as "retry --json 12").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlags makes a subcommand's flag set with --json and its usage text.
func newFlags(c *cliCommand, usage, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.BoolVar(&c.asJSON, "json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: edge-agent %s\n%s\n", usage, about)
		fs.PrintDefaults()
	}
	return fs
}

// usageExit answers a flag error: 0 for -h, 2 otherwise.
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func (c *cliCommand) badUsage(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "edge-agent %s: "+format+"\n", append([]any{c.name}, args...)...)
	fs.Usage()
	return 2
}

// ---- status ----

// cmdStatus is `edge-agent status [--json]`: one screen for a technician.
func cmdStatus(args, env []string, stdout, stderr io.Writer) int {
	c := &cliCommand{name: "status", stdout: stdout, stderr: stderr}
	fs := newFlags(c, "status [--json]", "One screen: connections, queue, store, clock, problems and faulty devices.")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) > 0 {
		return c.badUsage(fs, "unexpected argument %q", pos[0])
	}
	c.env = newCLIEnv(env)
	cl := newDaemonClient(c.env.socket)

	var snap httpapi.Snapshot
	raw, derr := cl.getJSON("/api/status", &snap)
	if derr == nil {
		if c.asJSON {
			return c.printRaw(raw)
		}
		var faulty httpapi.DeviceList
		if _, err := cl.getJSON("/api/devices?faulty=1&limit=20", &faulty); err != nil {
			return c.failf("%v", err)
		}
		writeStatus(c.stdout, snap, &faulty)
		return 0
	}
	if !errors.Is(derr, errNoDaemon) {
		return c.failf("%v", derr)
	}
	st, serr := openStoreRO(c.env)
	if serr != nil {
		return c.neither(derr, serr)
	}
	defer st.Close()
	snap = storeSnapshot(st, c.env)
	if c.asJSON {
		return c.printJSON(snap)
	}
	c.storeNote(derr)
	faulty, err := storeDevices(st)
	if err != nil {
		return c.failf("%v", err)
	}
	writeStatus(c.stdout, snap, &faulty)
	return 0
}

// storeSnapshot is what the store alone says of the gateway.
func storeSnapshot(st *store.Store, e cliEnv) httpapi.Snapshot {
	now := e.now()
	snap := httpapi.Snapshot{Version: version, GatewayID: e.gatewayID, Source: httpapi.SourceStore, Now: httpapi.TimePtr(now),
		Registry: httpapi.RegistryStatus{RowErrorSamples: []string{}}}
	snap.MQTT.RejectedByReason = map[string]int64{}
	fillStoreStatus(&snap, st, now)
	snap.Assess()
	return snap
}

func writeStatus(w io.Writer, s httpapi.Snapshot, faulty *httpapi.DeviceList) {
	var b strings.Builder
	head := "edge-agent " + s.GatewayID + " " + s.Version
	if s.Source == httpapi.SourceStore {
		head += " · NOT RUNNING (store read-only)"
	} else {
		head += " · up " + httpapi.HumanDuration(time.Duration(s.UptimeS)*time.Second)
	}
	if s.Now != nil {
		head += " · " + s.Now.UTC().Format("2006-01-02 15:04 UTC")
	}
	b.WriteString(fit(head, width) + "\n")
	b.WriteString("Overall: " + strings.ToUpper(statusWord(s.Health.Overall)) + "\n")
	live := s.Source != httpapi.SourceStore
	line := func(area, status, detail string) {
		b.WriteString(wrap(fmt.Sprintf("  %-9s %-8s ", area, strings.ToUpper(statusWord(status))), detail, width))
	}
	if live {
		m := s.MQTT
		d := "connected to " + m.Broker
		if m.ConnectedSince != nil {
			d += " since " + m.ConnectedSince.UTC().Format("01-02 15:04")
		}
		if !m.Connected {
			d = "NOT connected to " + m.Broker
			if m.LastError != "" {
				d += ": " + m.LastError
			}
		}
		if m.Reconnects > 0 {
			d += fmt.Sprintf(", %d reconnects", m.Reconnects)
		}
		line("broker", s.Health.Broker, d)
		a := s.M2M
		switch {
		case a.Down:
			d = fmt.Sprintf("UNREACHABLE, %d failures in a row: %s", a.ConsecutiveFailures, a.LastError)
		case a.ConsecutiveFailures > 0:
			d = fmt.Sprintf("%d failures in a row: %s", a.ConsecutiveFailures, a.LastError)
		case a.LastSuccessAt != nil && s.Now != nil:
			d = "last answer " + httpapi.HumanDuration(s.Now.Sub(*a.LastSuccessAt)) + " ago"
		default:
			d = "no answer yet"
		}
		if a.ProtocolCollisions > 0 {
			d += fmt.Sprintf("; %d protocol collisions", a.ProtocolCollisions)
		}
		line("api", s.Health.API, d)
	} else {
		line("agent", httpapi.StatusUnknown, "not running: broker, API, devices and clock unknown")
	}
	t := s.Tickets
	d := "empty"
	if t.Error != "" {
		d = "unreadable: " + t.Error
	} else if t.Queued > 0 {
		d = fmt.Sprintf("%d queued, oldest %s (protocol %d)", t.Queued, httpapi.HumanDuration(time.Duration(t.OldestQueuedAgeS)*time.Second), t.OldestQueuedProtocol)
	}
	if t.Failed > 0 {
		d += fmt.Sprintf("; %d failed", t.Failed)
	}
	line("queue", s.Health.Queue, d)
	st := s.Store
	d = httpapi.HumanBytes(st.SizeBytes)
	if st.MaxBytes > 0 {
		d += " of " + httpapi.HumanBytes(st.MaxBytes)
	}
	if st.Full {
		d += ", FULL"
	}
	if st.CorruptMovedTo != "" {
		d += ", a corrupt file was moved to " + st.CorruptMovedTo
	}
	line("store", s.Health.Store, d)
	if live {
		d = "trusted"
		if !s.Clock.Trusted {
			d = "NOT trusted: " + s.Clock.Reason
		}
		line("clock", s.Health.Clock, d)
		d = fmt.Sprintf("%d devices", s.Registry.Devices)
		if s.Registry.Path != "" {
			d += " in " + s.Registry.Path
		} else if s.Registry.Devices == 0 {
			d = "none (EDGE_DEVICES_FILE not set)"
		}
		if s.Registry.RowErrors > 0 {
			d += fmt.Sprintf(", %d rows skipped", s.Registry.RowErrors)
		}
		line("registry", s.Health.Registry, d)
		b.WriteString(wrap("Messages: ", fmt.Sprintf("%d received, %d rejected%s", s.MQTT.MessagesReceived, s.MQTT.MessagesRejected, rejectedDetail(s.MQTT.RejectedByReason)), width))
	}
	if t.Error == "" {
		b.WriteString(wrap("Tickets:  to send: ", fmt.Sprintf("pending %d, cancel_pending %d; failed %d", t.Pending, t.CancelPending, t.Failed), width))
		b.WriteString(wrap("          done:    ", fmt.Sprintf("sent %d, cancelled %d, suppressed %d", t.Sent, t.Cancelled, t.Suppressed), width))
	}
	if live {
		b.WriteString(fmt.Sprintf("Devices:  %d known, %d online, %d faulty\n", s.Devices.Known, s.Devices.Online, s.Devices.Faulty))
	}
	if len(s.Problems) > 0 {
		b.WriteString("\nProblems:\n")
		for _, p := range s.Problems {
			b.WriteString(wrap(fmt.Sprintf("  %-7s ", strings.ToUpper(statusWord(p.Severity))), p.Message, width))
		}
	}
	if faulty != nil {
		title := "Faulty devices"
		if !live {
			title = "Devices with an open ticket (from the store)"
		}
		fmt.Fprintf(&b, "\n%s (%d):\n", title, faulty.Total)
		if faulty.Total == 0 {
			b.WriteString("  none\n")
		} else {
			writeFaultTable(&b, faulty.Devices, s.Now)
			if faulty.Total > faulty.Count {
				fmt.Fprintf(&b, "  … and %d more: edge-agent devices --faulty\n", faulty.Total-faulty.Count)
			}
		}
	}
	_, _ = io.WriteString(w, b.String())
}

func statusWord(s string) string {
	switch s {
	case httpapi.StatusOK:
		return "ok"
	case httpapi.StatusWarn:
		return "warn"
	case httpapi.StatusFail:
		return "FAIL"
	}
	return "unknown"
}

func rejectedDetail(m map[string]int64) string {
	var parts []string
	for r, n := range m {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	slices.Sort(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}

// writeFaultTable lists faults one per line: nameplate, what, since.
func writeFaultTable(b *strings.Builder, devs []httpapi.Device, now *time.Time) {
	fmt.Fprintf(b, "  %-16s %-32s %s\n", "NAMEPLATE", "FAULT", "SINCE")
	for _, d := range devs {
		for i, f := range d.Faults {
			name := d.Nameplate
			if i > 0 {
				name = ""
			}
			since := "-"
			if f.Since != nil {
				since = f.Since.UTC().Format("01-02 15:04")
				if now != nil {
					since += " (" + httpapi.HumanDuration(now.Sub(*f.Since)) + ")"
				}
			}
			fmt.Fprintf(b, "  %-16s %-32s %s\n", name, fit(f.Label.EN, 32), since)
		}
	}
}

// ---- devices ----

// cmdDevices is `edge-agent devices [--faulty] [--json]`.
func cmdDevices(args, env []string, stdout, stderr io.Writer) int {
	c := &cliCommand{name: "devices", stdout: stdout, stderr: stderr}
	fs := newFlags(c, "devices [--faulty] [--json]", "One line per device: nameplate, state, last seen, lamp, power, voltage, active faults.")
	faultyOnly := fs.Bool("faulty", false, "only devices with an active fault")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) > 0 {
		return c.badUsage(fs, "unexpected argument %q", pos[0])
	}
	c.env = newCLIEnv(env)
	cl := newDaemonClient(c.env.socket)
	path := "/api/devices"
	if *faultyOnly {
		path += "?faulty=1"
	}
	var list httpapi.DeviceList
	raw, derr := cl.getJSON(path, &list)
	if derr == nil {
		if c.asJSON {
			return c.printRaw(raw)
		}
		writeDevices(c.stdout, list, false)
		return 0
	}
	if !errors.Is(derr, errNoDaemon) {
		return c.failf("%v", derr)
	}
	st, serr := openStoreRO(c.env)
	if serr != nil {
		return c.neither(derr, serr)
	}
	defer st.Close()
	list, err = storeDevices(st)
	if err != nil {
		return c.failf("%v", err)
	}
	if c.asJSON {
		return c.printJSON(list)
	}
	c.storeNote(derr)
	fmt.Fprintln(c.stderr, "note: without the daemon only devices with an open ticket are known, with their last synced state")
	writeDevices(c.stdout, list, true)
	return 0
}

// storeDevices builds the device list from the store alone: the devices
// with an open ticket, with the attributes last recorded for them.
func storeDevices(st *store.Store) (httpapi.DeviceList, error) {
	open, err := st.OpenFaults()
	if err != nil {
		return httpapi.DeviceList{}, fmt.Errorf("reading the store: %w", err)
	}
	byName := map[string]*httpapi.Device{}
	var names []string
	for _, f := range open {
		d := byName[f.Nameplate]
		if d == nil {
			d = &httpapi.Device{Nameplate: f.Nameplate, Faults: []httpapi.Fault{}, Alarms: []string{}}
			byName[f.Nameplate] = d
			names = append(names, f.Nameplate)
		}
		d.Faults = append(d.Faults, httpapi.Fault{Name: f.Fault, Label: httpapi.FaultLabels(f.Fault), Since: httpapi.TimePtr(f.Since)})
	}
	slices.Sort(names)
	out := httpapi.DeviceList{Devices: []httpapi.Device{}}
	for _, n := range names {
		d := byName[n]
		slices.SortFunc(d.Faults, func(a, b httpapi.Fault) int { return strings.Compare(a.Name, b.Name) })
		if rec, ok, err := st.Attributes(n); err == nil && ok {
			a := rec.Attributes
			d.Online, d.LastSeen, d.Reading = a.Online, httpapi.TimePtr(a.LastSeen), httpapi.MeasurementsOf(a.Reading)
		}
		out.Devices = append(out.Devices, *d)
	}
	out.Total, out.Count = len(out.Devices), len(out.Devices)
	return out, nil
}

func writeDevices(w io.Writer, list httpapi.DeviceList, fromStore bool) {
	var b strings.Builder
	// 16+1+7+1+11+1+4+1+7+1+6+1 = 57 columns, 23 left for the faults.
	fmt.Fprintf(&b, "%-16s %-7s %-11s %-4s %7s %6s %s\n", "NAMEPLATE", "STATE", "LAST SEEN", "LAMP", "POWER", "VOLT", "FAULTS")
	for _, d := range list.Devices {
		state := "offline"
		if d.Online {
			state = "online"
		}
		if fromStore {
			state = "?"
		}
		seen := "never"
		if d.LastSeen != nil {
			seen = d.LastSeen.UTC().Format("01-02 15:04")
		}
		lamp := "-"
		if d.Reading.LampOn != nil {
			lamp = map[bool]string{true: "on", false: "off"}[*d.Reading.LampOn]
		}
		power, volt := "-", "-"
		if d.Reading.Power != nil {
			power = strconv.FormatFloat(*d.Reading.Power, 'f', 1, 64) + "W"
		}
		if d.Reading.Voltage != nil {
			volt = strconv.FormatFloat(*d.Reading.Voltage, 'f', 0, 64) + "V"
		}
		var fl []string
		for _, f := range d.Faults {
			fl = append(fl, f.Label.EN)
		}
		faults := strings.Join(fl, ", ")
		if faults == "" {
			faults = "-"
		}
		row := fmt.Sprintf("%-16s %-7s %-11s %-4s %7s %6s ", d.Nameplate, state, seen, lamp, power, volt)
		b.WriteString(row + fit(faults, max(8, width-len([]rune(row)))) + "\n")
	}
	fmt.Fprintf(&b, "%d device(s)", list.Total)
	if list.Total > list.Count {
		fmt.Fprintf(&b, ", %d shown", list.Count)
	}
	b.WriteString("\n")
	_, _ = io.WriteString(w, b.String())
}

// ---- tickets ----

// cmdTickets is `edge-agent tickets [--state S] [--limit N] [--json]`.
func cmdTickets(args, env []string, stdout, stderr io.Writer) int {
	c := &cliCommand{name: "tickets", stdout: stdout, stderr: stderr}
	fs := newFlags(c, "tickets [--state S] [--limit N] [--json]",
		"Tickets, newest first: protocol, state, fault, nameplate, id_demanda, attempts, last error.")
	stateFlag := fs.String("state", "", "only this state: "+statesList())
	limit := fs.Int("limit", httpapi.DefaultTicketLimit, fmt.Sprintf("at most this many (1..%d)", httpapi.MaxTicketLimit))
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	if len(pos) > 0 {
		return c.badUsage(fs, "unexpected argument %q", pos[0])
	}
	state := agent.TicketState(*stateFlag)
	if state != "" && !state.Valid() {
		return c.badUsage(fs, "unknown state %q: want one of %s", *stateFlag, statesList())
	}
	if *limit < 1 || *limit > httpapi.MaxTicketLimit {
		return c.badUsage(fs, "--limit %d: want 1 to %d", *limit, httpapi.MaxTicketLimit)
	}
	c.env = newCLIEnv(env)
	cl := newDaemonClient(c.env.socket)
	q := url.Values{}
	q.Set("limit", strconv.Itoa(*limit))
	if state != "" {
		q.Set("state", string(state))
	}
	var list httpapi.TicketList
	raw, derr := cl.getJSON("/api/tickets?"+q.Encode(), &list)
	if derr == nil {
		if c.asJSON {
			return c.printRaw(raw)
		}
		writeTickets(c.stdout, list)
		return 0
	}
	if !errors.Is(derr, errNoDaemon) {
		return c.failf("%v", derr)
	}
	st, serr := openStoreRO(c.env)
	if serr != nil {
		return c.neither(derr, serr)
	}
	defer st.Close()
	ts, err := st.ListTickets(store.Filter{State: state, Limit: *limit})
	if err != nil {
		return c.failf("reading the store: %v", err)
	}
	list = httpapi.TicketList{State: string(state), Limit: *limit, Tickets: make([]httpapi.Ticket, 0, len(ts))}
	for _, t := range ts {
		list.Tickets = append(list.Tickets, httpapi.TicketOf(t))
	}
	list.Count = len(list.Tickets)
	if c.asJSON {
		return c.printJSON(list)
	}
	c.storeNote(derr)
	writeTickets(c.stdout, list)
	return 0
}

func statesList() string {
	names := make([]string, len(agent.TicketStates))
	for i, s := range agent.TicketStates {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func writeTickets(w io.Writer, list httpapi.TicketList) {
	var b strings.Builder
	// 10+1+14+1+22+1+16+1+8+1+5 = 80 columns.
	fmt.Fprintf(&b, "%10s %-14s %-22s %-16s %8s %5s\n", "PROTOCOL", "STATE", "FAULT", "NAMEPLATE", "DEMANDA", "TRIES")
	for _, t := range list.Tickets {
		demanda := "-"
		if t.IDDemanda != nil {
			demanda = strconv.FormatInt(*t.IDDemanda, 10)
		}
		fmt.Fprintf(&b, "%10d %-14s %-22s %-16s %8s %5d\n", t.Protocol, t.State, fit(t.Fault, 22), t.Nameplate, demanda, t.Attempts)
		if t.LastError != "" {
			b.WriteString(fit("           error: "+oneLine(t.LastError), width) + "\n")
		}
	}
	what := "ticket(s)"
	if list.State != "" {
		what = list.State + " ticket(s)"
	}
	fmt.Fprintf(&b, "%d %s", list.Count, what)
	if list.Count >= list.Limit {
		fmt.Fprintf(&b, " (the newest %d; --limit shows more)", list.Limit)
	}
	b.WriteString("\n")
	_, _ = io.WriteString(w, b.String())
}

// ---- retry ----

// cmdRetry is `edge-agent retry ID | --failed [--json]`.
func cmdRetry(args, env []string, stdout, stderr io.Writer) int {
	c := &cliCommand{name: "retry", stdout: stdout, stderr: stderr}
	fs := newFlags(c, "retry ID | --failed [--json]",
		"Puts a failed ticket (by its id_external_protocol), or every failed ticket, back in the queue. Needs the running daemon.")
	all := fs.Bool("failed", false, "retry every failed ticket")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return usageExit(err)
	}
	var id int64
	switch {
	case *all && len(pos) > 0:
		return c.badUsage(fs, "give a ticket id or --failed, not both")
	case !*all && len(pos) != 1:
		return c.badUsage(fs, "give one ticket id (its id_external_protocol) or --failed")
	case !*all:
		id, err = strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			return c.badUsage(fs, "ticket id %q: want its id_external_protocol, a positive whole number", pos[0])
		}
	}
	c.env = newCLIEnv(env)
	cl := newDaemonClient(c.env.socket)
	path := "/api/tickets/retry-failed"
	if !*all {
		path = "/api/tickets/" + strconv.FormatInt(id, 10) + "/retry"
	}
	body, err := cl.do(http.MethodPost, path)
	if errors.Is(err, errNoDaemon) {
		return c.failf("%v\nretry needs the running daemon: it owns the ticket queue, and the store cannot be changed behind its back. Start it (systemctl start edge-agent) and try again.", err)
	}
	if err != nil {
		return c.failf("%v", err)
	}
	if c.asJSON {
		return c.printRaw(body)
	}
	if *all {
		var r httpapi.RetryFailedResult
		if err := json.Unmarshal(body, &r); err != nil {
			return c.failf("the daemon's answer: %v", err)
		}
		fmt.Fprintf(c.stdout, "%d failed ticket(s) put back in the queue\n", r.Retried)
		return 0
	}
	var r httpapi.RetryResult
	if err := json.Unmarshal(body, &r); err != nil {
		return c.failf("the daemon's answer: %v", err)
	}
	switch {
	case r.RenumberedFrom != 0:
		fmt.Fprintf(c.stdout, "ticket %d had lost a protocol-number collision: it is queued again as %d (%s)\n", r.RenumberedFrom, r.Ticket.Protocol, r.Ticket.State)
	case r.Ticket.State == string(agent.StateSuppressed):
		fmt.Fprintf(c.stdout, "ticket %d: its fault has cleared meanwhile, so it is suppressed (never sent)\n", r.Ticket.Protocol)
	default:
		fmt.Fprintf(c.stdout, "ticket %d is back in the queue (%s)\n", r.Ticket.Protocol, r.Ticket.State)
	}
	return 0
}

// ---- text helpers ----

// fit cuts s to n runes, marking the cut.
func fit(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(r[:n-1]) + "…"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// wrap writes prefix, then text broken at spaces into lines of at most n
// runes, the continuation lines indented to the prefix's width; every line
// ends with a newline. A word longer than a line is cut.
func wrap(prefix, text string, n int) string {
	indent := len([]rune(prefix))
	var b strings.Builder
	cur, curLen, fresh := prefix, indent, true
	for _, w := range strings.Fields(text) {
		wl := len([]rune(w))
		if !fresh && curLen+1+wl > n {
			b.WriteString(cur + "\n")
			cur, curLen, fresh = strings.Repeat(" ", indent), indent, true
		}
		if !fresh {
			cur += " "
			curLen++
		}
		if curLen+wl > n {
			w = fit(w, n-curLen)
			wl = len([]rune(w))
		}
		cur += w
		curLen += wl
		fresh = false
	}
	b.WriteString(cur + "\n")
	return b.String()
}
