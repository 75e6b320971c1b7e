//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/edge-agent/edge-agent/agent"
)

// A disk that fills before EDGE_STORE_MAX_MB is handled like the cap: the
// store reports itself full, keeps every pending ticket, and opens cleanly
// afterwards. The disk is a 1 MiB tmpfs the test mounts (root only).
func TestDiskFullBeforeCap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	clk := newClock()
	path := filepath.Join(dir, "edge-agent.db")
	s, err := Open(Options{Path: path, MaxBytes: 256 << 20, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Closed before the unmount (cleanups run last-registered first), also
	// when the test fails half-way; closing twice is harmless.
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	var accepted []int64
	var full error
	for i := range 5000 {
		res, err := s.ApplyChanges(ctx, []agent.TicketChange{raiseC(bigDraft(s, fmt.Sprintf("N%04d", i)))})
		if err != nil {
			full = err
			break
		}
		accepted = append(accepted, res[0].Ticket.Protocol)
	}
	if full == nil {
		t.Fatal("a 1 MiB disk never filled")
	}
	if !errors.Is(full, ErrFull) || !errors.Is(full, agent.ErrStoreFull) {
		t.Fatalf("disk full gave %v, want ErrFull", full)
	}
	if !s.Stats().Full {
		t.Fatal("Stats does not say full")
	}
	if len(accepted) == 0 {
		t.Fatal("nothing fit")
	}
	// Moving a ticket along still works on a full disk: the queue can drain.
	if _, err := s.UpdateTicket(ctx, accepted[0], func(tk *agent.Ticket) error { tk.State = agent.StateSent; return nil }); err != nil {
		t.Fatalf("update on a full disk: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s, err = Open(Options{Path: path, MaxBytes: 256 << 20, Now: clk.Now})
	if err != nil {
		t.Fatalf("reopen after the disk filled: %v", err)
	}
	if s.Stats().CorruptMovedTo != "" {
		t.Fatal("a full disk made the store look corrupt")
	}
	for i, p := range accepted {
		tk, err := s.Ticket(p)
		if err != nil {
			t.Fatalf("ticket %d lost: %v", p, err)
		}
		want := agent.StatePending
		if i == 0 {
			want = agent.StateSent
		}
		if tk.State != want {
			t.Fatalf("ticket %d is %s, want %s", p, tk.State, want)
		}
	}
	t.Logf("a 1 MiB disk held %d tickets before it filled", len(accepted))
}
