package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

func TestDueTickets(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now})
	now := clk.Now()
	var ps []int64
	for i := range 6 {
		ps = append(ps, mustRaise(t, s, fmt.Sprintf("LP%d", i), agent.FaultLampFailure).Protocol)
	}
	// Backoff on some: 1 in 10 min, 3 in 5 min; 4 sent (not queued); 5
	// cancel_pending, due now.
	mustUpdate(t, s, ps[1], func(t *agent.Ticket) { t.NextAttemptAt = now.Add(10 * time.Minute) })
	mustUpdate(t, s, ps[3], func(t *agent.Ticket) { t.NextAttemptAt = now.Add(5 * time.Minute) })
	mustUpdate(t, s, ps[4], func(t *agent.Ticket) { t.State = sent })
	mustUpdate(t, s, ps[5], func(t *agent.Ticket) { t.State = sent })
	mustApply(t, s, clearC("LP5", agent.FaultLampFailure, true))

	protocols := func(ts []agent.Ticket) []int64 {
		var out []int64
		for _, t := range ts {
			out = append(out, t.Protocol)
		}
		return out
	}
	due, next, err := s.DueTickets(now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(protocols(due)), fmt.Sprint([]int64{ps[0], ps[2], ps[5]}); got != want || !next.Equal(now.Add(5*time.Minute)) {
		t.Fatalf("due %s next %v; want %s and +5m", got, next, want)
	}
	due, next, _ = s.DueTickets(now, 2)
	if got := fmt.Sprint(protocols(due)); got != fmt.Sprint([]int64{ps[0], ps[2]}) || !next.Equal(now) {
		t.Fatalf("limit 2: due %s next %v; want the first two and next = now (one more due)", got, next)
	}
	due, next, _ = s.DueTickets(now.Add(time.Hour), 0)
	if len(due) != 5 || !next.IsZero() {
		t.Fatalf("an hour later: %d due, next %v", len(due), next)
	}
	oldest, ok, err := s.OldestQueued()
	if err != nil || !ok || oldest.Protocol != ps[0] {
		t.Fatalf("oldest queued: %d %v %v", oldest.Protocol, ok, err)
	}
	closeAndVerify(t, s)
}

func TestListAndCounts(t *testing.T) {
	s := openT(t, Options{})
	for i := range 4 {
		for _, f := range []string{"a", "b", "c"} {
			mustRaise(t, s, fmt.Sprintf("LP%d", i), f)
		}
	}
	// LP1/b and LP2/b suppressed, LP3/c sent.
	mustApply(t, s, clearC("LP1", "b", true), clearC("LP2", "b", true))
	l, _ := s.ListTickets(Filter{Nameplate: "LP3"})
	for _, tk := range l {
		if tk.Fault == "c" {
			mustUpdate(t, s, tk.Protocol, func(t *agent.Ticket) { t.State = sent })
		}
	}
	counts, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	want := map[agent.TicketState]int{pending: 9, suppressed: 2, sent: 1, cancelPending: 0, cancelled: 0, failed: 0}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	for _, c := range []struct {
		f    Filter
		want int
	}{
		{Filter{}, 12},
		{Filter{Limit: 5}, 5},
		{Filter{State: pending}, 9},
		{Filter{State: suppressed}, 2},
		{Filter{State: pending, Limit: 3}, 3},
		{Filter{Nameplate: "LP2"}, 3},
		{Filter{Nameplate: "LP2", State: suppressed}, 1},
		{Filter{Nameplate: "LP"}, 0},
		{Filter{Nameplate: "nobody"}, 0},
		{Filter{State: cancelled}, 0},
	} {
		got, err := s.ListTickets(c.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want {
			t.Errorf("%+v: %d tickets, want %d", c.f, len(got), c.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Protocol >= got[i-1].Protocol {
				t.Errorf("%+v: not newest first: %d after %d", c.f, got[i].Protocol, got[i-1].Protocol)
			}
		}
		for _, tk := range got {
			if (c.f.State != "" && tk.State != c.f.State) || (c.f.Nameplate != "" && tk.Nameplate != c.f.Nameplate) {
				t.Errorf("%+v returned %s %s", c.f, tk.Nameplate, tk.State)
			}
		}
	}
	if _, err := s.ListTickets(Filter{State: "lost"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown state: %v", err)
	}
	open, _ := s.OpenFaults()
	if len(open) != 10 {
		t.Errorf("%d open faults, want 10", len(open))
	}
	for _, o := range open {
		if o.Since.IsZero() || (o.Fault == "b" && (o.Nameplate == "LP1" || o.Nameplate == "LP2")) {
			t.Errorf("open fault %+v", o)
		}
	}
	if _, err := s.Ticket(424242); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing ticket: %v", err)
	}
	closeAndVerify(t, s)
}

func TestPrune(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now, Retention: 24 * time.Hour})
	ctx := context.Background()
	// Finished at t0 (suppressed), t0+1h (sent, cleared without cancel),
	// t0+2h (cancelled); a failed one and a pending one stay forever.
	mustRaise(t, s, "S", "f")
	mustApply(t, s, clearC("S", "f", false))
	clk.Advance(time.Hour)
	p := mustRaise(t, s, "N", "f").Protocol
	mustUpdate(t, s, p, func(t *agent.Ticket) { t.State = sent })
	mustApply(t, s, clearC("N", "f", false))
	clk.Advance(time.Hour)
	p = mustRaise(t, s, "C", "f").Protocol
	mustUpdate(t, s, p, func(t *agent.Ticket) { t.State = sent })
	mustUpdate(t, s, p, func(t *agent.Ticket) { t.State = cancelPending })
	mustUpdate(t, s, p, func(t *agent.Ticket) { t.State = cancelled })
	p = mustRaise(t, s, "F", "f").Protocol
	mustUpdate(t, s, p, func(t *agent.Ticket) { t.State = failed })
	mustApply(t, s, clearC("F", "f", false))
	mustRaise(t, s, "P", "f")

	left := func() string {
		l, _ := s.ListTickets(Filter{})
		var names string
		for _, t := range l {
			names += t.Nameplate
		}
		return names
	}
	for _, c := range []struct {
		advance time.Duration
		removed int
		left    string
	}{
		{22 * time.Hour, 0, "PFCNS"},    // t0+24h: nothing older than 24h yet
		{time.Minute, 1, "PFCN"},        // the suppressed one
		{2 * time.Hour, 2, "PF"},        // then the other two, oldest first
		{100 * 24 * time.Hour, 0, "PF"}, // failed and pending are never pruned
	} {
		clk.Advance(c.advance)
		n, err := s.Prune(ctx)
		if err != nil || n != c.removed || left() != c.left {
			t.Fatalf("+%s: pruned %d (%v), left %s; want %d, %s", c.advance, n, err, left(), c.removed, c.left)
		}
	}
	if s.Stats().Pruned != 3 {
		t.Errorf("stats pruned %d", s.Stats().Pruned)
	}
	closeAndVerify(t, s)
}

func TestAttributes(t *testing.T) {
	s := openT(t, Options{})
	ctx := context.Background()
	seen := time.Date(2026, 3, 1, 21, 0, 0, 0, time.UTC)
	attr := func(np string, v float64) agent.DeviceAttributes {
		return agent.DeviceAttributes{Nameplate: np, Online: true, LastSeen: seen,
			Reading: agent.Reading{Fields: agent.FieldVoltage, Voltage: v}, ActiveFaults: []string{"lampFailure"}}
	}
	// An offline month: many writes, ten devices, ten records.
	for round := range 50 {
		var batch []agent.DeviceAttributes
		for d := range 10 {
			batch = append(batch, attr(fmt.Sprintf("LP%02d", d), float64(200+round)))
		}
		if err := s.PutAttributes(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	dirty, err := s.DirtyAttributes(0)
	if err != nil || len(dirty) != 10 {
		t.Fatalf("%d dirty records (%v), want 10", len(dirty), err)
	}
	if dirty[0].Attributes.Reading.Voltage != 249 || !dirty[0].Attributes.LastSeen.Equal(seen) || dirty[0].Attributes.ActiveFaults[0] != "lampFailure" {
		t.Fatalf("record %+v: not the latest write", dirty[0])
	}
	if l, _ := s.DirtyAttributes(3); len(l) != 3 {
		t.Fatalf("limit 3: %d", len(l))
	}
	// LP00 changes after it was read: marking the old version synced must
	// leave it dirty; the others become clean.
	if err := s.PutAttributes(ctx, []agent.DeviceAttributes{attr("LP00", 300)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAttributesSynced(ctx, dirty); err != nil {
		t.Fatal(err)
	}
	left, _ := s.DirtyAttributes(0)
	if len(left) != 1 || left[0].Attributes.Nameplate != "LP00" || left[0].Attributes.Reading.Voltage != 300 {
		t.Fatalf("dirty after sync: %+v", left)
	}
	// Writing the same state again is no change: stays clean, no commit.
	commits := s.Stats().Commits
	if err := s.PutAttributes(ctx, []agent.DeviceAttributes{attr("LP05", 249)}); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Commits != commits {
		t.Error("an unchanged attribute write committed")
	}
	rec, ok, err := s.Attributes("LP05")
	if err != nil || !ok || rec.Attributes.Reading.Voltage != 249 {
		t.Fatalf("Attributes(LP05) = %+v %v %v", rec, ok, err)
	}
	if l, _ := s.DirtyAttributes(0); len(l) != 1 {
		t.Fatalf("unchanged write made it dirty: %d dirty", len(l))
	}
	if _, ok, err := s.Attributes("nobody"); ok || err != nil {
		t.Fatalf("missing device: %v %v", ok, err)
	}
	if err := s.PutAttributes(ctx, []agent.DeviceAttributes{{Nameplate: ""}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty nameplate: %v", err)
	}
	closeAndVerify(t, s)
}
