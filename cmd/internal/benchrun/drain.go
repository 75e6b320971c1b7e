package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edge-agent/edge-agent/cmd/internal/rig"
)

// Drain: the real agent starts on a store holding n pending tickets (a
// gateway back from an outage) against m2m-sim answering every call after
// a fixed latency. The figure is from READY (the store is open; the syncer
// starts right after) to the moment /api/status counts all n as sent; the
// simulator's record then proves that each protocol was created exactly
// once.

type drainRun struct {
	Seconds, Ideal, Ratio float64
	// SimSpan is the simulator's own view: first to last created_at.
	SimSpan     float64
	Created     int64
	Duplicates  int64 // creates beyond one per protocol, and 409s
	MaxInFlight int64 // most requests the simulator saw at once
}

type drainResult struct {
	Tickets     int
	Latency     time.Duration
	Concurrency int
	Rate        int
	Runs        []drainRun
	SimCmd      string
	AgentEnv    string
}

func runDrain(e *env) (*drainResult, error) {
	p := e.plan
	dir, err := e.dir("drain")
	if err != nil {
		return nil, err
	}
	br, err := rig.StartBroker(dir)
	if err != nil {
		return nil, err
	}
	defer br.Stop()
	simFlags := []string{"--latency", p.DrainLatency.String()}
	sim, err := rig.StartSim(dir, e.bins, simFlags...)
	if err != nil {
		return nil, err
	}
	defer sim.Stop(stopWait)
	extra := map[string]string{
		"EDGE_M2M_CONCURRENCY": strconv.Itoa(p.DrainConcurrency),
		"EDGE_M2M_RATE":        strconv.Itoa(p.DrainRate),
	}
	res := &drainResult{Tickets: p.DrainTickets, Latency: p.DrainLatency, Concurrency: p.DrainConcurrency, Rate: p.DrainRate,
		SimCmd:   command{Name: "m2m-sim", Args: append([]string{"--addr", "127.0.0.1:0"}, simFlags...)}.String(),
		AgentEnv: fmt.Sprintf("EDGE_M2M_CONCURRENCY=%d EDGE_M2M_RATE=%d, the rest the product defaults", p.DrainConcurrency, p.DrainRate),
	}
	ideal := float64(p.DrainTickets) * p.DrainLatency.Seconds() / float64(p.DrainConcurrency)
	for i := range p.Runs {
		if e.ctx.Err() != nil {
			return nil, e.ctx.Err()
		}
		runDir := filepath.Join(dir, fmt.Sprintf("run-%d", i))
		if _, err := seedStore(e.ctx, filepath.Join(runDir, "state"), p.DrainTickets, 0); err != nil {
			return nil, err
		}
		if err := sim.Reset(); err != nil {
			return nil, err
		}
		r, err := e.drainOnce(runDir, br.URL, sim, extra, p.DrainTickets)
		if err != nil {
			return nil, fmt.Errorf("drain run %d: %w", i+1, err)
		}
		r.Ideal = ideal
		r.Ratio = r.Seconds / ideal
		res.Runs = append(res.Runs, r)
		e.logf("drain %d/%d: %s for %d tickets (ideal %s, %.3f×); simulator span %s; %d duplicates; at most %d in flight",
			i+1, p.Runs, fmtDur(r.Seconds), p.DrainTickets, fmtDur(ideal), r.Ratio, fmtDur(r.SimSpan), r.Duplicates, r.MaxInFlight)
	}
	return res, nil
}

func (e *env) drainOnce(runDir, brokerURL string, sim *rig.Sim, extra map[string]string, n int) (drainRun, error) {
	httpAddr, err := rig.FreeAddr()
	if err != nil {
		return drainRun{}, err
	}
	nl, err := listenNotify(filepath.Join(runDir, "notify.sock"))
	if err != nil {
		return drainRun{}, err
	}
	defer nl.close()
	vars := map[string]string{"EDGE_MQTT_CLIENT_ID": "edge-agent-drain-" + filepath.Base(runDir)}
	for k, v := range extra {
		vars[k] = v
	}
	agent, err := e.startAgent(runDir, brokerURL, sim.URL, httpAddr, vars, nl.Path)
	if err != nil {
		return drainRun{}, err
	}
	defer agent.Stop(stopWait)
	ready, err := nl.waitReady(agent, 30*time.Second)
	if err != nil {
		return drainRun{}, err
	}
	// Polled: the HTTP server starts a moment after READY, and each poll
	// is one cheap store read.
	var done time.Time
	deadline := ready.Add(time.Duration(float64(n)*0.02*4)*time.Second + time.Minute)
	for {
		if v, err := agentNum(httpAddr, "tickets.sent"); err == nil && v >= float64(n) {
			done = time.Now()
			break
		}
		if !agent.Running() {
			return drainRun{}, fmt.Errorf("the agent exited:\n%s", agent.Tail(3000))
		}
		if time.Now().After(deadline) {
			return drainRun{}, fmt.Errorf("not all %d tickets sent by %v", n, deadline.Sub(ready))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := drainRun{Seconds: done.Sub(ready).Seconds()}
	rec, err := sim.Record()
	if err != nil {
		return drainRun{}, err
	}
	seen := map[int64]int{}
	var first, lastAt time.Time
	for _, t := range rec.Tickets {
		seen[t.Protocol]++
		if first.IsZero() || t.CreatedAt.Before(first) {
			first = t.CreatedAt
		}
		if t.CreatedAt.After(lastAt) {
			lastAt = t.CreatedAt
		}
		r.Duplicates += int64(t.Conflicts)
	}
	for _, c := range seen {
		r.Duplicates += int64(c - 1)
	}
	r.Created = rec.Counts.Created
	r.Duplicates += rec.Counts.Conflicts
	r.MaxInFlight = rec.Counts.MaxInFlight
	r.SimSpan = lastAt.Sub(first).Seconds()
	switch {
	case len(seen) != n || r.Created != int64(n):
		return r, fmt.Errorf("the simulator created %d tickets (%d distinct protocols), want %d", r.Created, len(seen), n)
	case rec.Counts.Invalid != 0:
		return r, fmt.Errorf("the simulator found %d invalid requests", rec.Counts.Invalid)
	}
	if !agent.Stop(stopWait) {
		return r, fmt.Errorf("the agent did not stop on SIGTERM within %v", stopWait)
	}
	return r, nil
}
