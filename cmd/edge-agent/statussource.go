package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/agent/httpapi"
	"github.com/edge-agent/edge-agent/mqtt"
	"github.com/edge-agent/edge-agent/store"
)

// The status adapter: it binds the concrete parts (detector, store, MQTT
// subscriber, syncer) to httpapi.Source, so that agent/httpapi imports none
// of them.

var _ httpapi.Source = (*statusSource)(nil)

// mqttStatus is what the status needs of *mqtt.Subscriber.
type mqttStatus interface {
	Stats() mqtt.Stats
	Connected() bool
}

// syncerStatus is what the status needs of *agent.Syncer.
type syncerStatus interface {
	Health() agent.APIHealth
	// Notify wakes the syncer after a retry put tickets back in the queue.
	Notify()
}

// statusLoop is a loop /healthz watches: healthy while it turned within
// Within (or, before its first turn, while the agent is younger than that).
type statusLoop struct {
	Name   string
	Beat   func() time.Time
	Within time.Duration
}

// registryInfo is the device registry file as last loaded.
type registryInfo struct {
	path    string
	rowErrs []agent.RowError
}

// maxRowErrorSamples is how many skipped registry rows the status lists.
const maxRowErrorSamples = 5

// statusParts are what the adapter reads. MQTT and Syncer may be nil (then
// the broker counts as disconnected and the API as never asked).
type statusParts struct {
	Version, GatewayID string
	Started            time.Time
	Now                func() time.Time
	Detector           *agent.Detector
	Store              *store.Store
	MQTT               mqttStatus
	// Broker is EDGE_MQTT_BROKER, shown without any credentials.
	Broker string
	Syncer syncerStatus
	Loops  []statusLoop
	// RegistryPath is EDGE_DEVICES_FILE ("" when none).
	RegistryPath string
}

// devicesTTL is how long one copy of every device is reused. A page refresh
// asks for two device lists, and several phones may be open: on a large
// fleet the copy (every device, with its history) is the expensive part, and
// a second-old list is as good as a new one.
const devicesTTL = time.Second

// statusSource implements httpapi.Source over the running daemon's parts.
type statusSource struct {
	p   statusParts
	reg atomic.Pointer[registryInfo]

	devMu   sync.Mutex
	devTTL  time.Duration
	devAt   time.Time // monotonic: when devList was taken
	devList []agent.DeviceView
}

func newStatusSource(p statusParts) *statusSource {
	if p.Now == nil {
		p.Now = time.Now
	}
	s := &statusSource{p: p, devTTL: devicesTTL}
	s.reg.Store(&registryInfo{path: p.RegistryPath})
	return s
}

// SetRegistry records the registry as (re)loaded, with the rows it skipped,
// for the status page. Safe to call at any time (SIGHUP).
func (s *statusSource) SetRegistry(path string, rowErrs []agent.RowError) {
	s.reg.Store(&registryInfo{path: path, rowErrs: rowErrs})
}

// Status implements httpapi.Source: counters only, no scan.
func (s *statusSource) Status(context.Context) httpapi.Snapshot {
	now := s.p.Now()
	snap := httpapi.Snapshot{
		Version: s.p.Version, GatewayID: s.p.GatewayID, Source: httpapi.SourceDaemon,
		UptimeS: int64(now.Sub(s.p.Started) / time.Second), StartedAt: httpapi.TimePtr(s.p.Started), Now: httpapi.TimePtr(now),
	}
	snap.MQTT = mqttSnapshot(s.p.MQTT, s.p.Broker)
	if s.p.Syncer != nil {
		h := s.p.Syncer.Health()
		snap.M2M = httpapi.M2MStatus{
			LastSuccessAt: httpapi.TimePtr(h.LastSuccessAt), LastError: h.LastError, LastErrorAt: httpapi.TimePtr(h.LastErrorAt),
			ConsecutiveFailures: h.ConsecutiveFailures, Down: h.Down, ProtocolCollisions: h.Collisions,
		}
	}
	fillStoreStatus(&snap, s.p.Store, now)
	if d := s.p.Detector; d != nil {
		c := d.Counts(now)
		snap.Devices = httpapi.DeviceCounts{Known: c.Known, Online: c.Online, Faulty: c.Faulty}
		snap.Clock.Trusted, snap.Clock.Reason = d.ClockTrust(now)
	}
	ri := s.reg.Load()
	snap.Registry = httpapi.RegistryStatus{Path: ri.path, RowErrors: len(ri.rowErrs), RowErrorSamples: []string{}}
	if s.p.Detector != nil {
		snap.Registry.Devices = s.p.Detector.Registry().Len()
	}
	for i, e := range ri.rowErrs {
		if i == maxRowErrorSamples {
			break
		}
		snap.Registry.RowErrorSamples = append(snap.Registry.RowErrorSamples, e.Error())
	}
	return snap
}

func mqttSnapshot(m mqttStatus, broker string) httpapi.MQTTStatus {
	out := httpapi.MQTTStatus{Broker: displayURL(broker), RejectedByReason: map[string]int64{}}
	for _, r := range mqtt.Reasons() {
		out.RejectedByReason[string(r)] = 0
	}
	if m == nil {
		return out
	}
	st := m.Stats()
	out.Connected = m.Connected()
	out.ConnectedSince = httpapi.TimePtr(st.ConnectedSince)
	out.MessagesReceived, out.MessagesRejected = st.Received, st.RejectedTotal
	for r, n := range st.Rejected {
		out.RejectedByReason[string(r)] = n
	}
	out.Reconnects, out.HandlerErrors = st.Reconnects, st.HandlerErrors
	out.LastError, out.LastErrorAt = st.LastError, httpapi.TimePtr(st.LastErrorAt)
	return out
}

// displayURL drops the user and password of a URL. A URL that does not
// parse is not shown at all: it may hold a secret in a shape we cannot see.
func displayURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	u.User = nil
	return u.String()
}

// fillStoreStatus reads the store's counters and health into the snapshot.
// The daemon and the CLI reading the store share it.
func fillStoreStatus(snap *httpapi.Snapshot, st *store.Store, now time.Time) {
	if st == nil {
		snap.Tickets.Error = "no store"
		snap.Store.LastError = "no store"
		return
	}
	stats := st.Stats()
	snap.Store = httpapi.StoreStatus{
		Path: stats.Path, Open: true, ReadOnly: stats.ReadOnly, SizeBytes: stats.SizeBytes, MaxBytes: stats.MaxBytes,
		Full: stats.Full, FullSince: httpapi.TimePtr(stats.FullSince),
		CorruptMovedTo: stats.CorruptMovedTo, CorruptAt: httpapi.TimePtr(stats.CorruptAt),
		LastError: stats.LastError, LastErrorAt: httpapi.TimePtr(stats.LastErrorAt),
	}
	counts, err := st.Counts()
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			snap.Store.Open = false
			snap.Store.LastError = err.Error()
		}
		snap.Tickets.Error = err.Error()
		return
	}
	t := &snap.Tickets
	t.Pending, t.Sent, t.CancelPending = counts[agent.StatePending], counts[agent.StateSent], counts[agent.StateCancelPending]
	t.Cancelled, t.Suppressed, t.Failed = counts[agent.StateCancelled], counts[agent.StateSuppressed], counts[agent.StateFailed]
	t.Queued = t.Pending + t.CancelPending
	oldest, ok, err := st.OldestQueued()
	if err != nil {
		t.Error = err.Error()
		return
	}
	if ok {
		t.OldestQueuedProtocol = oldest.Protocol
		t.OldestQueuedAt = httpapi.TimePtr(oldest.CreatedAt)
		t.OldestQueuedAgeS = int64(max(0, now.Sub(oldest.CreatedAt)/time.Second))
	}
}

// storeErr gives a store error the httpapi sentinel of its kind.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", httpapi.ErrNotFound, err)
	case errors.Is(err, store.ErrNotFailed), errors.Is(err, agent.ErrIllegalTransition):
		return fmt.Errorf("%w: %w", httpapi.ErrConflict, err)
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %w", httpapi.ErrInvalid, err)
	case errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrReadOnly), errors.Is(err, store.ErrFull), errors.Is(err, store.ErrLocked):
		return fmt.Errorf("%w: %w", httpapi.ErrUnavailable, err)
	}
	return err
}

// Devices implements httpapi.Source. The list is shared by the requests of
// one devicesTTL: callers must not change it (the handlers only read).
func (s *statusSource) Devices(context.Context) ([]agent.DeviceView, error) {
	if s.p.Detector == nil {
		return nil, fmt.Errorf("devices: %w: no detector", httpapi.ErrUnavailable)
	}
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if s.devList == nil || time.Since(s.devAt) >= s.devTTL {
		s.devList, s.devAt = s.p.Detector.Devices(true), time.Now()
	}
	return s.devList, nil
}

// Device implements httpapi.Source.
func (s *statusSource) Device(_ context.Context, nameplate string) (agent.DeviceView, error) {
	if s.p.Detector == nil {
		return agent.DeviceView{}, fmt.Errorf("device: %w: no detector", httpapi.ErrUnavailable)
	}
	v, ok := s.p.Detector.Device(nameplate)
	if !ok {
		return agent.DeviceView{}, fmt.Errorf("device %s: %w: not in the registry and never heard from", nameplate, httpapi.ErrNotFound)
	}
	return v, nil
}

// Tickets implements httpapi.Source.
func (s *statusSource) Tickets(_ context.Context, q httpapi.TicketQuery) ([]agent.Ticket, error) {
	ts, err := s.p.Store.ListTickets(store.Filter{State: q.State, Nameplate: q.Nameplate, Limit: q.Limit})
	return ts, storeErr(err)
}

// Ticket implements httpapi.Source.
func (s *statusSource) Ticket(_ context.Context, protocol int64) (agent.Ticket, error) {
	t, err := s.p.Store.Ticket(protocol)
	return t, storeErr(err)
}

// Retry implements httpapi.Source: the store re-queues, the syncer wakes.
func (s *statusSource) Retry(ctx context.Context, protocol int64) (agent.Ticket, error) {
	t, err := s.p.Store.Retry(ctx, protocol)
	if err != nil {
		return agent.Ticket{}, storeErr(err)
	}
	if s.p.Syncer != nil {
		s.p.Syncer.Notify()
	}
	return t, nil
}

// RetryFailed implements httpapi.Source.
func (s *statusSource) RetryFailed(ctx context.Context) (int, error) {
	n, err := s.p.Store.RetryAllFailed(ctx)
	if err != nil {
		return 0, storeErr(err)
	}
	if n > 0 && s.p.Syncer != nil {
		s.p.Syncer.Notify()
	}
	return n, nil
}

// Ready implements httpapi.Source: the store is open and the broker
// connected (CONTRACT §8).
func (s *statusSource) Ready(context.Context) error {
	if s.p.Store == nil {
		return errors.New("the store is not open")
	}
	if _, err := s.p.Store.Counts(); err != nil {
		return fmt.Errorf("the store is not usable: %w", err)
	}
	if s.p.MQTT == nil || !s.p.MQTT.Connected() {
		msg := "not connected to the MQTT broker " + displayURL(s.p.Broker)
		if s.p.MQTT != nil {
			if e := s.p.MQTT.Stats().LastError; e != "" {
				msg += ": " + e
			}
		}
		return errors.New(msg)
	}
	return nil
}

// Healthy implements httpapi.Source: every watched loop turned recently.
func (s *statusSource) Healthy(context.Context) error {
	now := s.p.Now()
	for _, l := range s.p.Loops {
		beat := l.Beat()
		switch {
		case beat.IsZero() && now.Sub(s.p.Started) < l.Within:
			// Not started yet, and the agent is young: fine.
		case beat.IsZero():
			return fmt.Errorf("the %s loop has not turned since the agent started %s ago", l.Name, httpapi.HumanDuration(now.Sub(s.p.Started)))
		case now.Sub(beat) > l.Within:
			return fmt.Errorf("the %s loop last turned %s ago (limit %s)", l.Name, httpapi.HumanDuration(now.Sub(beat)), l.Within)
		}
	}
	return nil
}

// serveStatus starts the status page and JSON API on EDGE_HTTP_ADDR (when
// set) and on the control socket, in g, until ctx ends. m must be the
// Metrics whose ObserveAPI and ObserveEvent the parts were given (make it
// with httpapi.NewMetrics before building them). A listener that cannot
// start is logged and left out: the status is a window on the agent, and the
// agent's own job (tickets) goes on without it. The returned source takes
// SetRegistry calls on SIGHUP.
func (d *agentDaemon) serveStatus(ctx context.Context, g *errgroup.Group, m *httpapi.Metrics) *statusSource {
	cfg := d.cfg
	sweepWithin := 2*sweepInterval(cfg.CommLossAfter) + 30*time.Second
	src := newStatusSource(statusParts{
		Version: version, GatewayID: cfg.GatewayID, Started: d.started,
		Detector: d.detector, Store: d.store, MQTT: d.sub, Broker: cfg.MQTTBroker, Syncer: d.syncer,
		RegistryPath: cfg.DevicesFile,
		Loops: []statusLoop{
			{Name: "ticket sync", Beat: d.syncer.Beat, Within: time.Minute},
			{Name: "silence sweep", Beat: func() time.Time { s, _ := d.pipeline.Beats(); return s }, Within: sweepWithin},
		},
	})
	srv := httpapi.New(httpapi.Config{Token: cfg.HTTPToken.Reveal()}, src, m, d.log)
	if cfg.HTTPAddr != "" {
		g.Go(func() error {
			if err := srv.ServeTCP(ctx, cfg.HTTPAddr); err != nil {
				d.log.Error("status page and API not served on EDGE_HTTP_ADDR", "addr", cfg.HTTPAddr, "err", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := srv.ServeUnix(ctx, cfg.ControlSocket); err != nil {
			d.log.Error("control socket not served: the CLI cannot reach this daemon", "path", cfg.ControlSocket, "err", err)
		}
		return nil
	})
	return src
}
