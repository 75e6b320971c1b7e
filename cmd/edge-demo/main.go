package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/agent/httpapi"
	"github.com/edge-agent/edge-agent/cmd/internal/rig"
	"github.com/edge-agent/edge-agent/m2m/m2mtest"
	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edge-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binDir := fs.String("bin", "bin", "folder holding edge-agent, m2m-sim and lightsim (make build)")
	devices := fs.Int("devices", 40, "lamps in the simulated fleet")
	duration := fs.Duration("duration", envDuration("DEMO_DURATION"), "stop after this long (0: until Ctrl-C); also DEMO_DURATION")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := mqtttest.Binary(); err != nil {
		fmt.Fprintf(stderr, "edge-demo: %v\n", err)
		return 1
	}
	bins := rig.InDir(*binDir)
	for _, b := range []string{bins.Agent, bins.Sim, bins.Lightsim} {
		if _, err := os.Stat(b); err != nil {
			fmt.Fprintf(stderr, "edge-demo: %s is missing: run `make build` first (make demo does)\n", b)
			return 1
		}
	}
	dir, err := os.MkdirTemp("", "edge-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "edge-demo: %v\n", err)
		return 1
	}
	d := &demo{dir: dir, bins: bins, out: stdout, errw: stderr, devices: *devices}
	code := d.run(*duration)
	if os.Getenv("DEMO_KEEP") == "1" || code != 0 {
		fmt.Fprintf(stdout, "\nEverything the demo wrote (logs, store, broker) is kept in %s\n", dir)
	} else if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(stderr, "edge-demo: removing %s: %v\n", dir, err)
	}
	return code
}

func envDuration(name string) time.Duration {
	d, err := time.ParseDuration(os.Getenv(name))
	if err != nil {
		return 0
	}
	return d
}

type demo struct {
	dir     string
	bins    rig.Binaries
	out     io.Writer
	errw    io.Writer
	devices int

	broker   *mqtttest.Broker
	sim      *rig.Sim
	agent    *rig.Proc
	lightsim *rig.Proc
	httpAddr string
}

func (d *demo) fail(format string, args ...any) int {
	fmt.Fprintf(d.errw, "edge-demo: "+format+"\n", args...)
	d.stopAll()
	return 1
}

func (d *demo) run(duration time.Duration) int {
	// Ctrl-C from here on stops the demo in order.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	var err error
	if d.broker, err = rig.StartBroker(d.dir); err != nil {
		return d.fail("mosquitto: %v", err)
	}
	if d.sim, err = rig.StartSim(d.dir, d.bins, "--latency", "40ms", "--jitter", "40ms"); err != nil {
		return d.fail("m2m-sim: %v", err)
	}
	registry := filepath.Join(d.dir, "devices.csv")
	// The fleet stands where it is night now, so dark lamps are lamp
	// failures whatever the hour here; the registry carries the positions.
	fleet := []string{"--broker", d.broker.URL, "--devices", strconv.Itoa(d.devices), "--where", "night", "--seed", "7"}
	gen, err := rig.Start(d.dir, "lightsim-registry", d.bins.Lightsim,
		append(fleet, "--write-registry", registry, "--write-only"), nil, false)
	if err != nil || gen.ExitCode() != 0 {
		return d.fail("lightsim --write-registry failed: %v %s", err, tailOf(gen))
	}
	if d.httpAddr, err = rig.FreeAddr(); err != nil {
		return d.fail("%v", err)
	}
	env := rig.AgentEnv(d.dir, d.broker.URL, d.sim.URL, d.httpAddr, map[string]string{
		"EDGE_DEVICES_FILE":        registry,
		"EDGE_REPORT_INTERVAL":     "2s",
		"EDGE_COMM_LOSS_AFTER":     "12s",
		"EDGE_ATTRIBUTES_INTERVAL": "5s",
		"EDGE_CYCLING_WINDOW":      "1m",
		"EDGE_M2M_RETRY_MIN":       "500ms",
		"EDGE_M2M_RETRY_MAX":       "10s",
	})
	if d.agent, err = rig.Start(d.dir, "edge-agent", d.bins.Agent, []string{"run"}, env, false); err != nil {
		return d.fail("edge-agent: %v", err)
	}
	if err := rig.WaitHTTP("http://"+d.httpAddr+"/healthz", 20*time.Second); err != nil {
		return d.fail("edge-agent did not come up: %v\n%s", err, d.agent.Tail(3000))
	}
	faults := []string{
		"--fault", "dark=4", "--fault", "swell=2", "--fault", "sag=2", "--fault", "lowpf=2",
		"--fault", "silence=2", "--fault", "alarm:relayFailure=2", "--fault", "garbage=1",
		"--fault-cycle", "45s", "--interval", "2s", "--report", "0", "--log-faults",
	}
	if d.lightsim, err = rig.Start(d.dir, "lightsim", d.bins.Lightsim,
		append(append([]string{"--registry", registry, "--status-offline"}, fleet...), faults...), nil, true); err != nil {
		return d.fail("lightsim: %v", err)
	}

	fmt.Fprintf(d.out, `edge-agent demo — everything runs on this machine, on loopback
  status page   http://%s/         (phone-sized; Portuguese, English switch)
  status JSON   http://%s/api/status
  metrics       http://%s/metrics
  M2M simulator %s/_sim/record   (what the cloud received)
  logs          %s
  fleet         %d lamps where it is night now; some go dark, swell, sag, lose PF,
                go silent or raise relay alarms, and recover every 45 s
Stop with Ctrl-C%s.

`, d.httpAddr, d.httpAddr, d.httpAddr, d.sim.URL, d.dir, d.devices, untilText(duration))

	var deadline <-chan time.Time
	if duration > 0 {
		deadline = time.After(duration)
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-sigs:
			fmt.Fprintln(d.out)
			break loop
		case <-deadline:
			break loop
		case <-d.agent.Done():
			return d.fail("edge-agent exited unexpectedly (code %d):\n%s", d.agent.ExitCode(), d.agent.Tail(3000))
		case <-tick.C:
			fmt.Fprintln(d.out, d.summary())
		}
	}
	fmt.Fprintln(d.out, "\nStopping: lightsim, then the agent (clean stop), then the simulator and the broker.")
	tickets := d.agentTickets()
	code := 0
	d.lightsim.Stop(10 * time.Second)
	began := time.Now()
	if !d.agent.Stop(15 * time.Second) {
		fmt.Fprintln(d.errw, "edge-demo: edge-agent did not stop within 15 s; killed")
		code = 1
	} else {
		fmt.Fprintf(d.out, "edge-agent stopped cleanly in %v (exit %d)\n", time.Since(began).Round(time.Millisecond), d.agent.ExitCode())
	}
	d.printReceived(tickets)
	d.stopAll()
	return code
}

func untilText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(" (or it stops by itself after %v)", d)
}

func tailOf(p *rig.Proc) string {
	if p == nil {
		return ""
	}
	return p.Tail(2000)
}

// summary is the live line: devices, faults, tickets, and what the cloud got.
func (d *demo) summary() string {
	st, err := rig.Status(d.httpAddr)
	if err != nil {
		return fmt.Sprintf("%s  status unavailable: %v", time.Now().Format("15:04:05"), err)
	}
	line := fmt.Sprintf("%s  devices %d: %d online, %d faulty │ tickets: %d pending, %d sent, %d cancelled, %d suppressed, %d failed │ msgs %d (%d rejected)",
		time.Now().Format("15:04:05"),
		int(rig.Num(st, "devices.known")), int(rig.Num(st, "devices.online")), int(rig.Num(st, "devices.faulty")),
		int(rig.Num(st, "tickets.pending"))+int(rig.Num(st, "tickets.cancel_pending")), int(rig.Num(st, "tickets.sent")),
		int(rig.Num(st, "tickets.cancelled")), int(rig.Num(st, "tickets.suppressed")), int(rig.Num(st, "tickets.failed")),
		int(rig.Num(st, "mqtt.messages_received")), int(rig.Num(st, "mqtt.messages_rejected")))
	if rec, err := d.sim.Record(); err == nil {
		line += fmt.Sprintf(" │ cloud: %d created, %d cancelled", rec.Counts.Created, rec.Counts.Cancelled)
	}
	return line
}

// agentTickets asks the agent which fault each protocol number stands for.
func (d *demo) agentTickets() map[int64]httpapi.Ticket {
	out := map[int64]httpapi.Ticket{}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/api/tickets?limit=%d", d.httpAddr, httpapi.MaxTicketLimit))
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	var list httpapi.TicketList
	if json.NewDecoder(resp.Body).Decode(&list) != nil {
		return out
	}
	for _, t := range list.Tickets {
		out[t.Protocol] = t
	}
	return out
}

// printReceived prints the tickets as the simulated cloud received them.
func (d *demo) printReceived(agentView map[int64]httpapi.Ticket) {
	rec, err := d.sim.Record()
	if err != nil {
		fmt.Fprintf(d.errw, "edge-demo: reading the simulator's record: %v\n", err)
		return
	}
	ts := slices.Clone(rec.Tickets)
	slices.SortFunc(ts, func(a, b m2mtest.TicketRecord) int { return cmp.Compare(a.Protocol, b.Protocol) })
	fmt.Fprintf(d.out, "\nThe M2M simulator received %d tickets (%d cancelled), %d attribute updates for %d devices, %d requests in all:\n",
		rec.Counts.Created, rec.Counts.Cancelled, rec.Counts.ManyUpdates+rec.Counts.OneUpdates, len(rec.Devices), rec.Counts.Requests)
	fmt.Fprintf(d.out, "  %-9s %-10s %-9s %-24s %s\n", "protocol", "nameplate", "demanda", "fault", "at the cloud")
	for _, t := range ts {
		fault, state := "?", "open"
		if a, ok := agentView[t.Protocol]; ok {
			fault = a.Fault
		}
		if t.Cancelled {
			state = "cancelled " + t.CancelledAt.Local().Format("15:04:05") + ": " + shorten(t.Justification, 60)
		}
		fmt.Fprintf(d.out, "  %-9d %-10s %-9d %-24s %s\n", t.Protocol, t.Nameplate, t.IDDemanda, fault, state)
	}
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// stopAll stops whatever is still running, in order.
func (d *demo) stopAll() {
	for _, p := range []*rig.Proc{d.lightsim, d.agent} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
	if d.sim != nil {
		d.sim.Stop(5 * time.Second)
	}
	if d.broker != nil {
		_ = d.broker.Stop()
	}
}
