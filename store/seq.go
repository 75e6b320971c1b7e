package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// The sequence sidecar, <path>.seq.
//
// Why a second file: the database alone cannot promise "never reused". A
// restore of an older backup, or a corrupt file moved aside and replaced by
// a fresh one, would bring back a lower high-water mark, and the next
// tickets would reuse id_external_protocol numbers the cloud has already
// seen — a 409 at best, another ticket's cancel at worst. The sidecar is
// written after every commit that allocated numbers, so it survives those
// events (it is never moved aside or restored by us); Open takes the larger
// of the two. The database copy (same transaction as the ticket) covers the
// opposite case, a crash between the commit and the sidecar write.
//
// Layout: two 32-byte slots, written alternately, each
//
//	[0:8]   magic "edgeseq1"
//	[8:16]  high-water sequence number, big endian
//	[16:24] generation, big endian (which slot is newer)
//	[24:28] CRC-32C of [0:24]
//	[28:32] zero
//
// A power cut tears at most the slot being written; the other still holds
// the previous value, which is at most one commit behind and is then
// corrected by the database copy. Reading takes the largest valid value.

const (
	seqSlotSize = 32
	seqFileSize = 2 * seqSlotSize
	seqMagic    = "edgeseq1"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errSidecarCorrupt says neither slot held a valid record.
var errSidecarCorrupt = errors.New("sequence sidecar: no valid slot")

type seqSlot struct {
	seq uint64
	gen uint64
}

func encodeSeqSlot(s seqSlot) []byte {
	b := make([]byte, seqSlotSize)
	copy(b, seqMagic)
	binary.BigEndian.PutUint64(b[8:], s.seq)
	binary.BigEndian.PutUint64(b[16:], s.gen)
	binary.BigEndian.PutUint32(b[24:], crc32.Checksum(b[:24], crcTable))
	return b
}

func decodeSeqSlot(b []byte) (seqSlot, bool) {
	if len(b) < seqSlotSize || string(b[:8]) != seqMagic {
		return seqSlot{}, false
	}
	if crc32.Checksum(b[:24], crcTable) != binary.BigEndian.Uint32(b[24:]) {
		return seqSlot{}, false
	}
	return seqSlot{seq: binary.BigEndian.Uint64(b[8:]), gen: binary.BigEndian.Uint64(b[16:])}, true
}

// decodeSidecar returns the largest valid sequence and the newest
// generation. An empty file is valid and holds 0; anything else without a
// valid slot is errSidecarCorrupt.
func decodeSidecar(b []byte) (seq, gen uint64, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	found := false
	for i := 0; i+seqSlotSize <= len(b) && i < seqFileSize; i += seqSlotSize {
		s, ok := decodeSeqSlot(b[i : i+seqSlotSize])
		if !ok {
			continue
		}
		found = true
		seq = max(seq, s.seq)
		gen = max(gen, s.gen)
	}
	if !found {
		return 0, 0, errSidecarCorrupt
	}
	return seq, gen, nil
}

// readSidecar reads the sidecar at path; a missing file holds 0.
func readSidecar(path string) (seq uint64, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read sequence sidecar: %w", err)
	}
	seq, _, err = decodeSidecar(b)
	return seq, err
}

// sidecar is the open, writable sequence file. Only the writer goroutine
// (and Open, before it starts) uses it.
type sidecar struct {
	f       *os.File
	gen     uint64
	seq     uint64
	corrupt bool // found without a valid slot at open: read as 0, to be rewritten
	created bool // did not exist: its directory entry needs a sync
}

// openSidecar opens or creates the sidecar. A corrupt one is flagged with
// its value as 0 so that the caller can log it and rewrite it from the
// database; it is never fatal, the database copy still holds the mark.
func openSidecar(path string) (*sidecar, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sequence sidecar: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, seqFileSize))
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("read sequence sidecar: %w", err)
	}
	sc := &sidecar{f: f, created: errors.Is(statErr, os.ErrNotExist)}
	seq, gen, derr := decodeSidecar(b)
	sc.seq, sc.gen, sc.corrupt = seq, gen, derr != nil
	return sc, nil
}

// write records seq durably in the older slot. Values never go down.
func (sc *sidecar) write(seq uint64) error {
	if seq < sc.seq {
		seq = sc.seq
	}
	next := sc.gen + 1
	off := int64(next%2) * seqSlotSize
	if _, err := sc.f.WriteAt(encodeSeqSlot(seqSlot{seq: seq, gen: next}), off); err != nil {
		return fmt.Errorf("write sequence sidecar: %w", err)
	}
	if err := sc.f.Sync(); err != nil {
		return fmt.Errorf("sync sequence sidecar: %w", err)
	}
	sc.gen, sc.seq = next, seq
	return nil
}

func (sc *sidecar) close() error { return sc.f.Close() }
