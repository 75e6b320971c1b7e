package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/edge-agent/edge-agent/cmd/internal/rig"
)

// Memory: the real agent with a registry of n devices (written by
// lightsim, as a city's export would be) receives a few report rounds of
// every device from lightsim's load mode at a fixed rate; once every
// message is taken in and a few seconds have passed, VmRSS is sampled for a
// few seconds and the median kept. A fresh agent (and store) per run.

type memRun struct {
	RSS, HWM float64 // bytes
	// RSSAnon and RSSFile split VmRSS (last sample): the Go heap, stacks
	// and runtime are anonymous; the binary's pages and the store's mmap
	// are file-backed.
	RSSAnon, RSSFile float64
	HeapInuse        float64 // go_memstats_heap_inuse_bytes at the end
	Sys              float64 // go_memstats_sys_bytes
	NextGC           float64 // go_memstats_next_gc_bytes
}

type memSize struct {
	Devices int
	// MemLimit is the GOMEMLIMIT the agent ran with, "" for none (the
	// product default).
	MemLimit string
	Runs     []memRun
}

type memResult struct {
	Rounds   int
	Rate     int
	Settle   time.Duration
	Sample   time.Duration
	Sizes    []memSize
	Lightsim string
	AgentEnv string
}

const (
	memSettle = 5 * time.Second
	memSample = 5 * time.Second
)

func runMemory(e *env) (*memResult, error) {
	p := e.plan
	res := &memResult{Rounds: p.MemRounds, Rate: p.MemRate, Settle: memSettle, Sample: memSample,
		AgentEnv: "EDGE_DEVICES_FILE=<the registry>, the rest the product defaults (no GOGC or GOMEMLIMIT)"}
	for _, n := range p.MemDevices {
		dir, err := e.dir(fmt.Sprintf("memory-%d", n))
		if err != nil {
			return nil, err
		}
		registry := filepath.Join(dir, "devices.csv")
		if _, err := e.run(command{Name: e.bins.Lightsim, Args: []string{"--devices", strconv.Itoa(n), "--write-registry", registry, "--write-only"}}); err != nil {
			return nil, err
		}
		limits := []string{""}
		if n == p.MemDevices[len(p.MemDevices)-1] && p.MemLimit != "" {
			// The largest fleet again with a memory limit: what GOMEMLIMIT
			// buys, and what it cannot.
			limits = append(limits, p.MemLimit)
		}
		for _, limit := range limits {
			size := memSize{Devices: n, MemLimit: limit}
			for i := range p.Runs {
				if e.ctx.Err() != nil {
					return nil, e.ctx.Err()
				}
				r, cmd, err := e.memoryOnce(filepath.Join(dir, fmt.Sprintf("run-%d%s", i, limit)), registry, n, limit)
				if err != nil {
					return nil, fmt.Errorf("memory, %d devices %s, run %d: %w", n, limit, i+1, err)
				}
				res.Lightsim = cmd
				size.Runs = append(size.Runs, r)
				e.logf("memory %d devices %s %d/%d: RSS %s (anon %s, file %s; peak %s), Go heap in use %s, runtime total %s, next GC at %s",
					n, limit, i+1, p.Runs, fmtMB(r.RSS), fmtMB(r.RSSAnon), fmtMB(r.RSSFile), fmtMB(r.HWM), fmtMB(r.HeapInuse), fmtMB(r.Sys), fmtMB(r.NextGC))
			}
			res.Sizes = append(res.Sizes, size)
		}
	}
	return res, nil
}

func (e *env) memoryOnce(dir, registry string, n int, memLimit string) (memRun, string, error) {
	p := e.plan
	br, err := rig.StartBroker(dir)
	if err != nil {
		return memRun{}, "", err
	}
	defer br.Stop()
	sim, err := rig.StartSim(dir, e.bins)
	if err != nil {
		return memRun{}, "", err
	}
	defer sim.Stop(stopWait)
	httpAddr, err := rig.FreeAddr()
	if err != nil {
		return memRun{}, "", err
	}
	vars := map[string]string{"EDGE_DEVICES_FILE": registry}
	if memLimit != "" {
		vars["GOMEMLIMIT"] = memLimit
	}
	agent, err := e.startAgent(dir, br.URL, sim.URL, httpAddr, vars, "")
	if err != nil {
		return memRun{}, "", err
	}
	defer agent.Stop(stopWait)
	if err := waitLog(agent, "mqtt subscribed", 1, 60*time.Second); err != nil {
		return memRun{}, "", err
	}
	total := int64(n * p.MemRounds)
	args := []string{"--load", "--broker", br.URL, "--registry", registry, "--count", strconv.FormatInt(total, 10),
		"--rate", strconv.Itoa(p.MemRate), "--quiet"}
	// Shown with the registry's base name: the work folder is temporary.
	shown := slices.Clone(args)
	shown[slices.Index(shown, registry)] = filepath.Base(registry)
	cmd := command{Name: "lightsim", Args: shown}.String()
	if _, err := e.runLightsim(dir, "lightsim", args); err != nil {
		return memRun{}, cmd, err
	}
	if err := waitAgentNum(agent, httpAddr, "mqtt.messages_received", float64(total), 5*time.Minute); err != nil {
		return memRun{}, cmd, err
	}
	if known, err := agentNum(httpAddr, "devices.known"); err != nil || int(known) != n {
		return memRun{}, cmd, fmt.Errorf("the agent knows %v devices (%v), want %d", known, err, n)
	}
	time.Sleep(memSettle)
	var rss []float64
	for t := time.Now(); time.Since(t) < memSample; time.Sleep(250 * time.Millisecond) {
		v, err := procStatusBytes(agent.Pid(), "VmRSS")
		if err != nil {
			return memRun{}, cmd, err
		}
		rss = append(rss, float64(v))
	}
	hwm, err := procStatusBytes(agent.Pid(), "VmHWM")
	if err != nil {
		return memRun{}, cmd, err
	}
	m, err := metricsValues(httpAddr, "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes", "go_memstats_next_gc_bytes")
	if err != nil {
		return memRun{}, cmd, err
	}
	anon, err1 := procStatusBytes(agent.Pid(), "RssAnon")
	file, err2 := procStatusBytes(agent.Pid(), "RssFile")
	if err1 != nil || err2 != nil {
		return memRun{}, cmd, fmt.Errorf("RssAnon/RssFile: %v %v", err1, err2)
	}
	r := memRun{RSS: median(rss), HWM: float64(hwm), RSSAnon: float64(anon), RSSFile: float64(file), HeapInuse: m["go_memstats_heap_inuse_bytes"],
		Sys: m["go_memstats_sys_bytes"], NextGC: m["go_memstats_next_gc_bytes"]}
	if !agent.Stop(stopWait) {
		return r, cmd, fmt.Errorf("the agent did not stop on SIGTERM within %v", stopWait)
	}
	return r, cmd, nil
}
