package store

import (
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// The store implements the agent's ports exactly.
var (
	_ agent.TicketStore    = (*Store)(nil)
	_ agent.AttributeStore = (*Store)(nil)
)

// Sentinel errors. Every error the store returns wraps one of these (or
// agent.ErrIllegalTransition, or a context error) where it applies, so
// callers test with errors.Is and never parse messages.
var (
	// ErrNotFound: no ticket with that protocol, or no store file (read-only open).
	ErrNotFound = errors.New("not found")
	// ErrLocked: another process (normally the running daemon) holds the file.
	ErrLocked = errors.New("store is locked")
	// ErrFull: the size cap is reached and nothing finished is left to prune.
	// Queued tickets are kept; the write that got this error changed nothing.
	// It is the agent's ErrStoreFull, so the pipeline can tell it apart.
	ErrFull = agent.ErrStoreFull
	// ErrReadOnly: a write on a store opened read-only.
	ErrReadOnly = errors.New("store is read-only")
	// ErrClosed: the store was closed before the request was accepted.
	ErrClosed = errors.New("store is closed")
	// ErrInvalid: bad input (an empty nameplate, an unknown change kind, a
	// ticket whose protocol was changed by an update function, ...).
	ErrInvalid = errors.New("invalid input")
	// ErrNotFailed: Retry of a ticket that is not failed.
	ErrNotFailed = errors.New("ticket is not failed")
	// ErrSchema: the file was written by a newer edge-agent; it is left alone.
	ErrSchema = errors.New("store file has a newer layout")
)

// Options configure Open. Path is required; the rest has defaults.
type Options struct {
	// Path is the bbolt file, e.g. <EDGE_DATA_DIR>/edge-agent.db. The
	// sequence sidecar lives beside it as <Path>.seq.
	Path string
	// ProtocolBase is EDGE_PROTOCOL_BASE: id_external_protocol =
	// ProtocolBase + seq, seq starting at 1.
	ProtocolBase int64
	// MaxBytes is EDGE_STORE_MAX_MB in bytes; 0 means no cap.
	MaxBytes int64
	// Retention is EDGE_TICKET_RETENTION: Prune removes finished tickets
	// that finished longer ago than this. 0 disables age-based pruning (the
	// size cap still prunes).
	Retention time.Duration
	// LockTimeout bounds the wait for the file lock; default 1s. A second
	// process fails with ErrLocked instead of hanging.
	LockTimeout time.Duration
	// ReadOnly opens for reading only (the CLI when no daemon runs): it
	// never writes, never creates or moves a file.
	ReadOnly bool
	// EncodeCreate builds a ticket's CreateBody once it is numbered. It must
	// be pure: it may run more than once for one ticket. nil leaves the
	// body empty.
	EncodeCreate func(*agent.Ticket) ([]byte, error)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger *slog.Logger

	// noGroup disables group commit (one transaction per request), for the
	// benchmark that measures what grouping buys.
	noGroup bool
	// attrFill, when not 0, is the attribute buckets' bbolt FillPercent,
	// for the benchmark that measures what packing their pages would buy.
	attrFill float64
}

// Stats is the store's health, for the status page and metrics.
type Stats struct {
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"` // the file's size on disk
	MaxBytes  int64  `json:"max_bytes"`  // 0: no cap
	// Full is set when a write was refused for lack of space after pruning
	// every finished ticket; it clears once a write that adds data (a new
	// ticket, an attribute record) succeeds again.
	Full      bool      `json:"full"`
	FullSince time.Time `json:"full_since,omitzero"`
	// LastError is the last failed write or maintenance step.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// CorruptMovedTo is where the last corrupt file was moved, if ever.
	CorruptMovedTo string    `json:"corrupt_moved_to,omitempty"`
	CorruptAt      time.Time `json:"corrupt_at,omitzero"`
	// HighWater is the highest sequence number ever allocated (the last
	// protocol given is ProtocolBase + HighWater).
	HighWater int64 `json:"high_water"`
	ReadOnly  bool  `json:"read_only"`
	// Pruned counts tickets removed by pruning since Open.
	Pruned int64 `json:"pruned"`
	// Commits counts write transactions since Open; with group commit it
	// grows much slower than the number of writes.
	Commits int64 `json:"commits"`
	// CapHits counts batches that found the file at its cap (then pruned
	// and retried, or answered ErrFull). Early pruning keeps it at 0 while
	// finished tickets can make room.
	CapHits int64 `json:"cap_hits"`
}

// Store is the durable ticket and attribute store. Its methods are safe for
// concurrent use. Reads run in their own bbolt read transactions, writes go
// through one writer goroutine that group-commits them.
type Store struct {
	opts   Options
	db     *bolt.DB
	log    *slog.Logger
	now    func() time.Time
	encode func(*agent.Ticket) ([]byte, error)

	// Writer side: owned by the writer goroutine once it runs.
	reqs     chan *request
	closing  chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	closeErr error
	closed   atomic.Bool
	seq      *sidecar // nil when read-only
	seqFloor uint64   // max of the sidecar and the db mark; writer only
	softMax  int      // bbolt MaxSize for growing writes
	hardMax  int      // bbolt MaxSize for writes that may use the reserve

	highWater atomic.Int64
	pruned    atomic.Int64
	commits   atomic.Int64
	capHits   atomic.Int64

	mu    sync.Mutex // guards stats
	stats Stats
}

// Stats returns a snapshot of the store's health. It stats the file; it
// does not touch the database.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	st.HighWater = s.highWater.Load()
	st.Pruned = s.pruned.Load()
	st.Commits = s.commits.Load()
	st.CapHits = s.capHits.Load()
	if fi, err := os.Stat(s.opts.Path); err == nil {
		st.SizeBytes = fi.Size()
	}
	return st
}

func (s *Store) setLastError(err error) {
	s.mu.Lock()
	s.stats.LastError = err.Error()
	s.stats.LastErrorAt = s.now()
	s.mu.Unlock()
}

// setFull records the full state; it reports whether it just began.
func (s *Store) setFull(full bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.stats.Full
	s.stats.Full = full
	switch {
	case full && !was:
		s.stats.FullSince = s.now()
	case !full:
		s.stats.FullSince = time.Time{}
	}
	return full != was
}

func (s *Store) isFull() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Full
}

// Close stops the writer and closes the file. Writes the writer had already
// accepted are committed (their callers get their normal answer); callers
// still waiting to be accepted get ErrClosed. Reads after Close get
// ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		if s.closing != nil {
			close(s.closing)
		}
		s.wg.Wait()
		var errs []error
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
		if s.seq != nil {
			if err := s.seq.close(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = wrapf("close store", err)
		}
	})
	return s.closeErr
}
