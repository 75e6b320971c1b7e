package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// SyncerConfig tunes the ticket sync loop.
type SyncerConfig struct {
	// Concurrency is how many requests the syncer has in flight at once
	// (EDGE_M2M_CONCURRENCY; the client enforces the same bound). A slot
	// frees as soon as its answer arrives: recording the answer overlaps
	// the next request, so no slot waits on the disk.
	Concurrency int
	// Backoff gives the delay before retry number attempt (1 = after the
	// first failure). It should add jitter (m2m.Backoff.Delay does).
	Backoff func(attempt int) time.Duration
	// ShutdownGrace is how long in-flight requests may finish once Run's
	// context is done, before they are abandoned (default 5s). An abandoned
	// create is recorded as uncertain, so its next try is safe.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// APIHealth is what the syncer knows of the API, for the status page.
type APIHealth struct {
	LastSuccessAt       time.Time `json:"last_success_at,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	LastErrorAt         time.Time `json:"last_error_at,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	// Down is true while the API is considered unreachable: the syncer
	// then probes it with one request at a time.
	Down bool `json:"down"`
	// Collisions counts 409s on a first try: another gateway uses our
	// protocol numbers (check EDGE_PROTOCOL_BASE).
	Collisions int `json:"collisions"`
}

// Syncer moves queued tickets to the API: creates in order of raise,
// cancels once their create succeeded, each answer moving the ticket through
// the states of CONTRACT §6. It wakes at once on new work (Notify) and on
// the API coming back, not only on a timer.
//
// Outages: a failure that says the API as a whole is unreachable (no answer,
// 429, 502, 503, 504) puts the syncer in outage mode: one request at a time,
// spaced by a growing delay, so a gateway back after a week offline does not
// flood the API. The first success ends it, and the tickets that failed
// during the outage are retried at once, in order, ahead of their own
// backoff. Other retryable failures (a 500 on one ticket) only back off that
// ticket.
type Syncer struct {
	cfg   SyncerConfig
	store TicketStore
	api   TicketAPI
	log   *slog.Logger
	now   func() time.Time

	wake chan struct{}
	beat atomic.Int64 // unix nanos of the loop's last turn, for the watchdog

	mu       sync.Mutex
	health   APIHealth
	gateAt   time.Time          // in outage: no request before this
	victims  map[int64]struct{} // tickets that failed during the current outage
	inFlight map[int64]struct{} // dispatched, answer not yet recorded
	// requesting counts the tickets holding a request slot: dispatched,
	// and their request not yet answered.
	requesting int
	queued     bool // the last look at the queue found due work
}

// NewSyncer builds a syncer; it does no I/O until Run.
func NewSyncer(cfg SyncerConfig, store TicketStore, api TicketAPI) *Syncer {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(attempt int) time.Duration { return time.Second << min(attempt, 8) }
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Syncer{
		cfg: cfg, store: store, api: api, log: cfg.Logger, now: cfg.Now,
		wake:     make(chan struct{}, 1),
		victims:  map[int64]struct{}{},
		inFlight: map[int64]struct{}{},
	}
}

// Notify tells the syncer there is new work (a ticket raised or cleared). It
// never blocks.
func (s *Syncer) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// APIRecovered tells the syncer that another call to the same API (the
// attribute flush) just succeeded: an outage is over.
func (s *Syncer) APIRecovered() {
	s.mu.Lock()
	down := s.health.Down
	s.mu.Unlock()
	if down {
		s.recordSuccess()
		s.Notify()
	}
}

// Health returns a copy of what the syncer knows of the API.
func (s *Syncer) Health() APIHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// Busy reports whether tickets are waiting to be sent now, so that
// lower-priority traffic (device attributes) can step aside: tickets first.
func (s *Syncer) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued || len(s.inFlight) > 0
}

type result struct{ protocol int64 }

// maxWorking bounds the tickets worked on at once (requesting, or
// recording their answer), so a slow disk cannot pile up goroutines.
func (s *Syncer) maxWorking() int { return 2 * s.cfg.Concurrency }

// maxIdle bounds how long the loop sleeps with nothing to do.
const maxIdle = 5 * time.Second

// Beat returns when the loop last turned.
func (s *Syncer) Beat() time.Time { return unixNanos(s.beat.Load()) }

func unixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Run sends tickets until ctx is done, then lets in-flight requests finish
// for up to ShutdownGrace and returns. It returns an error only when the
// store fails in a way it cannot retry past.
func (s *Syncer) Run(ctx context.Context) error {
	// Requests get their own context: on shutdown they have a grace period
	// to finish, so a create that reached the API can record its answer.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	done := make(chan result, s.maxWorking())
	var wg sync.WaitGroup
	defer wg.Wait()

	timer := time.NewTimer(0)
	defer timer.Stop()
	storeFailures := 0
	for {
		s.beat.Store(s.now().UnixNano())
		if ctx.Err() != nil {
			return s.drain(&wg, done, cancelReqs)
		}
		next, err := s.dispatch(reqCtx, &wg, done)
		if err != nil {
			storeFailures++
			s.log.Error("sync: reading the queue failed", "err", err, "failures", storeFailures)
			next = s.now().Add(min(time.Duration(storeFailures)*time.Second, 30*time.Second))
		} else {
			storeFailures = 0
		}
		// Turn at least every few seconds, so the watchdog sees a live loop.
		if limit := s.now().Add(maxIdle); next.IsZero() || next.After(limit) {
			next = limit
		}
		resetTimer(timer, next, s.now())
		select {
		case <-ctx.Done():
		case r := <-done:
			s.mu.Lock()
			delete(s.inFlight, r.protocol)
			s.mu.Unlock()
		case <-s.wake:
		case <-timer.C:
		}
	}
}

func (s *Syncer) drain(wg *sync.WaitGroup, done chan result, cancelReqs context.CancelFunc) error {
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-grace.C:
		s.log.Warn("sync: abandoning requests in flight at shutdown; they will be retried safely")
		cancelReqs()
		<-finished
	}
	for {
		select {
		case <-done:
		default:
			return nil
		}
	}
}

// resetTimer arms t to fire at next, or not at all when next is zero.
func resetTimer(t *time.Timer, next, now time.Time) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	if next.IsZero() {
		return
	}
	t.Reset(max(next.Sub(now), time.Millisecond))
}

// dispatch starts requests for due tickets while there are free slots and
// returns when the loop should look again (zero: only when woken).
func (s *Syncer) dispatch(ctx context.Context, wg *sync.WaitGroup, done chan<- result) (time.Time, error) {
	now := s.now()
	s.mu.Lock()
	down, gateAt := s.health.Down, s.gateAt
	busy := len(s.inFlight)
	free := min(s.cfg.Concurrency-s.requesting, s.maxWorking()-busy)
	if down {
		// Outage: one probe at a time, not before the gate opens.
		free = min(free, 1-busy)
		if now.Before(gateAt) {
			s.mu.Unlock()
			return gateAt, nil
		}
	}
	s.mu.Unlock()
	if free <= 0 {
		return time.Time{}, nil // a finishing request wakes the loop
	}

	// Candidates: the tickets that failed during the current or last outage
	// (due at once, whatever their own backoff: the outage gate spaced
	// them), and the due tickets. All in protocol (raise) order, so the
	// queue drains in order; in an outage the probe is the oldest of them.
	batch, err := s.victimTickets(free)
	if err != nil {
		return time.Time{}, err
	}
	due, next, err := s.store.DueTickets(now, free+busy+len(batch))
	if err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	for _, t := range due {
		if _, busy := s.inFlight[t.Protocol]; busy || containsTicket(batch, t.Protocol) {
			continue
		}
		batch = append(batch, t)
	}
	slices.SortFunc(batch, func(a, b Ticket) int { return cmp.Compare(a.Protocol, b.Protocol) })
	if len(batch) > free {
		// More due than slots: look again as soon as one frees.
		next = time.Time{}
		batch = batch[:free]
	}
	for _, t := range batch {
		delete(s.victims, t.Protocol)
	}
	s.queued = len(batch) > 0
	for _, t := range batch {
		s.inFlight[t.Protocol] = struct{}{}
	}
	s.requesting += len(batch)
	s.mu.Unlock()

	if len(batch) > 0 && s.log.Enabled(ctx, slog.LevelDebug) {
		ps := make([]int64, len(batch))
		for i := range batch {
			ps[i] = batch[i].Protocol
		}
		s.log.Debug("sync: dispatch", "down", down, "tickets", ps)
	}
	for _, t := range batch {
		wg.Add(1)
		go func(t Ticket) {
			defer wg.Done()
			var once sync.Once
			answered := func() {
				once.Do(func() {
					s.mu.Lock()
					s.requesting--
					s.mu.Unlock()
					s.Notify() // a request slot is free
				})
			}
			s.process(ctx, t, answered)
			answered() // a worker that sent nothing frees its slot too
			done <- result{t.Protocol}
		}(t)
	}
	return next, nil
}

// victimTickets returns up to n tickets that failed during an outage and
// are still queued and not in flight, in protocol order. Victims no longer
// queued are forgotten.
func (s *Syncer) victimTickets(n int) ([]Ticket, error) {
	s.mu.Lock()
	ps := make([]int64, 0, len(s.victims))
	for p := range s.victims {
		if _, busy := s.inFlight[p]; !busy {
			ps = append(ps, p)
		}
	}
	s.mu.Unlock()
	slices.Sort(ps)
	var out []Ticket
	for _, p := range ps {
		if len(out) == n {
			break
		}
		t, err := s.store.Ticket(p)
		if err != nil || !t.State.Queued() {
			// Pruned, or done meanwhile: nothing to retry.
			s.mu.Lock()
			delete(s.victims, p)
			s.mu.Unlock()
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func containsTicket(ts []Ticket, p int64) bool {
	for _, t := range ts {
		if t.Protocol == p {
			return true
		}
	}
	return false
}

// errSkip aborts an update whose ticket changed under us (cleared and
// suppressed while it waited): nothing to send.
var errSkip = errors.New("ticket no longer needs this request")

// process makes the one request a queued ticket needs and records the answer.
// answered is called once the request has its answer (or failed), before
// the answer is recorded: it frees the request slot.
func (s *Syncer) process(ctx context.Context, t Ticket, answered func()) {
	switch t.State {
	case StatePending:
		s.create(ctx, t, answered)
	case StateCancelPending:
		s.cancel(ctx, t, answered)
	}
}

// storeCtx is the context for recording an answer: never the request's, so
// that an answer received while shutting down is still written.
func storeCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (s *Syncer) create(ctx context.Context, t Ticket, answered func()) {
	// Write ahead: the attempt is on record before the request leaves, so a
	// crash mid-request makes the next 409 count as ours.
	var uncertainBefore bool
	started := s.now()
	cur, err := s.store.UpdateTicket(storeCtx(ctx), t.Protocol, func(t *Ticket) error {
		if t.State != StatePending {
			return errSkip
		}
		if t.InFlight { // a previous run died mid-request
			t.Uncertain = true
		}
		t.InFlight = true
		t.Attempts++
		t.LastAttemptAt = started
		return nil
	})
	if err != nil {
		if !errors.Is(err, errSkip) {
			s.log.Error("sync: recording a create attempt failed; will retry", "protocol", t.Protocol, "err", err)
		}
		return
	}
	uncertainBefore = cur.Uncertain

	res, callErr := s.api.CreateTicket(ctx, cur.CreateBody)
	answered()
	now := s.now()
	outcome, apiErr := classify(callErr)
	maybeDelivered := apiErr != nil && apiErr.MaybeDelivered() || apiErr == nil && callErr != nil
	var collision bool

	final, err := s.store.UpdateTicket(storeCtx(ctx), t.Protocol, func(t *Ticket) error {
		t.InFlight = false
		setAnswer(t, callErr, apiErr)
		switch outcome {
		case OutcomeOK:
			t.State, t.SentAt, t.IDDemanda = StateSent, now, res.IDDemanda
			t.ResponseBody, t.LastError, t.LastStatus = res.Body, "", 201
		case OutcomeExists:
			if uncertainBefore {
				// An earlier try reached the API without us hearing back.
				t.State, t.SentAt, t.LastError = StateSent, now, ""
			} else {
				t.State = StateFailed
				t.LastError = fmt.Sprintf("id_external_protocol %d already exists at the API on a first try: "+
					"another gateway uses the same numbers (check EDGE_PROTOCOL_BASE); fix it, then retry this ticket", t.Protocol)
			}
		case OutcomePermanent, OutcomeGone:
			t.State = StateFailed
		default: // retryable, or the request was abandoned
			t.Uncertain = t.Uncertain || maybeDelivered
			t.NextAttemptAt = now.Add(s.retryDelay(t.Attempts, apiErr))
			if !t.ClearedAt.IsZero() && !t.Uncertain {
				// Cleared meanwhile and surely never delivered: nothing to
				// create and nothing to cancel.
				t.State = StateSuppressed
			}
			return nil
		}
		return nil
	})
	if err != nil {
		s.log.Error("sync: recording a create answer failed", "protocol", t.Protocol, "outcome", outcome, "err", err)
		return
	}
	collision = outcome == OutcomeExists && !uncertainBefore
	s.account(final, outcome, apiErr, callErr, collision)

	// A fault that cleared while the create was in flight: now that the
	// ticket exists there, queue its cancel.
	if final.State == StateSent && !final.ClearedAt.IsZero() && final.CancelWanted {
		if _, err := s.store.UpdateTicket(storeCtx(ctx), t.Protocol, func(t *Ticket) error {
			if t.State != StateSent {
				return errSkip
			}
			t.State, t.NextAttemptAt = StateCancelPending, s.now()
			return nil
		}); err != nil && !errors.Is(err, errSkip) {
			s.log.Error("sync: queueing the cancel of a cleared ticket failed", "protocol", t.Protocol, "err", err)
		}
		s.Notify()
	}
}

func (s *Syncer) cancel(ctx context.Context, t Ticket, answered func()) {
	started := s.now()
	callErr := s.api.CancelTicket(ctx, t.Protocol, t.Justification)
	answered()
	now := s.now()
	outcome, apiErr := classify(callErr)
	final, err := s.store.UpdateTicket(storeCtx(ctx), t.Protocol, func(t *Ticket) error {
		if t.State != StateCancelPending {
			return errSkip
		}
		t.Attempts++
		t.LastAttemptAt = started
		setAnswer(t, callErr, apiErr)
		switch outcome {
		case OutcomeOK, OutcomeGone:
			t.State, t.LastError = StateCancelled, ""
		case OutcomePermanent, OutcomeExists:
			t.State = StateFailed
		default:
			t.NextAttemptAt = now.Add(s.retryDelay(t.Attempts, apiErr))
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errSkip) {
			s.log.Error("sync: recording a cancel answer failed", "protocol", t.Protocol, "outcome", outcome, "err", err)
		}
		return
	}
	s.account(final, outcome, apiErr, callErr, false)
}

// classify returns the outcome of a call. An error that is not an APIError
// (the request was abandoned at shutdown) counts as retryable.
func classify(err error) (Outcome, APIError) {
	if err == nil {
		return OutcomeOK, nil
	}
	var apiErr APIError
	if errors.As(err, &apiErr) {
		return apiErr.Outcome(), apiErr
	}
	return OutcomeRetryable, nil
}

// setAnswer records the status, body and error of an answer on t.
func setAnswer(t *Ticket, callErr error, apiErr APIError) {
	if callErr == nil {
		return
	}
	t.LastError = callErr.Error()
	if apiErr != nil {
		t.LastStatus = apiErr.StatusCode()
		t.ResponseBody = apiErr.ResponseBody()
	} else {
		t.LastStatus = 0
	}
}

// retryDelay is the ticket's backoff, but never sooner than Retry-After.
func (s *Syncer) retryDelay(attempts int, apiErr APIError) time.Duration {
	d := s.cfg.Backoff(max(attempts, 1))
	if apiErr != nil && apiErr.RetryAfter() > d {
		d = apiErr.RetryAfter()
	}
	return d
}

// outageClass reports whether a retryable failure says the API as a whole
// is unreachable, rather than that this one request failed.
func outageClass(apiErr APIError) bool {
	if apiErr == nil {
		return false // abandoned at shutdown: says nothing about the API
	}
	switch apiErr.StatusCode() {
	case 0, 429, 502, 503, 504:
		return true
	}
	return false
}

// account updates the API health after one answer and logs it.
func (s *Syncer) account(t Ticket, outcome Outcome, apiErr APIError, callErr error, collision bool) {
	switch {
	case outcome == OutcomeRetryable && outageClass(apiErr):
		s.recordFailure(t, callErr, apiErr)
	case outcome == OutcomeRetryable:
		s.mu.Lock()
		s.health.LastError, s.health.LastErrorAt = callErr.Error(), s.now()
		s.mu.Unlock()
		s.log.Warn("sync: request failed; will retry", "protocol", t.Protocol, "nameplate", t.Nameplate,
			"fault", t.Fault, "attempts", t.Attempts, "next", t.NextAttemptAt, "err", callErr)
	default:
		// Any definite answer proves the API is reachable.
		s.recordSuccess()
	}
	switch {
	case collision:
		s.mu.Lock()
		s.health.Collisions++
		s.mu.Unlock()
		s.log.Error("sync: PROTOCOL NUMBER COLLISION: the API already has a ticket with this id_external_protocol "+
			"although we never sent it; another gateway shares this EDGE_PROTOCOL_BASE range. The ticket is failed; "+
			"fix EDGE_PROTOCOL_BASE and run `edge-agent retry`", "protocol", t.Protocol, "nameplate", t.Nameplate, "fault", t.Fault)
	case t.State == StateFailed:
		s.log.Error("sync: the API refused the request; ticket failed (see `edge-agent tickets --state failed`)",
			"protocol", t.Protocol, "nameplate", t.Nameplate, "fault", t.Fault, "status", t.LastStatus, "err", t.LastError)
	case t.State == StateSent:
		s.log.Info("sync: ticket created", "protocol", t.Protocol, "id_demanda", t.IDDemanda, "nameplate", t.Nameplate, "fault", t.Fault)
	case t.State == StateCancelled:
		s.log.Info("sync: ticket cancelled", "protocol", t.Protocol, "nameplate", t.Nameplate, "fault", t.Fault)
	case t.State == StateSuppressed:
		s.log.Info("sync: ticket suppressed: its fault cleared before it was sent", "protocol", t.Protocol)
	}
}

func (s *Syncer) recordSuccess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasDown := s.health.Down
	s.health.LastSuccessAt = s.now()
	s.health.ConsecutiveFailures = 0
	s.health.Down = false
	s.gateAt = time.Time{}
	if wasDown {
		s.log.Info("sync: the API answers again; draining the queue", "retrying_now", len(s.victims))
	}
}

func (s *Syncer) recordFailure(t Ticket, callErr error, apiErr APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.health.ConsecutiveFailures++
	s.health.LastError, s.health.LastErrorAt = callErr.Error(), now
	if !s.health.Down {
		s.log.Warn("sync: the API is unreachable; probing with one request at a time", "err", callErr)
	}
	s.health.Down = true
	if t.State.Queued() {
		s.victims[t.Protocol] = struct{}{}
	}
	d := s.cfg.Backoff(s.health.ConsecutiveFailures)
	if ra := apiErr.RetryAfter(); ra > d {
		d = ra
	}
	s.gateAt = now.Add(d)
}
