package agent

import (
	"math"
	"time"
)

// The fault rules (CONTRACT §4), as written down in docs/readme-detection.md.
// Every rule looks only at the fields the message itself carried: a field a
// message lacks makes the rule neutral for that message, never a reading
// that shows or clears anything.

const (
	// lowDimPercent: below this dim level a healthy lamp may draw less
	// than EDGE_LAMP_MIN_POWER, so low power alone does not show a dark
	// lamp (lamp_on=false still does).
	lowDimPercent = 30
	// pfMinDim: powerFactorTooLow is judged only at dim levels where
	// drivers are specified (a driver at 20 % legitimately has a poor PF).
	pfMinDim = 50
	// overPowerFactor: lampPowerTooHigh above this multiple of nominal.
	overPowerFactor = 1.2
	// maxOpenAlarms bounds the controller alarms with names of their own
	// kept open per device: a controller reporting garbage names must not
	// open tickets without end.
	maxOpenAlarms = 16
	// maxAlarmName bounds an alarm name, as CONTRACT §3 bounds nameplates.
	maxAlarmName = 64
	// maxSwitchMarks bounds the night switching kept per device; older
	// marks merge into the next (counts are kept, times round later).
	maxSwitchMarks = 8
	// sunSecPerDegree: the sun's elevation changes by at most 15° an hour
	// (the Earth's rotation), i.e. a degree in 240 s; 200 s keeps a margin.
	// A phase computed with the sun d degrees from the nearest threshold
	// stays valid for d·200 s.
	sunSecPerDegree = 200
)

// apply runs the rules on an in-order telemetry message. at is t.At.
func (d *Detector) apply(o *observation, t *Telemetry, at uint32) {
	dv := o.dv
	r := &t.Reading
	first := dv.flags&flagTelemetry == 0
	prevAt := dv.latestAt
	dv.latestAt = at
	dv.flags |= flagTelemetry
	if r.Has(FieldPosition) {
		lat, lon := float32(t.Lat), float32(t.Lon)
		if dv.flags&flagPos == 0 || lat != dv.lat || lon != dv.lon {
			dv.lat, dv.lon = lat, lon
			dv.flags = dv.flags&^flagSunValid | flagPos
		}
	}
	phase := d.dayNight(o, t, at)
	lit, litKnown := d.litState(r)

	// Switching since the previous message, before the reading is merged.
	if d.cyclingSwitch > 0 {
		n := 0
		if litKnown && dv.flags&flagPrevLitKnown != 0 && lit != (dv.flags&flagPrevLit != 0) {
			n = 1
		}
		if r.Has(FieldSwitchCount) && dv.flags&flagPrevSwitch != 0 && !first && at-prevAt <= d.windowSec {
			if k := r.SwitchCount - float64(dv.rd.v[pSwitchCount]); k > float64(n) {
				n = int(min(k, math.MaxUint16)) // a counter reset (k < 0) counts nothing
			}
		}
		if n > 0 && phase == phaseNight {
			o.markSwitches(at, n)
		}
	}
	dv.rd.merge(r)
	dv.flags &^= flagPrevLitKnown | flagPrevLit | flagPrevSwitch
	if litKnown {
		dv.flags |= flagPrevLitKnown
		if lit {
			dv.flags |= flagPrevLit
		}
	}
	if r.Has(FieldSwitchCount) {
		dv.flags |= flagPrevSwitch
	}

	when := t.At
	dim, hasDim := 100.0, r.Has(FieldDim)
	if hasDim {
		dim = r.Dim
	}

	// lampFailure: night, and dark.
	{
		applicable, shows := false, false
		if phase == phaseNight && litKnown && !(hasDim && dim <= 0) {
			switch {
			case lit:
				applicable = true
			case r.Has(FieldLampOn) && !r.LampOn:
				applicable, shows = true, true
			case !(hasDim && dim < lowDimPercent):
				applicable, shows = true, true // relay on (or unknown), power too low
			}
		}
		o.step(fLampFailure, applicable, shows, at, when, r)
	}
	// lampUnexpectedOn: day, and lit.
	o.step(fLampUnexpectedOn, phase == phaseDay && litKnown, lit, at, when, r)

	// Supply voltage, day and night.
	if r.Has(FieldVoltage) && d.vHigh > 0 {
		o.step(fVoltageHigh, true, r.Voltage > d.vHigh, at, when, r)
		o.step(fVoltageLow, true, r.Voltage < d.vLow, at, when, r)
	}
	// powerFactorTooLow: lit, dim ≥ 50 %, a power factor in 0..1 (its
	// sign, which some meters use for leading/lagging, is ignored).
	if pf := math.Abs(r.PowerFactor); r.Has(FieldPowerFactor) && litKnown && lit && dim >= pfMinDim && pf <= 1 {
		o.step(fPowerFactorLow, true, pf < d.cfg.MinPowerFactor, at, when, r)
	}
	// lampPowerTooHigh: lit, with the registry's nominal power.
	if r.Has(FieldPower) && litKnown && lit {
		if nominal := o.regPower(); nominal > 0 {
			o.step(fLampPowerHigh, true, r.Power > overPowerFactor*nominal, at, when, r)
		}
	}
	// cyclingFailure: night, switching counted over the window.
	if d.cyclingSwitch > 0 && phase == phaseNight && (litKnown || r.Has(FieldSwitchCount)) {
		o.step(fCycling, true, dv.switchesWithin(at, d.windowSec) >= d.cyclingSwitch, at, when, r)
	}

	o.alarms(t, at)
}

// litState says whether the message shows the lamp lit: lamp_on when
// present; power under LampMinPower is dark even with lamp_on true (relay
// on, lamp dead); with no power reading, a lamp dimmed to 0 % is dark.
func (d *Detector) litState(r *Reading) (lit, known bool) {
	switch {
	case r.Has(FieldLampOn) && !r.LampOn:
		return false, true
	case r.Has(FieldPower):
		return r.Power >= d.cfg.LampMinPower, true
	case r.Has(FieldLampOn):
		return !(r.Has(FieldDim) && r.Dim <= 0), true
	}
	return false, false
}

// step is the debounce of rule i for one applicable (or not) reading. A
// run counts consecutive applicable readings that disagree with the rule's
// state; a reading that agrees ends the run; a neutral one does nothing.
// ConfirmCount readings in a run flip the state; Since is the run's first.
func (o *observation) step(i int, applicable, shows bool, at uint32, when time.Time, r *Reading) {
	if !applicable {
		return
	}
	dv := o.dv
	active := dv.rule&(1<<i) != 0
	if shows == active {
		dv.counts[i] = 0
		return
	}
	if dv.counts[i] == 0 {
		o.startRun(i, at)
	}
	dv.counts[i]++
	if dv.counts[i] >= o.d.confirm {
		dv.counts[i] = 0
		o.setSource(i, false, shows, o.runSince(i), when, r)
	}
}

// dayNight classes the reading's moment: night, day, or neither (twilight,
// the sun and the light sensor disagreeing, an untrusted clock, or nothing
// to tell by).
func (d *Detector) dayNight(o *observation, t *Telemetry, at uint32) sunPhase {
	if d.clock.check(t.Received) != clockOK {
		return phaseUnknown
	}
	sun := d.sunPhaseAt(o, at)
	if !t.Has(FieldLux) {
		return sun
	}
	dark := t.Lux < d.cfg.DayLux
	switch sun {
	case phaseUnknown: // no position: the light sensor alone decides
		if dark {
			return phaseNight
		}
		return phaseDay
	case phaseNight:
		if dark {
			return phaseNight
		}
	case phaseDay:
		if !dark {
			return phaseDay
		}
	}
	return phaseTwilight
}

// sunPhaseAt is the sun's phase at the device at Unix second at, cached
// for as long as the sun cannot cross a threshold: at night or by day, for
// hours, so most messages skip the computation.
func (d *Detector) sunPhaseAt(o *observation, at uint32) sunPhase {
	dv := o.dv
	if dv.flags&flagSunValid != 0 && at <= dv.sunMin {
		return dv.sunPhase
	}
	var lat, lon float64
	ok := false
	if rlat, rlon, rok := o.regPosition(); rok {
		lat, lon, ok = rlat, rlon, true
	} else if dv.flags&flagPos != 0 {
		lat, lon, ok = float64(dv.lat), float64(dv.lon), true
	} else if d.cfg.HasPosition {
		lat, lon, ok = d.cfg.Latitude, d.cfg.Longitude, true
	}
	ph, valid := phaseUnknown, uint32(math.MaxUint32-at) // no position: valid until it changes
	if ok {
		elev := SunElevation(time.Unix(int64(at), 0), lat, lon)
		ph = phaseOf(elev)
		margin := min(math.Abs(elev-NightBelow), math.Abs(elev-DayAbove))
		valid = uint32(min(margin*sunSecPerDegree, 6*3600))
	}
	dv.sunPhase, dv.sunMin = ph, at+valid
	dv.flags |= flagSunValid
	return ph
}

// markSwitches records n on/off changes seen at night at second at.
func (o *observation) markSwitches(at uint32, n int) {
	x := o.ext()
	w := o.d.windowSec
	keep := x.marks[:0]
	for _, m := range x.marks {
		if at >= m.at && at-m.at < w {
			keep = append(keep, m)
		}
	}
	x.marks = keep
	if len(x.marks) >= maxSwitchMarks {
		x.marks[1].n = uint16(min(int(x.marks[1].n)+int(x.marks[0].n), math.MaxUint16))
		x.marks = append(x.marks[:0], x.marks[1:]...)
	}
	x.marks = append(x.marks, switchMark{at: at, n: uint16(n)})
}

// switchesWithin counts the changes marked within w seconds before at.
func (dv *device) switchesWithin(at, w uint32) int {
	if dv.ext == nil {
		return 0
	}
	n := 0
	for _, m := range dv.ext.marks {
		if at >= m.at && at-m.at < w {
			n += int(m.n)
		}
	}
	return n
}

// validAlarmName: 1–64 bytes, no control characters.
func validAlarmName(s string) bool {
	if s == "" || len(s) > maxAlarmName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// alarms applies the controller's alarm set: each name is a fault, raised
// at once and cleared at once when a later message no longer reports it
// (an absent alarms key is the empty set). A built-in name is the same
// fault as the rule's: open while either says so.
func (o *observation) alarms(t *Telemetry, at uint32) {
	dv := o.dv
	var names []string
	if t.Has(FieldAlarms) {
		names = t.Alarms
	}
	var mask uint16
	custom := 0
	for _, n := range names {
		if i := builtinIndex(n); i >= 0 {
			mask |= 1 << i
		} else if validAlarmName(n) {
			custom++
		}
	}
	r := &t.Reading
	if diff := mask ^ dv.alarm; diff != 0 {
		for i := range nBuiltin {
			if diff&(1<<i) != 0 {
				o.setSource(i, true, mask&(1<<i) != 0, at, t.At, r)
			}
		}
	}
	if custom == 0 && (dv.ext == nil || len(dv.ext.alarms) == 0) {
		return
	}
	// Anything to change? (The common case, the same alarms again, is not.)
	changed := false
	if dv.ext != nil {
		for _, a := range dv.ext.alarms {
			if !containsString(names, a.name) {
				changed = true
				break
			}
		}
	}
	if !changed {
		for _, n := range names {
			if builtinIndex(n) < 0 && validAlarmName(n) && !hasOpenAlarm(dv.ext, n) &&
				(dv.ext == nil || len(dv.ext.alarms) < maxOpenAlarms) {
				changed = true
				break
			}
		}
	}
	if !changed {
		return
	}
	x := o.ext()
	kept := x.alarms[:0]
	for _, a := range x.alarms {
		if containsString(names, a.name) {
			kept = append(kept, a)
		} else {
			o.emit(Clear, a.name, at, t.At, r)
		}
	}
	x.alarms = kept
	for _, n := range names {
		if builtinIndex(n) >= 0 || !validAlarmName(n) || hasOpenAlarm(x, n) || len(x.alarms) >= maxOpenAlarms {
			continue
		}
		name := string([]byte(n)) // the message's strings may share a reused buffer
		x.alarms = append(x.alarms, openAlarm{name: name, since: at})
		o.emit(Raise, name, at, t.At, r)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
