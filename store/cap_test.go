package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/edge-agent/edge-agent/agent"
)

// bigDraft makes a ticket of a few KiB so that a small cap fills fast.
func bigDraft(s *Store, np string) agent.TicketDraft {
	d := draft(np, agent.FaultLampFailure, s.now())
	d.Description = strings.Repeat("Lâmpada apagada à noite. ", 120)
	return d
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestSizeCap(t *testing.T) {
	const maxBytes = 512 << 10
	clk := newClock()
	s := openT(t, Options{MaxBytes: maxBytes, Now: clk.Now, Retention: 0})
	ctx := context.Background()

	// 1. Far more finished tickets than fit: the cap prunes the oldest.
	const finishedN = 200
	for i := range finishedN {
		np := fmt.Sprintf("F%04d", i)
		if _, err := s.ApplyChanges(ctx, []agent.TicketChange{raiseC(bigDraft(s, np)), clearC(np, agent.FaultLampFailure, false)}); err != nil {
			t.Fatalf("finished ticket %d: %v", i, err)
		}
	}
	counts, _ := s.Counts()
	if counts[suppressed] >= finishedN || s.Stats().Pruned == 0 {
		t.Fatalf("nothing pruned: %d suppressed, pruned %d", counts[suppressed], s.Stats().Pruned)
	}
	if sz := fileSize(t, s.opts.Path); sz > maxBytes {
		t.Fatalf("file %d bytes over the cap %d", sz, maxBytes)
	}
	if s.Stats().Full {
		t.Fatal("full while finished tickets could be pruned")
	}
	// The oldest went first.
	list, _ := s.ListTickets(Filter{State: suppressed})
	if last := list[len(list)-1]; last.Nameplate == "F0000" {
		t.Fatal("oldest finished ticket survived while younger ones were pruned")
	}

	// 2. Pending tickets until the store is full: every one accepted is
	// kept, the finished ones make room, then ErrFull.
	var kept []int64
	var fullErr error
	for i := 0; i < 2000 && fullErr == nil; i++ {
		res, err := s.ApplyChanges(ctx, []agent.TicketChange{raiseC(bigDraft(s, fmt.Sprintf("P%04d", i)))})
		if err != nil {
			fullErr = err
			break
		}
		kept = append(kept, res[0].Ticket.Protocol)
	}
	if !errors.Is(fullErr, ErrFull) {
		t.Fatalf("filling with pending tickets ended with %v, want ErrFull", fullErr)
	}
	counts, _ = s.Counts()
	if counts[pending] != len(kept) || counts[suppressed] != 0 {
		t.Fatalf("counts %v: want %d pending, no finished left", counts, len(kept))
	}
	for _, p := range kept {
		if tk, err := s.Ticket(p); err != nil || tk.State != pending {
			t.Fatalf("pending ticket %d: %v %v", p, tk.State, err)
		}
	}
	st := s.Stats()
	if !st.Full || st.FullSince.IsZero() || !strings.Contains(st.LastError, "full") {
		t.Fatalf("stats while full: %+v", st)
	}
	if sz := fileSize(t, s.opts.Path); sz > maxBytes {
		t.Fatalf("file %d bytes over the cap %d", sz, maxBytes)
	}
	t.Logf("%d pending tickets fill %d bytes", len(kept), maxBytes)

	// 3. Full, the queue still moves: updates use the reserve.
	half := len(kept) / 2
	for _, p := range kept[:half] {
		if _, err := s.UpdateTicket(ctx, p, func(t *agent.Ticket) error { t.State, t.IDDemanda = sent, 1; return nil }); err != nil {
			t.Fatalf("update while full: %v", err)
		}
	}
	// A raise of an already open fault still answers (it writes nothing).
	if res, err := s.ApplyChanges(ctx, []agent.TicketChange{raiseC(bigDraft(s, "P0000"))}); err != nil || res[0].Changed {
		t.Fatalf("raise of an open fault while full: %v %v", res, err)
	}
	if !s.Stats().Full {
		t.Fatal("full cleared by writes that added nothing")
	}

	// 4. Space frees: the sent tickets clear (finished, prunable), and the
	// next raise fits again; Full ends.
	for i := range half {
		if _, err := s.ApplyChanges(ctx, []agent.TicketChange{clearC(fmt.Sprintf("P%04d", i), agent.FaultLampFailure, false)}); err != nil {
			t.Fatalf("clear while full: %v", err)
		}
	}
	if _, err := s.ApplyChanges(ctx, []agent.TicketChange{raiseC(bigDraft(s, "AFTER"))}); err != nil {
		t.Fatalf("raise after space freed: %v", err)
	}
	if s.Stats().Full {
		t.Fatal("still reported full after a raise succeeded")
	}
	counts, _ = s.Counts()
	// The cleared sent tickets were finished: some made room for AFTER.
	if counts[pending] != len(kept)-half+1 || counts[sent] >= half {
		t.Fatalf("counts after recovery %v", counts)
	}
	closeAndVerify(t, s)
}

// barrier returns once the writer has finished everything submitted
// before it, maintenance included.
func barrier(t *testing.T, s *Store) {
	t.Helper()
	if err := s.submit(context.Background(), false, func(*wtx) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// Near the cap the store prunes before it must: a capped store that only
// ever sees finished tickets keeps pruning early and never finds the file
// at its cap in a write's path.
func TestEarlyPrune(t *testing.T) {
	s := openT(t, Options{MaxBytes: 512 << 10})
	for i := range 200 {
		np := fmt.Sprintf("F%04d", i)
		if _, err := s.ApplyChanges(context.Background(), []agent.TicketChange{raiseC(bigDraft(s, np)), clearC(np, agent.FaultLampFailure, false)}); err != nil {
			t.Fatal(err)
		}
	}
	barrier(t, s)
	st := s.Stats()
	if st.Pruned == 0 || st.CapHits != 0 || st.Full || st.LastError != "" {
		t.Fatalf("want early pruning only: %+v", st)
	}
	if sz := fileSize(t, s.opts.Path); sz > 512<<10 {
		t.Fatalf("file %d bytes", sz)
	}
	t.Logf("%d pruned early, file %d bytes", st.Pruned, fileSize(t, s.opts.Path))
	closeAndVerify(t, s)
}
