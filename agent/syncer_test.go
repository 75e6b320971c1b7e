package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// raise puts a pending ticket for (nameplate, fault) in the store.
func raise(t *testing.T, st *memStore, nameplate, fault string) Ticket {
	t.Helper()
	res, err := st.ApplyChanges(context.Background(), []TicketChange{{Kind: Raise, Draft: TicketDraft{
		Nameplate: nameplate, Fault: fault, RaisedAt: time.Now(), Since: time.Now(),
	}}})
	require.NoError(t, err)
	return res[0].Ticket
}

func clearFault(t *testing.T, st *memStore, nameplate, fault string, cancel bool) {
	t.Helper()
	_, err := st.ApplyChanges(context.Background(), []TicketChange{{Kind: Clear, Nameplate: nameplate, Fault: fault,
		ClearedAt: time.Now(), Cancel: cancel, Justification: "normalizou"}})
	require.NoError(t, err)
}

// startSyncer runs a syncer until the test ends.
func startSyncer(t *testing.T, st TicketStore, api TicketAPI, conc int) *Syncer {
	t.Helper()
	s := NewSyncer(SyncerConfig{
		Concurrency:   conc,
		Backoff:       func(int) time.Duration { return 20 * time.Millisecond },
		ShutdownGrace: time.Second,
	}, st, api)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return s
}

func waitState(t *testing.T, st *memStore, p int64, want TicketState) Ticket {
	t.Helper()
	require.Eventually(t, func() bool { return st.get(p).State == want }, 10*time.Second, 2*time.Millisecond,
		"ticket %d never reached %s", p, want)
	return st.get(p)
}

func TestSyncerCreateThenCancel(t *testing.T) {
	st := newMemStore()
	api := &fakeAPI{create: func([]byte) (CreateResult, error) { return CreateResult{IDDemanda: 77, Body: `{"status":"ok"}`}, nil }}
	s := startSyncer(t, st, api, 2)

	tk := raise(t, st, "IP01", FaultLampFailure)
	s.Notify()
	sent := waitState(t, st, tk.Protocol, StateSent)
	require.EqualValues(t, 77, sent.IDDemanda)
	require.Equal(t, 1, sent.Attempts)
	require.False(t, sent.InFlight)
	require.Equal(t, `{"status":"ok"}`, sent.ResponseBody)

	clearFault(t, st, "IP01", FaultLampFailure, true)
	s.Notify()
	done := waitState(t, st, tk.Protocol, StateCancelled)
	require.Equal(t, "normalizou", done.Justification)
	require.Equal(t, []string{fmt.Sprintf("create {\"id_external_protocol\":%d}", tk.Protocol), fmt.Sprintf("cancel %d", tk.Protocol)}, api.Calls())
	require.True(t, s.Health().LastSuccessAt.After(time.Time{}))
}

func TestSyncerAnswerClasses(t *testing.T) {
	cases := []struct {
		name      string
		answers   []error // one per attempt; nil = 201
		want      TicketState
		status    int
		collision bool
	}{
		{name: "created", answers: []error{nil}, want: StateSent},
		{name: "422 is permanent", answers: []error{&fakeAPIError{outcome: OutcomePermanent, status: 422, body: `{"error":"bad"}`}}, want: StateFailed, status: 422},
		{name: "409 on a first try is a collision", answers: []error{&fakeAPIError{outcome: OutcomeExists, status: 409}}, want: StateFailed, status: 409, collision: true},
		{name: "409 after a lost answer is ours", answers: []error{
			&fakeAPIError{outcome: OutcomeRetryable, maybe: true},
			&fakeAPIError{outcome: OutcomeExists, status: 409},
		}, want: StateSent},
		{name: "409 after a refused connection is a collision", answers: []error{
			&fakeAPIError{outcome: OutcomeRetryable, maybe: false},
			&fakeAPIError{outcome: OutcomeExists, status: 409},
		}, want: StateFailed, status: 409, collision: true},
		{name: "5xx then created", answers: []error{
			&fakeAPIError{outcome: OutcomeRetryable, status: 500},
			&fakeAPIError{outcome: OutcomeRetryable, status: 503},
			nil,
		}, want: StateSent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			var n atomic.Int32
			api := &fakeAPI{create: func([]byte) (CreateResult, error) {
				i := int(n.Add(1)) - 1
				if i >= len(tc.answers) {
					t.Errorf("unexpected attempt %d", i+1)
					return CreateResult{}, &fakeAPIError{outcome: OutcomePermanent, status: 400}
				}
				if tc.answers[i] == nil {
					return CreateResult{IDDemanda: 5}, nil
				}
				return CreateResult{}, tc.answers[i]
			}}
			s := startSyncer(t, st, api, 1)
			tk := raise(t, st, "IP01", FaultLampFailure)
			s.Notify()
			got := waitState(t, st, tk.Protocol, tc.want)
			require.Equal(t, len(tc.answers), got.Attempts)
			if tc.want == StateFailed {
				require.Equal(t, tc.status, got.LastStatus)
				require.NotEmpty(t, got.LastError)
			} else {
				require.Empty(t, got.LastError)
				require.False(t, got.SentAt.IsZero())
			}
			require.Equal(t, tc.collision, s.Health().Collisions == 1)
			if tc.collision {
				require.Contains(t, got.LastError, "EDGE_PROTOCOL_BASE")
			}
		})
	}
}

func TestSyncerCancelAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want TicketState
	}{
		{"200", nil, StateCancelled},
		{"404 means not open there: done", &fakeAPIError{outcome: OutcomeGone, status: 404}, StateCancelled},
		{"403 is permanent", &fakeAPIError{outcome: OutcomePermanent, status: 403}, StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			api := &fakeAPI{cancel: func(int64, string) error { return tc.err }}
			s := startSyncer(t, st, api, 1)
			tk := raise(t, st, "IP01", FaultLampFailure)
			s.Notify()
			waitState(t, st, tk.Protocol, StateSent)
			clearFault(t, st, "IP01", FaultLampFailure, true)
			s.Notify()
			waitState(t, st, tk.Protocol, tc.want)
		})
	}
}

// A clear while the create is in flight must not lose the ticket that the
// API is creating: once created, it is cancelled.
func TestSyncerClearDuringCreate(t *testing.T) {
	st := newMemStore()
	entered, release := make(chan struct{}), make(chan struct{})
	api := &fakeAPI{create: func([]byte) (CreateResult, error) {
		close(entered)
		<-release
		return CreateResult{IDDemanda: 9}, nil
	}}
	s := startSyncer(t, st, api, 1)
	tk := raise(t, st, "IP01", FaultLampFailure)
	s.Notify()
	<-entered
	clearFault(t, st, "IP01", FaultLampFailure, true)
	require.Equal(t, StatePending, st.get(tk.Protocol).State, "an in-flight ticket is not suppressed")
	close(release)
	got := waitState(t, st, tk.Protocol, StateCancelled)
	require.EqualValues(t, 9, got.IDDemanda)
	require.Len(t, api.Calls(), 2)
}

// A clear after a failed attempt that surely never reached the API
// suppresses the ticket: nothing is ever sent.
func TestSyncerClearAfterRefusedTrySuppresses(t *testing.T) {
	st := newMemStore()
	var calls atomic.Int32
	api := &fakeAPI{create: func([]byte) (CreateResult, error) {
		calls.Add(1)
		return CreateResult{}, &fakeAPIError{outcome: OutcomeRetryable, status: 0, maybe: false}
	}}
	s := NewSyncer(SyncerConfig{Concurrency: 1, Backoff: func(int) time.Duration { return time.Hour }}, st, api)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tk := raise(t, st, "IP01", FaultLampFailure)
	s.Notify()
	require.Eventually(t, func() bool { return st.get(tk.Protocol).Attempts == 1 && !st.get(tk.Protocol).InFlight }, 5*time.Second, time.Millisecond)
	clearFault(t, st, "IP01", FaultLampFailure, true)
	require.Equal(t, StateSuppressed, st.get(tk.Protocol).State)
	cancel()
	require.NoError(t, <-done)
	require.EqualValues(t, 1, calls.Load())
}

// A crash mid-request leaves InFlight on record: the next 409 is ours.
func TestSyncerResumesAfterCrashMidRequest(t *testing.T) {
	st := newMemStore()
	tk := raise(t, st, "IP01", FaultLampFailure)
	_, err := st.UpdateTicket(context.Background(), tk.Protocol, func(t *Ticket) error {
		t.InFlight, t.Attempts = true, 1
		return nil
	})
	require.NoError(t, err)
	api := &fakeAPI{create: func([]byte) (CreateResult, error) {
		return CreateResult{}, &fakeAPIError{outcome: OutcomeExists, status: 409}
	}}
	s := startSyncer(t, st, api, 1)
	s.Notify()
	got := waitState(t, st, tk.Protocol, StateSent)
	require.True(t, got.Uncertain)
	require.Zero(t, s.Health().Collisions)
}

// During an outage the syncer probes with one request at a time; when the
// API comes back the whole queue drains, each ticket exactly once, and with
// one request at a time in exact raise order. (With more, requests in flight
// together race each other to the API, so only dispatch is ordered.)
func TestSyncerOutageDrainsInOrder(t *testing.T) {
	type run struct{ conc, seed int }
	var runs []run
	for seed := range 6 {
		runs = append(runs, run{1, seed}, run{4, seed})
	}
	for _, r := range runs {
		conc := r.conc
		t.Run(fmt.Sprintf("concurrency=%d/seed=%d", conc, r.seed), func(t *testing.T) {
			st := newMemStore()
			var down atomic.Bool
			down.Store(true)
			var mu sync.Mutex
			var created []int64
			api := &fakeAPI{create: func(body []byte) (CreateResult, error) {
				if down.Load() {
					return CreateResult{}, &fakeAPIError{outcome: OutcomeRetryable, status: 503}
				}
				var p int64
				_, err := fmt.Sscanf(string(body), `{"id_external_protocol":%d}`, &p)
				require.NoError(t, err)
				mu.Lock()
				created = append(created, p)
				mu.Unlock()
				return CreateResult{IDDemanda: p}, nil
			}}
			// Jittered like production (full jitter): a ticket's own backoff
			// and the outage gate draw different delays, so the oldest
			// ticket is not always due when the gate opens.
			var rmu sync.Mutex
			rnd := rand.New(rand.NewPCG(uint64(r.seed), 7))
			backoff := func(int) time.Duration {
				rmu.Lock()
				defer rmu.Unlock()
				return time.Millisecond + time.Duration(rnd.Int64N(int64(20*time.Millisecond)))
			}
			s := NewSyncer(SyncerConfig{Concurrency: conc, Backoff: backoff}, st, api)
			const n = 20
			for i := range n {
				raise(t, st, fmt.Sprintf("IP%02d", i), FaultLampFailure)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			// Once a probe has failed, the requests that were in flight when
			// the outage began are all done: from then on, one at a time.
			require.Eventually(t, func() bool { return s.Health().ConsecutiveFailures >= conc+1 }, 10*time.Second, time.Millisecond)
			api.mu.Lock()
			api.maxSeen = api.inFlight
			api.mu.Unlock()
			require.Eventually(t, func() bool { return s.Health().ConsecutiveFailures >= conc+5 }, 10*time.Second, time.Millisecond)
			require.True(t, s.Health().Down)
			api.mu.Lock()
			require.Equal(t, 1, api.maxSeen, "during the outage the API is probed one request at a time")
			api.mu.Unlock()
			down.Store(false)
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(created) == n
			}, 20*time.Second, time.Millisecond)
			cancel()
			require.NoError(t, <-done)
			require.False(t, s.Health().Down)
			seen := map[int64]bool{}
			for i, p := range created {
				require.False(t, seen[p], "ticket %d created twice", p)
				seen[p] = true
				if conc == 1 {
					require.Equal(t, int64(i+1), p, "raise order: %v", created)
				}
			}
			for i := range n {
				require.Equal(t, StateSent, st.get(int64(i+1)).State)
			}
		})
	}
}

func TestSyncerRespectsConcurrency(t *testing.T) {
	st := newMemStore()
	gate := make(chan struct{})
	api := &fakeAPI{create: func([]byte) (CreateResult, error) {
		<-gate
		return CreateResult{}, nil
	}}
	s := startSyncer(t, st, api, 3)
	for i := range 10 {
		raise(t, st, fmt.Sprintf("IP%02d", i), FaultLampFailure)
	}
	s.Notify()
	require.Eventually(t, func() bool {
		api.mu.Lock()
		defer api.mu.Unlock()
		return api.inFlight == 3
	}, 5*time.Second, time.Millisecond)
	require.True(t, s.Busy())
	close(gate)
	require.Eventually(t, func() bool { return len(api.Calls()) == 10 }, 10*time.Second, time.Millisecond)
	api.mu.Lock()
	require.Equal(t, 3, api.maxSeen)
	api.mu.Unlock()
	for _, c := range api.Calls() {
		require.True(t, strings.HasPrefix(c, "create "))
	}
}
