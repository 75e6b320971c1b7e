package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/edge-agent/edge-agent/cmd/internal/rig"
)

// Start-up: exec of the real agent binary to READY=1 on a NOTIFY_SOCKET
// the driver listens on (what systemd waits for with Type=notify), with a
// store of many finished tickets, warm page cache (the first run warms it:
// its figure is kept but the file was just written, so it is warm too).

// startupStoreMaxMB is EDGE_STORE_MAX_MB for the start-up runs.
const startupStoreMaxMB = "1024"

type startupResult struct {
	Finished  int
	StoreSize int64
	Ready     []float64 // exec → READY=1, seconds
	LogLine   []float64 // exec → the "ready" log line, seconds
}

func runStartup(e *env) (*startupResult, error) {
	p := e.plan
	dir, err := e.dir("startup")
	if err != nil {
		return nil, err
	}
	began := time.Now()
	size, err := seedStore(e.ctx, filepath.Join(dir, "state"), 0, p.StartupFinished)
	if err != nil {
		return nil, err
	}
	e.logf("startup: seeded %d finished tickets (%s) in %s", p.StartupFinished, fmtMB(float64(size)), time.Since(began).Round(time.Millisecond))
	br, err := rig.StartBroker(dir)
	if err != nil {
		return nil, err
	}
	defer br.Stop()
	res := &startupResult{Finished: p.StartupFinished, StoreSize: size}
	runs := max(p.GoRuns, p.Runs)
	for i := range runs {
		if e.ctx.Err() != nil {
			return nil, e.ctx.Err()
		}
		ready, logLine, err := e.startOnce(dir, br.URL, i == 0, p.StartupFinished)
		if err != nil {
			return nil, fmt.Errorf("start-up run %d: %w", i+1, err)
		}
		res.Ready = append(res.Ready, ready)
		res.LogLine = append(res.LogLine, logLine)
		e.logf("startup %d/%d: READY after %s, \"ready\" logged after %s", i+1, runs, fmtDur(ready), fmtDur(logLine))
	}
	return res, nil
}

func (e *env) startOnce(dir, brokerURL string, check bool, finished int) (ready, logLine float64, err error) {
	httpAddr, err := rig.FreeAddr()
	if err != nil {
		return 0, 0, err
	}
	nl, err := listenNotify(filepath.Join(dir, "notify.sock"))
	if err != nil {
		return 0, 0, err
	}
	defer nl.close()
	// No M2M API is reachable (port 9 on loopback: discard, nothing
	// listens): READY must not wait for it, and nothing is queued anyway.
	start := time.Now()
	// The store cap raised from the default 256 MB: 100,000 finished
	// tickets take about 230 MB, and under the default the agent prunes the
	// oldest to keep 10 % headroom (it removed 1,024 in the first try of
	// this benchmark), so the store would no longer hold what is measured.
	agent, err := e.startAgent(dir, brokerURL, "http://127.0.0.1:9", httpAddr, map[string]string{"EDGE_STORE_MAX_MB": startupStoreMaxMB}, nl.Path)
	if err != nil {
		return 0, 0, err
	}
	defer agent.Stop(stopWait)
	at, err := nl.waitReady(agent, 30*time.Second)
	if err != nil {
		return 0, 0, err
	}
	ready = at.Sub(start).Seconds()
	if err := waitLog(agent, "msg=ready", 1, 30*time.Second); err != nil {
		return 0, 0, err
	}
	logLine = time.Since(start).Seconds()
	if check {
		if err := waitAgentNum(agent, httpAddr, "tickets.suppressed", float64(finished), 30*time.Second); err != nil {
			return 0, 0, fmt.Errorf("the agent does not see the seeded tickets: %w", err)
		}
	}
	if !agent.Stop(stopWait) {
		return 0, 0, fmt.Errorf("the agent did not stop on SIGTERM within %v", stopWait)
	}
	return ready, logLine, nil
}
