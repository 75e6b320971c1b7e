package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// A request that fails inside a batch must not poison the others: they
// are committed in one transaction, it gets its error and writes nothing.
func TestBatchFailureIsolated(t *testing.T) {
	s := openT(t, Options{})
	mustRaise(t, s, "LP0", agent.FaultLampFailure)
	stopWriter(s)
	commits := s.Stats().Commits

	boom := errors.New("boom")
	raise := func(np string) func(*wtx) error {
		return func(w *wtx) error {
			_, err := w.raise(draft(np, agent.FaultLampFailure, w.now))
			return err
		}
	}
	runs := 0
	reqs := []*request{
		{ctx: context.Background(), fn: raise("LP1")},
		{ctx: context.Background(), fn: func(w *wtx) error {
			runs++
			if _, err := w.raise(draft("HALF", agent.FaultLampFailure, w.now)); err != nil {
				return err
			}
			return boom // after writing: the write must be rolled back
		}},
		{ctx: context.Background(), fn: raise("LP2")},
		{ctx: cancelledCtx(), fn: raise("LATE")},
	}
	for _, r := range reqs {
		r.done = make(chan error, 1)
	}
	s.commitBatch(reqs)
	for i, want := range []error{nil, boom, nil, context.Canceled} {
		if got := <-reqs[i].done; !errors.Is(got, want) {
			t.Errorf("request %d: %v, want %v", i, got, want)
		}
	}
	if runs != 1 {
		t.Errorf("failing request ran %d times", runs)
	}
	if got := s.Stats().Commits - commits; got != 1 {
		t.Errorf("%d commits for one batch", got)
	}
	l, _ := s.ListTickets(Filter{})
	var names []string
	for _, tk := range l {
		names = append(names, tk.Nameplate)
	}
	if fmt.Sprint(names) != "[LP2 LP1 LP0]" {
		t.Fatalf("tickets %v: want LP0, LP1, LP2 and nothing of the failed or cancelled requests", names)
	}
	if tk := l[0]; tk.Protocol != 3 {
		t.Errorf("LP2 has protocol %d: the failed request's number leaked", tk.Protocol)
	}
	closeAndVerify(t, s)
}

func cancelledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// Close while writers are busy: each call either returns nil and its
// ticket is in the file, or ErrClosed and it is not.
func TestCloseWhileWriting(t *testing.T) {
	path := dbPath(t)
	s := openT(t, Options{Path: path})
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   = map[string]bool{}
		errs []error
	)
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				np := fmt.Sprintf("G%d-%d", g, i)
				_, err := s.ApplyChanges(context.Background(), []agent.TicketChange{raiseC(draft(np, "f", time.Now()))})
				mu.Lock()
				switch {
				case err == nil:
					ok[np] = true
				case errors.Is(err, ErrClosed):
					mu.Unlock()
					return
				default:
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Commits < 5 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ticket(1); !errors.Is(err, ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	verifyDB(t, path)
	s2 := openT(t, Options{Path: path, ReadOnly: true})
	all, _ := s2.ListTickets(Filter{})
	if len(all) != len(ok) {
		t.Fatalf("%d tickets in the file, %d calls answered nil", len(all), len(ok))
	}
	for _, tk := range all {
		if !ok[tk.Nameplate] {
			t.Errorf("ticket %s in the file but its call failed", tk.Nameplate)
		}
	}
	t.Logf("%d raises committed before Close", len(ok))
}

// A caller whose context ends while it waits to be accepted gets the
// context's error and writes nothing.
func TestContextWhileWaiting(t *testing.T) {
	s := openT(t, Options{})
	release, started := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.submit(context.Background(), false, func(*wtx) error { close(started); <-release; return nil })
	}()
	<-started // the writer is now held by the request above
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := s.ApplyChanges(ctx, []agent.TicketChange{raiseC(draft("LP1", "f", time.Now()))})
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	barrier(t, s)
	if c, _ := s.Counts(); c[pending] != 0 {
		t.Fatalf("a call that gave up wrote a ticket: %v", c)
	}
	closeAndVerify(t, s)
}
