package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Group commit.
//
// Every write is a request: a function over the write transaction. One
// writer goroutine takes a request, then every request already waiting (up
// to maxBatch), runs them all in one bbolt transaction and commits once — two
// fdatasyncs for the whole batch instead of two per ticket. Batches form by
// themselves: while one commit waits for the disk, new callers queue up on
// the channel. No timer adds latency to a lone write.
//
// A request whose function fails must not take the others down: the
// transaction is rolled back, that request gets its error, and the rest run
// again in a fresh transaction. So functions may run more than once and must
// derive everything from the transaction (they do: the store's own
// functions read their state from it; UpdateTicket's fn is documented pure).
//
// Each caller is answered only after its batch is committed (durable), or
// with the error that kept it from being.

// maxBatch bounds one transaction, so that a storm of thousands of callers
// still commits every few milliseconds and memory stays small.
const maxBatch = 1024

// pruneChunk bounds one pruning transaction.
const pruneChunk = 1024

type request struct {
	ctx context.Context
	fn  func(w *wtx) error
	// growth marks writes that add data (new tickets, attribute records):
	// they may not use the space reserved for moving tickets along.
	growth bool
	done   chan error
}

// wtx is one run of a batch's transaction.
type wtx struct {
	s     *Store
	tx    *bolt.Tx
	now   time.Time
	floor uint64 // the sequence floor from the sidecar
	wrote bool   // something was written: commit, else roll back
	// seq is the highest sequence number allocated in this run, 0 for none,
	// and counts the change of each state's counter. Both are kept here and
	// written once by flush, before the commit, instead of a read and a
	// write of the meta or counts bucket per ticket.
	seq    uint64
	counts map[agent.TicketState]int64
}

// flush writes the sequence mark and the state counters this run changed.
// Every commit of a wtx's transaction is preceded by it.
func (w *wtx) flush() error {
	if w.seq > 0 {
		if err := w.tx.Bucket(bktMeta).Put(metaSeq, u64(w.seq)); err != nil {
			return fmt.Errorf("record sequence: %w", err)
		}
	}
	b := w.tx.Bucket(bktCounts)
	for st, delta := range w.counts {
		if delta == 0 {
			continue
		}
		n := max(int64(u64Decode(b.Get([]byte(st))))+delta, 0)
		if err := b.Put([]byte(st), u64(uint64(n))); err != nil {
			return fmt.Errorf("count %s tickets: %w", st, err)
		}
	}
	return nil
}

// submit hands a write to the writer and waits until it is durable. ctx
// bounds the wait to be accepted; once accepted, the write is committed or
// fails on its own and submit waits for that answer (a commit takes
// milliseconds, and answering "cancelled" for a write that then commits
// would lie to the caller).
func (s *Store) submit(ctx context.Context, growth bool, fn func(*wtx) error) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, fn: fn, growth: growth, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
	return <-r.done
}

// writer is the one goroutine that writes. Close stops it between batches.
func (s *Store) writer() {
	defer s.wg.Done()
	for {
		var first *request
		select {
		case <-s.closing:
			return
		case first = <-s.reqs:
		}
		batch := []*request{first}
	gather:
		for !s.opts.noGroup && len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		s.commitBatch(batch)
		if s.hardMax > 0 {
			s.maintainSpace()
		}
	}
}

func answer(reqs []*request, err error) {
	for _, r := range reqs {
		r.done <- err
	}
}

// isMaxSize reports whether a write failed for lack of room: the cap
// (bbolt's MaxSize), or a disk that filled before the cap (ENOSPC). Both are
// handled alike: prune finished tickets, then report the store full.
func isMaxSize(err error) bool {
	return errors.Is(err, berrors.ErrMaxSizeReached) || errors.Is(err, syscall.ENOSPC)
}

func (s *Store) commitBatch(batch []*request) {
	live := make([]*request, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // not run: nothing written for it
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	rest, wrote, err := s.runTx(live, s.softMax, !s.opts.noGroup)
	if err == nil {
		s.committed(rest, wrote)
		return
	}
	if !isMaxSize(err) {
		s.failBatch(rest, err)
		return
	}
	s.capHits.Add(1)
	// The cap is reached: make room from finished tickets, oldest first
	// whatever their age, and try again.
	for {
		n, perr := s.pruneNow(time.Time{}, pruneChunk)
		if perr != nil || n == 0 {
			break
		}
		s.log.Warn("store at its size cap: pruned finished tickets early", logCount, n)
		if rest, wrote, err = s.runTx(rest, s.softMax, false); err == nil {
			s.committed(rest, wrote)
			return
		}
		if !isMaxSize(err) {
			s.failBatch(rest, err)
			return
		}
	}
	// Still full. Writes that add data are refused; the others (moving a
	// ticket along, clearing, marking synced) may use the reserve, so that
	// the queue can drain and space free up again.
	used, _ := s.usedBytes()
	full := fmt.Errorf("%w: %d of %d bytes in use, nothing finished left to prune (queued tickets are kept)", ErrFull, used, s.hardMax)
	if s.setFull(true) {
		s.log.Error("store full: new tickets are refused until space frees; queued tickets are kept",
			logPath, s.opts.Path, "used_bytes", used, "max_bytes", s.hardMax)
	}
	s.setLastError(full)
	var reserve []*request
	for _, r := range rest {
		if r.growth {
			r.done <- full
		} else {
			reserve = append(reserve, r)
		}
	}
	if len(reserve) == 0 {
		return
	}
	rest, _, err = s.runTx(reserve, s.hardMax, false)
	switch {
	case err == nil:
		answer(rest, nil)
	case isMaxSize(err):
		answer(rest, full)
	default:
		s.failBatch(rest, err)
	}
}

// committed answers a successful batch; a growing write that fit again
// (and wrote: a raise of an open fault proves nothing) ends the full state.
func (s *Store) committed(reqs []*request, wrote bool) {
	for _, r := range reqs {
		if r.growth && wrote {
			if s.isFull() && s.setFull(false) {
				s.log.Info("store no longer full", logPath, s.opts.Path)
			}
			break
		}
	}
	answer(reqs, nil) // after the state above: a caller may look at Stats next
}

func (s *Store) failBatch(reqs []*request, err error) {
	err = fmt.Errorf("commit to store: %w", err)
	s.setLastError(err)
	s.log.Error("store write failed", logErr, err)
	answer(reqs, err)
}

// runTx runs the requests in one transaction under the given size limit
// and commits. With more, requests that arrive while it runs join the
// transaction until none is waiting (or maxBatch): the callers answered by
// the previous commit submit again while this batch runs, and without this
// they would wait for a commit of their own, halving every batch. A lone
// write still commits at once. A request whose function fails is answered
// with its error and dropped, and the others run again. It returns the
// requests still unanswered: committed when err is nil (wrote says whether
// there was anything to commit), not written when it is not.
func (s *Store) runTx(reqs []*request, maxSize int, more bool) (_ []*request, wrote bool, _ error) {
	if s.hardMax > 0 {
		// Only this goroutine begins write transactions, and bbolt reads
		// MaxSize only inside them: changing it between them is safe.
		s.db.MaxSize = maxSize
	}
	for len(reqs) > 0 {
		tx, err := s.db.Begin(true)
		if err != nil {
			return reqs, false, err
		}
		fillAppendOnly(tx)
		w := &wtx{s: s, tx: tx, now: s.now().Round(0), floor: s.seqFloor}
		failed, ferr := -1, error(nil)
		for i := 0; ; i++ {
			if i == len(reqs) {
				r := s.waiting(more && len(reqs) < maxBatch)
				if r == nil {
					break
				}
				reqs = append(reqs, r)
			}
			if ferr = reqs[i].fn(w); ferr != nil {
				failed = i
				break
			}
		}
		if failed >= 0 {
			_ = tx.Rollback()
			reqs[failed].done <- ferr
			reqs = append(reqs[:failed:failed], reqs[failed+1:]...)
			continue
		}
		if !w.wrote {
			// Nothing changed (a raise of a fault already open, ...): the state
			// read is already durable, no commit or fsync needed.
			_ = tx.Rollback()
			return reqs, false, nil
		}
		if err := w.flush(); err != nil {
			_ = tx.Rollback()
			return reqs, false, err
		}
		var seqDone chan error
		if w.seq > 0 {
			// The sidecar is written while bbolt commits, so that its fsync
			// overlaps the commit's instead of following it. Recording a
			// number before its ticket is committed is safe: the sidecar
			// says "numbers up to here may have been given"; a commit that
			// fails leaves it ahead, and a number skipped is never reused.
			seqDone = make(chan error, 1)
			go func(seq uint64) { seqDone <- s.seq.write(seq) }(max(w.seq, s.seqFloor))
		}
		err = tx.Commit()
		if seqDone != nil {
			s.seqWritten(<-seqDone) // before anyone is answered
		}
		if err != nil {
			return reqs, false, err
		}
		s.commits.Add(1)
		if w.seq > 0 {
			s.seqFloor = max(s.seqFloor, w.seq)
			s.highWater.Store(int64(s.seqFloor))
		}
		return reqs, true, nil
	}
	return nil, false, nil
}

// waiting returns a request already waiting to be taken, nil if there is
// none (or if !take). One whose context ended meanwhile is answered with
// its error, not run.
func (s *Store) waiting(take bool) *request {
	for take {
		select {
		case r := <-s.reqs:
			if err := r.ctx.Err(); err != nil {
				r.done <- err
				continue
			}
			return r
		default:
			return nil
		}
	}
	return nil
}

// fillAppendOnly packs the buckets whose keys mostly arrive in increasing
// order (protocol numbers, finish times): bbolt's default 50 % split leaves
// every page of an append-only bucket half empty. The setting lasts for the
// transaction only.
func fillAppendOnly(tx *bolt.Tx) {
	for _, name := range [][]byte{bktTickets, bktQueue, bktFinished} {
		if b := tx.Bucket(name); b != nil {
			b.FillPercent = 0.9
		}
	}
}

// seqWritten reports a failed sidecar write. It is logged, not returned:
// the database holds the mark in the same transaction as the tickets; the
// sidecar only guards against the file being replaced.
func (s *Store) seqWritten(err error) {
	if err != nil {
		s.setLastError(err)
		s.log.Error("sequence sidecar not updated; numbers stay unique unless the store file is also replaced", logErr, err)
	}
}

// allocProtocol numbers a new ticket: the next sequence number after both
// the database mark and the sidecar's, persisted in this transaction.
// The database mark is written by flush, in the same transaction.
func (w *wtx) allocProtocol() (int64, error) {
	last := w.seq
	if last == 0 {
		last = max(u64Decode(w.tx.Bucket(bktMeta).Get(metaSeq)), w.floor)
	}
	next := last + 1
	base := w.s.opts.ProtocolBase
	if next > math.MaxInt64 || (base > 0 && int64(next) > math.MaxInt64-base) {
		return 0, fmt.Errorf("number ticket: %w: protocol sequence exhausted (base %d, seq %d)", ErrInvalid, base, next)
	}
	w.seq, w.wrote = next, true
	return base + int64(next), nil
}

// usedBytes is the data in the file: bbolt's high-water mark less the free
// pages (pages pending release count as free: they will be).
func (s *Store) usedBytes() (int64, error) {
	var high int64
	if err := s.db.View(func(tx *bolt.Tx) error { high = tx.Size(); return nil }); err != nil {
		return 0, err
	}
	st := s.db.Stats()
	return high - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize), nil
}

// headroom is how much the file can still take under the soft cap: the
// free pages, plus the room left to grow. bbolt grows the file in steps of
// AllocSize and refuses a step that would pass MaxSize, so the last step
// below the cap is not room.
func (s *Store) headroom() (int64, error) {
	var high int64
	if err := s.db.View(func(tx *bolt.Tx) error { high = tx.Size(); return nil }); err != nil {
		return 0, err
	}
	st := s.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	grow := int64(s.softMax-s.db.AllocSize) - high
	return max(grow, 0) + free, nil
}

// maintainSpace runs after each batch on a capped store: when the headroom
// falls under 10 % of the cap (plus what one transaction's copy-on-write
// pages need), it prunes finished tickets, oldest first whatever their age,
// so that a storm finds room instead of hitting the cap in its path.
func (s *Store) maintainSpace() {
	room, err := s.headroom()
	if err != nil {
		return
	}
	if room >= int64(s.softMax)/10+txOverhead*int64(s.db.Info().PageSize) {
		return
	}
	if n, err := s.pruneNow(time.Time{}, pruneChunk); err == nil && n > 0 {
		s.log.Info("store near its size cap: pruned finished tickets early", logCount, n, "headroom_bytes", room)
	}
}

// txOverhead is about how many pages one write transaction copies
// (touched leaves and branches of each bucket, the freelist, the meta).
const txOverhead = 32

// pruneNow removes up to limit finished tickets that finished before cutoff
// (any age when cutoff is zero), in its own transaction, from the writer
// goroutine itself. It may use the reserve: deleting is how space returns.
func (s *Store) pruneNow(cutoff time.Time, limit int) (int, error) {
	if s.hardMax > 0 {
		s.db.MaxSize = s.hardMax
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return 0, err
	}
	w := &wtx{s: s, tx: tx, now: s.now().Round(0), floor: s.seqFloor}
	n, err := w.prune(cutoff, limit)
	if err == nil && n > 0 {
		err = w.flush()
	}
	if err != nil || n == 0 {
		_ = tx.Rollback()
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		s.setLastError(fmt.Errorf("prune: %w", err))
		return 0, err
	}
	s.commits.Add(1)
	s.pruned.Add(int64(n))
	return n, nil
}
