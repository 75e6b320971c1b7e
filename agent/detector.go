package agent

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DetectorConfig holds the rule thresholds (CONTRACT §2 and §4).
type DetectorConfig struct {
	ConfirmCount     int           // EDGE_CONFIRM_COUNT: readings that confirm a fault, and that clear it (1..255)
	NominalVoltage   float64       // EDGE_NOMINAL_VOLTAGE
	VoltageTolerance float64       // EDGE_VOLTAGE_TOLERANCE (0.10 = ±10 %)
	LampMinPower     float64       // EDGE_LAMP_MIN_POWER (W)
	MinPowerFactor   float64       // EDGE_MIN_POWER_FACTOR
	CyclingSwitches  int           // EDGE_CYCLING_SWITCHES (≤ 0 disables cyclingFailure)
	CyclingWindow    time.Duration // EDGE_CYCLING_WINDOW
	DayLux           float64       // EDGE_DAY_LUX
	CommLossAfter    time.Duration // EDGE_COMM_LOSS_AFTER (≤ 0 disables communicationFailure)
	ReportInterval   time.Duration // EDGE_REPORT_INTERVAL (for Warnings)
	// The gateway's position (EDGE_LATITUDE/LONGITUDE), for the sun clock
	// of devices with no position of their own.
	Latitude, Longitude float64
	HasPosition         bool
	// BuildTime is the binary's build date: a clock earlier than this is
	// untrusted and day/night rules wait.
	BuildTime        time.Time
	RequireClockSync bool        // EDGE_REQUIRE_CLOCK_SYNC
	ClockSynced      func() bool // the kernel's flag (adjtimex); nil = unknown
}

// Warnings returns settings that are legal but cannot work as intended, in
// words for the log at start-up.
func (c DetectorConfig) Warnings() []string {
	var w []string
	if c.ConfirmCount > 255 {
		w = append(w, fmt.Sprintf("EDGE_CONFIRM_COUNT %d is more than 255: 255 is used", c.ConfirmCount))
	}
	if c.ReportInterval > 0 && c.CommLossAfter > 0 && c.CommLossAfter < 2*c.ReportInterval {
		w = append(w, fmt.Sprintf("EDGE_COMM_LOSS_AFTER %v is under two report intervals (EDGE_REPORT_INTERVAL %v): "+
			"one late message raises communicationFailure", c.CommLossAfter, c.ReportInterval))
	}
	if c.ReportInterval > 0 && c.CyclingSwitches > 0 && c.CyclingWindow > 0 {
		if seen := int(c.CyclingWindow / c.ReportInterval); seen < c.CyclingSwitches {
			w = append(w, fmt.Sprintf("EDGE_CYCLING_SWITCHES %d: at one report every %v, at most %d lamp changes are seen "+
				"within EDGE_CYCLING_WINDOW %v, so cyclingFailure needs controllers that report switch_count",
				c.CyclingSwitches, c.ReportInterval, seen, c.CyclingWindow))
		}
	}
	if c.NominalVoltage <= 0 {
		w = append(w, "EDGE_NOMINAL_VOLTAGE is not positive: the supply voltage rules are off")
	}
	return w
}

// DeviceCounts are the fleet figures of the status API.
type DeviceCounts struct {
	Known  int `json:"known"`  // in the registry or heard from
	Online int `json:"online"` // see DeviceView.Online
	Faulty int `json:"faulty"` // with at least one open fault
}

// nShards spreads devices over independent locks: messages of different
// devices are observed in parallel, and a commit (an fsync) holds up only
// the devices of one shard.
const nShards = 256

type shard struct {
	mu   sync.Mutex
	devs map[string]*device
	_    [48]byte // one shard per cache line: no false sharing between locks
}

// Detector decides faults from telemetry. It is pure logic: the time comes
// in with the messages and Sweep's now; it does no I/O and starts no
// goroutine. It is safe for concurrent use.
type Detector struct {
	cfg     DetectorConfig
	confirm uint8
	clock   *clockGuard
	start   uint32
	// Derived thresholds, computed once.
	vHigh, vLow   float64
	lossSec       uint32
	windowSec     uint32
	nominalVolt   float64
	cyclingSwitch int

	reg    atomic.Pointer[Registry]
	regMu  sync.Mutex // serialises SetRegistry
	shards [nShards]shard

	known, online, faulty atomic.Int64
	lastSweep             atomic.Int64 // Unix seconds of the last Sweep, 0 before
}

// NewDetector returns a detector watching the registry's devices (and any
// other device it hears from). Devices never heard from count their
// silence from start.
func NewDetector(cfg DetectorConfig, reg *Registry, start time.Time) *Detector {
	d := &Detector{cfg: cfg, start: unixSec(start)}
	d.confirm = uint8(max(1, min(cfg.ConfirmCount, 255)))
	d.clock = newClockGuard(&cfg)
	if cfg.NominalVoltage > 0 {
		d.nominalVolt = cfg.NominalVoltage
		d.vHigh = cfg.NominalVoltage * (1 + cfg.VoltageTolerance)
		d.vLow = cfg.NominalVoltage * (1 - cfg.VoltageTolerance)
	} else {
		d.nominalVolt = 220 // only scales the history's voltage codes
	}
	if cfg.CommLossAfter > 0 {
		d.lossSec = uint32(max(1, min(cfg.CommLossAfter/time.Second, 1<<31)))
	}
	if cfg.CyclingWindow > 0 && cfg.CyclingSwitches > 0 {
		d.windowSec = uint32(max(1, min(cfg.CyclingWindow/time.Second, 1<<31)))
		d.cyclingSwitch = cfg.CyclingSwitches
	}
	for i := range d.shards {
		d.shards[i].devs = make(map[string]*device)
	}
	d.reg.Store(reg)
	if reg != nil {
		for i := range reg.entries {
			name := reg.entries[i].nameplate
			sh := d.shardOf(name)
			dv := &device{name: name, lastSeen: d.start}
			sh.devs[name] = dv
		}
		d.known.Store(int64(len(reg.entries)))
	}
	return d
}

func (d *Detector) shardOf(name string) *shard {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return &d.shards[h%nShards]
}

// device returns the device, creating it if needed. The caller holds sh.mu.
func (d *Detector) device(sh *shard, name string, since uint32) *device {
	if dv := sh.devs[name]; dv != nil {
		return dv
	}
	// The nameplate may be a view of a reused buffer: own a copy.
	name = string([]byte(name))
	dv := &device{name: name, lastSeen: since}
	sh.devs[name] = dv
	d.known.Add(1)
	return dv
}

// observation is the work of one Observe, Sweep step or Restore on one
// device. It lives on the stack.
type observation struct {
	d        *Detector
	dv       *device
	reg      *Registry
	extOwned bool
	events   []Event
}

// ext returns the device's extension, copied first if this observation has
// not copied it yet: the old one stays intact for a rollback.
func (o *observation) ext() *deviceExt {
	if !o.extOwned {
		o.dv.ext = o.dv.ext.clone()
		o.extOwned = true
	}
	return o.dv.ext
}

// setSource turns one source (a rule, or an alarm of the same name) of
// built-in fault i on or off, and emits the event when the fault opens or
// closes.
func (o *observation) setSource(i int, alarm, on bool, since uint32, at time.Time, rd *Reading) {
	dv := o.dv
	bit := uint16(1) << i
	wasOpen := dv.open()&bit != 0
	src := &dv.rule
	if alarm {
		src = &dv.alarm
	}
	if on {
		*src |= bit
	} else {
		*src &^= bit
	}
	isOpen := dv.open()&bit != 0
	switch {
	case isOpen && !wasOpen:
		o.ext().faultSince[i] = since
		o.emit(Raise, builtinFaults[i], since, at, rd)
	case wasOpen && !isOpen:
		if dv.ext != nil && dv.ext.faultSince[i] != 0 {
			o.ext().faultSince[i] = 0
		}
		o.emit(Clear, builtinFaults[i], since, at, rd)
	}
}

func (o *observation) emit(kind EventKind, fault string, since uint32, at time.Time, rd *Reading) {
	ev := Event{Kind: kind, Nameplate: o.dv.name, Fault: fault, At: at, Since: secTime(since)}
	if rd != nil {
		ev.Reading = *rd
	}
	ev.Lat, ev.Lon, ev.HasPosition = o.dv.position(o.reg)
	o.events = append(o.events, ev)
}

// settle drops an extension that holds nothing any more.
func (o *observation) settle(now uint32) {
	x := o.dv.ext
	if x == nil || o.dv.open() != 0 || len(x.alarms) > 0 {
		return
	}
	for _, m := range x.marks {
		if o.d.windowSec > 0 && now-m.at < o.d.windowSec {
			return
		}
	}
	o.dv.ext = nil
}

// commitOrRollback hands the events to commit; on error the device is put
// back as it was.
func (d *Detector) commitOrRollback(o *observation, old *device, commit func([]Event) error) error {
	if len(o.events) == 0 {
		return nil
	}
	if err := commit(o.events); err != nil {
		*o.dv = *old
		return err
	}
	return nil
}

// account moves the fleet counters by what changed in one device.
func (d *Detector) account(old, dv *device) {
	if a, b := old.online(), dv.online(); a != b {
		d.online.Add(delta(b))
	}
	if a, b := old.faulty(), dv.faulty(); a != b {
		d.faulty.Add(delta(b))
	}
}

func delta(up bool) int64 {
	if up {
		return 1
	}
	return -1
}

// Observe applies one telemetry message; t.Received is the gateway clock's
// now. When the message raises or clears faults, commit is called with the
// events while the device is locked, so that one device's changes reach the
// store in order. If commit fails, the
// device is rolled back to its state before the message (a redelivery
// raises again) and Observe returns commit's error. A message that changes
// no fault never calls commit.
func (d *Detector) Observe(t *Telemetry, commit func([]Event) error) error {
	sh := d.shardOf(t.Nameplate)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recv := unixSec(t.Received)
	dv := d.device(sh, t.Nameplate, recv)
	old := *dv
	o := observation{d: d, dv: dv, reg: d.reg.Load()}

	o.signOfLife(recv, t.Received)
	at := unixSec(t.At)
	inOrder := dv.flags&flagTelemetry == 0 || at >= dv.latestAt
	if inOrder {
		// An older message (unordered delivery) counts as a sign of life
		// only: its reading is stale, and its alarms are superseded.
		d.apply(&o, t, at)
	}
	o.settle(dv.latestAt)
	if err := d.commitOrRollback(&o, &old, commit); err != nil {
		return err
	}
	if inOrder && t.Fields&(FieldPower|FieldVoltage) != 0 {
		// After the commit: history is not rolled back, so it is written
		// only for messages that are kept.
		if dv.hist == nil {
			dv.hist = new(history)
		}
		dv.hist.add(int64(at), &t.Reading, d.nominalVolt)
	}
	d.account(&old, dv)
	return nil
}

// signOfLife records that the device spoke, and clears communicationFailure.
func (o *observation) signOfLife(recv uint32, at time.Time) {
	dv := o.dv
	if dv.flags&flagHeard == 0 || recv > dv.lastSeen {
		dv.lastSeen = recv
	}
	dv.flags |= flagHeard | flagDirty
	dv.flags &^= flagOffline | flagWatchNext
	if dv.rule&(1<<fCommunication) != 0 {
		o.setSource(fCommunication, false, false, recv, at, nil)
	}
}

// ObserveStatus applies an online/offline report. "online" is a sign of
// life and clears communicationFailure at once; "offline" marks the device
// offline, and Sweep raises communicationFailure once it has lasted
// CommLossAfter. Same commit and rollback rules as Observe.
func (d *Detector) ObserveStatus(s StatusReport, commit func([]Event) error) error {
	sh := d.shardOf(s.Nameplate)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recv := unixSec(s.Received)
	dv := d.device(sh, s.Nameplate, recv)
	old := *dv
	o := observation{d: d, dv: dv, reg: d.reg.Load()}
	if s.Online {
		o.signOfLife(recv, s.Received)
	} else if dv.flags&flagOffline == 0 {
		// The broker speaking for a dead client (its last will): not a sign
		// of life, so lastSeen stays.
		dv.flags |= flagOffline | flagDirty
		dv.offlineAt = recv
	}
	if err := d.commitOrRollback(&o, &old, commit); err != nil {
		return err
	}
	d.account(&old, dv)
	return nil
}

// Sweep raises communicationFailure for devices silent for CommLossAfter,
// or reported offline for that long; Event.Since is the last sign of life
// (for a device never heard from, when its silence began to count). Each
// device is committed on its own with Observe's rollback rule; Sweep tries
// every device and returns the first error.
func (d *Detector) Sweep(now time.Time, commit func([]Event) error) error {
	if d.lossSec == 0 {
		return nil
	}
	nowSec := unixSec(now)
	var first error
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, dv := range sh.devs {
			if err := d.sweepDevice(dv, now, nowSec, commit); err != nil && first == nil {
				first = fmt.Errorf("sweep %s: %w", dv.name, err)
			}
		}
		sh.mu.Unlock()
	}
	d.lastSweep.Store(now.Unix())
	return first
}

func (d *Detector) sweepDevice(dv *device, now time.Time, nowSec uint32, commit func([]Event) error) error {
	if dv.rule&(1<<fCommunication) != 0 {
		return nil
	}
	if dv.flags&flagWatchNext != 0 {
		// Added by a registry reload: its silence counts from now.
		dv.lastSeen = nowSec
		dv.flags &^= flagWatchNext
		return nil
	}
	silent := nowSec >= dv.lastSeen && nowSec-dv.lastSeen >= d.lossSec
	offline := dv.flags&flagOffline != 0 && nowSec >= dv.offlineAt && nowSec-dv.offlineAt >= d.lossSec
	if !silent && !offline {
		return nil
	}
	old := *dv
	o := observation{d: d, dv: dv, reg: d.reg.Load()}
	o.setSource(fCommunication, false, true, dv.lastSeen, now, nil)
	dv.flags |= flagDirty
	if err := d.commitOrRollback(&o, &old, commit); err != nil {
		return err
	}
	d.account(&old, dv)
	return nil
}

// Restore marks faults open that the store has open tickets for, at
// start-up: they are not raised again, and the readings that clear them
// clear them (their debounce starts on the cleared side). A restored
// controller alarm clears at the first message that does not report it; a
// restored communicationFailure at the first message.
func (d *Detector) Restore(active []ActiveFault) {
	for _, a := range active {
		if a.Fault == "" || a.Nameplate == "" {
			continue
		}
		sh := d.shardOf(a.Nameplate)
		sh.mu.Lock()
		dv := d.device(sh, a.Nameplate, d.start)
		old := *dv
		o := observation{d: d, dv: dv, reg: d.reg.Load()}
		since := unixSec(a.Since)
		if i := builtinIndex(a.Fault); i >= 0 {
			if dv.open()&(1<<i) == 0 {
				dv.rule |= 1 << i
				o.ext().faultSince[i] = since
			}
			if i < nRules {
				dv.counts[i] = 0
			}
		} else if !hasOpenAlarm(dv.ext, a.Fault) {
			x := o.ext()
			x.alarms = append(x.alarms, openAlarm{name: a.Fault, since: since})
		}
		d.account(&old, dv)
		sh.mu.Unlock()
	}
}

func hasOpenAlarm(x *deviceExt, name string) bool {
	if x == nil {
		return false
	}
	for _, a := range x.alarms {
		if a.name == name {
			return true
		}
	}
	return false
}

// SetRegistry replaces the registry (SIGHUP) and keeps every device's state.
// Devices new to the registry are watched from the next Sweep; devices
// dropped from it are kept if they were ever heard from or have open
// faults, and forgotten otherwise.
func (d *Detector) SetRegistry(r *Registry) {
	d.regMu.Lock()
	defer d.regMu.Unlock()
	d.reg.Store(r)
	if r != nil {
		for i := range r.entries {
			name := r.entries[i].nameplate
			sh := d.shardOf(name)
			sh.mu.Lock()
			if sh.devs[name] == nil {
				sh.devs[name] = &device{name: name, flags: flagWatchNext}
				d.known.Add(1)
			}
			sh.mu.Unlock()
		}
	}
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for name, dv := range sh.devs {
			dv.flags &^= flagSunValid // positions may have changed
			if r.entry(name) == nil && dv.flags&(flagHeard|flagTelemetry) == 0 && !dv.faulty() {
				delete(sh.devs, name)
				d.known.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
}

// Registry returns the registry in use.
func (d *Detector) Registry() *Registry { return d.reg.Load() }

// Device returns a copy of one device's state.
func (d *Detector) Device(nameplate string) (DeviceView, bool) {
	sh := d.shardOf(nameplate)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	dv := sh.devs[nameplate]
	if dv == nil {
		return DeviceView{}, false
	}
	return dv.view(d.reg.Load(), d.nominalVolt), true
}

// Devices returns copies of every device's state, sorted by nameplate, the
// faulty ones first when faultyFirst.
func (d *Detector) Devices(faultyFirst bool) []DeviceView {
	reg := d.reg.Load()
	out := make([]DeviceView, 0, d.known.Load())
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, dv := range sh.devs {
			out = append(out, dv.view(reg, d.nominalVolt))
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b DeviceView) int {
		if faultyFirst {
			fa, fb := len(a.Faults) > 0, len(b.Faults) > 0
			if fa != fb {
				if fa {
					return -1
				}
				return 1
			}
		}
		return compareStrings(a.Nameplate, b.Nameplate)
	})
	return out
}

// Counts returns the fleet figures. They are counters kept as devices
// change, read without a scan; Online is as of the last Sweep (a device
// silent for CommLossAfter counts as online until a Sweep finds it). When
// no Sweep has run for CommLossAfter, Counts scans the devices and applies
// the silence rule itself at now.
func (d *Detector) Counts(now time.Time) DeviceCounts {
	c := DeviceCounts{Known: int(d.known.Load()), Online: int(d.online.Load()), Faulty: int(d.faulty.Load())}
	last := d.lastSweep.Load()
	if d.lossSec == 0 || last != 0 && now.Unix()-last < int64(d.lossSec) {
		return c
	}
	nowSec := unixSec(now)
	c.Online = 0
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, dv := range sh.devs {
			if dv.online() && (nowSec < dv.lastSeen || nowSec-dv.lastSeen < d.lossSec) {
				c.Online++
			}
		}
		sh.mu.Unlock()
	}
	return c
}

// CollectAttributes appends the attributes of every device that changed
// since the last call (one record per device, however many messages) to
// out, and returns it.
func (d *Detector) CollectAttributes(out []DeviceAttributes) []DeviceAttributes {
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, dv := range sh.devs {
			if dv.flags&flagDirty != 0 {
				out = append(out, dv.attributes())
				dv.flags &^= flagDirty
			}
		}
		sh.mu.Unlock()
	}
	return out
}
