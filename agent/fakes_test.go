package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// memStore is an in-memory TicketStore for the pipeline and syncer tests.
// It enforces the state machine like the real store; the real store has its
// own tests, and the end-to-end tests use it.
type memStore struct {
	mu      sync.Mutex
	seq     int64
	tickets map[int64]*Ticket
	fail    func(op string) error // injected failures; nil = none
	applies int
}

func newMemStore() *memStore { return &memStore{tickets: map[int64]*Ticket{}} }

func (m *memStore) ApplyChanges(_ context.Context, changes []TicketChange) ([]ChangeResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		if err := m.fail("apply"); err != nil {
			return nil, err
		}
	}
	m.applies++
	out := make([]ChangeResult, 0, len(changes))
	for _, c := range changes {
		switch c.Kind {
		case Raise:
			if t := m.open(c.Draft.Nameplate, c.Draft.Fault); t != nil {
				out = append(out, ChangeResult{Ticket: *t})
				continue
			}
			m.seq++
			t := &Ticket{TicketDraft: c.Draft, Protocol: m.seq, State: StatePending, NextAttemptAt: c.Draft.RaisedAt,
				CreateBody: []byte(fmt.Sprintf(`{"id_external_protocol":%d}`, m.seq))}
			m.tickets[t.Protocol] = t
			out = append(out, ChangeResult{Ticket: *t, Changed: true})
		case Clear:
			t := m.open(c.Nameplate, c.Fault)
			if t == nil {
				out = append(out, ChangeResult{})
				continue
			}
			t.ClearedAt = c.ClearedAt
			switch {
			case t.State == StatePending && !t.InFlight && !t.Uncertain:
				t.State = StateSuppressed
			case t.State == StatePending:
				t.CancelWanted, t.Justification = c.Cancel, c.Justification
			case t.State == StateSent && c.Cancel:
				t.State, t.Justification, t.NextAttemptAt = StateCancelPending, c.Justification, c.ClearedAt
			}
			out = append(out, ChangeResult{Ticket: *t, Changed: true})
		}
	}
	return out, nil
}

func (m *memStore) open(nameplate, fault string) *Ticket {
	for _, t := range m.tickets {
		if t.Nameplate == nameplate && t.Fault == fault && t.Open() {
			return t
		}
	}
	return nil
}

func (m *memStore) UpdateTicket(_ context.Context, protocol int64, fn func(*Ticket) error) (Ticket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		if err := m.fail("update"); err != nil {
			return Ticket{}, err
		}
	}
	cur, ok := m.tickets[protocol]
	if !ok {
		return Ticket{}, fmt.Errorf("ticket %d: not found", protocol)
	}
	t := *cur
	if err := fn(&t); err != nil {
		return Ticket{}, err
	}
	if err := CheckTransition(cur.State, t.State); err != nil {
		return Ticket{}, err
	}
	*cur = t
	return t, nil
}

func (m *memStore) DueTickets(now time.Time, limit int) ([]Ticket, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int64
	for p, t := range m.tickets {
		if t.State.Queued() {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	var due []Ticket
	var next time.Time
	for _, p := range ps {
		t := m.tickets[p]
		if !t.NextAttemptAt.After(now) && len(due) < limit {
			due = append(due, *t)
			continue
		}
		if next.IsZero() || t.NextAttemptAt.Before(next) {
			next = t.NextAttemptAt
		}
	}
	return due, next, nil
}

func (m *memStore) Ticket(protocol int64) (Ticket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tickets[protocol]
	if !ok {
		return Ticket{}, fmt.Errorf("ticket %d: not found", protocol)
	}
	return *t, nil
}

func (m *memStore) OpenFaults() ([]ActiveFault, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ActiveFault
	for _, t := range m.tickets {
		if t.Open() {
			out = append(out, ActiveFault{Nameplate: t.Nameplate, Fault: t.Fault, Since: t.Since})
		}
	}
	return out, nil
}

func (m *memStore) get(p int64) Ticket {
	t, err := m.Ticket(p)
	if err != nil {
		panic(err)
	}
	return t
}

// fakeAPIError is an APIError with fixed answers.
type fakeAPIError struct {
	outcome    Outcome
	status     int
	body       string
	retryAfter time.Duration
	maybe      bool
}

func (e *fakeAPIError) Error() string {
	return fmt.Sprintf("fake api: %s (status %d)", e.outcome, e.status)
}
func (e *fakeAPIError) Outcome() Outcome          { return e.outcome }
func (e *fakeAPIError) StatusCode() int           { return e.status }
func (e *fakeAPIError) ResponseBody() string      { return e.body }
func (e *fakeAPIError) RetryAfter() time.Duration { return e.retryAfter }
func (e *fakeAPIError) MaybeDelivered() bool      { return e.maybe }

// fakeAPI is a TicketAPI whose answers come from function fields, and which
// records the calls it received in order.
type fakeAPI struct {
	mu       sync.Mutex
	calls    []string
	inFlight int
	maxSeen  int
	create   func(body []byte) (CreateResult, error)
	cancel   func(protocol int64, justification string) error
}

func (f *fakeAPI) enter(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.inFlight++
	f.maxSeen = max(f.maxSeen, f.inFlight)
	f.mu.Unlock()
}

func (f *fakeAPI) leave() {
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
}

func (f *fakeAPI) CreateTicket(_ context.Context, body []byte) (CreateResult, error) {
	f.enter("create " + string(body))
	defer f.leave()
	if f.create == nil {
		return CreateResult{IDDemanda: 1}, nil
	}
	return f.create(body)
}

func (f *fakeAPI) CancelTicket(_ context.Context, protocol int64, justification string) error {
	f.enter(fmt.Sprintf("cancel %d", protocol))
	defer f.leave()
	if f.cancel == nil {
		return nil
	}
	return f.cancel(protocol, justification)
}

func (f *fakeAPI) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
