package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Requests that arrive while a batch runs join its transaction: one
// commit for all, each answered nil only after it. One whose context ended
// meanwhile is answered with that error and not run; without group commit
// nothing joins; a batch stops taking at maxBatch.
func TestRequestsJoinTheRunningBatch(t *testing.T) {
	raise := func(np string) *request {
		return &request{ctx: context.Background(), done: make(chan error, 1), growth: true, fn: func(w *wtx) error {
			_, err := w.raise(draft(np, agent.FaultLampFailure, w.now))
			return err
		}}
	}
	// queue stands for callers blocked in submit: the writer is stopped and
	// its channel replaced by a buffered one holding their requests.
	queue := func(s *Store, reqs ...*request) {
		s.reqs = make(chan *request, len(reqs))
		for _, r := range reqs {
			s.reqs <- r
		}
	}

	// answer waits for r's answer; a request left unanswered fails the test
	// instead of hanging it.
	answer := func(t *testing.T, r *request) error {
		t.Helper()
		select {
		case err := <-r.done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("request never answered: it did not join the batch")
			return nil
		}
	}

	t.Run("join", func(t *testing.T) {
		s := openT(t, Options{})
		stopWriter(s)
		first := raise("LP0")
		late := []*request{raise("LP1"), raise("LP2"), raise("LP3")}
		gone := raise("GONE")
		gone.ctx = cancelledCtx()
		queue(s, late[0], gone, late[1], late[2])
		s.commitBatch([]*request{first})
		for i, r := range append([]*request{first}, late...) {
			if err := answer(t, r); err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
		if err := answer(t, gone); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled request: %v, want context.Canceled", err)
		}
		if c := s.Stats().Commits; c != 1 {
			t.Errorf("%d commits, want 1", c)
		}
		if c, _ := s.Counts(); c[pending] != 4 {
			t.Errorf("counts %v: want the four raises, not the cancelled one", c)
		}
		closeAndVerify(t, s)
	})

	t.Run("per-tx mode takes nothing", func(t *testing.T) {
		s := openT(t, Options{noGroup: true})
		stopWriter(s)
		first, late := raise("LP0"), raise("LP1")
		queue(s, late)
		s.commitBatch([]*request{first})
		if err := answer(t, first); err != nil {
			t.Fatal(err)
		}
		if len(s.reqs) != 1 || len(late.done) != 0 {
			t.Fatal("the per-tx mode took a waiting request into the batch")
		}
		closeAndVerify(t, s)
	})

	t.Run("at most maxBatch", func(t *testing.T) {
		s := openT(t, Options{})
		stopWriter(s)
		var waiting []*request
		for i := range maxBatch + 5 {
			waiting = append(waiting, raise(fmt.Sprintf("W%04d", i)))
		}
		queue(s, waiting...)
		first := raise("LP0")
		s.commitBatch([]*request{first})
		if got := len(s.reqs); got != 6 {
			t.Fatalf("%d requests left waiting, want 6 (1 + %d taken of %d)", got, maxBatch-1, maxBatch+5)
		}
		if c := s.Stats().Commits; c != 1 {
			t.Errorf("%d commits, want 1", c)
		}
		if c, _ := s.Counts(); c[pending] != maxBatch {
			t.Errorf("%d pending, want %d", c[pending], maxBatch)
		}
		closeAndVerify(t, s)
	})
}
