package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

func corruptFiles(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + ".corrupt-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCorruptFileMovedAside(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			_, _ = rand.Read(b)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"both meta pages zeroed", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 2*4096), 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			path := dbPath(t)
			s := openT(t, Options{Path: path, Now: clk.Now, ProtocolBase: 40})
			var cs []agent.TicketChange
			for i := range 300 {
				cs = append(cs, raiseC(draft(fmt.Sprintf("LP%03d", i), agent.FaultLampFailure, clk.Now())))
			}
			res := mustApply(t, s, cs...)
			last := res[len(res)-1].Ticket
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			c.corrupt(t, path)
			damaged := fileBytes(t, path)

			clk.Advance(time.Hour)
			s2 := openT(t, Options{Path: path, Now: clk.Now, ProtocolBase: 40})
			st := s2.Stats()
			moved := corruptFiles(t, path)
			if len(moved) != 1 || st.CorruptMovedTo != moved[0] || !st.CorruptAt.Equal(clk.Now()) {
				t.Fatalf("moved %v, stats %+v", moved, st)
			}
			if want := path + ".corrupt-" + clk.Now().UTC().Format("20060102T150405Z"); moved[0] != want {
				t.Errorf("moved to %s, want %s", moved[0], want)
			}
			if !bytes.Equal(fileBytes(t, moved[0]), damaged) {
				t.Fatal("the file moved aside is not the damaged file")
			}
			// A new, working store; numbering continues after the lost file's.
			tk := mustRaise(t, s2, "LP-new", agent.FaultLampFailure)
			if tk.Protocol <= last.Protocol {
				t.Fatalf("protocol %d after a corrupt file, want > %d", tk.Protocol, last.Protocol)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			// The fact survives a restart, for the status page.
			s3 := openT(t, Options{Path: path, Now: clk.Now, ReadOnly: true})
			if got := s3.Stats().CorruptMovedTo; got != moved[0] {
				t.Fatalf("after restart CorruptMovedTo = %q", got)
			}
			closeAndVerify(t, s3)
		})
	}
}

func TestLockTimeout(t *testing.T) {
	path := dbPath(t)
	s := openT(t, Options{Path: path})
	mustRaise(t, s, "LP1", agent.FaultLampFailure)
	for _, ro := range []bool{false, true} {
		start := time.Now()
		_, err := Open(Options{Path: path, LockTimeout: 150 * time.Millisecond, ReadOnly: ro})
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another process") {
			t.Fatalf("read-only=%v: second open: %v, want ErrLocked naming another process", ro, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("second open took %s", d)
		}
	}
	if moved := corruptFiles(t, path); len(moved) != 0 {
		t.Fatalf("a locked file was moved aside: %v", moved)
	}
	// The first store is unharmed.
	if _, err := s.Ticket(1); err != nil {
		t.Fatal(err)
	}
	closeAndVerify(t, s)
}

func TestReadOnly(t *testing.T) {
	path := dbPath(t)
	s := openT(t, Options{Path: path, ProtocolBase: 10})
	tk := mustRaise(t, s, "LP1", agent.FaultLampFailure)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	dbBefore, seqBefore := fileBytes(t, path), fileBytes(t, path+".seq")
	entries := func() []string {
		es, err := os.ReadDir(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return n
	}
	names := entries()

	ro := openT(t, Options{Path: path, ReadOnly: true, ProtocolBase: 10})
	if got, err := ro.Ticket(tk.Protocol); err != nil || got.Nameplate != "LP1" {
		t.Fatalf("read: %+v %v", got, err)
	}
	if l, err := ro.ListTickets(Filter{State: pending}); err != nil || len(l) != 1 {
		t.Fatalf("list: %v %v", l, err)
	}
	if c, err := ro.Counts(); err != nil || c[pending] != 1 {
		t.Fatalf("counts: %v %v", c, err)
	}
	if st := ro.Stats(); !st.ReadOnly || st.HighWater != 1 {
		t.Fatalf("stats %+v", st)
	}
	ctx := context.Background()
	writes := map[string]error{}
	_, writes["apply"] = ro.ApplyChanges(ctx, []agent.TicketChange{raiseC(draft("LP2", "x", time.Now()))})
	_, writes["update"] = ro.UpdateTicket(ctx, tk.Protocol, func(*agent.Ticket) error { return nil })
	_, writes["retry"] = ro.Retry(ctx, tk.Protocol)
	_, writes["prune"] = ro.Prune(ctx)
	_, writes["retry all"] = ro.RetryAllFailed(ctx)
	writes["attrs"] = ro.PutAttributes(ctx, []agent.DeviceAttributes{{Nameplate: "LP1"}})
	for name, err := range writes {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly", name, err)
		}
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dbBefore, fileBytes(t, path)) || !bytes.Equal(seqBefore, fileBytes(t, path+".seq")) {
		t.Fatal("read-only open changed a file")
	}
	if after := entries(); strings.Join(after, ",") != strings.Join(names, ",") {
		t.Fatalf("read-only open changed the directory: %v → %v", names, after)
	}
}

func TestReadOnlyNeverCreatesOrMoves(t *testing.T) {
	path := dbPath(t)
	if _, err := Open(Options{Path: path, ReadOnly: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("read-only open created the file")
	}
	garbage := bytes.Repeat([]byte("not a bbolt file "), 4096)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: path, ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt file read-only: %v", err)
	}
	if !bytes.Equal(fileBytes(t, path), garbage) || len(corruptFiles(t, path)) != 0 {
		t.Fatal("read-only open moved or changed a corrupt file")
	}
}

func TestOpenRefusesWithoutMoving(t *testing.T) {
	t.Run("newer layout", func(t *testing.T) {
		path := dbPath(t)
		s := openT(t, Options{Path: path})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Put(metaSchema, u64(schemaVersion+1)) }); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
		if _, err := Open(Options{Path: path}); !errors.Is(err, ErrSchema) {
			t.Fatalf("newer layout: %v, want ErrSchema", err)
		}
		if len(corruptFiles(t, path)) != 0 {
			t.Fatal("a newer file was moved aside")
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores file permissions")
		}
		path := dbPath(t)
		s := openT(t, Options{Path: path})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(path, 0o600)
		if _, err := Open(Options{Path: path}); !errors.Is(err, os.ErrPermission) {
			t.Fatalf("unreadable file: %v, want a permission error", err)
		}
		if len(corruptFiles(t, path)) != 0 {
			t.Fatal("an unreadable file was moved aside")
		}
	})
	t.Run("bad options", func(t *testing.T) {
		for _, o := range []Options{{}, {Path: dbPath(t), MaxBytes: 1000}, {Path: dbPath(t), MaxBytes: -1}, {Path: dbPath(t), Retention: -time.Hour}} {
			if _, err := Open(o); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v, want ErrInvalid", o, err)
			}
		}
	})
}

func TestCompactAtOpen(t *testing.T) {
	clk := newClock()
	path := dbPath(t)
	s := openT(t, Options{Path: path, Now: clk.Now, Retention: time.Hour})
	ctx := context.Background()
	for i := range 20 {
		var cs []agent.TicketChange
		for j := range 20 {
			np := string(rune('A'+i%26)) + string(rune('a'+j)) + strings.Repeat("z", i)
			cs = append(cs, raiseC(bigDraft(s, np)), clearC(np, agent.FaultLampFailure, false))
		}
		mustApply(t, s, cs...)
	}
	keep := mustRaise(t, s, "KEEP", agent.FaultLampFailure)
	clk.Advance(2 * time.Hour)
	if n, err := s.Prune(ctx); err != nil || n != 400 {
		t.Fatalf("Prune = %d, %v; want 400", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	s2 := openT(t, Options{Path: path, Now: clk.Now})
	after := fileSize(t, path)
	if after*2 > before {
		t.Fatalf("file %d → %d bytes: not compacted", before, after)
	}
	if got, err := s2.Ticket(keep.Protocol); err != nil || got.Nameplate != "KEEP" {
		t.Fatalf("ticket lost in compaction: %+v %v", got, err)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("compaction left its temporary file")
	}
	if tk := mustRaise(t, s2, "NEXT", agent.FaultLampFailure); tk.Protocol != keep.Protocol+1 {
		t.Fatalf("sequence after compaction: %d, want %d", tk.Protocol, keep.Protocol+1)
	}
	t.Logf("compacted %d → %d bytes", before, after)
	closeAndVerify(t, s2)
}
