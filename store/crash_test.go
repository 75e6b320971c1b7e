package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// The crash test. A child process (this test binary, re-executed) writes
// tickets in a loop from several goroutines — raises, syncer updates,
// clears with and without cancel — and prints each ticket's protocol and
// new state right after the call that made it durable returned. The parent
// kills it with SIGKILL at a random moment, then checks the file: bbolt's
// consistency check and the store's indexes; every state the child reported
// is there (or the one step the child may have been taking when it died);
// the sequence never goes back, also after the file is replaced by an older
// copy (the sidecar's job).

const (
	crashEnv  = "EDGE_STORE_CRASH_CHILD"
	crashBase = 900_000
)

// step is the next state the child moves a ticket to, from each state.
var crashNext = map[agent.TicketState][]agent.TicketState{
	pending:       {sent, suppressed},
	sent:          {cancelPending, sent}, // sent → sent: a clear without cancel (finished)
	cancelPending: {cancelled},
}

func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestCrash as its child process")
	}
	s, err := Open(Options{Path: path, ProtocolBase: crashBase, EncodeCreate: encodeBody})
	if err != nil {
		fmt.Printf("OPENERR %v\n", err)
		os.Exit(3)
	}
	var out sync.Mutex
	report := func(p int64, st agent.TicketState) {
		out.Lock()
		// One write per line, unbuffered: what the parent reads was printed.
		fmt.Fprintf(os.Stdout, "T %d %s\n", p, st)
		out.Unlock()
	}
	run := func(g int) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g)))
		type live struct {
			p         int64
			np, fault string
			st        agent.TicketState
		}
		var mine []*live
		for i := 0; ; i++ {
			ctx := context.Background()
			if len(mine) < 4 || rng.IntN(3) == 0 {
				np := fmt.Sprintf("G%d-%d-%d", g, os.Getpid(), i)
				res, err := s.ApplyChanges(ctx, []agent.TicketChange{raiseC(draft(np, agent.FaultLampFailure, time.Now()))})
				if err != nil {
					panic(err)
				}
				report(res[0].Ticket.Protocol, pending)
				mine = append(mine, &live{p: res[0].Ticket.Protocol, np: np, fault: agent.FaultLampFailure, st: pending})
				continue
			}
			k := rng.IntN(len(mine))
			l := mine[k]
			var got agent.Ticket
			var err error
			switch l.st {
			case pending:
				if rng.IntN(2) == 0 {
					got, err = s.UpdateTicket(ctx, l.p, func(t *agent.Ticket) error {
						t.State, t.SentAt, t.IDDemanda, t.Attempts = sent, time.Now(), 1, 1
						return nil
					})
				} else {
					var res []agent.ChangeResult
					res, err = s.ApplyChanges(ctx, []agent.TicketChange{clearC(l.np, l.fault, true)})
					got = res[0].Ticket
				}
			case sent:
				var res []agent.ChangeResult
				res, err = s.ApplyChanges(ctx, []agent.TicketChange{clearC(l.np, l.fault, rng.IntN(2) == 0)})
				got = res[0].Ticket
			case cancelPending:
				got, err = s.UpdateTicket(ctx, l.p, func(t *agent.Ticket) error { t.State = cancelled; return nil })
			}
			if err != nil {
				panic(err)
			}
			report(l.p, got.State)
			l.st = got.State
			if _, more := crashNext[l.st]; !more || (l.st == sent && !got.ClearedAt.IsZero()) {
				mine = append(mine[:k], mine[k+1:]...)
			}
		}
	}
	for g := range 4 {
		go run(g)
	}
	select {} // until killed
}

func TestCrash(t *testing.T) {
	cycles := 24
	if testing.Short() {
		cycles = 5
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	path := filepath.Join(dir, "edge-agent.db")
	backup := filepath.Join(dir, "older-copy.db")

	expect := map[int64]agent.TicketState{} // last state reported durable
	var maxProto int64                      // highest protocol ever reported
	restoreAt := map[int]bool{cycles / 2: true, cycles - 1: true}

	for cycle := range cycles {
		if cycle == 2 {
			copyFile(t, path, backup)
		}
		restored := restoreAt[cycle] && cycle > 2
		if restored {
			// Replace the store by an older copy, as a restore from backup
			// would (the sidecar stays).
			copyFile(t, backup, path)
		}
		before := maxProto
		lines := runCrashChild(t, path, time.Duration(20+rng.IntN(230))*time.Millisecond)

		// Reported this cycle: protocols strictly above everything before.
		cycleStates := map[int64]agent.TicketState{}
		for _, ln := range lines {
			p, st := ln.p, ln.st
			// Only a raise reports pending: a new number, above all before.
			if st == pending && p <= before {
				t.Fatalf("cycle %d: new ticket got protocol %d, but %d was already given: sequence went back", cycle, p, before)
			}
			cycleStates[p] = st
			maxProto = max(maxProto, p)
		}

		verifyDB(t, path)
		s, err := Open(Options{Path: path, ProtocolBase: crashBase})
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", cycle, err)
		}
		if hw := s.Stats().HighWater + crashBase; hw < maxProto {
			t.Fatalf("cycle %d: high water %d below reported protocol %d", cycle, hw, maxProto)
		}
		if restored {
			// Tickets written after the copy are gone with the file; those in
			// it are the new expectation. Only the sequence must hold.
			expect = map[int64]agent.TicketState{}
			all, err := s.ListTickets(Filter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range all {
				expect[tk.Protocol] = tk.State
			}
		}
		for p, st := range cycleStates {
			expect[p] = st
		}
		for p, st := range expect {
			got, err := s.Ticket(p)
			if err != nil {
				t.Fatalf("cycle %d: ticket %d reported %s is lost: %v", cycle, p, st, err)
			}
			if got.State != st && !oneStepFrom(st, got) {
				t.Fatalf("cycle %d: ticket %d reported %s, stored %s", cycle, p, st, got.State)
			}
			expect[p] = got.State
		}
		t.Logf("cycle %d: %d lines, %d tickets, max protocol %d", cycle, len(lines), len(expect), maxProto)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The last word: one more raise after everything gets a fresh number.
	s := openT(t, Options{Path: path, ProtocolBase: crashBase})
	tk := mustRaise(t, s, "after-crashes", agent.FaultLampFailure)
	if tk.Protocol <= maxProto {
		t.Fatalf("protocol %d after crashes, want > %d", tk.Protocol, maxProto)
	}
}

// oneStepFrom: the child may have committed one more change to the ticket
// and died before printing it.
func oneStepFrom(reported agent.TicketState, got agent.Ticket) bool {
	for _, n := range crashNext[reported] {
		if got.State == n {
			return true
		}
	}
	return false
}

type crashLine struct {
	p  int64
	st agent.TicketState
}

// runCrashChild starts the child, lets it run for d after its first
// report, kills it with SIGKILL and returns every complete line it printed.
func runCrashChild(t *testing.T, path string, d time.Duration) []crashLine {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		lines []crashLine
		first = make(chan struct{})
		done  = make(chan error, 1)
		once  sync.Once
	)
	go func() {
		r := bufio.NewReader(stdout)
		for {
			ln, err := r.ReadString('\n')
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				done <- err // a torn last line (no newline) is dropped
				return
			}
			f := strings.Fields(ln)
			if len(f) == 3 && f[0] == "T" {
				p, perr := strconv.ParseInt(f[1], 10, 64)
				if perr != nil {
					done <- perr
					return
				}
				lines = append(lines, crashLine{p, agent.TicketState(f[2])})
				once.Do(func() { close(first) })
			} else if strings.HasPrefix(ln, "OPENERR") {
				done <- fmt.Errorf("child: %s", ln)
				return
			}
		}
	}()
	select {
	case <-first:
		time.Sleep(d)
	case err := <-done:
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child ended before writing: %v", err)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("child wrote nothing in 60s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	return lines
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
