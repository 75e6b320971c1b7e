package main

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Uberaba, MG (UTC−3, no daylight saving), on a June (winter) day: the sun
// sets around 17:40 local and rises around 06:40.
var (
	uberaba     = Place{Name: "Uberaba", State: "MG", Lat: -19.7472, Lon: -47.9381}
	evening     = time.Date(2026, 6, 15, 23, 0, 0, 0, time.UTC) // 20:00 local: lit, full power
	afterMid    = time.Date(2026, 6, 16, 4, 0, 0, 0, time.UTC)  // 01:00 local: lit, dimmed to 50 %
	noon        = time.Date(2026, 6, 16, 15, 0, 0, 0, time.UTC) // 12:00 local: day
	testFleetT0 = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
)

// testDevice is one device at Uberaba's centre, with a known rating and a
// light sensor, and the given faults (always on).
func testDevice(t *testing.T, faults ...Fault) (*Fleet, *Device) {
	t.Helper()
	d := newDevice(7, 1, "IP00001", uberaba, 0, 1, tsRFC3339, false)
	d.NominalPower = 100
	for _, f := range faults {
		d.Faults = append(d.Faults, DeviceFault{Fault: f})
	}
	return &Fleet{Devices: []*Device{d}, Place: uberaba, Start: testFleetT0, Dimming: true}, d
}

func TestTestTimesAreWhatTheyClaim(t *testing.T) {
	// The model tests below rely on these; if the sun clock disagrees,
	// those tests would prove nothing.
	for _, c := range []struct {
		at       time.Time
		min, max float64
	}{
		{evening, -90, -12}, {afterMid, -90, -12}, {noon, 30, 90},
	} {
		if e := agent.SunElevation(c.at, uberaba.Lat, uberaba.Lon); e < c.min || e > c.max {
			t.Fatalf("sun at %s = %.1f°, want %v..%v", c.at, e, c.min, c.max)
		}
	}
}

// within reports whether got is within frac of want.
func within(got, want, frac float64) bool { return math.Abs(got-want) <= math.Abs(want)*frac }

func TestHealthyDeviceNightAndDay(t *testing.T) {
	f, d := testDevice(t)
	checkElectric := func(t *testing.T, s Sample) {
		t.Helper()
		if s.Voltage < 198 || s.Voltage > 242 {
			t.Errorf("voltage %.1f outside 220 V ± 10 %%", s.Voltage)
		}
		if s.LampOn {
			if s.PowerFactor < 0.85 || s.PowerFactor > 0.99 {
				t.Errorf("power factor %.3f of a healthy lit lamp", s.PowerFactor)
			}
			if want := s.Power / (s.Voltage * s.PowerFactor); !within(s.Current, want, 1e-9) {
				t.Errorf("current %.4f A, want P/(V·PF) = %.4f", s.Current, want)
			}
		} else if s.Power != 0 || s.Current != 0 {
			t.Errorf("lamp off draws %.1f W, %.3f A", s.Power, s.Current)
		}
		if s.Temperature < 0 || s.Temperature > 60 {
			t.Errorf("temperature %.1f °C", s.Temperature)
		}
		if s.Alarms == nil || len(s.Alarms) != 0 {
			t.Errorf("alarms %v, want an empty list", s.Alarms)
		}
	}

	ev := d.step(f, evening)
	if !ev.LampOn || ev.Dim != 100 || !within(ev.Power, 100, 0.05) {
		t.Errorf("evening: lamp_on=%v dim=%d power=%.1f, want lit at 100 %% ≈ 100 W", ev.LampOn, ev.Dim, ev.Power)
	}
	if ev.Lux > 5 {
		t.Errorf("evening lux %.1f, want about 1", ev.Lux)
	}
	checkElectric(t, ev)

	am := d.step(f, afterMid)
	if !am.LampOn || am.Dim != 50 || !within(am.Power, 52, 0.05) {
		t.Errorf("after midnight: lamp_on=%v dim=%d power=%.1f, want lit at 50 %% ≈ 52 W", am.LampOn, am.Dim, am.Power)
	}
	checkElectric(t, am)

	day := d.step(f, noon)
	if day.LampOn || day.Dim != 0 {
		t.Errorf("noon: lamp_on=%v dim=%d, want off", day.LampOn, day.Dim)
	}
	if day.Lux < 10000 {
		t.Errorf("noon lux %.0f, want daylight", day.Lux)
	}
	checkElectric(t, day)

	// Without dimming the lamp stays at 100 % all night.
	f.Dimming = false
	if s := d.step(f, afterMid.Add(24*time.Hour)); s.Dim != 100 {
		t.Errorf("no dimming: dim %d after midnight", s.Dim)
	}
}

func TestAccumulation(t *testing.T) {
	f, d := testDevice(t)
	day := d.step(f, noon.Add(-24*time.Hour))
	night1 := d.step(f, evening)
	if night1.SwitchCount != day.SwitchCount+1 {
		t.Errorf("switch_count %d → %d across dusk, want +1", day.SwitchCount, night1.SwitchCount)
	}
	night2 := d.step(f, evening.Add(time.Hour))
	if got := night2.BurnHours - night1.BurnHours; !within(got, 1, 1e-9) {
		t.Errorf("burn_hours +%.4f over a lit hour, want +1", got)
	}
	if got := night2.Energy - night1.Energy; !within(got, night2.Power/1000, 1e-9) {
		t.Errorf("energy +%.5f kWh over a lit hour, want power × 1 h = %.5f", got, night2.Power/1000)
	}
	if night2.SwitchCount != night1.SwitchCount {
		t.Errorf("switch_count moved while the lamp stayed lit")
	}
	day2 := d.step(f, noon)
	day3 := d.step(f, noon.Add(time.Hour))
	if day3.BurnHours != day2.BurnHours || day3.Energy != day2.Energy {
		t.Errorf("burn hours or energy grew by day: %v→%v h, %v→%v kWh", day2.BurnHours, day3.BurnHours, day2.Energy, day3.Energy)
	}
	// Time going backwards accumulates nothing.
	back := d.step(f, noon)
	if back.Energy != day3.Energy || back.BurnHours != day3.BurnHours {
		t.Errorf("a step back in time changed the counters")
	}
}

func TestFaultKinds(t *testing.T) {
	type check func(t *testing.T, night, day Sample, healthyNight, healthyDay Sample)
	cases := []struct {
		name  string
		fault Fault
		setup func(d *Device)
		check check
	}{
		{"dark, lamp off", Fault{Kind: kindDark}, func(d *Device) { d.darkRelayOn = false }, func(t *testing.T, n, dy, _, hd Sample) {
			if n.LampOn || n.Power != 0 {
				t.Errorf("night: lamp_on=%v power=%.1f, want dark", n.LampOn, n.Power)
			}
			if n.Dim == 0 {
				t.Errorf("night: dim 0 would read as 'off by schedule', not as a failure")
			}
			if dy.LampOn != hd.LampOn {
				t.Errorf("day changed")
			}
		}},
		{"dark, relay on, lamp dead", Fault{Kind: kindDark}, func(d *Device) { d.darkRelayOn = true }, func(t *testing.T, n, _, _, _ Sample) {
			if !n.LampOn || n.Power >= 5 {
				t.Errorf("night: lamp_on=%v power=%.1f, want relay on under 5 W", n.LampOn, n.Power)
			}
		}},
		{"dayburn", Fault{Kind: kindDayburn}, nil, func(t *testing.T, n, dy, hn, _ Sample) {
			if !dy.LampOn || !within(dy.Power, 100, 0.05) || dy.Dim != 100 {
				t.Errorf("day: lamp_on=%v power=%.1f dim=%d, want lit at full power", dy.LampOn, dy.Power, dy.Dim)
			}
			if n.LampOn != hn.LampOn {
				t.Errorf("night changed")
			}
		}},
		{"swell", Fault{Kind: kindSwell}, nil, func(t *testing.T, n, dy, _, _ Sample) {
			for _, s := range []Sample{n, dy} {
				if s.Voltage < 250 || s.Voltage > 280 {
					t.Errorf("voltage %.1f, want ≈ 264 V", s.Voltage)
				}
			}
		}},
		{"sag", Fault{Kind: kindSag}, nil, func(t *testing.T, n, dy, _, _ Sample) {
			for _, s := range []Sample{n, dy} {
				if s.Voltage < 165 || s.Voltage > 190 {
					t.Errorf("voltage %.1f, want ≈ 176 V", s.Voltage)
				}
			}
		}},
		{"lowpf", Fault{Kind: kindLowPF}, nil, func(t *testing.T, n, dy, _, _ Sample) {
			if !n.LampOn || n.PowerFactor < 0.55 || n.PowerFactor > 0.65 {
				t.Errorf("night: power factor %.2f, want ≈ 0.6", n.PowerFactor)
			}
			if want := n.Power / (n.Voltage * n.PowerFactor); !within(n.Current, want, 1e-9) {
				t.Errorf("current inconsistent with the low PF")
			}
			if dy.LampOn {
				t.Errorf("day lit")
			}
		}},
		{"overpower", Fault{Kind: kindOverpower}, nil, func(t *testing.T, n, dy, _, _ Sample) {
			// Night here is after midnight, dimmed: still above 1.2 × nominal.
			if !n.LampOn || n.Power < 140 || n.Power > 160 {
				t.Errorf("night: power %.1f, want ≈ 150 W (1.5 × 100)", n.Power)
			}
			if dy.Power != 0 {
				t.Errorf("day: power %.1f", dy.Power)
			}
		}},
		{"alarm", Fault{Kind: kindAlarm, Alarm: "relayFailure"}, nil, func(t *testing.T, n, dy, _, _ Sample) {
			for _, s := range []Sample{n, dy} {
				if len(s.Alarms) != 1 || s.Alarms[0] != "relayFailure" {
					t.Errorf("alarms %v", s.Alarms)
				}
			}
		}},
		{"silence", Fault{Kind: kindSilence}, nil, func(t *testing.T, n, dy, _, _ Sample) {
			if !n.Silent || !dy.Silent || n.Garbage {
				t.Errorf("silent=%v/%v garbage=%v", n.Silent, dy.Silent, n.Garbage)
			}
		}},
		{"garbage", Fault{Kind: kindGarbage}, nil, func(t *testing.T, n, dy, _, _ Sample) {
			if !n.Garbage || !dy.Garbage || n.Silent {
				t.Errorf("garbage=%v/%v silent=%v", n.Garbage, dy.Garbage, n.Silent)
			}
		}},
	}
	hf, hd := testDevice(t)
	healthyNight, healthyDay := hd.step(hf, afterMid), hd.step(hf, noon)
	if healthyNight.Silent || healthyNight.Garbage || healthyDay.Silent || healthyDay.Garbage {
		t.Fatal("a healthy device is silent or sends garbage")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, d := testDevice(t, c.fault)
			if c.setup != nil {
				c.setup(d)
			}
			night, day := d.step(f, afterMid), d.step(f, noon)
			c.check(t, night, day, healthyNight, healthyDay)
		})
	}
}

func TestCyclingTogglesEveryReport(t *testing.T) {
	f, d := testDevice(t, Fault{Kind: kindCycling})
	prev := d.step(f, evening)
	for i := 1; i <= 6; i++ {
		s := d.step(f, evening.Add(time.Duration(i)*time.Minute))
		if s.LampOn == prev.LampOn {
			t.Fatalf("report %d: lamp_on stayed %v", i, s.LampOn)
		}
		if s.SwitchCount != prev.SwitchCount+1 {
			t.Fatalf("report %d: switch_count %d → %d", i, prev.SwitchCount, s.SwitchCount)
		}
		if !s.LampOn && s.Power != 0 {
			t.Fatalf("report %d: off but %.1f W", i, s.Power)
		}
		prev = s
	}
}

func TestFaultCycleTransitions(t *testing.T) {
	const cycle = 10 * time.Minute
	phase := 3 * time.Minute
	df := DeviceFault{Fault: Fault{Kind: kindSwell}, Phase: phase}
	start := evening
	// Faulty at start; first clear at start + cycle − phase; then every cycle.
	wantOn := func(m int) bool {
		el := time.Duration(m)*time.Minute + phase
		return (el/cycle)%2 == 0
	}
	f, d := testDevice(t)
	f.Start, f.Cycle = start, cycle
	d.Faults = []DeviceFault{df}
	var lines []FaultChange
	var at []int
	for m := 0; m <= 40; m++ {
		s := d.step(f, start.Add(time.Duration(m)*time.Minute))
		if got := s.Voltage > 242; got != wantOn(m) {
			t.Fatalf("minute %d: swelled=%v, want %v", m, got, wantOn(m))
		}
		for _, c := range s.Changes {
			lines = append(lines, c)
			at = append(at, m)
		}
	}
	// on at 0, off at 7, on at 17, off at 27, on at 37.
	wantAt := []int{0, 7, 17, 27, 37}
	if len(at) != len(wantAt) {
		t.Fatalf("transitions at minutes %v, want %v", at, wantAt)
	}
	for i := range wantAt {
		if at[i] != wantAt[i] || lines[i].On != (i%2 == 0) || lines[i].Fault.Kind != kindSwell {
			t.Fatalf("transition %d: %+v at minute %d, want on=%v at %d", i, lines[i], at[i], i%2 == 0, wantAt[i])
		}
	}
	// Without a cycle the fault is always on and reported once.
	f2, d2 := testDevice(t, Fault{Kind: kindSag})
	if c := d2.step(f2, evening).Changes; len(c) != 1 || !c[0].On {
		t.Fatalf("first step changes %+v, want one 'on'", c)
	}
	if c := d2.step(f2, evening.Add(time.Hour)).Changes; len(c) != 0 {
		t.Fatalf("second step changes %+v, want none", c)
	}
}

// contractPayload is CONTRACT §3 with Go types: decoding into it fails on a
// field of the wrong type.
type contractPayload struct {
	TS          json.RawMessage `json:"ts"`
	Voltage     *float64        `json:"voltage"`
	Current     *float64        `json:"current"`
	Power       *float64        `json:"power"`
	PowerFactor *float64        `json:"power_factor"`
	Energy      *float64        `json:"energy"`
	LampOn      *bool           `json:"lamp_on"`
	Dim         *float64        `json:"dim"`
	Lux         *float64        `json:"lux"`
	Temperature *float64        `json:"temperature"`
	BurnHours   *float64        `json:"burn_hours"`
	SwitchCount *float64        `json:"switch_count"`
	Lat         *float64        `json:"lat"`
	Lon         *float64        `json:"lon"`
	Alarms      *[]string       `json:"alarms"`
}

func decodeContract(b []byte) (contractPayload, error) {
	var p contractPayload
	err := json.Unmarshal(b, &p)
	return p, err
}

func TestPayloadIsContractJSON(t *testing.T) {
	at := time.Date(2026, 12, 4, 21, 10, 0, 250e6, time.UTC)
	for _, format := range []tsFormat{tsRFC3339, tsUnix, tsUnixMs, tsNone} {
		t.Run(format.String(), func(t *testing.T) {
			f, d := testDevice(t, Fault{Kind: kindAlarm, Alarm: "relayFailure"})
			d.TS = format
			s := d.step(f, at)
			b := appendTelemetry(nil, &s)
			p, err := decodeContract(b)
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			var ts time.Time
			switch format {
			case tsRFC3339:
				var str string
				if err := json.Unmarshal(p.TS, &str); err != nil {
					t.Fatalf("ts %s: %v", p.TS, err)
				}
				ts, err = time.Parse(time.RFC3339, str)
				if err != nil {
					t.Fatalf("ts %q: %v", str, err)
				}
			case tsUnix, tsUnixMs:
				var n int64
				if err := json.Unmarshal(p.TS, &n); err != nil {
					t.Fatalf("ts %s: %v", p.TS, err)
				}
				if format == tsUnix {
					ts = time.Unix(n, 0)
				} else {
					ts = time.UnixMilli(n)
				}
			case tsNone:
				if p.TS != nil {
					t.Fatalf("ts present: %s", p.TS)
				}
				ts = at.Truncate(time.Second)
			}
			wantTS := at.Truncate(time.Second)
			if format == tsUnixMs {
				wantTS = at
			}
			if !ts.Equal(wantTS) {
				t.Errorf("ts %v, want %v", ts, wantTS)
			}
			for name, v := range map[string]*float64{"voltage": p.Voltage, "current": p.Current, "power": p.Power,
				"power_factor": p.PowerFactor, "energy": p.Energy, "dim": p.Dim, "lux": p.Lux, "temperature": p.Temperature,
				"burn_hours": p.BurnHours, "switch_count": p.SwitchCount, "lat": p.Lat, "lon": p.Lon} {
				if v == nil {
					t.Errorf("%s missing in %s", name, b)
				}
			}
			if p.LampOn == nil || *p.LampOn != s.LampOn || p.Alarms == nil || len(*p.Alarms) != 1 || (*p.Alarms)[0] != "relayFailure" {
				t.Errorf("lamp_on/alarms wrong in %s", b)
			}
			if math.Abs(*p.Voltage-s.Voltage) > 0.05 || math.Abs(*p.Lat-s.Lat) > 1e-6 || *p.SwitchCount != float64(s.SwitchCount) {
				t.Errorf("values differ from the sample: %s vs %+v", b, s)
			}
		})
	}
	// A device without a sensor has no lux key.
	f, d := testDevice(t)
	d.HasLux = false
	s := d.step(f, evening)
	p, err := decodeContract(appendTelemetry(nil, &s))
	if err != nil || p.Lux != nil {
		t.Fatalf("no-sensor device: lux %v, err %v", p.Lux, err)
	}
}

func TestGarbageIsInvalidAsIntended(t *testing.T) {
	f, d := testDevice(t, Fault{Kind: kindGarbage})
	seen := map[garbageKind]bool{}
	for i := 0; i < 2*int(garbageKinds); i++ {
		s := d.step(f, evening.Add(time.Duration(i)*time.Minute))
		topic, payload, kind := d.garbage("streetlights", &s)
		seen[kind] = true
		nameplate, validTopic := topicNameplate("streetlights", topic)
		_, decErr := decodeContract(payload)
		switch kind {
		case garbageNotJSON, garbageNaN:
			if json.Valid(payload) {
				t.Errorf("%s: valid JSON: %s", kind, payload)
			}
		case garbageWrongType, garbageNotObject, garbageOverflow:
			if !json.Valid(payload) || decErr == nil {
				t.Errorf("%s: want valid JSON that fails to decode into the contract's types: %s (err %v)", kind, payload, decErr)
			}
		case garbageOversize:
			if len(payload) <= 16384 || decErr != nil {
				t.Errorf("%s: %d bytes, err %v: want valid JSON over 16 KiB", kind, len(payload), decErr)
			}
		case garbageBadTopic, garbageTooLongName:
			if validTopic || decErr != nil {
				t.Errorf("%s: topic %q (nameplate %q) accepted, or payload invalid: %v", kind, topic, nameplate, decErr)
			}
		}
		if kind < garbageBadTopic && (!validTopic || nameplate != "IP00001") {
			t.Errorf("%s: topic %q, want the device's own", kind, topic)
		}
	}
	if len(seen) != int(garbageKinds) {
		t.Errorf("garbage kinds sent: %v, want all %d", seen, garbageKinds)
	}
}

// topicNameplate parses {prefix}/{nameplate}/telemetry as CONTRACT §3 says.
func topicNameplate(prefix, topic string) (string, bool) {
	rest, ok := cutPrefix(topic, prefix+"/")
	if !ok {
		return "", false
	}
	np, ok := cutSuffix(rest, "/telemetry")
	return np, ok && validNameplate(np)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

func cutSuffix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[len(s)-len(p):] == p {
		return s[:len(s)-len(p)], true
	}
	return s, false
}

func TestDeterministicWithSeed(t *testing.T) {
	build := func(seed uint64) *Fleet {
		f, err := buildFleet(fleetSpec{Devices: 20, Pattern: "IP%05d", First: 1, Place: uberaba, SpreadKm: 3,
			LuxShare: 0.3, TSFormat: "mix", Dimming: true, Seed: seed, Start: evening, Cycle: 5 * time.Minute,
			Faults: []faultSpec{mustFault(t, "dark=0.2"), mustFault(t, "swell=3"), mustFault(t, "garbage=IP00004")}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	render := func(f *Fleet) string {
		var out []byte
		for m := 0; m < 10; m++ {
			for _, d := range f.Devices {
				s := d.step(f, evening.Add(time.Duration(m)*time.Minute))
				if s.Garbage {
					topic, p, _ := d.garbage("x", &s)
					out = append(out, topic...)
					out = append(out, p...)
					continue
				}
				out = appendTelemetry(out, &s)
			}
		}
		return string(out)
	}
	a, b, c := render(build(42)), render(build(42)), render(build(43))
	if a != b {
		t.Fatal("same seed, different output")
	}
	if a == c {
		t.Fatal("different seeds, same output")
	}
}

func mustFault(t *testing.T, s string) faultSpec {
	t.Helper()
	spec, err := parseFault(s)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestFleetTraits(t *testing.T) {
	f, err := buildFleet(fleetSpec{Devices: 1000, Pattern: "IP%05d", First: 1, Place: uberaba, SpreadKm: 3,
		LuxShare: 0.3, TSFormat: "rfc3339", Seed: 1, Start: evening})
	if err != nil {
		t.Fatal(err)
	}
	lux, powers := 0, map[float64]int{}
	for _, d := range f.Devices {
		if km := distanceKm(d.Lat, d.Lon, uberaba.Lat, uberaba.Lon); km > 3.01 {
			t.Fatalf("%s is %.2f km from the centre, want ≤ 3", d.Nameplate, km)
		}
		if d.HasLux {
			lux++
		}
		powers[d.NominalPower]++
	}
	if lux < 240 || lux > 360 {
		t.Errorf("%d of 1000 devices have a sensor, want about 300", lux)
	}
	if len(powers) != len(nominalPowers) {
		t.Errorf("nominal powers used: %v", powers)
	}
	if f.Devices[0].Nameplate != "IP00001" || f.Devices[999].Nameplate != "IP01000" {
		t.Errorf("nameplates %s..%s", f.Devices[0].Nameplate, f.Devices[999].Nameplate)
	}
}

func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371.0
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

func BenchmarkStepEncode(b *testing.B) {
	f, err := buildFleet(fleetSpec{Devices: 1000, Pattern: "IP%05d", First: 1, Place: uberaba, SpreadKm: 3,
		LuxShare: 0.3, TSFormat: "rfc3339", Seed: 1, Start: evening})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	at := evening
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := f.Devices[i%len(f.Devices)]
		s := d.step(f, at)
		buf = appendTelemetry(buf[:0], &s)
	}
	b.SetBytes(int64(len(buf)))
}
