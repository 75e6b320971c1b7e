package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memAttrs is an in-memory AttributeStore and AttributeAPI.
type memAttrs struct {
	mu       sync.Mutex
	puts     int // PutAttributes calls
	maxBatch int // the most devices one call carried
	recs     map[string]AttributeRecord
	dirty    map[string]bool
	sent     []DeviceAttributes
	putErr   error
	sendErr  error
}

func newMemAttrs() *memAttrs {
	return &memAttrs{recs: map[string]AttributeRecord{}, dirty: map[string]bool{}}
}

func (m *memAttrs) PutAttributes(_ context.Context, attrs []DeviceAttributes) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.putErr != nil {
		return m.putErr
	}
	m.puts++
	m.maxBatch = max(m.maxBatch, len(attrs))
	for _, a := range attrs {
		r := m.recs[a.Nameplate]
		m.recs[a.Nameplate] = AttributeRecord{Attributes: a, Version: r.Version + 1}
		m.dirty[a.Nameplate] = true
	}
	return nil
}

func (m *memAttrs) DirtyAttributes(limit int) ([]AttributeRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []AttributeRecord
	for n := range m.dirty {
		if len(out) == limit {
			break
		}
		out = append(out, m.recs[n])
	}
	return out, nil
}

func (m *memAttrs) MarkAttributesSynced(_ context.Context, recs []AttributeRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		if m.recs[r.Attributes.Nameplate].Version == r.Version {
			delete(m.dirty, r.Attributes.Nameplate)
		}
	}
	return nil
}

func (m *memAttrs) UpdateAttributes(_ context.Context, attrs []DeviceAttributes) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sendErr != nil {
		return m.sendErr
	}
	m.sent = append(m.sent, attrs...)
	return nil
}

var testDetectorConfig = DetectorConfig{
	ConfirmCount: 3, NominalVoltage: 220, VoltageTolerance: 0.10, LampMinPower: 5, MinPowerFactor: 0.85,
	CyclingSwitches: 6, CyclingWindow: time.Hour, DayLux: 50, CommLossAfter: 15 * time.Minute,
	ReportInterval: 5 * time.Minute,
}

type pipelineRig struct {
	det   *Detector
	store *memStore
	attrs *memAttrs
	p     *Pipeline
	t0    time.Time
}

func newPipelineRig(t *testing.T, cancelOnClear bool) *pipelineRig {
	t.Helper()
	t0 := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	r := &pipelineRig{det: NewDetector(testDetectorConfig, nil, t0), store: newMemStore(), attrs: newMemAttrs(), t0: t0}
	r.p = NewPipeline(PipelineConfig{
		GatewayID: "gw-test", CancelOnClear: cancelOnClear,
		DefaultSite: Site{State: "MG", Municipality: "Uberaba"},
		Location:    time.FixedZone("-03", -3*3600), AttributesInterval: time.Minute,
	}, r.det, r.store, r.attrs, r.attrs, nil)
	return r
}

// send feeds one reading with the given voltage, i minutes after t0.
func (r *pipelineRig) send(ctx context.Context, i int, voltage float64) error {
	at := r.t0.Add(time.Duration(i) * time.Minute)
	tm := &Telemetry{Nameplate: "IP05", At: at, Received: at, Lat: -19.7472, Lon: -47.9381,
		Reading: Reading{Fields: FieldVoltage | FieldPosition | FieldTime, Voltage: voltage}}
	return r.p.HandleTelemetry(ctx, tm)
}

func TestPipelineRaiseAndClearMakeDurableTicketChanges(t *testing.T) {
	ctx := context.Background()
	r := newPipelineRig(t, true)
	for i := range 2 {
		require.NoError(t, r.send(ctx, i, 260))
	}
	require.Zero(t, r.store.applies, "no ticket before the confirm count")
	require.NoError(t, r.send(ctx, 2, 260))
	require.Equal(t, 1, r.store.applies)

	tk := r.store.get(1)
	require.Equal(t, FaultSupplyVoltageTooHigh, tk.Fault)
	require.Equal(t, StatePending, tk.State)
	require.Equal(t, r.t0, tk.Since, "since the first reading of the confirming run")
	require.Equal(t, r.t0.Add(2*time.Minute), tk.RaisedAt)
	require.Equal(t, "-19.7472", tk.Site.Latitude, "a device missing from the registry: its reported position")
	require.Equal(t, "-47.9381", tk.Site.Longitude)
	require.Equal(t, "Uberaba", tk.Site.Municipality)
	require.Contains(t, tk.Description, "260", "the description shows the measured value")
	require.Contains(t, tk.Description, "gw-test")

	// Healthy readings clear it: a never-sent ticket is suppressed.
	for i := 3; i < 6; i++ {
		require.NoError(t, r.send(ctx, i, 221))
	}
	require.Equal(t, StateSuppressed, r.store.get(1).State)
}

func TestPipelineClearAfterSendQueuesCancelWithJustification(t *testing.T) {
	ctx := context.Background()
	r := newPipelineRig(t, true)
	for i := range 3 {
		require.NoError(t, r.send(ctx, i, 260))
	}
	_, err := r.store.UpdateTicket(ctx, 1, func(t *Ticket) error { t.State = StateSent; return nil })
	require.NoError(t, err)
	for i := 3; i < 6; i++ {
		require.NoError(t, r.send(ctx, i, 221))
	}
	tk := r.store.get(1)
	require.Equal(t, StateCancelPending, tk.State)
	require.NotEmpty(t, tk.Justification)
	require.True(t, strings.Contains(tk.Justification, "normaliz"), "Portuguese: %q", tk.Justification)
}

func TestPipelineWithoutCancelOnClearLeavesSentTicket(t *testing.T) {
	ctx := context.Background()
	r := newPipelineRig(t, false)
	for i := range 3 {
		require.NoError(t, r.send(ctx, i, 260))
	}
	_, err := r.store.UpdateTicket(ctx, 1, func(t *Ticket) error { t.State = StateSent; return nil })
	require.NoError(t, err)
	for i := 3; i < 6; i++ {
		require.NoError(t, r.send(ctx, i, 221))
	}
	tk := r.store.get(1)
	require.Equal(t, StateSent, tk.State)
	require.False(t, tk.ClearedAt.IsZero())
}

// Persist before ack: while the store fails, the message is not done; when
// the caller gives up (shutdown) the detector forgets the message, so its
// redelivery raises the fault again.
func TestPipelinePersistBeforeAck(t *testing.T) {
	r := newPipelineRig(t, true)
	ctx := context.Background()
	require.NoError(t, r.send(ctx, 0, 260))
	require.NoError(t, r.send(ctx, 1, 260))

	var tries atomic.Int32
	r.store.fail = func(string) error {
		tries.Add(1)
		return errors.New("disk on fire")
	}
	shutdown, cancel := context.WithCancel(ctx)
	go func() {
		for tries.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	err := r.send(shutdown, 2, 260)
	require.Error(t, err, "not acknowledged")
	require.GreaterOrEqual(t, tries.Load(), int32(3), "the store was retried")
	require.Empty(t, r.store.tickets)

	// The broker delivers the message again once the agent is back.
	r.store.fail = nil
	require.NoError(t, r.send(ctx, 2, 260))
	require.Len(t, r.store.tickets, 1)
	require.Equal(t, FaultSupplyVoltageTooHigh, r.store.get(1).Fault)
}

func TestPipelineAttributesPersistedThenFlushed(t *testing.T) {
	r := newPipelineRig(t, true)
	ctx := context.Background()
	require.NoError(t, r.send(ctx, 0, 221))

	// The store fails: the change is kept for the next round, not lost.
	r.attrs.putErr = errors.New("disk full")
	r.p.saveAttributes(ctx)
	require.Empty(t, r.attrs.recs)
	r.attrs.putErr = nil
	r.p.saveAttributes(ctx)
	require.Contains(t, r.attrs.recs, "IP05")
	require.InDelta(t, 221, r.attrs.recs["IP05"].Attributes.Reading.Voltage, 0.01)

	// The API fails: the record stays dirty.
	r.attrs.sendErr = errors.New("503")
	r.p.flushAttributes(ctx)
	require.True(t, r.attrs.dirty["IP05"])
	r.attrs.sendErr = nil
	r.p.flushAttributes(ctx)
	require.False(t, r.attrs.dirty["IP05"])
	require.Len(t, r.attrs.sent, 1)
	require.Equal(t, "IP05", r.attrs.sent[0].Nameplate)
}

func TestPipelineSweepRaisesCommunicationFailure(t *testing.T) {
	r := newPipelineRig(t, true)
	ctx := context.Background()
	require.NoError(t, r.send(ctx, 0, 221))
	err := r.det.Sweep(r.t0.Add(20*time.Minute), func(evs []Event) error { return r.p.persist(ctx, evs) })
	require.NoError(t, err)
	require.Len(t, r.store.tickets, 1)
	tk := r.store.get(1)
	require.Equal(t, FaultCommunicationFailure, tk.Fault)
	// The next message clears it.
	require.NoError(t, r.send(ctx, 21, 221))
	require.Equal(t, StateSuppressed, r.store.get(1).State)
}

type partialErr struct {
	fakeAPIError
	notApplied []string
}

func (e *partialErr) NotApplied() []string { return e.notApplied }

// A device the API refuses for good does not hold up the others; a device
// not applied for a passing reason stays dirty.
func TestPipelineAttributeFailures(t *testing.T) {
	r := newPipelineRig(t, true)
	ctx := context.Background()
	for _, n := range []string{"IP01", "IP02", "IP03"} {
		tm := &Telemetry{Nameplate: n, At: r.t0, Received: r.t0, Reading: Reading{Fields: FieldVoltage, Voltage: 221}}
		require.NoError(t, r.p.HandleTelemetry(ctx, tm))
	}
	r.p.saveAttributes(ctx)
	require.Len(t, r.attrs.dirty, 3)

	r.attrs.sendErr = &partialErr{fakeAPIError: fakeAPIError{outcome: OutcomeRetryable, status: 503}, notApplied: []string{"IP02"}}
	r.p.flushAttributes(ctx)
	require.Equal(t, map[string]bool{"IP02": true}, r.attrs.dirty, "only the device not applied stays dirty")

	r.attrs.sendErr = &fakeAPIError{outcome: OutcomePermanent, status: 422}
	r.p.flushAttributes(ctx)
	require.Empty(t, r.attrs.dirty, "a permanent refusal is not retried every round")
}

// A full store defers a raise without holding the message: it is
// acknowledged, the detector forgets it, and the next reading that shows
// the fault raises it once there is room — with the original Since.
func TestPipelineFullStoreDefersWithoutStallingIntake(t *testing.T) {
	ctx := context.Background()
	r := newPipelineRig(t, true)
	require.NoError(t, r.send(ctx, 0, 260))
	require.NoError(t, r.send(ctx, 1, 260))
	r.store.fail = func(string) error { return fmt.Errorf("write: %w", ErrStoreFull) }
	require.NoError(t, r.send(ctx, 2, 260), "acknowledged: intake must not stall on a full store")
	require.Empty(t, r.store.tickets)
	require.EqualValues(t, 1, r.p.Deferred())

	r.store.fail = nil
	require.NoError(t, r.send(ctx, 3, 260))
	require.Len(t, r.store.tickets, 1)
	tk := r.store.get(1)
	require.Equal(t, FaultSupplyVoltageTooHigh, tk.Fault)
	require.Equal(t, r.t0, tk.Since, "the fault was seen since the first reading")
}

// A large fleet's attributes reach the store in bounded batches, every
// device once.
func TestPipelineAttributesSavedInBatches(t *testing.T) {
	r := newPipelineRig(t, true)
	ctx := context.Background()
	const n = 1234
	for i := range n {
		tm := &Telemetry{Nameplate: fmt.Sprintf("LP%05d", i), At: r.t0, Received: r.t0,
			Reading: Reading{Fields: FieldVoltage, Voltage: 221}}
		require.NoError(t, r.p.HandleTelemetry(ctx, tm))
	}
	r.p.saveAttributes(ctx)
	require.Len(t, r.attrs.recs, n)
	require.LessOrEqual(t, r.attrs.maxBatch, attrSaveBatch)
	require.Equal(t, (n+attrSaveBatch-1)/attrSaveBatch, r.attrs.puts)
	r.p.saveAttributes(ctx)
	require.Equal(t, (n+attrSaveBatch-1)/attrSaveBatch, r.attrs.puts, "nothing changed: nothing written")
}
