package agent

import (
	"fmt"
	"slices"
	"strings"
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
	mu sync.Mutex
	// reg is the registry the devices' rows refer to: SetRegistry replaces
	// it together with the rows, under mu.
	reg *Registry
	// devs are the devices of reg's rows that hash to this shard, sized
	// exactly (a registry's devices are known up front); loose, the others.
	devs  []device
	loose []*looseDevice
	// index finds a device by nameplate (see slotOf): position i is
	// devs[i] below len(devs), loose[i-len(devs)] from there. 4 bytes a
	// slot (about 5.3 a device), where the map of strings to pointers it
	// replaces took about 35. A shard holds fewer than maxSlotPos (16.7
	// million) devices: the registry has fewer rows, and as many devices
	// heard from outside it would need gigabytes.
	index []uint32
	_     [40]byte // 128 bytes on 64-bit: no false sharing between locks
}

// name is a device's nameplate. The caller holds sh.mu.
func (sh *shard) name(dv *device) string {
	if dv.flags&flagInReg != 0 {
		return sh.reg.name(int32(dv.ref))
	}
	return sh.loose[dv.ref].name
}

// at returns the device at a position.
func (sh *shard) at(pos int) *device {
	if pos < len(sh.devs) {
		return &sh.devs[pos]
	}
	return &sh.loose[pos-len(sh.devs)].device
}

// find returns the device named name (h = hashName(name)), or nil. The
// caller holds sh.mu.
func (sh *shard) find(h uint32, name string) *device {
	idx := sh.index
	if len(idx) == 0 {
		return nil
	}
	m := mixHash(h)
	for i := slotOf(m, len(idx)); ; i++ {
		if i == len(idx) {
			i = 0
		}
		v := idx[i]
		if v == 0 {
			return nil
		}
		if slotTagged(v, m) {
			if dv := sh.at(slotPos(v)); sh.name(dv) == name {
				return dv
			}
		}
	}
}

// reindex rebuilds the index with size slots.
func (sh *shard) reindex(size int) {
	sh.index = make([]uint32, size)
	for i := range sh.devs {
		insertSlot(sh.index, hashName(sh.name(&sh.devs[i])), i)
	}
	for i, x := range sh.loose {
		insertSlot(sh.index, hashName(x.name), len(sh.devs)+i)
	}
}

// each calls f for every device of the shard. The caller holds sh.mu.
func (sh *shard) each(f func(*device)) {
	for i := range sh.devs {
		f(&sh.devs[i])
	}
	for _, x := range sh.loose {
		f(&x.device)
	}
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
	d.reg.Store(reg)
	rows, bounds := shardRows(reg)
	// One array for every shard: 256 arrays of a few hundred devices
	// would each be rounded up to whole pages (about 10 bytes a device).
	all := make([]device, len(rows))
	for i := range d.shards {
		sh := &d.shards[i]
		sh.reg = reg
		lo, hi := bounds[i], bounds[i+1]
		if lo == hi {
			continue
		}
		sh.devs = all[lo:hi:hi]
		for j, row := range rows[lo:hi] {
			sh.devs[j] = device{ref: uint32(row), lastSeen: d.start, flags: flagInReg}
		}
		sh.reindex(tableSize(int(hi - lo)))
	}
	d.known.Store(int64(len(rows)))
	return d
}

// shardRows returns the registry's rows grouped by shard: shard i's are
// rows[start[i]:start[i+1]], in file order.
func shardRows(r *Registry) (rows []int32, start [nShards + 1]int32) {
	n := r.Len()
	of := make([]uint8, n)
	for i := range n {
		s := hashName(r.name(int32(i))) % nShards
		of[i] = uint8(s)
		start[s+1]++
	}
	for i := range nShards {
		start[i+1] += start[i]
	}
	next := start
	rows = make([]int32, n)
	for i, s := range of {
		rows[next[s]] = int32(i)
		next[s]++
	}
	return rows, start
}

func (d *Detector) shardOf(name string) (*shard, uint32) {
	h := hashName(name)
	return &d.shards[h%nShards], h
}

// device returns the device, creating it if needed. The caller holds sh.mu.
// A device it creates is not in the shard's registry (those all exist).
func (d *Detector) device(sh *shard, h uint32, name string, since uint32) *device {
	if dv := sh.find(h, name); dv != nil {
		return dv
	}
	if 5*(len(sh.devs)+len(sh.loose)+1) > 4*len(sh.index) { // load over 4/5: grow
		sh.reindex(tableSize(2 * (len(sh.devs) + len(sh.loose) + 1)))
	}
	// The nameplate may be a view of a reused buffer: own a copy.
	x := &looseDevice{device: device{ref: uint32(len(sh.loose)), lastSeen: since}, name: strings.Clone(name)}
	sh.loose = append(sh.loose, x)
	insertSlot(sh.index, h, len(sh.devs)+len(sh.loose)-1)
	d.known.Add(1)
	return &x.device
}

// observation is the work of one Observe, Sweep step or Restore on one
// device. It lives on the stack.
type observation struct {
	d        *Detector
	sh       *shard
	dv       *device
	reg      *Registry // the shard's
	extOwned bool
	events   []Event
}

func (d *Detector) observe(sh *shard, dv *device) observation {
	return observation{d: d, sh: sh, dv: dv, reg: sh.reg}
}

// regPosition and regPower are what the registry says of the device.
func (o *observation) regPosition() (lat, lon float64, ok bool) { return o.dv.regPosition(o.reg) }
func (o *observation) regPower() float64                        { return o.dv.regPower(o.reg) }

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
	ev := Event{Kind: kind, Nameplate: o.sh.name(o.dv), Fault: fault, At: at, Since: secTime(since)}
	if rd != nil {
		ev.Reading = *rd
	}
	ev.Lat, ev.Lon, ev.HasPosition = o.dv.position(o.reg)
	o.events = append(o.events, ev)
}

// startRun records the first reading of a run of rule i.
func (o *observation) startRun(i int, at uint32) { o.ext().since[i] = at }

// runSince is the first reading of rule i's current run (counts[i] > 0).
func (o *observation) runSince(i int) uint32 { return o.dv.ext.since[i] }

// settle drops an extension that holds nothing any more.
func (o *observation) settle(now uint32) {
	x := o.dv.ext
	if x == nil || o.dv.open() != 0 || len(x.alarms) > 0 || o.dv.counts != [nRules]uint8{} {
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
	sh, h := d.shardOf(t.Nameplate)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recv := unixSec(t.Received)
	dv := d.device(sh, h, t.Nameplate, recv)
	old := *dv
	o := d.observe(sh, dv)

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
	sh, h := d.shardOf(s.Nameplate)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recv := unixSec(s.Received)
	dv := d.device(sh, h, s.Nameplate, recv)
	old := *dv
	o := d.observe(sh, dv)
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
		sh.each(func(dv *device) {
			if err := d.sweepDevice(sh, dv, now, nowSec, commit); err != nil && first == nil {
				first = fmt.Errorf("sweep %s: %w", sh.name(dv), err)
			}
		})
		sh.mu.Unlock()
	}
	d.lastSweep.Store(now.Unix())
	return first
}

func (d *Detector) sweepDevice(sh *shard, dv *device, now time.Time, nowSec uint32, commit func([]Event) error) error {
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
	o := d.observe(sh, dv)
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
		sh, h := d.shardOf(a.Nameplate)
		sh.mu.Lock()
		dv := d.device(sh, h, a.Nameplate, d.start)
		old := *dv
		o := d.observe(sh, dv)
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
	rows, bounds := shardRows(r)
	listed := make([]bool, r.Len()) // rows that already have a device
	// Each row ends up in exactly one shard's devs: one array for all, as
	// in NewDetector.
	all := make([]device, len(rows))
	for i := range d.shards {
		sh := &d.shards[i]
		lo, hi := bounds[i], bounds[i+1]
		sh.mu.Lock()
		d.rebuildShard(sh, r, rows[lo:hi], all[lo:lo:hi], listed)
		sh.mu.Unlock()
	}
}

// rebuildShard moves one shard to registry r: its devices re-pointed at
// r's rows (mine are those of this shard) and put in devs (empty, with room
// for mine), the others loose. The caller holds sh.mu.
func (d *Detector) rebuildShard(sh *shard, r *Registry, mine []int32, devs []device, listed []bool) {
	var loose []*looseDevice
	keep := func(dv device, name string) {
		dv.flags &^= flagSunValid // positions may have changed
		if row, ok := r.find(name); ok {
			dv.ref, dv.flags = uint32(row), dv.flags|flagInReg
			devs = append(devs, dv)
			listed[row] = true
			return
		}
		if dv.flags&(flagHeard|flagTelemetry) == 0 && !dv.faulty() {
			d.known.Add(-1) // a placeholder never heard from: forgotten
			return
		}
		if dv.flags&flagInReg != 0 {
			name = strings.Clone(name) // not a view of the old registry's text
		}
		dv.ref, dv.flags = uint32(len(loose)), dv.flags&^flagInReg
		loose = append(loose, &looseDevice{device: dv, name: name})
	}
	for i := range sh.devs {
		keep(sh.devs[i], sh.name(&sh.devs[i]))
	}
	for _, x := range sh.loose {
		keep(x.device, x.name)
	}
	for _, row := range mine {
		if !listed[row] {
			devs = append(devs, device{ref: uint32(row), flags: flagInReg | flagWatchNext})
			d.known.Add(1)
		}
	}
	sh.reg, sh.devs, sh.loose = r, devs, loose
	sh.reindex(tableSize(len(devs) + len(loose)))
}

// Registry returns the registry in use.
func (d *Detector) Registry() *Registry { return d.reg.Load() }

// Device returns a copy of one device's state.
func (d *Detector) Device(nameplate string) (DeviceView, bool) {
	sh, h := d.shardOf(nameplate)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	dv := sh.find(h, nameplate)
	if dv == nil {
		return DeviceView{}, false
	}
	return dv.view(sh.reg, sh.name(dv), d.nominalVolt), true
}

// Devices returns copies of every device's state, sorted by nameplate, the
// faulty ones first when faultyFirst.
func (d *Detector) Devices(faultyFirst bool) []DeviceView {
	out := make([]DeviceView, 0, d.known.Load())
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		sh.each(func(dv *device) {
			out = append(out, dv.view(sh.reg, sh.name(dv), d.nominalVolt))
		})
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
		sh.each(func(dv *device) {
			if dv.online() && (nowSec < dv.lastSeen || nowSec-dv.lastSeen < d.lossSec) {
				c.Online++
			}
		})
		sh.mu.Unlock()
	}
	return c
}

// CollectAttributes appends the attributes of every device that changed
// since the last call (one record per device, however many messages) to
// out, and returns it.
func (d *Detector) CollectAttributes(out []DeviceAttributes) []DeviceAttributes {
	return d.CollectSomeAttributes(out, 0)
}

// CollectSomeAttributes is CollectAttributes for at most max devices (0:
// all); the devices left out stay changed for the next call. A caller
// saving a large fleet in bounded batches uses it, so that neither the
// collected copies nor one huge store transaction have to hold the whole
// fleet at once.
func (d *Detector) CollectSomeAttributes(out []DeviceAttributes, max int) []DeviceAttributes {
	n := 0
	for i := range d.shards {
		if max > 0 && n >= max {
			break
		}
		sh := &d.shards[i]
		sh.mu.Lock()
		sh.each(func(dv *device) {
			if dv.flags&flagDirty != 0 && (max <= 0 || n < max) {
				out = append(out, dv.attributes(sh.name(dv)))
				dv.flags &^= flagDirty
				n++
			}
		})
		sh.mu.Unlock()
	}
	return out
}
