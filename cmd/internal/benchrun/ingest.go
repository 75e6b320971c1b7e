package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/edge-agent/edge-agent/cmd/internal/rig"
)

// Ingest end to end.
//
// One broker, one stream, two consumers at once: lightsim's load mode
// publishes QoS 1 telemetry of a fleet round-robin to a private mosquitto
// (mqtttest: max_queued_messages 0, so neither consumer can lose messages
// by falling behind), and both the real edge-agent and mosquitto_sub -q 1
// (persistent session, a fixed client id) consume it. Each consumer's rate
// is taken from its own count, from the first message it received to the
// last, by the same sampler: the agent's mqtt.messages_received from
// /api/status, mosquitto_sub's output lines. Consuming concurrently means
// the same broker work, the same publisher and the same moments of the
// shared machine's load for both; the price is that they share the 2 CPUs
// with each other too (and with the broker and the publisher).
//
// Two modes per run:
//   - live: both subscribed and connected before the first message is
//     published; they consume while lightsim publishes (the setup).
//     A consumer that keeps up runs at the publisher's pace.
//   - backlog: the same stream published while both are disconnected (their
//     sessions queue it at the broker), then both connect at once and drain
//     it: each runs as fast as it can, which shows the headroom the live
//     mode cannot.

type ingestRun struct {
	Mode                               string // "live" or "backlog"
	AgentRate, SubRate, Ratio, PubRate float64
	// AgentCPU and SubCPU are each consumer's CPU time per message (µs).
	AgentCPU, SubCPU float64
	Published        int64
}

type ingestResult struct {
	Devices, Messages int
	Runs              []ingestRun
	LightsimCmd       string
	SubCmd            string
	AgentEnv          string
}

func (g *ingestResult) mode(m string) []ingestRun {
	var out []ingestRun
	for _, r := range g.Runs {
		if r.Mode == m {
			out = append(out, r)
		}
	}
	return out
}

// sampleInterval is how often both consumers' counts are read.
const sampleInterval = 50 * time.Millisecond

const subID = "bench-sub"

type ingestRig struct {
	e         *env
	dir       string
	br        brokerInfo
	simURL    string
	httpAddr  string
	agent     *rig.Proc
	subArgs   []string
	brokerLog string
	subConns  int // connections of subID the broker has logged so far
	n         int64
}

// brokerInfo is what the ingest needs of the broker.
type brokerInfo struct {
	URL  string
	Port int
}

func runIngest(e *env) (*ingestResult, error) {
	p := e.plan
	dir, err := e.dir("ingest")
	if err != nil {
		return nil, err
	}
	br, err := rig.StartBroker(dir)
	if err != nil {
		return nil, err
	}
	defer br.Stop()
	sim, err := rig.StartSim(dir, e.bins)
	if err != nil {
		return nil, err
	}
	defer sim.Stop(stopWait)
	httpAddr, err := rig.FreeAddr()
	if err != nil {
		return nil, err
	}
	ir := &ingestRig{e: e, dir: dir, br: brokerInfo{URL: br.URL, Port: br.Port}, simURL: sim.URL, httpAddr: httpAddr,
		brokerLog: filepath.Join(br.Dir, "mosquitto.log"), n: int64(p.IngestMessages)}
	defer func() {
		if ir.agent != nil {
			ir.agent.Stop(stopWait)
		}
	}()
	if err := ir.startAgent(); err != nil {
		return nil, err
	}
	// The consumer's session exists before any run: subscribed, then gone
	// (-E), so that each run's mosquitto_sub resumes it.
	if _, err := e.run(command{Name: "mosquitto_sub", Args: mosquittoSubArgs(br.Port, subID, "-E")}); err != nil {
		return nil, err
	}
	ir.subConns = 1
	res := &ingestResult{Devices: p.IngestDevices, Messages: p.IngestMessages,
		AgentEnv: "the agent of `make build` with the rig's environment (cmd/internal/rig.AgentEnv) and the product defaults otherwise"}
	ir.subArgs = mosquittoSubArgs(br.Port, subID, "-C", strconv.FormatInt(ir.n, 10), "-F", "%l")
	res.SubCmd = command{Name: "mosquitto_sub", Args: ir.subArgs}.String()
	for i := range p.Runs {
		for _, mode := range []string{"live", "backlog"} {
			if e.ctx.Err() != nil {
				return nil, e.ctx.Err()
			}
			args := []string{"--load", "--broker", br.URL, "--devices", strconv.Itoa(p.IngestDevices),
				"--count", strconv.FormatInt(ir.n, 10), "--quiet", "--client-id", fmt.Sprintf("bench-pub-%s-%d", mode, i)}
			if res.LightsimCmd == "" {
				res.LightsimCmd = command{Name: "lightsim", Args: args}.String()
			}
			var r ingestRun
			var err error
			if mode == "live" {
				r, err = ir.live(args, fmt.Sprintf("lightsim-%s-%d", mode, i))
			} else {
				r, err = ir.backlog(args, fmt.Sprintf("lightsim-%s-%d", mode, i))
			}
			if err != nil {
				return nil, fmt.Errorf("ingest run %d (%s): %w", i+1, mode, err)
			}
			r.Mode = mode
			res.Runs = append(res.Runs, r)
			e.logf("ingest %d/%d %s: agent %s msgs/s, mosquitto_sub %s msgs/s, ratio %.2f; publisher %s msgs/s; CPU per message: agent %.1f µs, mosquitto_sub %.1f µs",
				i+1, p.Runs, mode, fmtRate(r.AgentRate), fmtRate(r.SubRate), r.Ratio, fmtRate(r.PubRate), r.AgentCPU, r.SubCPU)
		}
	}
	if got, err := agentNum(httpAddr, "mqtt.messages_rejected"); err == nil && got != 0 {
		return nil, fmt.Errorf("the agent rejected %v messages of the load", got)
	}
	return res, nil
}

func (ir *ingestRig) startAgent() error {
	a, err := ir.e.startAgent(ir.dir, ir.br.URL, ir.simURL, ir.httpAddr, nil, "")
	if err != nil {
		return err
	}
	ir.agent = a
	return nil
}

// startSub starts this run's mosquitto_sub and waits until the broker has
// logged its connection.
func (ir *ingestRig) startSub() (*subProc, error) {
	sub, err := startSub(ir.dir, ir.subArgs)
	if err != nil {
		return nil, err
	}
	ir.subConns++
	if err := waitFileCount(ir.brokerLog, " as "+subID+" ", ir.subConns, 10*time.Second); err != nil {
		sub.stop()
		return nil, err
	}
	return sub, nil
}

// sampler reads both consumers' counts every sampleInterval until both
// reach n or stop is closed.
type sampler struct {
	aTs, sTs         []float64
	aCounts, sCounts []int64
	wg               sync.WaitGroup
	stop             chan struct{}
}

func (ir *ingestRig) sample(sub *subProc, agentBase float64) *sampler {
	s := &sampler{stop: make(chan struct{})}
	origin := time.Now()
	s.wg.Go(func() {
		t := time.NewTicker(sampleInterval)
		defer t.Stop()
		agentDone, subDone := false, false
		for !(agentDone && subDone) {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			if !agentDone {
				t0 := time.Now()
				// Before the agent serves (backlog mode: just started), a
				// sample is simply missing.
				if v, err := agentNum(ir.httpAddr, "mqtt.messages_received"); err == nil {
					t1 := time.Now()
					c := int64(v - agentBase)
					s.aTs = append(s.aTs, t0.Add(t1.Sub(t0)/2).Sub(origin).Seconds())
					s.aCounts = append(s.aCounts, c)
					agentDone = c >= ir.n
				}
			}
			if !subDone {
				c := sub.lines.Load()
				s.sTs = append(s.sTs, time.Since(origin).Seconds())
				s.sCounts = append(s.sCounts, c)
				subDone = c >= ir.n
			}
		}
	})
	return s
}

// wait waits until both consumers are done, at most timeout.
func (s *sampler) wait(timeout time.Duration, n int64) error {
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	var err error
	select {
	case <-finished:
	case <-time.After(timeout):
		err = fmt.Errorf("after %v the agent had %d and mosquitto_sub %d of %d messages", timeout, last(s.aCounts), last(s.sCounts), n)
	}
	close(s.stop)
	<-finished
	return err
}

func (s *sampler) result(n int64) (agentRate, subRate float64, err error) {
	agentRate, subRate = rateBetween(s.aTs, s.aCounts, n), rateBetween(s.sTs, s.sCounts, n)
	if agentRate == 0 || subRate == 0 {
		return 0, 0, fmt.Errorf("a rate could not be measured (agent %v, mosquitto_sub %v msgs/s)", agentRate, subRate)
	}
	return agentRate, subRate, nil
}

func (ir *ingestRig) live(args []string, name string) (ingestRun, error) {
	if err := waitLog(ir.agent, "mqtt subscribed", 1, 30*time.Second); err != nil {
		return ingestRun{}, err
	}
	sub, err := ir.startSub()
	if err != nil {
		return ingestRun{}, err
	}
	defer sub.stop()
	base, err := agentNum(ir.httpAddr, "mqtt.messages_received")
	if err != nil {
		return ingestRun{}, err
	}
	cpu0, _ := procCPU(ir.agent.Pid())
	s := ir.sample(sub, base)
	pub, err := ir.e.runLightsim(ir.dir, name, args)
	if err == nil && pub.Published != ir.n {
		err = fmt.Errorf("lightsim published %d of %d (failed %d)", pub.Published, ir.n, pub.Failed)
	}
	if err != nil {
		close(s.stop)
		s.wg.Wait()
		return ingestRun{}, err
	}
	if err := s.wait(5*time.Minute, ir.n); err != nil {
		return ingestRun{}, err
	}
	cpu1, _ := procCPU(ir.agent.Pid())
	sub.stop()
	r := ingestRun{PubRate: pub.Rate, Published: pub.Published, AgentCPU: (cpu1 - cpu0) / float64(ir.n) * 1e6, SubCPU: sub.CPU / float64(ir.n) * 1e6}
	if r.AgentRate, r.SubRate, err = s.result(ir.n); err != nil {
		return ingestRun{}, err
	}
	r.Ratio = r.AgentRate / r.SubRate
	return r, nil
}

func (ir *ingestRig) backlog(args []string, name string) (ingestRun, error) {
	// Both away: the agent stopped cleanly (its session stays), the last
	// mosquitto_sub exited after its count.
	if !ir.agent.Stop(stopWait) {
		return ingestRun{}, fmt.Errorf("the agent did not stop on SIGTERM within %v", stopWait)
	}
	pub, err := ir.e.runLightsim(ir.dir, name, args)
	if err == nil && pub.Published != ir.n {
		err = fmt.Errorf("lightsim published %d of %d (failed %d)", pub.Published, ir.n, pub.Failed)
	}
	if err != nil {
		return ingestRun{}, err
	}
	// Both at once; the sampler sees each from its first message on.
	if err := ir.startAgent(); err != nil {
		return ingestRun{}, err
	}
	sub, err := startSub(ir.dir, ir.subArgs)
	if err != nil {
		return ingestRun{}, err
	}
	ir.subConns++
	defer sub.stop()
	s := ir.sample(sub, 0)
	if err := s.wait(5*time.Minute, ir.n); err != nil {
		return ingestRun{}, err
	}
	cpu, _ := procCPU(ir.agent.Pid())
	sub.stop()
	r := ingestRun{PubRate: pub.Rate, Published: pub.Published, AgentCPU: cpu / float64(ir.n) * 1e6, SubCPU: sub.CPU / float64(ir.n) * 1e6}
	if r.AgentRate, r.SubRate, err = s.result(ir.n); err != nil {
		return ingestRun{}, err
	}
	r.Ratio = r.AgentRate / r.SubRate
	return r, nil
}

func last(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)-1]
}
