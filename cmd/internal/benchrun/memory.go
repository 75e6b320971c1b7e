package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/edge-agent/edge-agent/cmd/internal/rig"
)

// Memory: the real agent with a registry of n devices (written by
// lightsim, as a city's export would be) receives a few report rounds of
// every device from lightsim's load mode at a fixed rate. Steady state is
// measured after an attribute round, not before it: the agent saves every
// device's attributes in its store (one record per device, in the bbolt
// file it maps) and sends them to the API, and the store's pages are part
// of what it keeps resident. So the agent runs with a short attribute
// interval and an API rate that is not the bottleneck, and the driver
// waits, once every message is taken in, until the simulator has applied
// the attributes of every device and the attribute traffic has been quiet
// for three intervals (the last round, save and flush, is over); then a
// few seconds' settle, and VmRSS, RssAnon and RssFile are sampled for a
// few seconds and the medians kept. A fresh agent (and store) per run.

type memRun struct {
	RSS, HWM float64 // bytes
	// RSSAnon and RSSFile split VmRSS (medians of the same samples): the
	// Go heap, stacks and runtime are anonymous; the binary's pages and
	// the store's mmap are file-backed.
	RSSAnon, RSSFile float64
	HeapInuse        float64 // go_memstats_heap_inuse_bytes at the end
	Sys              float64 // go_memstats_sys_bytes
	NextGC           float64 // go_memstats_next_gc_bytes
	// StoreBytes is the size of the store file at the end.
	StoreBytes float64
	// Applied is how many distinct devices the simulator has attributes
	// of, Updates how many device updates it applied in all.
	Applied, Updates int64
	// AttrWait is the time from the last message taken in to the last
	// attribute update seen at the simulator (polled every memAttrPoll).
	AttrWait time.Duration
}

type memSize struct {
	Devices int
	// MemLimit is the GOMEMLIMIT the agent ran with, "" for none (the
	// product default).
	MemLimit string
	Runs     []memRun
}

type memResult struct {
	Rounds int
	Rate   int
	// AttrQuiet is how long the attribute traffic must have stopped.
	AttrQuiet time.Duration
	Settle    time.Duration
	Sample    time.Duration
	Sizes     []memSize
	Lightsim  string
	AgentEnv  string
}

const (
	memSettle = 5 * time.Second
	memSample = 5 * time.Second
	// The agent's attribute round every 5 s (the product default is 60 s:
	// the driver would wait a minute for nothing) and an API rate that
	// lets it send 100,000 devices in seconds (the default 10 requests/s
	// of 100 devices takes 100 s).
	memAttrInterval = "5s"
	memM2MRate      = "1000"
	memAttrQuiet    = 15 * time.Second // three attribute intervals
	memAttrPoll     = 2 * time.Second  // the record of 100,000 devices is tens of MB of JSON
	memAttrTimeout  = 5 * time.Minute
)

func runMemory(e *env) (*memResult, error) {
	p := e.plan
	res := &memResult{Rounds: p.MemRounds, Rate: p.MemRate, AttrQuiet: memAttrQuiet, Settle: memSettle, Sample: memSample,
		AgentEnv: "EDGE_DEVICES_FILE=<the registry>, EDGE_ATTRIBUTES_INTERVAL=" + memAttrInterval + ", EDGE_M2M_RATE=" + memM2MRate +
			", the rest the product defaults (no GOGC or GOMEMLIMIT)"}
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
				e.logf("memory %d devices %s %d/%d: RSS %s (anon %s, file %s; peak %s), Go heap in use %s, runtime total %s, next GC at %s; store file %s, attributes of %d devices applied (%d updates) %s after the last message",
					n, limit, i+1, p.Runs, fmtMB(r.RSS), fmtMB(r.RSSAnon), fmtMB(r.RSSFile), fmtMB(r.HWM), fmtMB(r.HeapInuse), fmtMB(r.Sys), fmtMB(r.NextGC),
					fmtMB(r.StoreBytes), r.Applied, r.Updates, r.AttrWait.Round(100*time.Millisecond))
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
	vars := map[string]string{"EDGE_DEVICES_FILE": registry, "EDGE_ATTRIBUTES_INTERVAL": memAttrInterval, "EDGE_M2M_RATE": memM2MRate}
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
	attrStart := time.Now()
	applied, updates, lastUpdate, err := waitAttributesApplied(agent, sim, n)
	if err != nil {
		return memRun{}, cmd, err
	}
	attrWait := max(lastUpdate.Sub(attrStart), 0)
	time.Sleep(memSettle)
	var rss, anon, file []float64
	for t := time.Now(); time.Since(t) < memSample; time.Sleep(250 * time.Millisecond) {
		v, err := procStatusFields(agent.Pid(), "VmRSS", "RssAnon", "RssFile")
		if err != nil {
			return memRun{}, cmd, err
		}
		rss, anon, file = append(rss, v[0]), append(anon, v[1]), append(file, v[2])
	}
	hwm, err := procStatusBytes(agent.Pid(), "VmHWM")
	if err != nil {
		return memRun{}, cmd, err
	}
	m, err := metricsValues(httpAddr, "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes", "go_memstats_next_gc_bytes")
	if err != nil {
		return memRun{}, cmd, err
	}
	fi, err := os.Stat(filepath.Join(dir, "state", "edge-agent.db"))
	if err != nil {
		return memRun{}, cmd, fmt.Errorf("the store file: %w", err)
	}
	r := memRun{RSS: median(rss), HWM: float64(hwm), RSSAnon: median(anon), RSSFile: median(file), HeapInuse: m["go_memstats_heap_inuse_bytes"],
		Sys: m["go_memstats_sys_bytes"], NextGC: m["go_memstats_next_gc_bytes"], StoreBytes: float64(fi.Size()),
		Applied: applied, Updates: updates, AttrWait: attrWait}
	if !agent.Stop(stopWait) {
		return r, cmd, fmt.Errorf("the agent did not stop on SIGTERM within %v", stopWait)
	}
	return r, cmd, nil
}

// procStatusFields reads several byte counts of /proc/<pid>/status, in
// the order given.
func procStatusFields(pid int, names ...string) ([]float64, error) {
	out := make([]float64, len(names))
	for i, name := range names {
		v, err := procStatusBytes(pid, name)
		if err != nil {
			return nil, err
		}
		out[i] = float64(v)
	}
	return out, nil
}

// simAttributes is what the driver reads of the simulator's record: its
// counts and the nameplates it holds attributes of (not the attributes).
type simAttributes struct {
	Counts struct {
		DevicesUpdated int64 `json:"devices_updated"`
		Invalid        int64 `json:"invalid"`
	} `json:"counts"`
	Devices []struct {
		Nameplate string `json:"nameplate_num"`
	} `json:"devices"`
}

// waitAttributesApplied polls the simulator until it holds the attributes
// of n devices and has applied no update for memAttrQuiet: the agent's
// last attribute round (every device changed by the report rounds saved
// in its store, then sent) is over. It returns the devices and updates
// applied, and when the last update was seen.
func waitAttributesApplied(agent *rig.Proc, sim *rig.Sim, n int) (applied, updates int64, lastChange time.Time, err error) {
	c := &http.Client{Timeout: 60 * time.Second}
	deadline := time.Now().Add(memAttrTimeout)
	lastChange = time.Now()
	updates = -1
	for {
		var rec simAttributes
		resp, err := c.Get(sim.URL + "/_sim/record")
		if err == nil {
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET /_sim/record: %s", resp.Status)
			} else {
				err = json.NewDecoder(resp.Body).Decode(&rec)
			}
			resp.Body.Close()
		}
		if err != nil {
			return 0, 0, lastChange, fmt.Errorf("the simulator's record: %w", err)
		}
		if rec.Counts.Invalid != 0 {
			return 0, 0, lastChange, fmt.Errorf("the simulator refused %d requests as invalid", rec.Counts.Invalid)
		}
		if rec.Counts.DevicesUpdated != updates {
			updates, lastChange = rec.Counts.DevicesUpdated, time.Now()
		}
		applied = int64(len(rec.Devices))
		if applied >= int64(n) && time.Since(lastChange) >= memAttrQuiet {
			return applied, updates, lastChange, nil
		}
		if !agent.Running() {
			return 0, 0, lastChange, fmt.Errorf("the agent exited while its attributes were being sent:\n%s", agent.Tail(3000))
		}
		if time.Now().After(deadline) {
			return 0, 0, lastChange, fmt.Errorf("after %v the simulator has the attributes of %d of %d devices (%d updates, the last %v ago)",
				memAttrTimeout, applied, n, updates, time.Since(lastChange).Round(time.Second))
		}
		time.Sleep(memAttrPoll)
	}
}
