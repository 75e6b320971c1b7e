package store

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// schemaVersion is the layout of the buckets below. A file written by a
// newer layout is refused (never moved aside): a downgrade must not eat it.
// An older one is upgraded in place when opened read-write.
//
//	1: ticket records as JSON
//	2: ticket records in the binary layout of record.go (schema 1's JSON
//	   records are still read, and rewritten as binary when they change)
//	3: attribute records in the binary layout of attrrecord.go (the JSON
//	   records of schemas 1 and 2 are still read, and rewritten as binary
//	   when next written)
const schemaVersion = 3

// Buckets. Every index is maintained in the same transaction as the ticket
// it points to, by putTicket and deleteTicket only.
var (
	bktMeta     = []byte("meta")         // schema, seq, attr_ver, corrupt_*
	bktTickets  = []byte("tickets")      // pkey(protocol) → ticket record (record.go)
	bktQueue    = []byte("idx_queue")    // pkey(protocol) → tkey(NextAttemptAt); pending and cancel_pending only
	bktOpen     = []byte("idx_open")     // nameplate 0 fault → pkey(protocol); tickets with Open()
	bktState    = []byte("idx_state")    // state 0 pkey(protocol) → empty
	bktDevice   = []byte("idx_device")   // nameplate 0 pkey(protocol) → empty
	bktFinished = []byte("idx_finished") // tkey(FinishedAt) pkey(protocol) → empty
	bktCounts   = []byte("counts")       // state → uint64
	bktAttrs    = []byte("attrs")        // nameplate → attribute record (attrrecord.go)
	bktDirty    = []byte("attrs_dirty")  // nameplate → empty

	allBuckets = [][]byte{bktMeta, bktTickets, bktQueue, bktOpen, bktState, bktDevice,
		bktFinished, bktCounts, bktAttrs, bktDirty}
)

// Keys of the meta bucket.
var (
	metaSchema         = []byte("schema")
	metaSeq            = []byte("seq")      // highest sequence number ever allocated in this file
	metaAttrVer        = []byte("attr_ver") // last attribute record version given
	metaCorruptMovedTo = []byte("corrupt_moved_to")
	metaCorruptAt      = []byte("corrupt_at")
)

// pkey encodes a protocol so that byte order is numeric order, negative
// numbers included (the sign bit flipped), which makes cursors walk tickets
// in protocol (raise) order.
func pkey(p int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(p)^(1<<63))
	return b[:]
}

func pkeyDecode(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// tkey encodes a time the same way (Unix nanoseconds, sign flipped). The
// zero time, whose UnixNano is undefined, sorts first.
func tkey(t time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(unixNano(t))^(1<<63))
	return b[:]
}

func tkeyDecode(b []byte) time.Time {
	n := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func u64Decode(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func join(a string, sep byte, b []byte) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, sep)
	return append(k, b...)
}

func openKey(nameplate, fault string) []byte { return join(nameplate, 0, []byte(fault)) }

func stateKey(s agent.TicketState, p int64) []byte { return join(string(s), 0, pkey(p)) }

func statePrefix(s agent.TicketState) []byte { return append([]byte(s), 0) }

func deviceKey(nameplate string, p int64) []byte { return join(nameplate, 0, pkey(p)) }

func devicePrefix(nameplate string) []byte { return append([]byte(nameplate), 0) }

func finishedKey(at time.Time, p int64) []byte { return append(tkey(at), pkey(p)...) }
