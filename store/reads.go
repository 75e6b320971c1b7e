package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Reads run in their own bbolt read transactions, concurrently with each
// other and with the writer; they see the last committed (durable) state.
// A bucket may be missing only in a file opened read-only before any daemon
// initialised it: it reads as empty.

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Ticket returns one ticket by its protocol (ErrNotFound if none).
func (s *Store) Ticket(protocol int64) (agent.Ticket, error) {
	var t agent.Ticket
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := loadTicket(tx, protocol)
		if err != nil {
			return err
		}
		t = rec.Ticket
		return nil
	})
	return t, err
}

// DueTickets returns up to limit queued tickets (pending, cancel_pending)
// whose NextAttemptAt is not after now, in protocol order, and the earliest
// NextAttemptAt of the queued tickets not returned (zero if none). It walks
// the queue index only: its cost grows with the queue, not with the tickets
// kept for the record. limit <= 0 means no limit.
func (s *Store) DueTickets(now time.Time, limit int) (due []agent.Ticket, next time.Time, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		q := tx.Bucket(bktQueue)
		if q == nil {
			return nil
		}
		c := q.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			at := tkeyDecode(v)
			if !at.After(now) {
				if limit > 0 && len(due) == limit {
					// Enough found: more may be due, so "look again now",
					// without walking the rest of a long queue each time.
					next = now
					return nil
				}
				rec, err := loadTicket(tx, pkeyDecode(k))
				if err != nil {
					return err
				}
				due = append(due, rec.Ticket)
				continue
			}
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("due tickets: %w", err)
	}
	return due, next, nil
}

// OpenFaults lists the faults with an open ticket (Ticket.Open), to restore
// the detector at start-up. Since is the ticket's Since (its RaisedAt when
// unknown).
func (s *Store) OpenFaults() ([]agent.ActiveFault, error) {
	var out []agent.ActiveFault
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktOpen)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			rec, err := loadTicket(tx, pkeyDecode(v))
			if err != nil {
				return err
			}
			since := rec.Since
			if since.IsZero() {
				since = rec.RaisedAt
			}
			out = append(out, agent.ActiveFault{Nameplate: rec.Nameplate, Fault: rec.Fault, Since: since})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open faults: %w", err)
	}
	return out, nil
}

// Counts returns the number of tickets in each state (every state present,
// zeros included). It reads one small counters bucket: no scan.
func (s *Store) Counts() (map[agent.TicketState]int, error) {
	out := make(map[agent.TicketState]int, len(agent.TicketStates))
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktCounts)
		for _, st := range agent.TicketStates {
			out[st] = 0
			if b != nil {
				out[st] = int(u64Decode(b.Get([]byte(st))))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ticket counts: %w", err)
	}
	return out, nil
}

// Filter selects tickets for ListTickets. Zero fields select everything.
type Filter struct {
	State     agent.TicketState
	Nameplate string
	// Limit caps the result; 0 means no limit.
	Limit int
}

// ListTickets returns tickets newest first (highest protocol first). With
// a Nameplate it walks that device's index, else with a State that state's
// index, so that neither scans the whole store.
func (s *Store) ListTickets(f Filter) ([]agent.Ticket, error) {
	if f.State != "" && !f.State.Valid() {
		return nil, fmt.Errorf("list tickets: %w: unknown state %q", ErrInvalid, f.State)
	}
	var out []agent.Ticket
	full := func() bool { return f.Limit > 0 && len(out) >= f.Limit }
	err := s.view(func(tx *bolt.Tx) error {
		var (
			idx    *bolt.Bucket
			prefix []byte
		)
		switch {
		case f.Nameplate != "":
			idx, prefix = tx.Bucket(bktDevice), devicePrefix(f.Nameplate)
		case f.State != "":
			idx, prefix = tx.Bucket(bktState), statePrefix(f.State)
		default:
			b := tx.Bucket(bktTickets)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, _ := c.Last(); k != nil && !full(); k, _ = c.Prev() {
				rec, err := loadTicket(tx, pkeyDecode(k))
				if err != nil {
					return err
				}
				out = append(out, rec.Ticket)
			}
			return nil
		}
		if idx == nil {
			return nil
		}
		c := idx.Cursor()
		// Keys are prefix + 8-byte protocol; the prefix ends in a 0 byte, so
		// the same prefix with a 1 there sorts right after all of them.
		end := bytes.Clone(prefix)
		end[len(end)-1] = 1
		k, _ := c.Seek(end)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && !full(); k, _ = c.Prev() {
			if len(k) != len(prefix)+8 {
				continue
			}
			rec, err := loadTicket(tx, pkeyDecode(k[len(prefix):]))
			if err != nil {
				return err
			}
			if f.State != "" && rec.State != f.State {
				continue
			}
			out = append(out, rec.Ticket)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return out, nil
}

// OldestQueued returns the queued ticket with the lowest protocol (the
// oldest raise still waiting), for "age of the oldest pending".
func (s *Store) OldestQueued() (agent.Ticket, bool, error) {
	var (
		t  agent.Ticket
		ok bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		q := tx.Bucket(bktQueue)
		if q == nil {
			return nil
		}
		k, _ := q.Cursor().First()
		if k == nil {
			return nil
		}
		rec, err := loadTicket(tx, pkeyDecode(k))
		if err != nil {
			return err
		}
		t, ok = rec.Ticket, true
		return nil
	})
	if err != nil {
		return agent.Ticket{}, false, fmt.Errorf("oldest queued ticket: %w", err)
	}
	return t, ok, nil
}
