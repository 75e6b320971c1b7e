package store

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/edge-agent/edge-agent/agent"
)

func TestSidecarSlots(t *testing.T) {
	path := dbPath(t) + ".seq"
	sc, err := openSidecar(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint64{5, 9, 12} {
		if err := sc.write(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.write(3); err != nil { // never goes down
		t.Fatal(err)
	}
	if err := sc.close(); err != nil {
		t.Fatal(err)
	}
	if got, err := readSidecar(path); err != nil || got != 12 {
		t.Fatalf("read %d, %v; want 12", got, err)
	}
	raw := fileBytes(t, path)
	if len(raw) != seqFileSize {
		t.Fatalf("sidecar is %d bytes", len(raw))
	}
	// A torn write damages one slot: the other still holds a mark at most
	// one commit old (here: the newest slot is torn, 12 → the older 12).
	for slot := range 2 {
		torn := bytes.Clone(raw)
		copy(torn[slot*seqSlotSize+10:], []byte{0xde, 0xad})
		if err := os.WriteFile(path, torn, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readSidecar(path)
		if err != nil || got < 9 {
			t.Fatalf("slot %d torn: read %d, %v; want the other slot's mark", slot, got, err)
		}
	}
	if _, _, err := decodeSidecar(bytes.Repeat([]byte{1}, seqFileSize)); err == nil {
		t.Fatal("garbage decoded")
	}
	if got, err := readSidecar(path + ".missing"); err != nil || got != 0 {
		t.Fatalf("missing sidecar: %d, %v", got, err)
	}
}

// The sequence never goes back: not after a restore of an older file, not
// with the sidecar lost (the database mark), not with it damaged.
func TestSequenceNeverGoesBack(t *testing.T) {
	path := dbPath(t)
	ctx := context.Background()
	raiseN := func(s *Store, n int, prefix string) int64 {
		var cs []agent.TicketChange
		for i := range n {
			cs = append(cs, raiseC(draft(prefix+string(rune('a'+i)), agent.FaultLampFailure, s.now())))
		}
		res, err := s.ApplyChanges(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		return res[n-1].Ticket.Protocol
	}
	s := openT(t, Options{Path: path, ProtocolBase: 1_000_000})
	if got := raiseN(s, 3, "A"); got != 1_000_003 {
		t.Fatalf("first protocols end at %d, want 1000003 (base + seq from 1)", got)
	}
	closeAndVerify(t, s)
	old := fileBytes(t, path)

	s = openT(t, Options{Path: path, ProtocolBase: 1_000_000})
	high := raiseN(s, 5, "B")
	closeAndVerify(t, s)

	// Restore the older copy: the sidecar keeps the numbers unique.
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, Options{Path: path, ProtocolBase: 1_000_000})
	if got := raiseN(s, 1, "C"); got != high+1 {
		t.Fatalf("after restoring an older file: protocol %d, want %d", got, high+1)
	}
	high++
	closeAndVerify(t, s)

	// Sidecar lost: the database mark holds, and the sidecar is rewritten.
	if err := os.Remove(path + ".seq"); err != nil {
		t.Fatal(err)
	}
	s = openT(t, Options{Path: path, ProtocolBase: 1_000_000})
	if got := raiseN(s, 1, "D"); got != high+1 {
		t.Fatalf("without the sidecar: protocol %d, want %d", got, high+1)
	}
	high++
	closeAndVerify(t, s)
	if got, _ := readSidecar(path + ".seq"); got != uint64(high-1_000_000) {
		t.Fatalf("sidecar rewritten to %d, want %d", got, high-1_000_000)
	}

	// Sidecar garbage: same.
	if err := os.WriteFile(path+".seq", []byte("garbage garbage garbage garbage garbage garbage garbage garbage!"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, Options{Path: path, ProtocolBase: 1_000_000})
	if got := raiseN(s, 1, "E"); got != high+1 {
		t.Fatalf("with a damaged sidecar: protocol %d, want %d", got, high+1)
	}
	closeAndVerify(t, s)
}

func FuzzDecodeSidecar(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeSeqSlot(seqSlot{seq: 7, gen: 1}))
	f.Add(append(encodeSeqSlot(seqSlot{seq: 7, gen: 1}), encodeSeqSlot(seqSlot{seq: 8, gen: 2})...))
	f.Add(bytes.Repeat([]byte{0xff}, 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, _, err := decodeSidecar(b)
		if err != nil && seq != 0 {
			t.Fatalf("error with a value: %d", seq)
		}
		// Whatever was read, writing it back and reading again is stable.
		if err == nil {
			re := append(encodeSeqSlot(seqSlot{seq: seq, gen: 1}), encodeSeqSlot(seqSlot{seq: seq, gen: 2})...)
			if got, _, err := decodeSidecar(re); err != nil || got != seq {
				t.Fatalf("round trip %d → %d, %v", seq, got, err)
			}
		}
	})
}
