package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// tsFormat is how a device writes "ts" (CONTRACT §3 accepts all of them).
type tsFormat uint8

const (
	tsRFC3339 tsFormat = iota
	tsUnix
	tsUnixMs
	tsNone
)

var tsFormatNames = []string{"rfc3339", "unix", "unixms", "none"}

func (f tsFormat) String() string { return tsFormatNames[f] }

// parseTSFormat accepts one format, or "mix": each device picks one of the
// four at random (from the seed).
func parseTSFormat(s string) (f tsFormat, mix bool, err error) {
	if s == "mix" {
		return 0, true, nil
	}
	for i, n := range tsFormatNames {
		if s == n {
			return tsFormat(i), false, nil
		}
	}
	return 0, false, fmt.Errorf("bad --ts-format %q: want rfc3339, unix, unixms, none or mix", s)
}

// Device is one simulated controller: what it is (fixed at start, from the
// seed and the registry) and what it has accumulated (energy, burn hours,
// switches). Only one goroutine steps a device.
type Device struct {
	Index        int // 1-based position in the fleet; with the seed it fixes the device's randomness
	Nameplate    string
	Lat, Lon     float64
	NominalPower float64 // W
	HasLux       bool    // has a light sensor and reports lux
	TS           tsFormat
	Faults       []DeviceFault

	// Fixed traits drawn from the seed.
	voltOffset  float64 // supply level of its spot in the grid, fraction of nominal
	tempOffset  float64 // °C, how warm its spot runs
	darkRelayOn bool    // a dark fault shows as relay on, lamp dead (else as lamp off)

	rng *rand.Rand

	// Accumulated state, advanced by step.
	started    bool
	last       time.Time
	lampOn     bool
	energy     float64 // kWh
	burnHours  float64
	switches   int64
	garbageSeq uint64
	shown      []bool // per Faults entry: active at the last step (for the fault lines)
}

// nominalPowers are common LED streetlight ratings, in W.
var nominalPowers = []float64{50, 60, 70, 80, 100, 120, 150}

// newDevice draws a device's traits from (seed, index). The draws happen in
// a fixed order whatever the caller overrides afterwards (registry position
// or power), so that a device is the same with or without a registry.
func newDevice(seed uint64, index int, nameplate string, center Place, spreadKm, luxShare float64, ts tsFormat, tsMix bool) *Device {
	rng := rand.New(rand.NewPCG(seed, uint64(index)))
	d := &Device{Index: index, Nameplate: nameplate, rng: rng, TS: ts}
	d.Lat, d.Lon = spread(rng, center.Lat, center.Lon, spreadKm)
	d.NominalPower = nominalPowers[rng.IntN(len(nominalPowers))]
	d.HasLux = rng.Float64() < luxShare
	tsPick := tsFormat(rng.IntN(len(tsFormatNames)))
	if tsMix {
		d.TS = tsPick
	}
	d.voltOffset = (rng.Float64()*2 - 1) * 0.025
	d.tempOffset = rng.NormFloat64()
	d.darkRelayOn = rng.IntN(2) == 1
	// A lamp some years into its life: about 11.5 h lit a night, one on and
	// one off switch a night, energy at its rating.
	d.burnHours = 2000 + rng.Float64()*18000
	d.energy = d.burnHours * d.NominalPower / 1000
	d.switches = int64(d.burnHours/11.5) * 2
	return d
}

// Fleet is the simulated devices and the clock of their fault cycles.
type Fleet struct {
	Devices []*Device
	Place   Place
	Start   time.Time     // fault cycles count from here
	Cycle   time.Duration // --fault-cycle; 0: faults always on
	Dimming bool          // 50 % after local solar midnight
}

// fleetSpec is what buildFleet needs of the flags.
type fleetSpec struct {
	Devices  int
	Pattern  string
	First    int
	Registry []RegistryRow // when set, the fleet is these devices, in this order
	Place    Place
	SpreadKm float64
	LuxShare float64
	TSFormat string
	Faults   []faultSpec
	Cycle    time.Duration
	Dimming  bool
	Seed     uint64
	Start    time.Time
}

// ErrBadFleet is wrapped by fleet-building errors.
var ErrBadFleet = errors.New("bad fleet")

// buildFleet makes the devices, deterministically from the seed.
func buildFleet(s fleetSpec) (*Fleet, error) {
	ts, mix, err := parseTSFormat(s.TSFormat)
	if err != nil {
		return nil, err
	}
	f := &Fleet{Place: s.Place, Start: s.Start, Cycle: s.Cycle, Dimming: s.Dimming}
	seen := make(map[string]bool)
	add := func(d *Device) error {
		if !validNameplate(d.Nameplate) {
			return fmt.Errorf("%w: nameplate %q: want 1-64 of A-Z a-z 0-9 . _ -", ErrBadFleet, d.Nameplate)
		}
		if seen[d.Nameplate] {
			return fmt.Errorf("%w: nameplate %q twice", ErrBadFleet, d.Nameplate)
		}
		seen[d.Nameplate] = true
		f.Devices = append(f.Devices, d)
		return nil
	}
	if len(s.Registry) > 0 {
		for i, row := range s.Registry {
			d := newDevice(s.Seed, i+1, row.Nameplate, s.Place, s.SpreadKm, s.LuxShare, ts, mix)
			if row.HasPosition {
				d.Lat, d.Lon = row.Lat, row.Lon
			}
			if row.NominalPower > 0 {
				d.NominalPower = row.NominalPower
				d.energy = d.burnHours * d.NominalPower / 1000
			}
			if err := add(d); err != nil {
				return nil, err
			}
		}
	} else {
		if s.Devices <= 0 {
			return nil, fmt.Errorf("%w: --devices must be at least 1", ErrBadFleet)
		}
		for i := range s.Devices {
			np := fmt.Sprintf(s.Pattern, s.First+i)
			if err := add(newDevice(s.Seed, s.First+i, np, s.Place, s.SpreadKm, s.LuxShare, ts, mix)); err != nil {
				return nil, fmt.Errorf("%w (check --pattern)", err)
			}
		}
	}
	if err := assignFaults(f.Devices, s.Faults, s.Seed, s.Cycle); err != nil {
		return nil, err
	}
	return f, nil
}

// ActiveFaults counts the (device, fault) pairs showing at t.
func (f *Fleet) ActiveFaults(t time.Time) int {
	n := 0
	for _, d := range f.Devices {
		for _, df := range d.Faults {
			if df.active(t, f.Start, f.Cycle) {
				n++
			}
		}
	}
	return n
}

// FaultyDevices counts the devices given at least one fault.
func (f *Fleet) FaultyDevices() int {
	n := 0
	for _, d := range f.Devices {
		if len(d.Faults) > 0 {
			n++
		}
	}
	return n
}
