package store

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// The sequence mark and the state counters are kept in the transaction's
// run and written once before its commit (wtx.flush). Several numbers and
// state moves in one transaction must land exactly as if written one by
// one: consecutive numbers, the database mark at the highest (it alone must
// carry numbering on when the sidecar is lost), counters equal to a scan.
func TestFlushOncePerTransaction(t *testing.T) {
	path := dbPath(t)
	s := openT(t, Options{Path: path, ProtocolBase: 1000})
	// One call, one transaction: six raises, two of them cleared again.
	var cs []agent.TicketChange
	for i := range 6 {
		cs = append(cs, raiseC(draft(fmt.Sprintf("LP%d", i), agent.FaultLampFailure, s.now())))
	}
	cs = append(cs, clearC("LP0", agent.FaultLampFailure, false), clearC("LP1", agent.FaultLampFailure, false))
	res := mustApply(t, s, cs...)
	for i := range 6 {
		if got := res[i].Ticket.Protocol; got != int64(1001+i) {
			t.Fatalf("raise %d numbered %d, want %d", i, got, 1001+i)
		}
	}
	if c, _ := s.Counts(); c[pending] != 4 || c[suppressed] != 2 {
		t.Fatalf("counts after one transaction: %v", c)
	}
	// Three renumbers (409 on a first try) in one transaction.
	for _, p := range []int64{1003, 1004, 1005} {
		mustUpdate(t, s, p, func(t *agent.Ticket) { t.State, t.LastStatus = failed, 409 })
	}
	if n, err := s.RetryAllFailed(context.Background()); err != nil || n != 3 {
		t.Fatalf("RetryAllFailed = %d, %v", n, err)
	}
	l, _ := s.ListTickets(Filter{State: pending})
	var got []int64
	for _, tk := range l {
		got = append(got, tk.Protocol)
	}
	if fmt.Sprint(got) != "[1009 1008 1007 1006]" {
		t.Fatalf("pending after renumbering: %v, want [1009 1008 1007 1006]", got)
	}
	closeAndVerify(t, s)

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var mark uint64
	_ = db.View(func(tx *bolt.Tx) error { mark = u64Decode(tx.Bucket(bktMeta).Get(metaSeq)); return nil })
	_ = db.Close()
	if mark != 9 {
		t.Fatalf("database sequence mark %d, want 9", mark)
	}
	// Without the sidecar the database mark alone carries numbering on.
	if err := os.Remove(path + ".seq"); err != nil {
		t.Fatal(err)
	}
	s = openT(t, Options{Path: path, ProtocolBase: 1000})
	if tk := mustRaise(t, s, "LP9", agent.FaultLampFailure); tk.Protocol != 1010 {
		t.Fatalf("after reopening without the sidecar: protocol %d, want 1010", tk.Protocol)
	}
	closeAndVerify(t, s)
}
