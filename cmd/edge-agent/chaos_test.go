package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/cmd/internal/rig"
	"github.com/edge-agent/edge-agent/m2m/m2mtest"
)

// faultOfKind maps lightsim's injected fault kinds to the fault the agent
// must raise for them.
var faultOfKind = map[string]string{
	"dark":               agent.FaultLampFailure,
	"swell":              agent.FaultSupplyVoltageTooHigh,
	"sag":                agent.FaultSupplyVoltageTooLow,
	"lowpf":              agent.FaultPowerFactorTooLow,
	"overpower":          agent.FaultLampPowerTooHigh,
	"silence":            agent.FaultCommunicationFailure,
	"alarm:relayFailure": "relayFailure",
}

// TestE2EChaos kills the agent with SIGKILL at random moments, again and
// again, while a fleet of hundreds of lamps raises and clears faults and the
// API fails requests and loses answers. Then the API and the fleet heal, and
// the record must show: every ticket created at the API exactly once and
// then cancelled, every ticket the API never saw suppressed, one open ticket
// per fault at a time, a ticket for every fault the fleet showed, and
// nothing left pending.
func TestE2EChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("chaos seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 42))

	s := newSystem(t, map[string]string{
		"EDGE_COMM_LOSS_AFTER": "4s",
		"EDGE_LOG_LEVEL":       "info",
		"EDGE_M2M_RETRY_MAX":   "500ms",
	}, "--error-rate", "0.15", "--lose-answers", "0.15", "--latency", "5ms", "--jitter", "10ms",
		"--seed", fmt.Sprint(seed%1000))
	registry := filepath.Join(s.dir, "devices.csv")
	fleet := []string{"--broker", s.broker.URL, "--devices", "300", "--where", "night", "--seed", "11", "--interval", "1s"}
	gen, err := rig.Start(s.dir, "lightsim-registry", s.bins.Lightsim, append(fleet, "--write-registry", registry, "--write-only"), nil, false)
	require.NoError(t, err)
	require.Equal(t, 0, gen.ExitCode())
	s.env["EDGE_DEVICES_FILE"] = registry

	s.startAgent()
	sim, err := rig.Start(s.dir, "lightsim", s.bins.Lightsim, append(fleet,
		"--registry", registry, "--status-offline", "--log-faults", "--report", "0", "--fault-cycle", "7s",
		"--fault", "dark=20", "--fault", "swell=20", "--fault", "sag=10", "--fault", "lowpf=10", "--fault", "overpower=10",
		"--fault", "silence=5", "--fault", "alarm:relayFailure=10", "--fault", "garbage=5"), nil, true)
	require.NoError(t, err)
	t.Cleanup(func() { sim.Kill() })

	const cycles = 12
	for i := range cycles {
		time.Sleep(time.Duration(500+rnd.IntN(3000)) * time.Millisecond)
		s.agent.Kill()
		if rnd.IntN(2) == 0 {
			time.Sleep(time.Duration(rnd.IntN(1500)) * time.Millisecond) // down a while: the broker queues
		}
		s.startAgent()
		t.Logf("cycle %d: killed and restarted", i+1)
	}

	// One whole fault cycle more with the agent left alone: every faulty
	// device shows its fault long enough to be confirmed at least once.
	time.Sleep(16 * time.Second)

	// Heal: the API answers everything, the fleet is healthy again.
	require.NoError(t, s.sim.SetFaults(m2mtest.Faults{}))
	require.True(t, sim.Stop(15*time.Second))
	faultLines := sim.Lines()
	healthy, err := rig.Start(s.dir, "lightsim-healthy", s.bins.Lightsim, append(fleet, "--registry", registry, "--report", "0"), nil, false)
	require.NoError(t, err)
	t.Cleanup(func() { healthy.Kill() })

	// Wait until nothing is open any more: every fault cleared, every cancel
	// sent. Then stop cleanly and read the store.
	settled := func() bool {
		rec, err := s.sim.Record()
		if err != nil {
			return false
		}
		for _, r := range rec.Tickets {
			if !r.Cancelled {
				return false
			}
		}
		return len(rec.Tickets) > 0
	}
	waitFor(t, "every ticket at the API cancelled", 90*time.Second, settled)
	time.Sleep(2 * time.Second) // one more report round: nothing new may appear
	require.True(t, settled())
	s.stopAgent()
	healthy.Kill()

	tickets := s.tickets()
	rec := s.record()
	atAPI := map[int64]m2mtest.TicketRecord{}
	for _, r := range rec.Tickets {
		atAPI[r.Protocol] = r
	}
	t.Logf("%d tickets; API: %+v", len(tickets), rec.Counts)
	require.NotEmpty(t, tickets)

	seen := map[int64]bool{}
	byFault := map[string][]agent.Ticket{}
	for _, tk := range tickets {
		require.False(t, seen[tk.Protocol], "protocol %d twice in the store", tk.Protocol)
		seen[tk.Protocol] = true
		byFault[tk.Nameplate+"/"+tk.Fault] = append(byFault[tk.Nameplate+"/"+tk.Fault], tk)
		r, sent := atAPI[tk.Protocol]
		switch tk.State {
		case agent.StateCancelled:
			require.True(t, sent, "ticket %d cancelled but never created at the API", tk.Protocol)
			require.True(t, r.Cancelled, "ticket %d cancelled here, not at the API", tk.Protocol)
			require.Equal(t, tk.Nameplate, r.Nameplate)
		case agent.StateSuppressed:
			require.False(t, sent, "ticket %d suppressed here but created at the API", tk.Protocol)
		default:
			t.Errorf("ticket %d (%s %s) left %s: %s", tk.Protocol, tk.Nameplate, tk.Fault, tk.State, tk.LastError)
		}
	}
	for p := range atAPI {
		require.True(t, seen[p], "the API has protocol %d, which the agent never numbered", p)
	}

	// One open ticket per fault at a time: a device's tickets for one fault
	// follow each other, each cleared before the next was raised.
	for key, ts := range byFault {
		for i := 1; i < len(ts); i++ {
			prev, cur := ts[i-1], ts[i]
			require.False(t, prev.ClearedAt.IsZero(), "%s: ticket %d never cleared but %d raised after it", key, prev.Protocol, cur.Protocol)
			require.False(t, cur.RaisedAt.Before(prev.ClearedAt.Add(-time.Second)),
				"%s: ticket %d raised at %v while %d was open until %v", key, cur.Protocol, cur.RaisedAt, prev.Protocol, prev.ClearedAt)
		}
	}

	// Every fault the fleet showed for long enough got a ticket.
	// A device with several faults shows only some of them: one that sends
	// garbage or goes silent shows nothing but its silence, and a dark lamp
	// cannot show the faults of a lit one.
	shown, kinds := map[string]bool{}, map[string]map[string]bool{}
	for _, line := range faultLines {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "fault" && f[3] == "on" {
			if kinds[f[1]] == nil {
				kinds[f[1]] = map[string]bool{}
			}
			kinds[f[1]][f[2]] = true
			if name, ok := faultOfKind[f[2]]; ok {
				shown[f[1]+"/"+name] = true
			}
		}
	}
	for key := range shown {
		nameplate, fault, _ := strings.Cut(key, "/")
		k := kinds[nameplate]
		switch {
		case (k["garbage"] || k["silence"]) && fault != agent.FaultCommunicationFailure,
			k["dark"] && (fault == agent.FaultPowerFactorTooLow || fault == agent.FaultLampPowerTooHigh):
			delete(shown, key)
		}
	}
	require.NotEmpty(t, shown)
	for key := range shown {
		require.NotEmpty(t, byFault[key], "the fleet showed %s, and no ticket was raised for it", key)
	}
}
