package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// record is a ticket as stored: the agent's Ticket, in the binary layout of
// record.go. A struct of its own so that store-only fields can join it.
type record struct {
	agent.Ticket
}

// finished: nothing is left to do for the ticket, so pruning may take it.
// A sent ticket whose fault cleared without a cancel is finished too.
// Failed tickets are not: they wait for an operator.
func finished(t *agent.Ticket) bool {
	return t.State.Terminal() || (t.State == agent.StateSent && !t.ClearedAt.IsZero() && !t.CancelWanted)
}

func checkName(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(v) > 1024:
		return fmt.Errorf("%w: %s longer than 1024 bytes", ErrInvalid, what)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, what)
	}
	return nil
}

func checkChange(c *agent.TicketChange) error {
	switch c.Kind {
	case agent.Raise:
		if err := checkName("nameplate", c.Draft.Nameplate); err != nil {
			return err
		}
		return checkName("fault", c.Draft.Fault)
	case agent.Clear:
		if err := checkName("nameplate", c.Nameplate); err != nil {
			return err
		}
		return checkName("fault", c.Fault)
	}
	return fmt.Errorf("%w: unknown change kind %d", ErrInvalid, c.Kind)
}

// ApplyChanges applies the changes in order in one transaction,
// group-committed with those of concurrent callers, and returns once they
// are durable (on an error nothing of this call was written).
//
// A Raise returns the open ticket of the same (nameplate, fault) unchanged
// if there is one; otherwise it numbers a new pending ticket (seq+1 in the
// same transaction), due at once (NextAttemptAt = RaisedAt, or now if
// RaisedAt lies in the future), with CreateBody from EncodeCreate. A Clear
// sets ClearedAt on the open ticket of (nameplate, fault) and: suppresses a
// pending one (or, if its create may already have reached the API, keeps it
// pending and cancels it once sent); moves a sent one to cancel_pending
// (with Cancel) or leaves it sent and finished; leaves a failed one failed.
// A Clear without an open ticket changes nothing.
func (s *Store) ApplyChanges(ctx context.Context, changes []agent.TicketChange) ([]agent.ChangeResult, error) {
	growth := false
	for i := range changes {
		if err := checkChange(&changes[i]); err != nil {
			return nil, fmt.Errorf("apply ticket change %d: %w", i, err)
		}
		growth = growth || changes[i].Kind == agent.Raise
	}
	results := make([]agent.ChangeResult, len(changes))
	if len(changes) == 0 {
		return results, nil
	}
	err := s.submit(ctx, growth, func(w *wtx) error {
		for i := range changes {
			var err error
			c := &changes[i]
			if c.Kind == agent.Raise {
				results[i], err = w.raise(c.Draft)
			} else {
				results[i], err = w.clear(c)
			}
			if err != nil {
				return fmt.Errorf("apply ticket change %d (%s): %w", i, c.Kind, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func (w *wtx) openTicket(nameplate, fault string) (*record, error) {
	pk := w.tx.Bucket(bktOpen).Get(openKey(nameplate, fault))
	if pk == nil {
		return nil, nil
	}
	rec, err := w.load(pkeyDecode(pk))
	if err != nil {
		return nil, err
	}
	if !rec.Open() {
		return nil, nil // cannot happen while the indexes hold; harmless if it did
	}
	return rec, nil
}

func (w *wtx) raise(d agent.TicketDraft) (agent.ChangeResult, error) {
	if open, err := w.openTicket(d.Nameplate, d.Fault); err != nil || open != nil {
		if open == nil {
			return agent.ChangeResult{}, err
		}
		return agent.ChangeResult{Ticket: open.Ticket}, nil
	}
	p, err := w.allocProtocol()
	if err != nil {
		return agent.ChangeResult{}, err
	}
	rec := &record{Ticket: agent.Ticket{TicketDraft: d, Protocol: p, State: agent.StatePending}}
	t := &rec.Ticket
	if t.RaisedAt.IsZero() {
		t.RaisedAt = w.now
	}
	if t.Since.IsZero() {
		t.Since = t.RaisedAt
	}
	// FIFO by raise; a controller clock ahead of ours must not delay it.
	t.NextAttemptAt = t.RaisedAt
	if t.NextAttemptAt.After(w.now) {
		t.NextAttemptAt = w.now
	}
	t.CreatedAt = w.now
	if err := w.buildBody(t); err != nil {
		return agent.ChangeResult{}, err
	}
	if err := w.putTicket(nil, rec); err != nil {
		return agent.ChangeResult{}, err
	}
	return agent.ChangeResult{Ticket: rec.Ticket, Changed: true}, nil
}

func (w *wtx) buildBody(t *agent.Ticket) error {
	t.CreateBody = nil
	if w.s.encode == nil {
		return nil
	}
	body, err := w.s.encode(t)
	if err != nil {
		return fmt.Errorf("build create body of ticket %d: %w", t.Protocol, err)
	}
	if len(body) > 0 && !json.Valid(body) {
		return fmt.Errorf("build create body of ticket %d: %w: not valid JSON", t.Protocol, ErrInvalid)
	}
	t.CreateBody = body
	return nil
}

func (w *wtx) clear(c *agent.TicketChange) (agent.ChangeResult, error) {
	old, err := w.openTicket(c.Nameplate, c.Fault)
	if err != nil || old == nil {
		return agent.ChangeResult{}, err
	}
	nu := *old
	nu.ClearedAt = c.ClearedAt
	if nu.ClearedAt.IsZero() {
		nu.ClearedAt = w.now
	}
	switch old.State {
	case agent.StatePending:
		if old.InFlight || old.Uncertain {
			// The city may have it: it cannot be suppressed. The cancel
			// follows once the create is confirmed (settle).
			nu.CancelWanted = c.Cancel
			if c.Cancel {
				nu.Justification = c.Justification
			}
		} else {
			nu.State = agent.StateSuppressed
		}
	case agent.StateSent:
		if c.Cancel {
			nu.State = agent.StateCancelPending
			nu.Justification = c.Justification
			nu.NextAttemptAt = w.now
		}
	case agent.StateFailed:
		// Stays failed for the operator; a retry suppresses it.
	}
	if err := w.putTicket(old, &nu); err != nil {
		return agent.ChangeResult{}, err
	}
	return agent.ChangeResult{Ticket: nu.Ticket, Changed: true}, nil
}

// settle applies the rules of a pending ticket whose fault cleared while
// its create may have been at the API (agent.Ticket.CancelWanted), in the
// same transaction as the answer, so that no crash can leave a confirmed
// ticket uncancelled: confirmed sent with CancelWanted → cancel_pending, due
// now; definitely not delivered (neither in flight nor uncertain) →
// suppressed.
func (w *wtx) settle(nu *record) {
	if nu.ClearedAt.IsZero() {
		return
	}
	switch {
	case nu.State == agent.StateSent && nu.CancelWanted:
		nu.State = agent.StateCancelPending
		nu.NextAttemptAt = w.now
	case nu.State == agent.StatePending && !nu.InFlight && !nu.Uncertain:
		nu.State = agent.StateSuppressed
	}
}

// UpdateTicket loads the ticket, lets fn change it, refuses an illegal
// state move (agent.ErrIllegalTransition, nothing written) or a change of
// its protocol, nameplate or fault (ErrInvalid), keeps every index right,
// sets UpdatedAt and FinishedAt, and returns once durable (group-committed).
// fn may run more than once: it must depend only on its argument. An error
// from fn is returned wrapped and nothing is written.
//
// A pending ticket whose fault cleared while its create was in flight is
// settled here: the returned ticket may be cancel_pending when fn set sent,
// or suppressed when fn left it pending, not in flight and not uncertain.
func (s *Store) UpdateTicket(ctx context.Context, protocol int64, fn func(*agent.Ticket) error) (agent.Ticket, error) {
	var out agent.Ticket
	err := s.submit(ctx, false, func(w *wtx) error {
		old, err := w.load(protocol)
		if err != nil {
			return err
		}
		nu := &record{Ticket: old.Ticket}
		nu.CreateBody = bytes.Clone(old.CreateBody)
		if err := fn(&nu.Ticket); err != nil {
			return fmt.Errorf("update ticket %d: %w", protocol, err)
		}
		switch {
		case nu.Protocol != old.Protocol:
			return fmt.Errorf("update ticket %d: %w: its protocol cannot change", protocol, ErrInvalid)
		case nu.Nameplate != old.Nameplate || nu.Fault != old.Fault:
			return fmt.Errorf("update ticket %d: %w: its nameplate and fault cannot change", protocol, ErrInvalid)
		}
		if err := agent.CheckTransition(old.State, nu.State); err != nil {
			return fmt.Errorf("update ticket %d: %w", protocol, err)
		}
		nu.CreatedAt = old.CreatedAt
		w.settle(nu)
		if err := w.putTicket(old, nu); err != nil {
			return err
		}
		out = nu.Ticket
		return nil
	})
	if err != nil {
		return agent.Ticket{}, err
	}
	return out, nil
}

// Retry puts a failed ticket back in the queue, durably. A ticket never
// sent goes back to pending, due now, attempts kept — or to suppressed if
// its fault cleared meanwhile. One that failed with 409 on create without
// ever being sent lost a protocol-number collision (two gateways sharing a
// range): it gets a new protocol (and create body), so that a corrected
// EDGE_PROTOCOL_BASE takes effect; the returned ticket carries it and the
// old number is gone. A ticket sent before (its cancel failed) goes back to
// cancel_pending. Anything not failed: ErrNotFailed.
func (s *Store) Retry(ctx context.Context, protocol int64) (agent.Ticket, error) {
	var out agent.Ticket
	err := s.submit(ctx, false, func(w *wtx) error {
		t, err := w.retry(protocol)
		out = t
		return err
	})
	if err != nil {
		return agent.Ticket{}, err
	}
	return out, nil
}

// RetryAllFailed retries every failed ticket (see Retry) in one durable
// transaction and returns how many.
func (s *Store) RetryAllFailed(ctx context.Context) (int, error) {
	var n int
	err := s.submit(ctx, false, func(w *wtx) error {
		n = 0
		var ps []int64
		c := w.tx.Bucket(bktState).Cursor()
		prefix := statePrefix(agent.StateFailed)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ps = append(ps, pkeyDecode(k[len(prefix):]))
		}
		for _, p := range ps {
			if _, err := w.retry(p); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (w *wtx) retry(protocol int64) (agent.Ticket, error) {
	old, err := w.load(protocol)
	if err != nil {
		return agent.Ticket{}, err
	}
	if old.State != agent.StateFailed {
		return agent.Ticket{}, fmt.Errorf("retry ticket %d: %w (it is %s)", protocol, ErrNotFailed, old.State)
	}
	nu := *old
	switch {
	case !old.SentAt.IsZero():
		nu.State = agent.StateCancelPending
		nu.NextAttemptAt = w.now
	case !old.ClearedAt.IsZero():
		nu.State = agent.StateSuppressed
	default:
		nu.State = agent.StatePending
		nu.NextAttemptAt = w.now
		if old.LastStatus == 409 {
			return w.renumber(old, &nu)
		}
	}
	if err := w.putTicket(old, &nu); err != nil {
		return agent.Ticket{}, err
	}
	return nu.Ticket, nil
}

// renumber moves a ticket to a new protocol number: the old key and every
// index entry go, the ticket comes back under the new number.
func (w *wtx) renumber(old, nu *record) (agent.Ticket, error) {
	p, err := w.allocProtocol()
	if err != nil {
		return agent.Ticket{}, err
	}
	if err := w.deleteTicket(old); err != nil {
		return agent.Ticket{}, err
	}
	nu.Protocol = p
	nu.InFlight, nu.Uncertain = false, false
	if err := w.buildBody(&nu.Ticket); err != nil {
		return agent.Ticket{}, err
	}
	if err := w.putTicket(nil, nu); err != nil {
		return agent.Ticket{}, err
	}
	w.s.log.Info("ticket renumbered on retry after a protocol collision (409)", "old_protocol", old.Protocol, "protocol", p)
	return nu.Ticket, nil
}

// Prune removes the finished tickets (cancelled, suppressed, and sent ones
// whose fault cleared without a cancel) that finished more than Retention
// ago, oldest first, in durable transactions of at most pruneChunk tickets,
// and returns how many it removed. Queued and failed tickets are never
// pruned. With Retention 0 it removes nothing. The daemon calls it
// periodically; the size cap also prunes by itself, at any age.
func (s *Store) Prune(ctx context.Context) (removed int, err error) {
	if s.opts.ReadOnly {
		return 0, fmt.Errorf("prune store: %w", ErrReadOnly)
	}
	if s.opts.Retention <= 0 {
		return 0, nil
	}
	for {
		var n int
		cutoff := s.now().Add(-s.opts.Retention)
		err := s.submit(ctx, false, func(w *wtx) error {
			var err error
			n, err = w.prune(cutoff, pruneChunk)
			return err
		})
		if err != nil {
			return removed, fmt.Errorf("prune store: %w", err)
		}
		s.pruned.Add(int64(n))
		removed += n
		if n < pruneChunk {
			return removed, nil
		}
	}
}

// prune deletes up to limit finished tickets that finished before cutoff
// (any age when cutoff is zero), oldest first, through the finished index.
func (w *wtx) prune(cutoff time.Time, limit int) (int, error) {
	var ps []int64
	c := w.tx.Bucket(bktFinished).Cursor()
	for k, _ := c.First(); k != nil && len(ps) < limit; k, _ = c.Next() {
		if len(k) != 16 {
			continue
		}
		if !cutoff.IsZero() && !tkeyDecode(k[:8]).Before(cutoff) {
			break
		}
		ps = append(ps, pkeyDecode(k[8:]))
	}
	n := 0
	for _, p := range ps {
		rec, err := w.load(p)
		if err != nil {
			return 0, err
		}
		if !finished(&rec.Ticket) {
			continue // defensive: never prune a live ticket, whatever an index says
		}
		if err := w.deleteTicket(rec); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// load reads one ticket in a write transaction.
func (w *wtx) load(p int64) (*record, error) { return loadTicket(w.tx, p) }

func loadTicket(tx *bolt.Tx, p int64) (*record, error) {
	b := tx.Bucket(bktTickets)
	var v []byte
	if b != nil {
		v = b.Get(pkey(p))
	}
	if v == nil {
		return nil, fmt.Errorf("ticket %d: %w", p, ErrNotFound)
	}
	rec := new(record)
	if err := decodeRecord(v, rec); err != nil {
		return nil, fmt.Errorf("decode ticket %d: %w", p, err)
	}
	return rec, nil
}

// putTicket writes a ticket (old is nil for a new one) and moves every
// index entry that changed. It sets UpdatedAt and FinishedAt.
func (w *wtx) putTicket(old, nu *record) error {
	p := nu.Protocol
	if old != nil && old.Protocol != p {
		return fmt.Errorf("store ticket %d: protocol changed to %d", old.Protocol, p)
	}
	nu.UpdatedAt = w.now
	if finished(&nu.Ticket) {
		if nu.FinishedAt.IsZero() {
			nu.FinishedAt = w.now
		}
	} else {
		nu.FinishedAt = time.Time{}
	}
	if !nu.State.Valid() {
		return fmt.Errorf("store ticket %d: %w: state %q", p, ErrInvalid, nu.State)
	}
	val, err := appendRecord(make([]byte, 0, recordSize(&nu.Ticket)), &nu.Ticket)
	if err != nil {
		return fmt.Errorf("encode ticket %d: %w", p, err)
	}
	tx, pk := w.tx, pkey(p)
	if err := tx.Bucket(bktTickets).Put(pk, val); err != nil {
		return fmt.Errorf("store ticket %d: %w", p, err)
	}
	steps := make([]error, 0, 8)
	state := tx.Bucket(bktState)
	if old == nil || old.State != nu.State {
		if old != nil {
			steps = append(steps, state.Delete(stateKey(old.State, p)), w.count(old.State, -1))
		}
		steps = append(steps, state.Put(stateKey(nu.State, p), []byte{}), w.count(nu.State, 1))
	}
	queue := tx.Bucket(bktQueue)
	switch {
	case nu.State.Queued():
		steps = append(steps, queue.Put(pk, tkey(nu.NextAttemptAt)))
	case old != nil && old.State.Queued():
		steps = append(steps, queue.Delete(pk))
	}
	open, ok := tx.Bucket(bktOpen), openKey(nu.Nameplate, nu.Fault)
	if old != nil && old.Open() && !nu.Open() && bytes.Equal(open.Get(ok), pk) {
		steps = append(steps, open.Delete(ok))
	}
	if nu.Open() {
		if cur := open.Get(ok); cur != nil && !bytes.Equal(cur, pk) {
			if other, err := loadTicket(tx, pkeyDecode(cur)); err == nil && other.Open() {
				return fmt.Errorf("store ticket %d: %w: ticket %d is already open for %s/%s", p, ErrInvalid, other.Protocol, nu.Nameplate, nu.Fault)
			}
		}
		steps = append(steps, open.Put(ok, pk))
	}
	fin := tx.Bucket(bktFinished)
	if old != nil && !old.FinishedAt.IsZero() && !old.FinishedAt.Equal(nu.FinishedAt) {
		steps = append(steps, fin.Delete(finishedKey(old.FinishedAt, p)))
	}
	if !nu.FinishedAt.IsZero() {
		steps = append(steps, fin.Put(finishedKey(nu.FinishedAt, p), []byte{}))
	}
	if old == nil {
		steps = append(steps, tx.Bucket(bktDevice).Put(deviceKey(nu.Nameplate, p), []byte{}))
	}
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("index ticket %d: %w", p, err)
		}
	}
	w.wrote = true
	return nil
}

// deleteTicket removes a ticket and every index entry of it.
func (w *wtx) deleteTicket(rec *record) error {
	tx, p := w.tx, rec.Protocol
	pk := pkey(p)
	steps := []error{
		tx.Bucket(bktTickets).Delete(pk),
		tx.Bucket(bktState).Delete(stateKey(rec.State, p)),
		w.count(rec.State, -1),
		tx.Bucket(bktQueue).Delete(pk),
		tx.Bucket(bktDevice).Delete(deviceKey(rec.Nameplate, p)),
	}
	if !rec.FinishedAt.IsZero() {
		steps = append(steps, tx.Bucket(bktFinished).Delete(finishedKey(rec.FinishedAt, p)))
	}
	open, ok := tx.Bucket(bktOpen), openKey(rec.Nameplate, rec.Fault)
	if bytes.Equal(open.Get(ok), pk) {
		steps = append(steps, open.Delete(ok))
	}
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("delete ticket %d: %w", p, err)
		}
	}
	w.wrote = true
	return nil
}

// count changes the counter of a state by delta when the run is flushed.
func (w *wtx) count(s agent.TicketState, delta int) error {
	if w.counts == nil {
		w.counts = make(map[agent.TicketState]int64, len(agent.TicketStates))
	}
	w.counts[s] += int64(delta)
	return nil
}
