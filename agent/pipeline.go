package agent

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"
)

// PipelineConfig tunes the path from a controller's message to a durable
// ticket change, and the periodic work around it.
type PipelineConfig struct {
	GatewayID string
	// CancelOnClear: a sent ticket whose fault clears is cancelled
	// (EDGE_CANCEL_ON_CLEAR).
	CancelOnClear bool
	// DefaultSite is used for devices missing from the registry
	// (EDGE_TICKET_STATE, EDGE_TICKET_MUNICIPALITY).
	DefaultSite Site
	// Location is the time zone of the texts written for people (ticket
	// descriptions, justifications); nil means time.Local.
	Location *time.Location
	// SweepInterval is how often silent devices are looked for.
	SweepInterval time.Duration
	// AttributesInterval is how often device attributes are persisted and
	// flushed to the API (EDGE_ATTRIBUTES_INTERVAL); 0 disables the sync.
	AttributesInterval time.Duration
	// OnEvent, when set, sees every raise and clear once it is durable
	// (metrics).
	OnEvent func(Event)
	Logger  *slog.Logger
	Now     func() time.Time
}

// Pipeline is the agent's intake: it feeds messages to the detector and
// makes every fault change durable before the message is acknowledged
// (persist before ack), then wakes the syncer. It implements mqtt's Handler.
type Pipeline struct {
	cfg     PipelineConfig
	det     *Detector
	tickets TicketStore
	attrs   AttributeStore
	api     AttributeAPI
	syncer  *Syncer
	log     *slog.Logger
	now     func() time.Time

	sweepBeat atomic.Int64 // unix nanos of the sweeper's last turn
	attrBeat  atomic.Int64
	// deferred counts fault changes not made because the store was full;
	// fullLogged rate-limits the log line that says so.
	deferred   atomic.Int64
	fullLogged atomic.Int64
	// Attribute changes collected from the detector but not yet persisted
	// (the store failed): kept for the next round, latest wins.
	unsaved map[string]DeviceAttributes
}

// NewPipeline wires the detector to the stores, the attribute API and the
// syncer. attrs and api may be nil when attribute sync is disabled.
func NewPipeline(cfg PipelineConfig, det *Detector, tickets TicketStore, attrs AttributeStore, api AttributeAPI, syncer *Syncer) *Pipeline {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 30 * time.Second
	}
	return &Pipeline{cfg: cfg, det: det, tickets: tickets, attrs: attrs, api: api, syncer: syncer,
		log: cfg.Logger, now: cfg.Now, unsaved: map[string]DeviceAttributes{}}
}

// HandleTelemetry applies one telemetry message. It returns nil once every
// ticket change the message caused is durable; the caller acknowledges the
// message only then. It returns an error only when ctx ends first: the
// message is then not acknowledged, and the broker delivers it again.
func (p *Pipeline) HandleTelemetry(ctx context.Context, t *Telemetry) error {
	return deferredIsDone(p.det.Observe(t, func(evs []Event) error { return p.persist(ctx, evs) }))
}

// HandleStatus applies one online/offline report, like HandleTelemetry.
func (p *Pipeline) HandleStatus(ctx context.Context, s StatusReport) error {
	return deferredIsDone(p.det.ObserveStatus(s, func(evs []Event) error { return p.persist(ctx, evs) }))
}

// errDeferred: the store is full, so the change was not made and the
// detector rolled the device back; the next reading that shows the same
// thing makes the change again.
var errDeferred = errors.New("store full: fault change deferred to the next reading")

// deferredIsDone lets a message whose change was deferred be acknowledged.
// Holding it unacknowledged would hold one of the broker's in-flight slots
// until space frees — and space frees only when clears are processed, which
// need those slots: intake would stall for good.
func deferredIsDone(err error) error {
	if errors.Is(err, errDeferred) {
		return nil
	}
	return err
}

// persist makes the events' ticket changes durable. Store failures are
// retried (a full or failing disk must not lose the change, and must not
// acknowledge the message either) until ctx ends.
func (p *Pipeline) persist(ctx context.Context, evs []Event) error {
	changes := make([]TicketChange, 0, len(evs))
	for _, ev := range evs {
		changes = append(changes, p.change(ev))
	}
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := p.tickets.ApplyChanges(ctx, changes)
		if err == nil {
			p.applied(evs, res)
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		if errors.Is(err, ErrStoreFull) {
			// Past EDGE_STORE_MAX_MB with nothing finished left to prune:
			// every queued ticket is kept; this change waits for space.
			// A persisting fault is seen again at its next report.
			p.deferred.Add(1)
			if now := p.now(); now.Sub(unixNanos(p.fullLogged.Load())) > time.Minute {
				p.fullLogged.Store(now.UnixNano())
				p.log.Error("the store is full (EDGE_STORE_MAX_MB): new fault changes are deferred until space frees; queued tickets are kept",
					"nameplate", evs[0].Nameplate, "fault", evs[0].Fault, "deferred_so_far", p.deferred.Load(), "err", err)
			}
			return errDeferred
		}
		if attempt == 1 || attempt%20 == 0 {
			p.log.Error("persisting a fault change failed; the message stays unacknowledged and is retried",
				"nameplate", evs[0].Nameplate, "fault", evs[0].Fault, "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (p *Pipeline) applied(evs []Event, res []ChangeResult) {
	changed := false
	for i, ev := range evs {
		r := res[i]
		switch {
		case ev.Kind == Raise && r.Changed:
			p.log.Info("fault raised", "nameplate", ev.Nameplate, "fault", ev.Fault, "protocol", r.Ticket.Protocol, "since", ev.Since)
		case ev.Kind == Raise:
			p.log.Debug("fault already has an open ticket", "nameplate", ev.Nameplate, "fault", ev.Fault, "protocol", r.Ticket.Protocol)
		case ev.Kind == Clear && r.Changed:
			p.log.Info("fault cleared", "nameplate", ev.Nameplate, "fault", ev.Fault, "protocol", r.Ticket.Protocol, "state", r.Ticket.State)
		default:
			p.log.Debug("fault cleared with no open ticket", "nameplate", ev.Nameplate, "fault", ev.Fault)
		}
		changed = changed || r.Changed
		if p.cfg.OnEvent != nil {
			p.cfg.OnEvent(ev)
		}
	}
	if changed && p.syncer != nil {
		p.syncer.Notify()
	}
}

// change turns a detector event into the ticket change to persist.
func (p *Pipeline) change(ev Event) TicketChange {
	if ev.Kind == Clear {
		return TicketChange{
			Kind: Clear, Nameplate: ev.Nameplate, Fault: ev.Fault, ClearedAt: ev.At,
			Cancel:        p.cfg.CancelOnClear,
			Justification: CancelJustification(ev.Fault, ev.At, p.cfg.Location),
		}
	}
	info := p.deviceInfo(ev)
	return TicketChange{Kind: Raise, Draft: TicketDraft{
		Nameplate:   ev.Nameplate,
		Fault:       ev.Fault,
		RaisedAt:    ev.At,
		Since:       ev.Since,
		Reading:     ev.Reading,
		Site:        info.Site,
		Description: p.det.Describe(ev, info, p.cfg.GatewayID, p.cfg.Location),
	}}
}

// deviceInfo is what the ticket says of where the device is: the registry's
// record, or the defaults plus the position the device reported.
func (p *Pipeline) deviceInfo(ev Event) DeviceInfo {
	if reg := p.det.Registry(); reg != nil {
		if info, ok := reg.Lookup(ev.Nameplate); ok {
			if info.Site.Latitude == "" && info.HasPosition {
				info.Site.Latitude, info.Site.Longitude = formatCoord(info.Latitude), formatCoord(info.Longitude)
			}
			return info
		}
	}
	info := DeviceInfo{Nameplate: ev.Nameplate, Site: p.cfg.DefaultSite}
	if ev.HasPosition {
		info.Latitude, info.Longitude, info.HasPosition = ev.Lat, ev.Lon, true
		info.Site.Latitude, info.Site.Longitude = formatCoord(ev.Lat), formatCoord(ev.Lon)
	}
	return info
}

func formatCoord(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// RunSweeper looks for silent devices every SweepInterval until ctx ends.
func (p *Pipeline) RunSweeper(ctx context.Context) error {
	t := time.NewTicker(p.cfg.SweepInterval)
	defer t.Stop()
	for {
		p.sweepBeat.Store(p.now().UnixNano())
		err := p.det.Sweep(p.now(), func(evs []Event) error { return p.persist(ctx, evs) })
		if err != nil && ctx.Err() == nil && !errors.Is(err, errDeferred) {
			p.log.Error("sweep for silent devices failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// attrChunk is how many devices one attribute request carries (CONTRACT §7).
const attrChunk = 100

// RunAttributes persists the devices' latest attributes and flushes them to
// the API every AttributesInterval until ctx ends; it returns at once when
// attribute sync is disabled. Tickets go first: a round steps aside while the
// syncer has tickets to send or the API is down.
func (p *Pipeline) RunAttributes(ctx context.Context) error {
	if p.cfg.AttributesInterval <= 0 || p.attrs == nil || p.api == nil {
		return nil
	}
	t := time.NewTicker(p.cfg.AttributesInterval)
	defer t.Stop()
	for {
		p.attrBeat.Store(p.now().UnixNano())
		select {
		case <-ctx.Done():
			// Keep what was collected: it survives the restart.
			p.saveAttributes(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
		}
		p.saveAttributes(ctx)
		p.flushAttributes(ctx)
	}
}

// attrSaveBatch is how many devices one store write of attributes carries:
// a fleet of 100,000 is saved in bounded transactions, not in one that
// holds the whole fleet in memory.
const attrSaveBatch = 500

// saveAttributes moves the detector's changed devices into the store, in
// batches. A batch the store refuses is kept for the next round (latest
// values win) and the round stops there; what the detector still holds
// stays marked changed.
func (p *Pipeline) saveAttributes(ctx context.Context) {
	if len(p.unsaved) > 0 {
		batch := make([]DeviceAttributes, 0, len(p.unsaved))
		for _, a := range p.unsaved {
			batch = append(batch, a)
		}
		if !p.putAttributes(ctx, batch) {
			return
		}
		clear(p.unsaved)
	}
	buf := make([]DeviceAttributes, 0, attrSaveBatch)
	for {
		batch := p.det.CollectSomeAttributes(buf[:0], attrSaveBatch)
		if len(batch) == 0 {
			return
		}
		if !p.putAttributes(ctx, batch) {
			for _, a := range batch {
				p.unsaved[a.Nameplate] = a
			}
			return
		}
		if len(batch) < attrSaveBatch {
			return
		}
	}
}

func (p *Pipeline) putAttributes(ctx context.Context, batch []DeviceAttributes) bool {
	if err := p.attrs.PutAttributes(ctx, batch); err != nil {
		p.log.Error("persisting device attributes failed; kept for the next round", "devices", len(batch), "err", err)
		return false
	}
	return true
}

// flushAttributes sends dirty attribute records to the API in chunks.
func (p *Pipeline) flushAttributes(ctx context.Context) {
	for ctx.Err() == nil {
		if p.syncer != nil && (p.syncer.Busy() || p.syncer.Health().Down) {
			return
		}
		recs, err := p.attrs.DirtyAttributes(attrChunk)
		if err != nil {
			p.log.Error("reading dirty device attributes failed", "err", err)
			return
		}
		if len(recs) == 0 {
			return
		}
		batch := make([]DeviceAttributes, len(recs))
		for i, r := range recs {
			batch[i] = r.Attributes
		}
		synced, more := recs, true
		if err := p.api.UpdateAttributes(ctx, batch); err != nil {
			synced, more = p.attributeFailure(recs, err)
		} else if p.syncer != nil {
			p.syncer.APIRecovered()
		}
		if len(synced) == 0 {
			return
		}
		if err := p.attrs.MarkAttributesSynced(ctx, synced); err != nil {
			p.log.Error("marking device attributes synced failed", "err", err)
			return
		}
		if !more || len(recs) < attrChunk {
			return
		}
	}
}

// attributeFailure decides what a failed attribute update leaves dirty. A
// retryable failure keeps the devices it did not apply for the next round
// (and ends this one). A permanent refusal is not retried: the API will not
// take these values, and retrying them every round would hold up every
// device after them; they go again when the device changes.
func (p *Pipeline) attributeFailure(recs []AttributeRecord, err error) (synced []AttributeRecord, more bool) {
	var apiErr APIError
	if errors.As(err, &apiErr) && apiErr.Outcome() == OutcomePermanent {
		p.log.Error("the API refused device attributes; not retried until the devices change",
			"devices", len(recs), "status", apiErr.StatusCode(), "err", err)
		return recs, true
	}
	p.log.Warn("device attribute update failed; retried next round", "devices", len(recs), "err", err)
	var partial PartialError
	if !errors.As(err, &partial) || len(partial.NotApplied()) == 0 {
		return nil, false
	}
	failed := make(map[string]bool, len(partial.NotApplied()))
	for _, n := range partial.NotApplied() {
		failed[n] = true
	}
	for _, r := range recs {
		if !failed[r.Attributes.Nameplate] {
			synced = append(synced, r)
		}
	}
	return synced, false
}

// Deferred returns how many fault changes were deferred because the store
// was full.
func (p *Pipeline) Deferred() int64 { return p.deferred.Load() }

// Beats returns when the sweeper and the attribute loop last turned (zero
// for a loop that is not running), for the watchdog.
func (p *Pipeline) Beats() (sweep, attrs time.Time) {
	return unixNanos(p.sweepBeat.Load()), unixNanos(p.attrBeat.Load())
}
