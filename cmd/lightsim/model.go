package main

import (
	"math"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Sample is what one device reports at one instant (before encoding), plus
// what the simulator knows about it (the sun, the faults showing).
type Sample struct {
	Nameplate   string
	At          time.Time
	TS          tsFormat
	Sun         float64 // elevation at the device, degrees
	ShouldLight bool    // the photocell's verdict: sun below −3°
	LampOn      bool
	Dim         int // %
	Voltage     float64
	Current     float64
	Power       float64
	PowerFactor float64
	Energy      float64 // kWh
	HasLux      bool
	Lux         float64
	Temperature float64
	BurnHours   float64
	SwitchCount int64
	Lat, Lon    float64
	Alarms      []string // never nil: an empty list says "no alarm active"

	// Silent: the device does not publish this time (silence fault).
	Silent bool
	// Garbage: the device publishes an invalid payload instead.
	Garbage bool
	// Changes are the faults that started or stopped showing since the
	// previous step (all showing faults on the first step), for the
	// "fault" lines.
	Changes []FaultChange
}

// FaultChange is one fault of one device starting (On) or stopping.
type FaultChange struct {
	Fault Fault
	On    bool
}

// Model constants: a 220 V grid, LED luminaires with electronic drivers.
const (
	nominalVoltage = 220.0
	photocellOn    = -3.0 // sun elevation under which the photocell lights the lamp
	deadLampPower  = 0.3  // W drawn by a driver whose LEDs are dead, relay closed
)

// step advances the device to t and returns its report. Times should not go
// backwards; a step back (or a gap of more than a day) accumulates nothing.
func (d *Device) step(f *Fleet, t time.Time) Sample {
	s := Sample{Nameplate: d.Nameplate, At: t, TS: d.TS, Lat: d.Lat, Lon: d.Lon, HasLux: d.HasLux, Alarms: []string{}}

	// Which faults show now, and the lines for those that changed.
	if d.shown == nil {
		d.shown = make([]bool, len(d.Faults))
	}
	var dark, dayburn, swell, sag, lowPF, overpower, cycling bool
	for i, df := range d.Faults {
		on := df.active(t, f.Start, f.Cycle)
		if on != d.shown[i] || (!d.started && on) {
			s.Changes = append(s.Changes, FaultChange{Fault: df.Fault, On: on})
		}
		d.shown[i] = on
		if !on {
			continue
		}
		switch df.Kind {
		case kindDark:
			dark = true
		case kindDayburn:
			dayburn = true
		case kindSwell:
			swell = true
		case kindSag:
			sag = true
		case kindLowPF:
			lowPF = true
		case kindOverpower:
			overpower = true
		case kindCycling:
			cycling = true
		case kindSilence:
			s.Silent = true
		case kindGarbage:
			s.Garbage = true
		case kindAlarm:
			s.Alarms = append(s.Alarms, df.Alarm)
		}
	}

	// The photocell and the dimming schedule.
	s.Sun = agent.SunElevation(t, d.Lat, d.Lon)
	s.ShouldLight = s.Sun < photocellOn
	hour := solarHour(t, d.Lon)
	lampOn := s.ShouldLight
	var dim int
	deadLamp := false
	if dayburn && !s.ShouldLight {
		lampOn = true
	}
	if dark && s.ShouldLight {
		lampOn = d.darkRelayOn
		deadLamp = d.darkRelayOn
	}
	if cycling {
		lampOn = !d.lampOn
		deadLamp = false
	}
	// dim is the level the controller commands, as it reports it: the
	// schedule's while the photocell says night (even if the lamp failed to
	// light: a dark lamp is not "dimmed to 0 %"), 0 by day, 100 for a lamp
	// lit against the schedule.
	switch {
	case s.ShouldLight && f.Dimming && hour < 12:
		dim = 50 // after local midnight, until the sun comes up: half power
	case s.ShouldLight:
		dim = 100
	case lampOn:
		dim = 100
	default:
		dim = 0
	}

	// Supply: the spot's level, a slow evening sag under the city's load,
	// and meter noise.
	v := nominalVoltage*(1+d.voltOffset) - 2*eveningLoad(hour) + 0.8*d.rng.NormFloat64()
	switch {
	case swell:
		v *= 1.2
	case sag:
		v *= 0.8
	}
	s.Voltage = v

	// Load: an LED driver draws roughly in proportion to its dim level.
	switch {
	case !lampOn:
		s.Power, s.PowerFactor = 0, 0
	case deadLamp:
		s.Power = deadLampPower * (1 + 0.05*d.rng.NormFloat64())
		s.PowerFactor = 0.3
	default:
		s.Power = d.NominalPower * (0.04 + 0.96*float64(dim)/100) * (1 + 0.01*d.rng.NormFloat64())
		if overpower {
			// A failed driver ignores the dim level: 1.5 × the rating, so
			// the agent's lit-power-above-1.2×-nominal rule sees it at any dim.
			s.Power = 1.5 * d.NominalPower * (1 + 0.01*d.rng.NormFloat64())
		}
		s.PowerFactor = math.Min(0.99, 0.965-0.0009*float64(100-dim)+0.005*d.rng.NormFloat64())
		if lowPF {
			s.PowerFactor = 0.6 + 0.01*d.rng.NormFloat64()
		}
	}
	if s.PowerFactor > 0 {
		s.Current = s.Power / (s.Voltage * s.PowerFactor)
	}
	s.LampOn = lampOn
	s.Dim = dim

	// What accumulates: energy, burn hours, switches.
	if d.started {
		if dt := t.Sub(d.last); dt > 0 && dt <= 24*time.Hour {
			h := dt.Hours()
			d.energy += s.Power * h / 1000
			if lampOn && !deadLamp {
				d.burnHours += h
			}
		}
		if lampOn != d.lampOn {
			d.switches++
		}
	}
	d.started, d.last, d.lampOn = true, t, lampOn
	s.Energy, s.BurnHours, s.SwitchCount = d.energy, d.burnHours, d.switches

	if d.HasLux {
		s.Lux = math.Max(0.1, ambientLux(s.Sun)*(1+0.05*d.rng.NormFloat64()))
	}
	heat := 0.0
	if lampOn && d.NominalPower > 0 {
		heat = 15 * s.Power / d.NominalPower
	}
	s.Temperature = 22 + 6*math.Sin(2*math.Pi*(hour-9)/24) + d.tempOffset + heat + 0.3*d.rng.NormFloat64()
	return s
}

// solarHour is the local mean solar time at longitude lon, in hours [0, 24):
// midnight is when the sun is lowest, whatever the time zone.
func solarHour(t time.Time, lon float64) float64 {
	u := t.UTC()
	h := float64(u.Hour()) + float64(u.Minute())/60 + float64(u.Second())/3600 + lon/15
	h = math.Mod(h, 24)
	if h < 0 {
		h += 24
	}
	return h
}

// eveningLoad is 0..1, peaking at 20 h local when the city draws most.
func eveningLoad(hour float64) float64 {
	x := (hour - 20) / 2.5
	return math.Exp(-x * x)
}

// ambientLux is the daylight on a horizontal sensor at a sun elevation:
// ~1 lux at night (moon, sky glow), a log ramp through twilight (~3 lux at
// −6°, ~400 at sunrise), then roughly 400 + 100 000 × sin(elevation).
func ambientLux(elev float64) float64 {
	switch {
	case elev < -6:
		return 1
	case elev < 0:
		return math.Pow(10, math.Log10(3)+(elev+6)/6*(math.Log10(400)-math.Log10(3)))
	}
	return 400 + 100000*math.Sin(elev*math.Pi/180)
}
