package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/m2m"
	"github.com/edge-agent/edge-agent/m2m/m2mtest"
	"github.com/edge-agent/edge-agent/store"
)

// BenchmarkDrain is the drain of BENCHMARKS.md in one process, wired as
// startDaemon wires it (real store file, real m2m client over loopback
// HTTP, the syncer) against the in-process simulator answering after 20 ms,
// at concurrency 8: so that a profile (-cpuprofile, -trace) shows where the
// time beyond n × latency / concurrency goes. make bench measures the same
// through the real binary and m2m-sim.
//
//	go test -run '^$' -bench '^BenchmarkDrain$' -benchtime 1x -count 3 ./cmd/edge-agent/
//
// "x-ideal" is the drain's time over n × latency / concurrency (target
// ≤ 1.25).
func BenchmarkDrain(b *testing.B) {
	const (
		n           = 2000
		latency     = 20 * time.Millisecond
		concurrency = 8
	)
	if testing.Short() {
		b.Skip("drain benchmark: skipped with -short")
	}
	defaults := m2m.TicketDefaults{Origin: "tg", OriginTypeID: 107, ServiceCode: "m2m", WorksiteID: 1, Reporter: "edge-agent"}
	var (
		total, reqTime time.Duration
		busy           float64
	)
	for i := range b.N {
		b.StopTimer()
		st, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), storeFileName),
			EncodeCreate: func(t *agent.Ticket) ([]byte, error) { return m2m.EncodeCreate(t, defaults) }})
		if err != nil {
			b.Fatal(err)
		}
		seedPending(b, st, n)
		sim := m2mtest.StartT(b, m2mtest.Options{Faults: m2mtest.Faults{Latency: latency}})
		var reqs atomic.Int64
		var inRequests atomic.Int64 // nanoseconds spent in create requests, summed over the slots
		client, err := m2m.New(m2m.Config{BaseURL: sim.URL(), InstanceID: "69", Concurrency: concurrency, Rate: 1000, Timeout: 15 * time.Second,
			Observe: func(_ string, _ agent.Outcome, _ int, d time.Duration) { reqs.Add(1); inRequests.Add(int64(d)) }})
		if err != nil {
			b.Fatal(err)
		}
		backoff := m2m.Backoff{Min: time.Second, Max: 5 * time.Minute}
		syncer := agent.NewSyncer(agent.SyncerConfig{Concurrency: concurrency,
			Backoff: func(attempt int) time.Duration { return backoff.Delay(attempt, rand.Float64) }}, st, client)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		began := time.Now()
		go func() { done <- syncer.Run(ctx) }()
		for {
			c, err := st.Counts()
			if err != nil {
				b.Fatal(err)
			}
			if c[agent.StateSent] == n {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(began)
		b.StopTimer()
		total += took
		busy += float64(inRequests.Load()) / float64(took*concurrency)
		reqTime += time.Duration(inRequests.Load() / reqs.Load())
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		rec := sim.Record()
		if rec.Counts.Created != n || rec.Counts.Conflicts != 0 || len(rec.Tickets) != n {
			b.Fatalf("run %d: the simulator created %d (%d records), %d conflicts; want %d, none", i, rec.Counts.Created, len(rec.Tickets), rec.Counts.Conflicts, n)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		sim.Close()
	}
	ideal := time.Duration(n) * latency / concurrency
	b.ReportMetric(float64(total)/float64(b.N)/float64(ideal), "x-ideal")
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "tickets/s")
	// Where the time goes: how long one create takes as the client sees it
	// (latency plus HTTP), and the share of the drain during which the
	// concurrency slots were in a request (1 = the API never waited for
	// the agent).
	b.ReportMetric(float64(reqTime)/float64(b.N)/1e6, "ms/request")
	b.ReportMetric(busy/float64(b.N), "slots-busy")
}

// seedPending raises n lampFailure tickets, as a storm would have left
// them: pending, due now.
func seedPending(b *testing.B, st *store.Store, n int) {
	b.Helper()
	at := time.Now().Add(-time.Minute)
	for i := 0; i < n; i += 500 {
		var cs []agent.TicketChange
		for j := i; j < min(n, i+500); j++ {
			np := fmt.Sprintf("IP%06d", j)
			cs = append(cs, agent.TicketChange{Kind: agent.Raise, Draft: agent.TicketDraft{
				Nameplate: np, Fault: agent.FaultLampFailure, RaisedAt: at, Since: at.Add(-10 * time.Minute),
				Reading: agent.Reading{Fields: agent.FieldPower | agent.FieldLampOn, Power: 0.3},
				Site:    agent.Site{Municipality: "Uberaba", State: "MG", Latitude: "-19.7472", Longitude: "-47.9381"},
				Description: "Lâmpada apagada durante a noite. Potência 0,3 W. Desde 04/12/2026 21:10 (-03:00). Luminária " + np +
					", Uberaba/MG, detectado pelo gateway gw-bench.",
			}})
		}
		if _, err := st.ApplyChanges(context.Background(), cs); err != nil {
			b.Fatal(err)
		}
	}
}
