package agent

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Per-device state. A gateway may watch 100,000 light points, so a device
// is one flat, fixed-size record of 200 bytes (its history included), kept
// in its shard's array rather than allocated on its own; its nameplate is a
// registry row number, not a string. Everything a healthy device does not
// need (the start of each open fault, controller alarms, recent night-time
// switching) lives in an extension allocated only when a device has one of
// those. Times are Unix seconds in uint32 (good to 2106): a second is finer
// than any rule needs.

// Indexes of the built-in faults. The first nRules are debounced rules.
const (
	fLampFailure = iota
	fLampUnexpectedOn
	fVoltageHigh
	fVoltageLow
	fPowerFactorLow
	fLampPowerHigh
	fCycling
	nRules

	fCommunication = nRules
	nBuiltin       = nRules + 1
)

var builtinFaults = [nBuiltin]string{
	fLampFailure:      FaultLampFailure,
	fLampUnexpectedOn: FaultLampUnexpectedOn,
	fVoltageHigh:      FaultSupplyVoltageTooHigh,
	fVoltageLow:       FaultSupplyVoltageTooLow,
	fPowerFactorLow:   FaultPowerFactorTooLow,
	fLampPowerHigh:    FaultLampPowerTooHigh,
	fCycling:          FaultCyclingFailure,
	fCommunication:    FaultCommunicationFailure,
}

// builtinIndex returns the index of a built-in fault name, or −1.
func builtinIndex(name string) int {
	for i, n := range builtinFaults {
		if n == name {
			return i
		}
	}
	return -1
}

// Device flags.
const (
	flagHeard        uint16 = 1 << iota // a sign of life (telemetry, online status) since start
	flagTelemetry                       // at least one telemetry message applied
	flagOffline                         // status offline, no sign of life since
	flagPos                             // lat/lon reported by the device itself
	flagPrevLitKnown                    // the previous telemetry said whether the lamp was lit...
	flagPrevLit                         // ...and it was
	flagPrevSwitch                      // the previous telemetry carried switch_count
	flagDirty                           // attributes changed since the last CollectAttributes
	flagSunValid                        // sunMin/sunPhase hold a cached phase
	flagWatchNext                       // added by a registry reload: silence counts from the next sweep
	flagInReg                           // ref is a row of the shard's registry (else an index in its loose devices)
)

type device struct {
	ext *deviceExt
	// ref names the device: with flagInReg its row in the shard's
	// registry, else its index in the shard's loose devices.
	ref uint32

	// lastSeen is the last sign of life; for a device never heard from
	// (no flagHeard) it is when its silence started to count instead.
	lastSeen  uint32
	latestAt  uint32 // At of the newest telemetry applied (unordered delivery)
	offlineAt uint32 // when an offline status came, with flagOffline
	sunMin    uint32 // At minute (Unix/60) of the cached sun phase

	rd       packedReading
	lat, lon float32 // reported by the device, with flagPos

	// hist is written after a message's commit and never rolled back (see
	// Observe); a zero history is an empty one.
	hist history

	// Sources of the built-in faults, a bit per builtin index: rule is the
	// debounced rule (or, for communicationFailure, the sweep); alarm is a
	// controller alarm of the same name. A fault is open while either is.
	rule, alarm uint16
	flags       uint16
	counts      [nRules]uint8 // length of each rule's current run (its start is in ext)
	sunPhase    sunPhase
}

// looseDevice is a device outside the shard's registry (heard from but not
// listed, or dropped by a reload after it was heard from): rare when there
// is a registry, so allocated one by one with its own nameplate.
type looseDevice struct {
	device
	name string
}

// deviceExt is the rarely needed part of a device. It is copied before
// being changed (copy on write), so that rolling a device back after a
// failed commit is restoring the device struct.
type deviceExt struct {
	faultSince [nBuiltin]uint32 // when each open built-in fault began
	// since is the first reading of each rule's current run, while counts
	// has one: runs are rare (they precede a raise or a clear, which needs
	// the extension anyway), so the 28 bytes are not in every device.
	since  [nRules]uint32
	alarms []openAlarm  // open controller alarms with names not built in
	marks  []switchMark // night-time switching within the cycling window
}

type openAlarm struct {
	name  string
	since uint32
}

type switchMark struct {
	at uint32
	n  uint16
}

func (x *deviceExt) clone() *deviceExt {
	if x == nil {
		return &deviceExt{}
	}
	c := *x
	c.alarms = slices.Clone(x.alarms)
	c.marks = slices.Clone(x.marks)
	return &c
}

func (dv *device) open() uint16 { return dv.rule | dv.alarm }

func (dv *device) faulty() bool {
	return dv.open() != 0 || dv.ext != nil && len(dv.ext.alarms) > 0
}

func (dv *device) online() bool {
	return dv.flags&flagHeard != 0 && dv.flags&flagOffline == 0 && dv.rule&(1<<fCommunication) == 0
}

// packedReading is the latest value of every field ever reported, in
// float32: 7 significant digits, ample for what a controller measures
// (values are returned as their shortest decimal, so 221.4 stays 221.4).
type packedReading struct {
	fields Field
	lampOn bool
	v      [nPacked]float32
}

const (
	pVoltage = iota
	pCurrent
	pPower
	pPowerFactor
	pEnergy
	pDim
	pLux
	pTemperature
	pBurnHours
	pSwitchCount
	nPacked
)

func f32(v float64) float32 {
	return float32(max(-math.MaxFloat32, min(v, math.MaxFloat32)))
}

func (p *packedReading) merge(r *Reading) {
	f := r.Fields
	set := func(field Field, i int, v float64) {
		if f&field != 0 {
			p.v[i] = f32(v)
		}
	}
	set(FieldVoltage, pVoltage, r.Voltage)
	set(FieldCurrent, pCurrent, r.Current)
	set(FieldPower, pPower, r.Power)
	set(FieldPowerFactor, pPowerFactor, r.PowerFactor)
	set(FieldEnergy, pEnergy, r.Energy)
	set(FieldDim, pDim, r.Dim)
	set(FieldLux, pLux, r.Lux)
	set(FieldTemperature, pTemperature, r.Temperature)
	set(FieldBurnHours, pBurnHours, r.BurnHours)
	set(FieldSwitchCount, pSwitchCount, r.SwitchCount)
	if f&FieldLampOn != 0 {
		p.lampOn = r.LampOn
	}
	// Position, alarms and time are not measurements: not kept here.
	p.fields |= f &^ (FieldPosition | FieldAlarms | FieldTime)
}

// unpack returns the reading as float64 values, each the shortest decimal
// of its float32 (what the controller sent, to 7 significant digits).
func (p *packedReading) unpack() Reading {
	dec := f64
	return Reading{
		Fields:      p.fields,
		Voltage:     dec(p.v[pVoltage]),
		Current:     dec(p.v[pCurrent]),
		Power:       dec(p.v[pPower]),
		PowerFactor: dec(p.v[pPowerFactor]),
		Energy:      dec(p.v[pEnergy]),
		LampOn:      p.lampOn,
		Dim:         dec(p.v[pDim]),
		Lux:         dec(p.v[pLux]),
		Temperature: dec(p.v[pTemperature]),
		BurnHours:   dec(p.v[pBurnHours]),
		SwitchCount: dec(p.v[pSwitchCount]),
	}
}

// f64 widens v to the float64 of its shortest decimal: float32(221.4)
// becomes 221.4, not 221.39999389648438.
func f64(v float32) float64 {
	var buf [24]byte
	b := strconv.AppendFloat(buf[:0], float64(v), 'g', -1, 32)
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return float64(v)
	}
	return x
}

// unixSec is t in Unix seconds, clamped to what uint32 holds.
func unixSec(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

func secTime(s uint32) time.Time { return time.Unix(int64(s), 0).UTC() }

// FaultView is one open fault of a device.
type FaultView struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// DeviceView is a copy of one device's state, for the status page, the
// devices API and the CLI.
type DeviceView struct {
	Nameplate  string     `json:"nameplate_num"`
	InRegistry bool       `json:"in_registry"`
	Info       DeviceInfo `json:"info"`
	// LastSeen is the last sign of life (zero if none since start).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Online: heard from since start, not reported offline since, and not
	// in communicationFailure.
	Online bool `json:"online"`
	// Reading is the latest value of each field ever reported; ReadingAt
	// is when the newest telemetry was measured.
	Reading   Reading   `json:"reading"`
	ReadingAt time.Time `json:"reading_at,omitzero"`
	// The device's position: the registry's, else its own reports.
	Lat         float64 `json:"lat,omitempty"`
	Lon         float64 `json:"lon,omitempty"`
	HasPosition bool    `json:"has_position"`
	// Faults are the open faults, oldest first.
	Faults []FaultView `json:"faults"`
	// Alarms are the controller's alarms reported as active now.
	Alarms  []string       `json:"alarms,omitempty"`
	History []HistoryPoint `json:"history,omitempty"`
}

// view copies the device. The caller holds its shard's lock; reg is the
// shard's registry and name the device's nameplate.
func (dv *device) view(reg *Registry, name string, nominalVolt float64) DeviceView {
	v := DeviceView{Nameplate: name, Online: dv.online()}
	if dv.flags&flagInReg != 0 {
		v.InRegistry, v.Info = true, reg.info(int32(dv.ref))
	} else {
		v.Info.Nameplate = name
	}
	if dv.flags&flagHeard != 0 {
		v.LastSeen = secTime(dv.lastSeen)
	}
	if dv.flags&flagTelemetry != 0 {
		v.Reading = dv.rd.unpack()
		v.ReadingAt = secTime(dv.latestAt)
	}
	v.Lat, v.Lon, v.HasPosition = dv.position(reg)
	v.Faults = dv.faultViews()
	for i, n := range builtinFaults {
		if dv.alarm&(1<<i) != 0 {
			v.Alarms = append(v.Alarms, n)
		}
	}
	if dv.ext != nil {
		for _, a := range dv.ext.alarms {
			v.Alarms = append(v.Alarms, a.name)
		}
	}
	slices.Sort(v.Alarms)
	v.History = dv.hist.points(nominalVolt)
	return v
}

func (dv *device) faultViews() []FaultView {
	out := []FaultView{}
	open := dv.open()
	for i, n := range builtinFaults {
		if open&(1<<i) != 0 {
			var s uint32
			if dv.ext != nil {
				s = dv.ext.faultSince[i]
			}
			out = append(out, FaultView{Name: n, Since: secTime(s)})
		}
	}
	if dv.ext != nil {
		for _, a := range dv.ext.alarms {
			out = append(out, FaultView{Name: a.name, Since: secTime(a.since)})
		}
	}
	slices.SortFunc(out, func(a, b FaultView) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return compareStrings(a.Name, b.Name)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// activeFaults lists the open fault names, sorted.
func (dv *device) activeFaults() []string {
	out := []string{}
	open := dv.open()
	for i, n := range builtinFaults {
		if open&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if dv.ext != nil {
		for _, a := range dv.ext.alarms {
			out = append(out, a.name)
		}
	}
	slices.Sort(out)
	return out
}

// position is the device's own position: the registry's (reg is the
// shard's), else what it reported. (The gateway's position serves the sun
// clock, not the view.)
func (dv *device) position(reg *Registry) (lat, lon float64, ok bool) {
	if lat, lon, ok := dv.regPosition(reg); ok {
		return lat, lon, true
	}
	if dv.flags&flagPos != 0 {
		return f64(dv.lat), f64(dv.lon), true
	}
	return 0, 0, false
}

// regPosition is the position the registry gives the device.
func (dv *device) regPosition(reg *Registry) (lat, lon float64, ok bool) {
	if dv.flags&flagInReg == 0 {
		return 0, 0, false
	}
	return reg.position(int32(dv.ref))
}

// regPower is the nominal power the registry gives the device, 0 if none.
func (dv *device) regPower(reg *Registry) float64 {
	if dv.flags&flagInReg == 0 {
		return 0
	}
	return reg.power(int32(dv.ref))
}

func (dv *device) attributes(name string) DeviceAttributes {
	a := DeviceAttributes{
		Nameplate:    name,
		Online:       dv.online(),
		ActiveFaults: dv.activeFaults(),
	}
	if dv.flags&flagTelemetry != 0 {
		a.Reading = dv.rd.unpack()
	}
	if dv.flags&flagHeard != 0 {
		a.LastSeen = secTime(dv.lastSeen)
	}
	return a
}
