package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/edge-agent/edge-agent/agent"
)

// Many goroutines raise at once, many of them the same faults: every raise
// of one (device, fault) must get the same ticket, protocols must be
// unique, nothing lost, and the work must have been group-committed.
func TestConcurrentRaises(t *testing.T) {
	const (
		workers = 64
		each    = 40
		pairs   = 300
	)
	s := openT(t, Options{ProtocolBase: 7_000_000})
	var (
		mu     sync.Mutex
		byPair = map[string]int64{}
		owner  = map[int64]string{}
		errs   []error
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range each {
				i := rng.IntN(pairs)
				np, fault := fmt.Sprintf("LP%03d", i%100), fmt.Sprintf("fault%d", i/100)
				res, err := s.ApplyChanges(context.Background(), []agent.TicketChange{raiseC(draft(np, fault, s.now()))})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					key, p := np+"/"+fault, res[0].Ticket.Protocol
					if prev, ok := byPair[key]; ok && prev != p {
						errs = append(errs, fmt.Errorf("%s raised as %d and %d", key, prev, p))
					}
					if o, ok := owner[p]; ok && o != key {
						errs = append(errs, fmt.Errorf("protocol %d given to %s and %s", p, o, key))
					}
					byPair[key], owner[p] = p, key
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	counts, _ := s.Counts()
	if counts[pending] != len(byPair) {
		t.Fatalf("%d pending, %d distinct faults raised", counts[pending], len(byPair))
	}
	if hw := s.Stats().HighWater; hw != int64(len(byPair)) {
		t.Fatalf("high water %d, want %d (no number skipped or reused)", hw, len(byPair))
	}
	for key, p := range byPair {
		tk, err := s.Ticket(p)
		if err != nil || tk.Nameplate+"/"+tk.Fault != key {
			t.Fatalf("ticket %d: %+v, %v", p, tk, err)
		}
	}
	open, _ := s.OpenFaults()
	if len(open) != len(byPair) {
		t.Fatalf("%d open faults, want %d", len(open), len(byPair))
	}
	if c := s.Stats().Commits; c >= workers*each {
		t.Errorf("%d commits for %d writes: not grouped", c, workers*each)
	}
	t.Logf("%d raises, %d tickets, %d commits", workers*each, len(byPair), s.Stats().Commits)
	closeAndVerify(t, s)
}

var errSkip = errors.New("skip")

// Raises, clears and syncer updates race each other; afterwards the
// indexes must agree with the tickets and no fault has two open tickets.
func TestConcurrentMixed(t *testing.T) {
	s := openT(t, Options{})
	var wg sync.WaitGroup
	var fails sync.Map
	for w := range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for range 30 {
				np := fmt.Sprintf("LP%02d", rng.IntN(20))
				var err error
				switch rng.IntN(3) {
				case 0, 1:
					var res []agent.ChangeResult
					res, err = s.ApplyChanges(context.Background(), []agent.TicketChange{raiseC(draft(np, agent.FaultLampFailure, s.now()))})
					if err == nil && rng.IntN(2) == 0 {
						_, err = s.UpdateTicket(context.Background(), res[0].Ticket.Protocol, func(t *agent.Ticket) error {
							if t.State != pending {
								return errSkip // cleared meanwhile: the syncer would skip it too
							}
							t.State = sent
							return nil
						})
						if errors.Is(err, errSkip) {
							err = nil
						}
					}
				case 2:
					_, err = s.ApplyChanges(context.Background(), []agent.TicketChange{clearC(np, agent.FaultLampFailure, rng.IntN(2) == 0)})
				}
				if err != nil {
					fails.Store(err.Error(), true)
				}
			}
		})
	}
	wg.Wait()
	fails.Range(func(k, _ any) bool { t.Error(k); return true })
	closeAndVerify(t, s) // verifyIndexes fails on two open tickets for one fault
}
