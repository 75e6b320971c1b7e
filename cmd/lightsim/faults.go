package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// faultKind is one way a simulated controller can misbehave.
type faultKind uint8

const (
	kindDark      faultKind = iota + 1 // lamp dark while it should be lit
	kindDayburn                        // lamp lit by day
	kindSwell                          // supply voltage +20 %
	kindSag                            // supply voltage −20 %
	kindLowPF                          // power factor 0.6 while lit
	kindOverpower                      // power 1.5 × nominal while lit
	kindCycling                        // lamp_on toggling on every report
	kindSilence                        // stops publishing
	kindAlarm                          // reports an alarm name in "alarms"
	kindGarbage                        // publishes invalid payloads
)

var kindNames = map[faultKind]string{
	kindDark: "dark", kindDayburn: "dayburn", kindSwell: "swell", kindSag: "sag",
	kindLowPF: "lowpf", kindOverpower: "overpower", kindCycling: "cycling",
	kindSilence: "silence", kindAlarm: "alarm", kindGarbage: "garbage",
}

// faultKindList is the kinds in the order usage lists them.
var faultKindList = []faultKind{kindDark, kindDayburn, kindSwell, kindSag, kindLowPF,
	kindOverpower, kindCycling, kindSilence, kindAlarm, kindGarbage}

func (k faultKind) String() string { return kindNames[k] }

// Fault is one injected fault kind; Alarm names the alarm for kindAlarm.
type Fault struct {
	Kind  faultKind
	Alarm string
}

// String is the fault's name as the flag and the "fault" lines spell it:
// "dark", "alarm:relayFailure".
func (f Fault) String() string {
	if f.Kind == kindAlarm {
		return "alarm:" + f.Alarm
	}
	return f.Kind.String()
}

// ErrBadFault is wrapped by every --fault parse error.
var ErrBadFault = errors.New("bad --fault")

// faultSpec is one --fault flag: which fault, on which devices.
type faultSpec struct {
	Fault Fault
	// Exactly one of these says which devices: a fraction of the fleet, a
	// number of devices, or their nameplates.
	Share float64
	Count int
	List  []string
	raw   string
}

// parseFault parses KIND=SHARE|LIST. SHARE is a fraction with a decimal
// point ("0.1", "1.0"), a percentage ("10%") or a count ("5"); anything else
// is a comma-separated list of nameplates.
func parseFault(s string) (faultSpec, error) {
	spec := faultSpec{raw: s}
	name, who, ok := strings.Cut(s, "=")
	if !ok || name == "" || who == "" {
		return spec, fmt.Errorf("%w %q: want KIND=SHARE or KIND=NAMEPLATE[,NAMEPLATE]", ErrBadFault, s)
	}
	f, err := parseFaultName(name)
	if err != nil {
		return spec, fmt.Errorf("%w %q: %w", ErrBadFault, s, err)
	}
	spec.Fault = f
	switch {
	case strings.HasSuffix(who, "%"):
		p, err := strconv.ParseFloat(strings.TrimSuffix(who, "%"), 64)
		if err != nil || !(p > 0 && p <= 100) {
			return spec, fmt.Errorf("%w %q: percentage must be in (0, 100]", ErrBadFault, s)
		}
		spec.Share = p / 100
	case isDecimal(who) && strings.Contains(who, "."):
		p, err := strconv.ParseFloat(who, 64)
		if err != nil || !(p > 0 && p <= 1) {
			return spec, fmt.Errorf("%w %q: a fraction must be in (0, 1]", ErrBadFault, s)
		}
		spec.Share = p
	case isDecimal(who):
		n, err := strconv.Atoi(who)
		if err != nil || n <= 0 {
			return spec, fmt.Errorf("%w %q: a count must be a positive integer", ErrBadFault, s)
		}
		spec.Count = n
	default:
		for _, np := range strings.Split(who, ",") {
			np = strings.TrimSpace(np)
			if !validNameplate(np) {
				return spec, fmt.Errorf("%w %q: %q is not a valid nameplate", ErrBadFault, s, np)
			}
			spec.List = append(spec.List, np)
		}
	}
	return spec, nil
}

// isDecimal reports whether s is digits with at most one decimal point:
// "5", "0.1", ".5". Anything else (a nameplate) is a list.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

func parseFaultName(name string) (Fault, error) {
	if alarm, ok := strings.CutPrefix(name, "alarm:"); ok {
		if !validNameplate(alarm) {
			return Fault{}, fmt.Errorf("alarm name %q: want 1-64 of A-Z a-z 0-9 . _ -", alarm)
		}
		return Fault{Kind: kindAlarm, Alarm: alarm}, nil
	}
	for _, k := range faultKindList {
		if k != kindAlarm && k.String() == name {
			return Fault{Kind: k}, nil
		}
	}
	return Fault{}, fmt.Errorf("unknown kind %q (want dark, dayburn, swell, sag, lowpf, overpower, cycling, silence, garbage or alarm:NAME)", name)
}

// faultFlags collects repeated --fault flags (flag.Value).
type faultFlags []faultSpec

func (f *faultFlags) String() string {
	if f == nil {
		return ""
	}
	raw := make([]string, len(*f))
	for i, s := range *f {
		raw[i] = s.raw
	}
	return strings.Join(raw, " ")
}

func (f *faultFlags) Set(s string) error {
	spec, err := parseFault(s)
	if err != nil {
		return err
	}
	*f = append(*f, spec)
	return nil
}

// DeviceFault is a fault given to one device. With a fault cycle, the
// device is faulty during the first half of each 2×cycle period shifted by
// Phase, so that devices raise and clear at different moments.
type DeviceFault struct {
	Fault
	Phase time.Duration
}

// active reports whether the fault shows at t for a fleet started at start.
// Without a cycle it always shows. With one, faulty for a cycle, healthy for
// the next: every device starts faulty and its first clear comes after
// cycle−Phase.
func (f DeviceFault) active(t, start time.Time, cycle time.Duration) bool {
	if cycle <= 0 {
		return true
	}
	el := t.Sub(start) + f.Phase
	if el < 0 {
		return true
	}
	return (el/cycle)%2 == 0
}

// assignFaults gives the faults of specs to the devices, deterministically
// from seed: the same seed, fleet and flags always pick the same devices and
// the same phases. A share picks round(share × N) devices, at least one.
func assignFaults(devs []*Device, specs []faultSpec, seed uint64, cycle time.Duration) error {
	byName := make(map[string]*Device, len(devs))
	for _, d := range devs {
		byName[d.Nameplate] = d
	}
	for i, spec := range specs {
		rng := rand.New(rand.NewPCG(seed, hashString(spec.Fault.String())^uint64(i)<<32))
		var chosen []*Device
		switch {
		case len(spec.List) > 0:
			for _, np := range spec.List {
				d, ok := byName[np]
				if !ok {
					return fmt.Errorf("%w %q: no device %q in the fleet", ErrBadFault, spec.raw, np)
				}
				chosen = append(chosen, d)
			}
		default:
			n := spec.Count
			if spec.Share > 0 {
				n = max(1, int(math.Round(spec.Share*float64(len(devs)))))
			}
			if n > len(devs) {
				return fmt.Errorf("%w %q: %d devices asked, the fleet has %d", ErrBadFault, spec.raw, n, len(devs))
			}
			for _, j := range rng.Perm(len(devs))[:n] {
				chosen = append(chosen, devs[j])
			}
		}
		for _, d := range chosen {
			var phase time.Duration
			if cycle > 0 {
				phase = time.Duration(rng.Int64N(int64(cycle)))
			}
			d.Faults = append(d.Faults, DeviceFault{Fault: spec.Fault, Phase: phase})
		}
	}
	return nil
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// validNameplate is CONTRACT §3: 1–64 characters of A-Z a-z 0-9 . _ -.
func validNameplate(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
