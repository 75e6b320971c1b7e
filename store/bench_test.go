package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Benchmarks (not run by make test):
//
//	go test -run '^$' -bench . -benchtime 1x -count 3 ./store/
//
// BenchmarkStorm/grouped vs /per-tx is what group commit buys; the ratio
// of their ns/op is the figure in docs/readme-store.md.

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		_ = os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// realDraft is a ticket as the pipeline makes them: a Portuguese
// description of a few hundred bytes and a full site.
func realDraft(np string, at time.Time) agent.TicketDraft {
	return agent.TicketDraft{
		Nameplate: np, Fault: agent.FaultLampFailure, RaisedAt: at, Since: at.Add(-15 * time.Minute),
		Reading: agent.Reading{Fields: agent.FieldVoltage | agent.FieldPower | agent.FieldLampOn, Voltage: 221.4, Power: 0.3},
		Site: agent.Site{Address: "Avenida Cristovão Colombo", AddressNumber: 485, Neighborhood: "Centro",
			Municipality: "Uberaba", State: "MG", ReferencePoint: "em frente à praça", Latitude: "-19.7472", Longitude: "-47.9381"},
		Description: "Falha de lâmpada: a luminária " + np + " está apagada à noite desde 21:10 (potência 0,3 W, tensão 221,4 V). " +
			strings.Repeat("Detectado pelo gateway gw-uberaba-01. ", 4),
	}
}

// storm raises n distinct faults from callers goroutines, one raise per
// call, and returns when every one is durable.
func storm(b *testing.B, s *Store, n, callers int) {
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for i := c; i < n; i += callers {
				d := realDraft(fmt.Sprintf("LP%05d", i), s.now())
				if _, err := s.ApplyChanges(context.Background(), []agent.TicketChange{raiseC(d)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func BenchmarkStorm(b *testing.B) {
	const raises, callers = 10_000, 256
	for _, mode := range []struct {
		name    string
		noGroup bool
	}{{"grouped", false}, {"per-tx", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var commits int64
			for range b.N {
				b.StopTimer()
				s, err := Open(Options{Path: dbPath(b), EncodeCreate: encodeBody, noGroup: mode.noGroup})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				storm(b, s, raises, callers)
				b.StopTimer()
				if c, _ := s.Counts(); c[pending] != raises {
					b.Fatalf("%d pending after the storm, want %d", c[pending], raises)
				}
				commits += s.Stats().Commits
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(raises*b.N)/b.Elapsed().Seconds(), "raises/s")
			b.ReportMetric(float64(commits)/float64(b.N), "commits/storm")
		})
	}
}

// fixture is a store file holding 100,000 finished tickets and 1,000
// queued ones, built once per test binary run.
var fixture struct {
	once sync.Once
	dir  string
	path string
	err  error
}

const (
	fixtureFinished = 100_000
	fixtureQueued   = 1_000
)

func fixturePath(b *testing.B) string {
	fixture.once.Do(func() {
		start := time.Now()
		fixture.dir, fixture.err = os.MkdirTemp("", "store-bench-")
		if fixture.err != nil {
			return
		}
		fixture.path = filepath.Join(fixture.dir, "edge-agent.db")
		s, err := Open(Options{Path: fixture.path, EncodeCreate: encodeBody})
		if err != nil {
			fixture.err = err
			return
		}
		defer s.Close()
		ctx := context.Background()
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < fixtureFinished; i += 1000 {
			var cs []agent.TicketChange
			for j := i; j < i+1000; j++ {
				np := fmt.Sprintf("F%06d", j)
				cs = append(cs, raiseC(realDraft(np, at)), clearC(np, agent.FaultLampFailure, false))
			}
			if _, fixture.err = s.ApplyChanges(ctx, cs); fixture.err != nil {
				return
			}
		}
		var cs []agent.TicketChange
		for j := range fixtureQueued {
			cs = append(cs, raiseC(realDraft(fmt.Sprintf("Q%06d", j), at)))
		}
		_, fixture.err = s.ApplyChanges(ctx, cs)
		b.Logf("fixture: %d finished + %d queued tickets built in %s", fixtureFinished, fixtureQueued, time.Since(start).Round(time.Millisecond))
	})
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	return fixture.path
}

// BenchmarkOpen is Open (read-write, as the daemon does) of a store holding
// 100,000 finished tickets, until it is ready to serve. Target: ≤ 300 ms.
func BenchmarkOpen(b *testing.B) {
	path := fixturePath(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s, err := Open(Options{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if c, err := s.Counts(); err != nil || c[suppressed] != fixtureFinished {
			b.Fatalf("counts %v %v", c, err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
}

// BenchmarkDueTickets is the syncer's poll on the same big store: its cost
// follows the queue (1,000), not the 100,000 tickets kept for the record.
func BenchmarkDueTickets(b *testing.B) {
	s, err := Open(Options{Path: fixturePath(b), ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for range b.N {
		due, _, err := s.DueTickets(now, 16)
		if err != nil || len(due) != 16 {
			b.Fatalf("%d due, %v", len(due), err)
		}
	}
}

// BenchmarkCounts is the status page's per-state counts on the big store.
func BenchmarkCounts(b *testing.B) {
	s, err := Open(Options{Path: fixturePath(b), ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Counts(); err != nil {
			b.Fatal(err)
		}
	}
}
