package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

const (
	pending       = agent.StatePending
	sent          = agent.StateSent
	cancelPending = agent.StateCancelPending
	cancelled     = agent.StateCancelled
	suppressed    = agent.StateSuppressed
	failed        = agent.StateFailed
)

// legal is the lifecycle of CONTRACT §6, written out by hand (not derived
// from agent.CheckTransition) so that the store is checked against the
// contract, not against itself.
var legal = map[agent.TicketState][]agent.TicketState{
	pending:       {pending, sent, suppressed, failed},
	sent:          {sent, cancelPending},
	cancelPending: {cancelPending, cancelled, failed},
	cancelled:     {},
	suppressed:    {},
	failed:        {failed, pending, cancelPending, suppressed},
}

// path is how the test brings a fresh ticket to a state through the store.
var path = map[agent.TicketState][]agent.TicketState{
	pending:       {},
	sent:          {sent},
	cancelPending: {sent, cancelPending},
	cancelled:     {sent, cancelPending, cancelled},
	suppressed:    {suppressed},
	failed:        {failed},
}

func TestUpdateTicketTransitions(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now, ProtocolBase: 5000})
	targets := append(append([]agent.TicketState{}, agent.TicketStates...), "lost", "")
	n := 0
	for _, from := range agent.TicketStates {
		for _, to := range targets {
			ok := false
			for _, l := range legal[from] {
				ok = ok || l == to
			}
			t.Run(fmt.Sprintf("%s→%s", from, orEmpty(to)), func(t *testing.T) {
				n++
				tk := mustRaise(t, s, fmt.Sprintf("LP%03d", n), agent.FaultLampFailure)
				for _, st := range path[from] {
					mustUpdate(t, s, tk.Protocol, func(t *agent.Ticket) {
						t.State = st
						if st == sent {
							t.SentAt, t.IDDemanda = clk.Now(), 77
						}
					})
				}
				before := rawTicket(t, s, tk.Protocol)
				countsBefore, err := s.Counts()
				if err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Second)
				got, err := s.UpdateTicket(context.Background(), tk.Protocol, func(t *agent.Ticket) error {
					t.State = to
					t.Attempts++
					return nil
				})
				if !ok {
					if !errors.Is(err, agent.ErrIllegalTransition) {
						t.Fatalf("%s → %q: err = %v, want ErrIllegalTransition", from, to, err)
					}
					if after := rawTicket(t, s, tk.Protocol); !bytes.Equal(before, after) {
						t.Fatalf("refused move wrote the ticket:\nbefore %s\nafter  %s", before, after)
					}
					countsAfter, _ := s.Counts()
					if !maps.Equal(countsBefore, countsAfter) {
						t.Fatalf("refused move changed counts: %v → %v", countsBefore, countsAfter)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s → %s: %v", from, to, err)
				}
				stored, err := s.Ticket(tk.Protocol)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != to || stored.State != to || stored.Attempts != got.Attempts {
					t.Fatalf("returned %s, stored %s (attempts %d/%d), want %s", got.State, stored.State, got.Attempts, stored.Attempts, to)
				}
				if !stored.UpdatedAt.Equal(clk.Now()) {
					t.Errorf("UpdatedAt %v, want %v", stored.UpdatedAt, clk.Now())
				}
				if fin := to.Terminal(); fin != !stored.FinishedAt.IsZero() {
					t.Errorf("state %s: FinishedAt = %v", to, stored.FinishedAt)
				}
				due, _, err := s.DueTickets(clk.Now().Add(time.Hour), 0)
				if err != nil {
					t.Fatal(err)
				}
				inQueue := false
				for _, d := range due {
					inQueue = inQueue || d.Protocol == tk.Protocol
				}
				if inQueue != to.Queued() {
					t.Errorf("state %s: in queue = %v", to, inQueue)
				}
			})
		}
	}
	closeAndVerify(t, s)
}

func orEmpty(s agent.TicketState) string {
	if s == "" {
		return `""`
	}
	return string(s)
}

func TestUpdateTicketRefusals(t *testing.T) {
	s := openT(t, Options{})
	tk := mustRaise(t, s, "LP1", agent.FaultLampFailure)
	before := rawTicket(t, s, tk.Protocol)
	fnErr := errors.New("syncer says no")
	cases := []struct {
		name string
		fn   func(*agent.Ticket) error
		want error
	}{
		{"fn error", func(*agent.Ticket) error { return fnErr }, fnErr},
		{"protocol change", func(t *agent.Ticket) error { t.Protocol++; return nil }, ErrInvalid},
		{"nameplate change", func(t *agent.Ticket) error { t.Nameplate = "LP2"; return nil }, ErrInvalid},
		{"fault change", func(t *agent.Ticket) error { t.Fault = "other"; return nil }, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.UpdateTicket(context.Background(), tk.Protocol, c.fn)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !bytes.Equal(before, rawTicket(t, s, tk.Protocol)) {
				t.Fatal("a refused update wrote the ticket")
			}
		})
	}
	if _, err := s.UpdateTicket(context.Background(), 999, func(*agent.Ticket) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing ticket: err = %v, want ErrNotFound", err)
	}
	closeAndVerify(t, s)
}

func TestApplyChangesSemantics(t *testing.T) {
	type step func(t *testing.T, s *Store, p int64)
	toSent := func(t *testing.T, s *Store, p int64) {
		mustUpdate(t, s, p, func(t *agent.Ticket) { t.State, t.SentAt, t.IDDemanda = sent, time.Now(), 9 })
	}
	toFailed := func(t *testing.T, s *Store, p int64) {
		mustUpdate(t, s, p, func(t *agent.Ticket) { t.State, t.LastStatus = failed, 422 })
	}
	inFlight := func(t *testing.T, s *Store, p int64) {
		mustUpdate(t, s, p, func(t *agent.Ticket) { t.InFlight = true })
	}
	cases := []struct {
		name      string
		setup     []step
		cancel    bool
		wantState agent.TicketState
		wantQueue bool
		wantFin   bool
		wantJust  bool
	}{
		{"pending is suppressed", nil, true, suppressed, false, true, false},
		{"pending, no cancel, is suppressed", nil, false, suppressed, false, true, false},
		{"sent with cancel → cancel_pending", []step{toSent}, true, cancelPending, true, false, true},
		{"sent without cancel stays sent, finished", []step{toSent}, false, sent, false, true, false},
		{"failed stays failed", []step{toFailed}, true, failed, false, false, false},
		{"pending in flight stays pending (may exist there)", []step{inFlight}, true, pending, true, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			s := openT(t, Options{Now: clk.Now})
			tk := mustRaise(t, s, "LP7", agent.FaultLampFailure)
			for _, st := range c.setup {
				st(t, s, tk.Protocol)
			}
			clk.Advance(time.Minute)
			res := mustApply(t, s, clearC("LP7", agent.FaultLampFailure, c.cancel))
			got := res[0].Ticket
			if !res[0].Changed || got.State != c.wantState || got.Protocol != tk.Protocol {
				t.Fatalf("clear: %+v, want changed ticket %d in %s", res[0], tk.Protocol, c.wantState)
			}
			if !got.ClearedAt.Equal(clk.Now()) {
				t.Errorf("ClearedAt %v, want %v", got.ClearedAt, clk.Now())
			}
			if (got.Justification != "") != c.wantJust {
				t.Errorf("justification %q", got.Justification)
			}
			if c.wantState == cancelPending && !got.NextAttemptAt.Equal(clk.Now()) {
				t.Errorf("cancel not due now: %v", got.NextAttemptAt)
			}
			if (!got.FinishedAt.IsZero()) != c.wantFin {
				t.Errorf("FinishedAt %v, want finished=%v", got.FinishedAt, c.wantFin)
			}
			due, _, _ := s.DueTickets(clk.Now(), 0)
			if (len(due) == 1) != c.wantQueue {
				t.Errorf("queue %v, want queued=%v", due, c.wantQueue)
			}
			open, _ := s.OpenFaults()
			if len(open) != 0 {
				t.Errorf("still open after clear: %v", open)
			}
			// A second clear finds nothing open; a new raise makes a new ticket.
			res = mustApply(t, s, clearC("LP7", agent.FaultLampFailure, c.cancel))
			if res[0].Changed || res[0].Ticket.Protocol != 0 {
				t.Errorf("second clear: %+v", res[0])
			}
			again := mustRaise(t, s, "LP7", agent.FaultLampFailure)
			if again.Protocol == tk.Protocol {
				t.Errorf("raise after clear reused ticket %d", tk.Protocol)
			}
			closeAndVerify(t, s)
		})
	}
}

func TestClearWhileInFlightSettles(t *testing.T) {
	for _, c := range []struct {
		name   string
		cancel bool
		answer func(*agent.Ticket)
		want   agent.TicketState
	}{
		{"201 then cancel", true, func(t *agent.Ticket) { t.State, t.InFlight = sent, false }, cancelPending},
		{"201 without cancel", false, func(t *agent.Ticket) { t.State, t.InFlight = sent, false }, sent},
		{"not delivered", true, func(t *agent.Ticket) { t.InFlight = false }, suppressed},
		{"timeout: uncertain, stays", true, func(t *agent.Ticket) { t.InFlight, t.Uncertain = false, true }, pending},
		{"422", true, func(t *agent.Ticket) { t.State, t.InFlight, t.LastStatus = failed, false, 422 }, failed},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openT(t, Options{})
			tk := mustRaise(t, s, "LP1", "relayFailure")
			mustUpdate(t, s, tk.Protocol, func(t *agent.Ticket) { t.InFlight = true })
			cl := mustApply(t, s, clearC("LP1", "relayFailure", c.cancel))[0].Ticket
			if cl.State != pending || cl.CancelWanted != c.cancel || cl.ClearedAt.IsZero() || cl.Open() {
				t.Fatalf("cleared in flight: %s, CancelWanted %v, open %v", cl.State, cl.CancelWanted, cl.Open())
			}
			got := mustUpdate(t, s, tk.Protocol, c.answer)
			if got.State != c.want {
				t.Fatalf("state %s, want %s", got.State, c.want)
			}
			if stored, _ := s.Ticket(tk.Protocol); stored.State != c.want {
				t.Fatalf("stored state %s, want %s", stored.State, c.want)
			}
			closeAndVerify(t, s)
		})
	}
}

func TestRaiseDuplicateAndOrder(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now, ProtocolBase: 100})
	d := draft("LP1", agent.FaultLampFailure, clk.Now().Add(-time.Minute))
	res := mustApply(t, s, raiseC(d), raiseC(d), raiseC(draft("LP2", agent.FaultLampFailure, clk.Now().Add(time.Hour))))
	if !res[0].Changed || res[1].Changed || res[0].Ticket.Protocol != 101 || res[1].Ticket.Protocol != 101 {
		t.Fatalf("duplicate raise in one call: %+v", res[:2])
	}
	if !res[2].Changed || res[2].Ticket.Protocol != 102 {
		t.Fatalf("second device: %+v", res[2])
	}
	first := res[0].Ticket
	if first.State != pending || !first.NextAttemptAt.Equal(d.RaisedAt) || !first.CreatedAt.Equal(clk.Now()) {
		t.Errorf("new ticket: %+v", first)
	}
	if string(first.CreateBody) == "" || !bytes.Contains(first.CreateBody, []byte(`"id_external_protocol":101`)) {
		t.Errorf("create body %s", first.CreateBody)
	}
	if !res[2].Ticket.NextAttemptAt.Equal(clk.Now()) {
		t.Errorf("a raise stamped in the future is due at %v, want now", res[2].Ticket.NextAttemptAt)
	}
	// A raise of an open fault writes nothing: not even a commit.
	commits := s.Stats().Commits
	res = mustApply(t, s, raiseC(d))
	if res[0].Changed || res[0].Ticket.Protocol != 101 {
		t.Fatalf("raise of open fault: %+v", res[0])
	}
	if got := s.Stats().Commits; got != commits {
		t.Errorf("raise of open fault committed (%d → %d)", commits, got)
	}
	closeAndVerify(t, s)
}

func TestApplyChangesBadInput(t *testing.T) {
	s := openT(t, Options{EncodeCreate: func(t *agent.Ticket) ([]byte, error) {
		if t.Nameplate == "BAD" {
			return nil, errors.New("no address")
		}
		if t.Nameplate == "NOTJSON" {
			return []byte("{"), nil
		}
		return encodeBody(t)
	}})
	ok := raiseC(draft("LP1", agent.FaultLampFailure, time.Now()))
	for _, c := range []struct {
		name string
		ch   agent.TicketChange
	}{
		{"empty nameplate", raiseC(draft("", agent.FaultLampFailure, time.Now()))},
		{"empty fault", raiseC(draft("LP1", "", time.Now()))},
		{"NUL in fault", raiseC(draft("LP1", "a\x00b", time.Now()))},
		{"clear without nameplate", clearC("", "x", true)},
		{"unknown kind", agent.TicketChange{Kind: 9, Nameplate: "LP1", Fault: "x"}},
		{"encoder fails", raiseC(draft("BAD", agent.FaultLampFailure, time.Now()))},
		{"encoder returns bad JSON", raiseC(draft("NOTJSON", agent.FaultLampFailure, time.Now()))},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.ApplyChanges(context.Background(), []agent.TicketChange{ok, c.ch})
			if err == nil {
				t.Fatal("accepted")
			}
			counts, _ := s.Counts()
			if counts[pending] != 0 || s.Stats().HighWater != 0 {
				t.Fatalf("a refused call wrote something: %v, high water %d", counts, s.Stats().HighWater)
			}
		})
	}
	closeAndVerify(t, s)
}

func TestRetry(t *testing.T) {
	type setup func(t *testing.T, s *Store, p int64)
	fail := func(status int) setup {
		return func(t *testing.T, s *Store, p int64) {
			mustUpdate(t, s, p, func(t *agent.Ticket) { t.State, t.LastStatus, t.Attempts = failed, status, 3 })
		}
	}
	clear := func(t *testing.T, s *Store, p int64) {
		mustApply(t, s, clearC("LP1", agent.FaultLampFailure, true))
	}
	sentThenCancelFailed := func(t *testing.T, s *Store, p int64) {
		mustUpdate(t, s, p, func(t *agent.Ticket) { t.State, t.SentAt = sent, time.Now() })
		mustApply(t, s, clearC("LP1", agent.FaultLampFailure, true))
		mustUpdate(t, s, p, func(t *agent.Ticket) { t.State, t.LastStatus = failed, 403 })
	}
	cases := []struct {
		name        string
		setup       []setup
		want        agent.TicketState
		renumbered  bool
		wantErr     error
		wantQueuedN int
	}{
		{"failed create → pending", []setup{fail(422)}, pending, false, nil, 1},
		{"failed create, cleared → suppressed", []setup{fail(422), clear}, suppressed, false, nil, 0},
		{"409 never sent → new protocol", []setup{fail(409)}, pending, true, nil, 1},
		{"failed cancel → cancel_pending", []setup{sentThenCancelFailed}, cancelPending, false, nil, 1},
		{"not failed", nil, "", false, ErrNotFailed, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			s := openT(t, Options{Now: clk.Now, ProtocolBase: 1000})
			tk := mustRaise(t, s, "LP1", agent.FaultLampFailure)
			for _, st := range c.setup {
				st(t, s, tk.Protocol)
			}
			clk.Advance(time.Hour)
			got, err := s.Retry(context.Background(), tk.Protocol)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State != c.want {
				t.Fatalf("state %s, want %s", got.State, c.want)
			}
			if c.renumbered {
				if got.Protocol == tk.Protocol || got.Protocol != 1002 {
					t.Fatalf("protocol %d after a 409 retry, want a new one (1002)", got.Protocol)
				}
				if !bytes.Contains(got.CreateBody, []byte(`"id_external_protocol":1002`)) {
					t.Errorf("create body not rebuilt: %s", got.CreateBody)
				}
				if _, err := s.Ticket(tk.Protocol); !errors.Is(err, ErrNotFound) {
					t.Errorf("old protocol still there: %v", err)
				}
			} else if got.Protocol != tk.Protocol {
				t.Fatalf("protocol changed to %d", got.Protocol)
			}
			if got.State.Queued() && !got.NextAttemptAt.Equal(clk.Now()) {
				t.Errorf("NextAttemptAt %v, want now", got.NextAttemptAt)
			}
			if c.want == pending && got.Attempts != 3 {
				t.Errorf("attempts %d, want kept (3)", got.Attempts)
			}
			due, _, _ := s.DueTickets(clk.Now(), 0)
			if len(due) != c.wantQueuedN {
				t.Errorf("%d due, want %d", len(due), c.wantQueuedN)
			}
			closeAndVerify(t, s)
		})
	}
}

func TestRetryAllFailed(t *testing.T) {
	s := openT(t, Options{})
	for i := range 5 {
		tk := mustRaise(t, s, fmt.Sprintf("LP%d", i), agent.FaultLampFailure)
		if i < 3 {
			mustUpdate(t, s, tk.Protocol, func(t *agent.Ticket) { t.State, t.LastStatus = failed, 400 })
		}
	}
	n, err := s.RetryAllFailed(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("RetryAllFailed = %d, %v; want 3", n, err)
	}
	counts, _ := s.Counts()
	if counts[failed] != 0 || counts[pending] != 5 {
		t.Fatalf("counts %v", counts)
	}
	closeAndVerify(t, s)
}
