package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// clock is an injectable, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// encodeBody is a create body like the real one, small but real JSON.
func encodeBody(t *agent.Ticket) ([]byte, error) {
	return json.Marshal(map[string]any{
		"id_external_protocol": t.Protocol,
		"external_protocol":    fmt.Sprint(t.Protocol),
		"nameplate_num":        t.Nameplate,
		"description":          t.Description,
	})
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "edge-agent.db") }

// openT opens a store with test defaults and closes it at the end.
func openT(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Path == "" {
		o.Path = dbPath(t)
	}
	if o.EncodeCreate == nil {
		o.EncodeCreate = encodeBody
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func draft(np, fault string, at time.Time) agent.TicketDraft {
	return agent.TicketDraft{
		Nameplate: np, Fault: fault, RaisedAt: at, Since: at.Add(-10 * time.Minute),
		Reading:     agent.Reading{Fields: agent.FieldVoltage, Voltage: 250},
		Site:        agent.Site{Municipality: "Uberaba", State: "MG"},
		Description: "Lâmpada apagada à noite",
	}
}

func raiseC(d agent.TicketDraft) agent.TicketChange {
	return agent.TicketChange{Kind: agent.Raise, Draft: d}
}

func clearC(np, fault string, cancel bool) agent.TicketChange {
	return agent.TicketChange{Kind: agent.Clear, Nameplate: np, Fault: fault, Cancel: cancel, Justification: "falha normalizada"}
}

func mustApply(t testing.TB, s *Store, cs ...agent.TicketChange) []agent.ChangeResult {
	t.Helper()
	res, err := s.ApplyChanges(context.Background(), cs)
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	return res
}

func mustRaise(t testing.TB, s *Store, np, fault string) agent.Ticket {
	t.Helper()
	return mustApply(t, s, raiseC(draft(np, fault, s.now())))[0].Ticket
}

func mustUpdate(t testing.TB, s *Store, p int64, fn func(*agent.Ticket)) agent.Ticket {
	t.Helper()
	tk, err := s.UpdateTicket(context.Background(), p, func(t *agent.Ticket) error { fn(t); return nil })
	if err != nil {
		t.Fatalf("UpdateTicket(%d): %v", p, err)
	}
	return tk
}

// rawTicket is the stored bytes of a ticket, to prove a refused write
// changed nothing.
func rawTicket(t testing.TB, s *Store, p int64) []byte {
	t.Helper()
	var out []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		out = bytes.Clone(tx.Bucket(bktTickets).Get(pkey(p)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyDB checks a store file from the outside: bbolt's own consistency
// check, and every index of the store against a full scan of the tickets.
func verifyDB(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open for verify: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		var errs []string
		for err := range tx.Check() {
			errs = append(errs, err.Error())
		}
		if len(errs) > 0 {
			return fmt.Errorf("tx.Check: %s", strings.Join(errs, "; "))
		}
		return verifyIndexes(tx)
	}); err != nil {
		t.Fatal(err)
	}
}

// verifyIndexes rebuilds every index from the tickets and compares.
func verifyIndexes(tx *bolt.Tx) error {
	want := map[string]map[string]string{}
	add := func(b []byte, k, v []byte) {
		m := want[string(b)]
		if m == nil {
			m = map[string]string{}
			want[string(b)] = m
		}
		m[string(k)] = string(v)
	}
	counts := map[agent.TicketState]uint64{}
	err := tx.Bucket(bktTickets).ForEach(func(k, v []byte) error {
		var rec record
		if err := decodeRecord(v, &rec); err != nil {
			return err
		}
		p := rec.Protocol
		if !bytes.Equal(k, pkey(p)) {
			return fmt.Errorf("ticket under key %x has protocol %d", k, p)
		}
		counts[rec.State]++
		add(bktState, stateKey(rec.State, p), nil)
		add(bktDevice, deviceKey(rec.Nameplate, p), nil)
		if rec.State.Queued() {
			add(bktQueue, pkey(p), tkey(rec.NextAttemptAt))
		}
		if rec.Open() {
			if _, dup := want[string(bktOpen)][string(openKey(rec.Nameplate, rec.Fault))]; dup {
				return fmt.Errorf("two open tickets for %s/%s", rec.Nameplate, rec.Fault)
			}
			add(bktOpen, openKey(rec.Nameplate, rec.Fault), pkey(p))
		}
		if finished(&rec.Ticket) != !rec.FinishedAt.IsZero() {
			return fmt.Errorf("ticket %d (%s, cleared %v): FinishedAt %v", p, rec.State, rec.ClearedAt, rec.FinishedAt)
		}
		if !rec.FinishedAt.IsZero() {
			add(bktFinished, finishedKey(rec.FinishedAt, p), nil)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range [][]byte{bktState, bktDevice, bktQueue, bktOpen, bktFinished} {
		got := map[string]string{}
		if err := tx.Bucket(b).ForEach(func(k, v []byte) error { got[string(k)] = string(v); return nil }); err != nil {
			return err
		}
		w := want[string(b)]
		if len(got) != len(w) {
			return fmt.Errorf("index %s has %d entries, tickets say %d", b, len(got), len(w))
		}
		for k, v := range w {
			if gv, ok := got[k]; !ok || gv != v {
				return fmt.Errorf("index %s: entry %x = %x, want %x (present %v)", b, k, gv, v, ok)
			}
		}
	}
	for _, st := range agent.TicketStates {
		if got := u64Decode(tx.Bucket(bktCounts).Get([]byte(st))); got != counts[st] {
			return fmt.Errorf("count of %s is %d, tickets say %d", st, got, counts[st])
		}
	}
	return nil
}

// closeAndVerify closes the store and checks its file.
func closeAndVerify(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	verifyDB(t, s.opts.Path)
}

func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stopWriter stops the writer goroutine so that a test can drive the
// batch logic itself; Close still closes the file afterwards.
func stopWriter(s *Store) {
	close(s.closing)
	s.wg.Wait()
	s.closing = nil
}
