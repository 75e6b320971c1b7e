package agent

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Fixtures: Uberaba, MG, on 4–5 December 2026 (sunset about 18:40 BRT,
// sunrise about 05:20).
const uberabaLat, uberabaLon = -19.7472, -47.9381

var (
	brt          = time.FixedZone("BRT", -3*3600)
	testNight    = time.Date(2026, 12, 4, 23, 0, 0, 0, brt)
	testDay      = time.Date(2026, 12, 5, 12, 0, 0, 0, brt)
	testTwilight = time.Date(2026, 12, 4, 18, 50, 0, 0, brt)
	testBuild    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func testConfig() DetectorConfig {
	return DetectorConfig{
		ConfirmCount: 3, NominalVoltage: 220, VoltageTolerance: 0.10, LampMinPower: 5, MinPowerFactor: 0.85,
		CyclingSwitches: 6, CyclingWindow: time.Hour, DayLux: 50, CommLossAfter: 15 * time.Minute,
		ReportInterval: 5 * time.Minute, BuildTime: testBuild,
	}
}

// testRegistry: IP1 with a position and a 100 W lamp, IP2 with a position
// only.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	reg, rowErrs, err := ParseRegistry(strings.NewReader(
		"nameplate_num,latitude,longitude,nominal_power,address,address_number,municipality,state_abbreviation\n" +
			"IP1,-19.7472,-47.9381,100,Av. Leopoldino de Oliveira,3490,Uberaba,MG\n" +
			"IP2,-19.7480,-47.9370,,Rua Artur Machado,10,Uberaba,MG\n"))
	require.NoError(t, err)
	require.Empty(t, rowErrs)
	return reg
}

func newTestDetector(t testing.TB) *Detector {
	return NewDetector(testConfig(), testRegistry(t), testNight.Add(-time.Hour))
}

// recorder is a commit function that keeps what it was given, or fails.
type recorder struct {
	events []Event
	calls  int
	fail   error
}

func (r *recorder) commit(evs []Event) error {
	r.calls++
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, slices.Clone(evs)...)
	return nil
}

func (r *recorder) take() []Event {
	e := r.events
	r.events = nil
	return e
}

const litFields = FieldLampOn | FieldPower | FieldVoltage | FieldPowerFactor | FieldDim | FieldCurrent

func tel(name string, at time.Time, r Reading) *Telemetry {
	return &Telemetry{Nameplate: name, At: at, Received: at, Reading: r}
}

func litAt(name string, at time.Time) *Telemetry {
	return tel(name, at, Reading{Fields: litFields, LampOn: true, Power: 88.1, Voltage: 221.4, PowerFactor: 0.96, Dim: 100, Current: 0.4})
}

func darkAt(name string, at time.Time) *Telemetry {
	return tel(name, at, Reading{Fields: FieldLampOn | FieldPower | FieldVoltage | FieldDim, LampOn: true, Power: 0, Voltage: 221.4, Dim: 100})
}

func offAt(name string, at time.Time) *Telemetry {
	return tel(name, at, Reading{Fields: FieldLampOn | FieldPower | FieldVoltage, LampOn: false, Power: 0, Voltage: 221.4})
}

func with(m *Telemetry, f func(*Telemetry)) *Telemetry {
	f(m)
	return m
}

// nextPhase is the first 5-minute step after t when the sun at Uberaba is
// in the phase (any phase for phaseUnknown).
func nextPhase(t time.Time, want sunPhase) time.Time {
	t = t.Add(5 * time.Minute)
	for want != phaseUnknown && phaseOf(SunElevation(t, uberabaLat, uberabaLon)) != want {
		t = t.Add(5 * time.Minute)
	}
	return t
}

func TestFixturePhases(t *testing.T) {
	assert.Less(t, SunElevation(testNight, uberabaLat, uberabaLon), NightBelow)
	assert.Greater(t, SunElevation(testDay, uberabaLat, uberabaLon), DayAbove)
	e := SunElevation(testTwilight, uberabaLat, uberabaLon)
	assert.True(t, e > NightBelow && e < DayAbove, "%v", e)
}

// mk makes a message for the device at the first suitable moment after t.
type mk func(name string, after time.Time) *Telemetry

func at(p sunPhase, f func(string, time.Time) *Telemetry) mk {
	return func(name string, after time.Time) *Telemetry { return f(name, nextPhase(after, p)) }
}

type ruleCase struct {
	fault   string
	device  string
	show    mk // a reading that shows the fault
	normal  mk // a reading that shows it absent
	neutral map[string]mk
}

func ruleCases() []ruleCase {
	night, day, twilight, anyTime := phaseNight, phaseDay, phaseTwilight, phaseUnknown
	voltage := func(v float64) func(string, time.Time) *Telemetry {
		return func(n string, t time.Time) *Telemetry {
			return with(litAt(n, t), func(m *Telemetry) { m.Voltage = v })
		}
	}
	lampOnly := func(n string, t time.Time) *Telemetry { // lamp fields, no voltage
		return tel(n, t, Reading{Fields: FieldLampOn | FieldPower, LampOn: true, Power: 80})
	}
	voltageOnly := func(n string, t time.Time) *Telemetry {
		return tel(n, t, Reading{Fields: FieldVoltage | FieldTemperature, Voltage: 221, Temperature: 30})
	}
	untrusted := func(f func(string, time.Time) *Telemetry) func(string, time.Time) *Telemetry {
		return func(n string, t time.Time) *Telemetry {
			return with(f(n, t), func(m *Telemetry) { m.Received = testBuild.Add(-time.Hour) })
		}
	}
	lux := func(f func(string, time.Time) *Telemetry, l float64) func(string, time.Time) *Telemetry {
		return func(n string, t time.Time) *Telemetry {
			return with(f(n, t), func(m *Telemetry) { m.Fields |= FieldLux; m.Lux = l })
		}
	}
	pf := func(pf, dim float64, f func(string, time.Time) *Telemetry) func(string, time.Time) *Telemetry {
		return func(n string, t time.Time) *Telemetry {
			return with(f(n, t), func(m *Telemetry) { m.PowerFactor, m.Dim = pf, dim; m.Fields |= FieldPowerFactor | FieldDim })
		}
	}
	power := func(p float64, f func(string, time.Time) *Telemetry) func(string, time.Time) *Telemetry {
		return func(n string, t time.Time) *Telemetry { return with(f(n, t), func(m *Telemetry) { m.Power = p }) }
	}
	return []ruleCase{
		{
			fault: FaultLampFailure, device: "IP1",
			show: at(night, darkAt), normal: at(night, litAt),
			neutral: map[string]mk{
				"by day":      at(day, darkAt),
				"at twilight": at(twilight, darkAt),
				"dimmed to 0 %": at(night, func(n string, t time.Time) *Telemetry {
					return with(offAt(n, t), func(m *Telemetry) { m.Fields |= FieldDim; m.Dim = 0 })
				}),
				"no lamp fields": at(night, voltageOnly),
				"low dim, low W": at(night, func(n string, t time.Time) *Telemetry {
					return with(darkAt(n, t), func(m *Telemetry) { m.Dim, m.Power = 20, 2 })
				}),
				"untrusted clock": at(night, untrusted(darkAt)),
				"lux says day":    at(night, lux(darkAt, 800)),
			},
		},
		{
			fault: FaultLampFailure + " (relay off)", device: "IP2",
			show: at(night, offAt), normal: at(night, litAt),
			neutral: map[string]mk{"by day": at(day, offAt)},
		},
		{
			fault: FaultLampUnexpectedOn, device: "IP1",
			show: at(day, litAt), normal: at(day, offAt),
			neutral: map[string]mk{
				"at night":        at(night, litAt),
				"at twilight":     at(twilight, litAt),
				"no lamp fields":  at(day, voltageOnly),
				"untrusted clock": at(day, untrusted(litAt)),
				"lux says night":  at(day, lux(litAt, 3)),
			},
		},
		{
			fault: FaultSupplyVoltageTooHigh, device: "IP1",
			show: at(anyTime, voltage(245)), normal: at(anyTime, voltage(241)),
			neutral: map[string]mk{"no voltage": at(anyTime, lampOnly)},
		},
		{
			fault: FaultSupplyVoltageTooLow, device: "IP2",
			show: at(anyTime, voltage(190)), normal: at(anyTime, voltage(199)),
			neutral: map[string]mk{"no voltage": at(anyTime, lampOnly)},
		},
		{
			fault: FaultPowerFactorTooLow, device: "IP1",
			show: at(anyTime, pf(0.6, 100, litAt)), normal: at(anyTime, pf(0.9, 100, litAt)),
			neutral: map[string]mk{
				"lamp dark":      at(anyTime, pf(0.2, 100, darkAt)),
				"dimmed to 30 %": at(anyTime, pf(0.5, 30, litAt)),
				"no pf":          at(anyTime, lampOnly),
				"pf out of 0..1": at(anyTime, pf(1.5, 100, litAt)),
			},
		},
		{
			fault: FaultLampPowerTooHigh, device: "IP1",
			show: at(anyTime, power(121, litAt)), normal: at(anyTime, power(119, litAt)),
			neutral: map[string]mk{
				"lamp off": at(anyTime, func(n string, t time.Time) *Telemetry { return with(offAt(n, t), func(m *Telemetry) { m.Power = 130 }) }),
				"no power": at(anyTime, voltageOnly),
			},
		},
	}
}

type feeder struct {
	t    *testing.T
	d    *Detector
	rec  *recorder
	now  time.Time
	only string // when set, events of other faults are dropped
}

// send makes the message after the last one and observes it; it returns
// the message and the events it produced.
func (f *feeder) send(name string, m mk) (*Telemetry, []Event) {
	f.t.Helper()
	msg := m(name, f.now)
	f.now = msg.At
	require.NoError(f.t, f.d.Observe(msg, f.rec.commit))
	evs := f.rec.take()
	if f.only != "" {
		evs = slices.DeleteFunc(evs, func(ev Event) bool { return ev.Fault != f.only })
	}
	return msg, evs
}

func (f *feeder) sendN(name string, m mk, n int) (first *Telemetry) {
	f.t.Helper()
	for i := range n {
		msg, evs := f.send(name, m)
		require.Empty(f.t, evs, "message %d of %d", i+1, n)
		if i == 0 {
			first = msg
		}
	}
	return first
}

func faultName(c ruleCase) string { return strings.Fields(c.fault)[0] }

func TestRulesDebounce(t *testing.T) {
	for _, c := range ruleCases() {
		t.Run(c.fault, func(t *testing.T) {
			fault := faultName(c)
			newFeeder := func(t *testing.T) *feeder {
				return &feeder{t: t, d: newTestDetector(t), rec: &recorder{}, now: testNight.Add(-30 * time.Minute), only: fault}
			}
			t.Run("raise after N", func(t *testing.T) {
				f := newFeeder(t)
				first := f.sendN(c.device, c.show, 2)
				last, evs := f.send(c.device, c.show)
				require.Len(t, evs, 1)
				ev := evs[0]
				assert.Equal(t, Raise, ev.Kind)
				assert.Equal(t, fault, ev.Fault)
				assert.Equal(t, c.device, ev.Nameplate)
				assert.True(t, ev.Since.Equal(first.At), "since %v, first reading %v", ev.Since, first.At)
				assert.True(t, ev.At.Equal(last.At))
				assert.Equal(t, last.Reading, ev.Reading)
				assert.True(t, ev.HasPosition)
				f.sendN(c.device, c.show, 4) // no second raise
				v, ok := f.d.Device(c.device)
				require.True(t, ok)
				require.Len(t, v.Faults, 1)
				assert.Equal(t, fault, v.Faults[0].Name)
				assert.True(t, v.Faults[0].Since.Equal(first.At))
			})
			t.Run("no raise at N-1", func(t *testing.T) {
				f := newFeeder(t)
				f.sendN(c.device, c.show, 2)
				f.sendN(c.device, c.normal, 1)
				first := f.sendN(c.device, c.show, 2)
				_, evs := f.send(c.device, c.show)
				require.Len(t, evs, 1)
				assert.True(t, evs[0].Since.Equal(first.At), "the run restarted after the normal reading")
			})
			t.Run("clear with hysteresis", func(t *testing.T) {
				f := newFeeder(t)
				f.sendN(c.device, c.show, 2)
				_, evs := f.send(c.device, c.show)
				require.Len(t, evs, 1)
				f.sendN(c.device, c.normal, 2)
				f.sendN(c.device, c.show, 1)
				first := f.sendN(c.device, c.normal, 2)
				last, evs := f.send(c.device, c.normal)
				require.Len(t, evs, 1)
				assert.Equal(t, Clear, evs[0].Kind)
				assert.Equal(t, fault, evs[0].Fault)
				assert.True(t, evs[0].Since.Equal(first.At))
				assert.True(t, evs[0].At.Equal(last.At))
				v, _ := f.d.Device(c.device)
				assert.Empty(t, v.Faults)
			})
			for name, neutral := range c.neutral {
				t.Run("neutral: "+name, func(t *testing.T) {
					f := newFeeder(t)
					first, _ := f.send(c.device, c.show)
					f.sendN(c.device, neutral, 2)
					f.sendN(c.device, c.show, 1)
					f.sendN(c.device, neutral, 1)
					_, evs := f.send(c.device, c.show)
					require.Len(t, evs, 1, "neutral readings neither count nor reset")
					assert.True(t, evs[0].Since.Equal(first.At))
					f.sendN(c.device, neutral, 5) // do not clear either
					f.sendN(c.device, c.normal, 2)
					_, evs = f.send(c.device, c.normal)
					require.Len(t, evs, 1)
					assert.Equal(t, Clear, evs[0].Kind)
				})
				t.Run("neutral alone: "+name, func(t *testing.T) {
					f := newFeeder(t)
					f.sendN(c.device, neutral, 8)
				})
			}
		})
	}
}

func TestLampFailureNotClearedEachMorning(t *testing.T) {
	// A dark lamp stays one fault over days: day readings are neutral.
	f := &feeder{t: t, d: newTestDetector(t), rec: &recorder{}, now: testNight}
	f.sendN("IP1", at(phaseNight, darkAt), 2)
	_, evs := f.send("IP1", at(phaseNight, darkAt))
	require.Len(t, evs, 1)
	for range 3 { // three days and nights of a dead lamp
		f.sendN("IP1", at(phaseDay, offAt), 20)
		f.sendN("IP1", at(phaseTwilight, offAt), 3)
		f.sendN("IP1", at(phaseNight, darkAt), 20)
	}
	f.sendN("IP1", at(phaseNight, litAt), 2) // repaired
	_, evs = f.send("IP1", at(phaseNight, litAt))
	require.Len(t, evs, 1)
	assert.Equal(t, Clear, evs[0].Kind)
}

func TestTwilightSilence(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	// Every 2 minutes from 17:30 to 19:30 BRT, the lamp dark and then lit
	// at the wrong moments: nothing fires while the sun is within ±6°.
	for m := time.Date(2026, 12, 4, 17, 30, 0, 0, brt); m.Before(time.Date(2026, 12, 4, 19, 30, 0, 0, brt)); m = m.Add(2 * time.Minute) {
		e := SunElevation(m, uberabaLat, uberabaLon)
		if e <= NightBelow || e >= DayAbove {
			continue
		}
		require.NoError(t, d.Observe(darkAt("IP1", m), rec.commit))
		require.NoError(t, d.Observe(litAt("IP2", m), rec.commit))
	}
	assert.Zero(t, rec.calls)
}

func TestUnknownDevicePosition(t *testing.T) {
	withPos := func(m *Telemetry) *Telemetry {
		m.Fields |= FieldPosition
		m.Lat, m.Lon = uberabaLat, uberabaLon
		return m
	}
	cases := []struct {
		name    string
		gateway bool
		msg     func(time.Time) *Telemetry
		raises  bool
	}{
		{"its own position", false, func(t time.Time) *Telemetry { return withPos(darkAt("X1", t)) }, true},
		{"the gateway's position", true, func(t time.Time) *Telemetry { return darkAt("X1", t) }, true},
		{"no position at all", false, func(t time.Time) *Telemetry { return darkAt("X1", t) }, false},
		{"lux alone", false, func(t time.Time) *Telemetry {
			return with(darkAt("X1", t), func(m *Telemetry) { m.Fields |= FieldLux; m.Lux = 1 })
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.gateway {
				cfg.Latitude, cfg.Longitude, cfg.HasPosition = uberabaLat, uberabaLon, true
			}
			d := NewDetector(cfg, testRegistry(t), testNight)
			rec := &recorder{}
			for i := range 3 {
				require.NoError(t, d.Observe(c.msg(testNight.Add(time.Duration(i)*5*time.Minute)), rec.commit))
			}
			if !c.raises {
				assert.Empty(t, rec.events)
				return
			}
			require.Len(t, rec.events, 1)
			assert.Equal(t, FaultLampFailure, rec.events[0].Fault)
			v, ok := d.Device("X1")
			require.True(t, ok)
			assert.False(t, v.InRegistry)
			assert.Equal(t, "X1", v.Info.Nameplate)
			if c.name == "its own position" {
				assert.True(t, rec.events[0].HasPosition)
				assert.Equal(t, uberabaLat, rec.events[0].Lat, "the reported position, as sent")
				assert.Equal(t, uberabaLon, v.Lon)
			} else {
				assert.False(t, rec.events[0].HasPosition, "the gateway's position is not the device's")
			}
		})
	}
}

func TestRegistryPositionWinsOverMessage(t *testing.T) {
	// IP1 is in Uberaba; it reports a position where it is day at
	// testNight (Tokyo). The registry decides: night.
	d := newTestDetector(t)
	rec := &recorder{}
	for i := range 3 {
		m := darkAt("IP1", testNight.Add(time.Duration(i)*5*time.Minute))
		m.Fields |= FieldPosition
		m.Lat, m.Lon = 35.68, 139.76
		require.NoError(t, d.Observe(m, rec.commit))
	}
	require.Len(t, rec.events, 1)
	assert.Equal(t, uberabaLat, rec.events[0].Lat)
}

func TestLuxMustAgree(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	for i := range 3 { // night by the sun, lux says dark: night
		m := with(darkAt("IP1", testNight.Add(time.Duration(i)*time.Minute)), func(m *Telemetry) { m.Fields |= FieldLux; m.Lux = 2 })
		require.NoError(t, d.Observe(m, rec.commit))
	}
	require.Len(t, rec.events, 1)
	// By day the sensor covered (lux 0): not night, not day.
	for i := range 5 {
		m := with(litAt("IP2", testDay.Add(time.Duration(i)*time.Minute)), func(m *Telemetry) { m.Fields |= FieldLux; m.Lux = 0 })
		require.NoError(t, d.Observe(m, rec.commit))
	}
	assert.Len(t, rec.events, 1)
}

func TestDimmedLamp(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	f := &feeder{t: t, d: d, rec: rec, now: testNight}
	dim := func(level, power float64, on bool) mk {
		return at(phaseNight, func(n string, t time.Time) *Telemetry {
			return tel(n, t, Reading{Fields: FieldLampOn | FieldPower | FieldDim, LampOn: on, Power: power, Dim: level})
		})
	}
	f.sendN("IP1", dim(0, 0, false), 5)  // off by schedule
	f.sendN("IP1", dim(0, 0, true), 5)   // relay on, dimmed to 0
	f.sendN("IP1", dim(10, 3, true), 5)  // a healthy lamp at 10 % may draw under 5 W
	f.sendN("IP1", dim(10, 30, true), 1) // lit at 10 %
	f.sendN("IP1", dim(50, 2, true), 2)  // at 50 % under 5 W is dark
	_, evs := f.send("IP1", dim(50, 2, true))
	require.Len(t, evs, 1)
	assert.Equal(t, FaultLampFailure, evs[0].Fault)
	f.sendN("IP1", dim(0, 0, false), 5) // dimmed to 0 does not clear it
	f.sendN("IP1", dim(20, 2, true), 5) // nor does a low dim level at low power
	f.sendN("IP1", dim(10, 0, false), 2)
	f.sendN("IP1", dim(30, 30, true), 2)
	_, evs = f.send("IP1", dim(30, 30, true))
	require.Len(t, evs, 1)
	assert.Equal(t, Clear, evs[0].Kind)

	// lamp_on=false at a low dim level is dark: the relay is open.
	f.sendN("IP2", dim(10, 0, false), 2)
	_, evs = f.send("IP2", dim(10, 0, false))
	require.Len(t, evs, 1)
}

func TestOutOfOrder(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	base := testNight
	require.NoError(t, d.Observe(litAt("IP1", base.Add(time.Hour)), rec.commit))
	// Three dark readings measured before the lit one, delivered late.
	for i := range 3 {
		m := darkAt("IP1", base.Add(time.Duration(i)*time.Minute))
		m.Received = base.Add(time.Hour + time.Duration(i+1)*time.Minute)
		require.NoError(t, d.Observe(m, rec.commit))
	}
	assert.Zero(t, rec.calls)
	v, _ := d.Device("IP1")
	assert.Equal(t, 88.1, v.Reading.Power, "the stale reading does not replace the newer")
	assert.True(t, v.LastSeen.Equal(base.Add(time.Hour+3*time.Minute)), "but it counts as seen: %v", v.LastSeen)
	assert.True(t, v.ReadingAt.Equal(base.Add(time.Hour)))
	// An old message also clears communicationFailure: the device lives.
	require.NoError(t, d.Sweep(base.Add(2*time.Hour), rec.commit))
	assert.Contains(t, nameplates(rec.take()), "IP1")
	m := darkAt("IP1", base)
	m.Received = base.Add(2*time.Hour + time.Minute)
	require.NoError(t, d.Observe(m, rec.commit))
	evs := rec.take()
	require.Len(t, evs, 1)
	assert.Equal(t, Clear, evs[0].Kind)
	assert.Equal(t, FaultCommunicationFailure, evs[0].Fault)
}

func TestAlarms(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	n := 0
	send := func(alarms ...string) []Event {
		t.Helper()
		n++
		m := litAt("IP1", testDay.Add(time.Duration(n)*time.Minute))
		m.Fields &^= FieldLampOn | FieldPower // no day-burn in the way
		if alarms != nil {
			m.Fields |= FieldAlarms
			m.Alarms = alarms
		}
		require.NoError(t, d.Observe(m, rec.commit))
		return rec.take()
	}
	evs := send("relayFailure")
	require.Len(t, evs, 1, "raised at once")
	assert.Equal(t, Event{Kind: Raise, Nameplate: "IP1", Fault: "relayFailure", At: testDay.Add(time.Minute), Since: evs[0].Since,
		Reading: evs[0].Reading, Lat: uberabaLat, Lon: uberabaLon, HasPosition: true}, evs[0])
	assert.True(t, evs[0].Since.Equal(evs[0].At), "raised at once: Since is At")
	assert.Equal(t, FieldVoltage|FieldPowerFactor|FieldDim|FieldCurrent|FieldAlarms, evs[0].Reading.Fields)
	assert.Empty(t, send("relayFailure", "relayFailure"))
	evs = send("relayFailure", "driverFailure")
	require.Len(t, evs, 1)
	assert.Equal(t, "driverFailure", evs[0].Fault)
	v, _ := d.Device("IP1")
	assert.Equal(t, []string{"driverFailure", "relayFailure"}, v.Alarms)
	assert.Len(t, v.Faults, 2)
	assert.Equal(t, 1, d.Counts(testDay).Faulty)

	evs = send() // no alarms key: none active
	require.Len(t, evs, 2)
	for _, ev := range evs {
		assert.Equal(t, Clear, ev.Kind)
	}
	assert.Empty(t, send(), "nothing left to clear")
	assert.Equal(t, 0, d.Counts(testDay).Faulty)
	assert.Empty(t, send("", strings.Repeat("x", 65), "bad\nname"), "invalid names are ignored")
	var many []string
	for i := range 40 {
		many = append(many, "alarm"+string(rune('A'+i)))
	}
	evs = send(many...)
	assert.Len(t, evs, maxOpenAlarms, "a bounded number of alarm faults per device")
	evs = send(many[0])
	assert.Len(t, evs, maxOpenAlarms-1)
}

func TestAlarmWithBuiltinName(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	f := &feeder{t: t, d: d, rec: rec, now: testNight}
	alarm := func(inner mk, names ...string) mk {
		return func(n string, after time.Time) *Telemetry {
			m := inner(n, after)
			m.Fields |= FieldAlarms
			m.Alarms = names
			return m
		}
	}
	// The controller says lampFailure by day: raised at once.
	_, evs := f.send("IP1", alarm(at(phaseDay, litAt), FaultLampFailure))
	require.Len(t, evs, 1)
	assert.Equal(t, FaultLampFailure, evs[0].Fault)
	assert.Equal(t, Raise, evs[0].Kind)
	_, evs = f.send("IP1", at(phaseDay, offAt)) // gone: cleared at once, the rule never said so
	require.Len(t, evs, 1)
	assert.Equal(t, Clear, evs[0].Kind)

	// The rule raises it at night; the alarm joins and leaves: one fault.
	f.sendN("IP1", at(phaseNight, darkAt), 2)
	_, evs = f.send("IP1", at(phaseNight, darkAt))
	require.Len(t, evs, 1)
	f.sendN("IP1", alarm(at(phaseNight, darkAt), FaultLampFailure), 2)
	f.sendN("IP1", at(phaseNight, darkAt), 1) // alarm gone, the rule still sees it
	v, _ := d.Device("IP1")
	require.Len(t, v.Faults, 1)
	// Lit readings clear the rule; the alarm reported again holds it open.
	f.sendN("IP1", alarm(at(phaseNight, litAt), FaultLampFailure), 3)
	_, evs = f.send("IP1", at(phaseNight, litAt))
	require.Len(t, evs, 1, "closed when no source says so")
	assert.Equal(t, Clear, evs[0].Kind)
}

func TestCyclingFailure(t *testing.T) {
	t.Run("lamp_on toggling", func(t *testing.T) {
		d := newTestDetector(t)
		rec := &recorder{}
		var raisedAt int
		for i := range 12 {
			mk := litAt
			if i%2 == 1 {
				mk = offAt
			}
			m := mk("IP1", testNight.Add(time.Duration(i)*5*time.Minute))
			require.NoError(t, d.Observe(m, rec.commit))
			for _, ev := range rec.take() {
				if ev.Fault == FaultCyclingFailure {
					raisedAt = i
					// Changes at 1..6 reach 6 at message 6; three readings confirm.
					assert.True(t, ev.Since.Equal(testNight.Add(30*time.Minute)), "%v", ev.Since)
				}
			}
		}
		assert.Equal(t, 8, raisedAt)
	})
	t.Run("switch_count", func(t *testing.T) {
		d := newTestDetector(t)
		rec := &recorder{}
		sc := 1000.0
		send := func(at time.Time, add float64) []Event {
			sc += add
			m := litAt("IP2", at)
			m.Fields |= FieldSwitchCount
			m.SwitchCount = sc
			require.NoError(t, d.Observe(m, rec.commit))
			return rec.take()
		}
		send(testNight, 0)
		assert.Empty(t, send(testNight.Add(5*time.Minute), 5), "5 changes in the window: under 6")
		assert.Empty(t, send(testNight.Add(10*time.Minute), 1))
		assert.Empty(t, send(testNight.Add(15*time.Minute), 0))
		evs := send(testNight.Add(20*time.Minute), 0)
		require.Len(t, evs, 1)
		assert.Equal(t, FaultCyclingFailure, evs[0].Fault)
		// The changes age out of the window; then three readings clear it.
		assert.Empty(t, send(testNight.Add(65*time.Minute), 0), "the 5 at +5 min aged out, 1 left")
		assert.Empty(t, send(testNight.Add(70*time.Minute), 0))
		evs = send(testNight.Add(75*time.Minute), 0)
		require.Len(t, evs, 1)
		assert.Equal(t, Clear, evs[0].Kind)
		// A counter reset counts nothing; switching by day counts nothing.
		assert.Empty(t, send(testNight.Add(85*time.Minute), -900))
		for i := range 10 {
			evs := send(testDay.Add(time.Duration(i)*5*time.Minute), 20)
			assert.NotContains(t, faultsOf(evs), FaultCyclingFailure)
		}
	})
	t.Run("a lamp cycling by itself", func(t *testing.T) {
		// End-of-life lamps go out and restrike with the relay closed:
		// lamp_on stays true, power comes and goes.
		d := newTestDetector(t)
		rec := &recorder{}
		for i := range 9 {
			m := litAt("IP1", testNight.Add(time.Duration(i)*5*time.Minute))
			if i%2 == 1 {
				m.Power = 0
			}
			require.NoError(t, d.Observe(m, rec.commit))
		}
		var faults []string
		for _, ev := range rec.events {
			faults = append(faults, ev.Fault)
		}
		assert.Equal(t, []string{FaultCyclingFailure}, faults)
	})
}

func TestCommunicationLoss(t *testing.T) {
	t.Run("silence", func(t *testing.T) {
		start := testNight
		d := NewDetector(testConfig(), testRegistry(t), start)
		rec := &recorder{}
		heard := start.Add(10 * time.Minute)
		require.NoError(t, d.Observe(litAt("IP1", heard), rec.commit))
		require.NoError(t, d.Sweep(start.Add(14*time.Minute), rec.commit))
		assert.Empty(t, rec.events)
		// IP2 was never heard from: its silence counts from start.
		require.NoError(t, d.Sweep(start.Add(15*time.Minute), rec.commit))
		evs := rec.take()
		require.Len(t, evs, 1)
		assert.Equal(t, Event{Kind: Raise, Nameplate: "IP2", Fault: FaultCommunicationFailure,
			At: start.Add(15 * time.Minute), Since: start.UTC(), Lat: -19.748, Lon: -47.937, HasPosition: true}, evs[0])
		require.NoError(t, d.Sweep(heard.Add(15*time.Minute-time.Second), rec.commit))
		assert.Empty(t, rec.events)
		require.NoError(t, d.Sweep(heard.Add(15*time.Minute), rec.commit))
		evs = rec.take()
		require.Len(t, evs, 1)
		assert.Equal(t, "IP1", evs[0].Nameplate)
		assert.True(t, evs[0].Since.Equal(heard), "since the last message")
		require.NoError(t, d.Sweep(heard.Add(time.Hour), rec.commit))
		assert.Empty(t, rec.events, "raised once")
		c := d.Counts(heard.Add(time.Hour))
		assert.Equal(t, DeviceCounts{Known: 2, Online: 0, Faulty: 2}, c)

		// The next message clears it at once.
		back := heard.Add(2 * time.Hour)
		require.NoError(t, d.Observe(with(litAt("IP1", back), func(m *Telemetry) { m.At = heard }), rec.commit))
		evs = rec.take()
		require.Len(t, evs, 1)
		assert.Equal(t, Clear, evs[0].Kind)
		assert.True(t, evs[0].At.Equal(back))
		require.NoError(t, d.ObserveStatus(StatusReport{Nameplate: "IP2", Online: true, Received: back}, rec.commit))
		evs = rec.take()
		require.Len(t, evs, 1)
		assert.Equal(t, Clear, evs[0].Kind)
		assert.Equal(t, "IP2", evs[0].Nameplate)
		require.NoError(t, d.Sweep(back.Add(time.Minute), rec.commit))
		assert.Equal(t, DeviceCounts{Known: 2, Online: 2, Faulty: 0}, d.Counts(back.Add(time.Minute)))
	})
	t.Run("status offline", func(t *testing.T) {
		d := NewDetector(testConfig(), nil, testNight)
		rec := &recorder{}
		require.NoError(t, d.Observe(litAt("X", testNight), rec.commit))
		require.NoError(t, d.Sweep(testNight.Add(time.Minute), rec.commit))
		assert.Equal(t, 1, d.Counts(testNight.Add(time.Minute)).Online)
		off := testNight.Add(2 * time.Minute)
		require.NoError(t, d.ObserveStatus(StatusReport{Nameplate: "X", Online: false, Received: off}, rec.commit))
		require.NoError(t, d.ObserveStatus(StatusReport{Nameplate: "X", Online: false, Received: off.Add(time.Minute)}, rec.commit))
		assert.Zero(t, rec.calls, "offline alone raises nothing yet")
		v, _ := d.Device("X")
		assert.False(t, v.Online)
		assert.True(t, v.LastSeen.Equal(testNight), "a last will is not a sign of life")
		assert.Equal(t, 0, d.Counts(off).Online)
		require.NoError(t, d.Sweep(off.Add(15*time.Minute), rec.commit))
		evs := rec.take()
		require.Len(t, evs, 1)
		assert.True(t, evs[0].Since.Equal(testNight))
		require.NoError(t, d.ObserveStatus(StatusReport{Nameplate: "X", Online: true, Received: off.Add(20 * time.Minute)}, rec.commit))
		evs = rec.take()
		require.Len(t, evs, 1)
		assert.Equal(t, Clear, evs[0].Kind)
		v, _ = d.Device("X")
		assert.True(t, v.Online)
	})
	t.Run("disabled", func(t *testing.T) {
		cfg := testConfig()
		cfg.CommLossAfter = 0
		d := NewDetector(cfg, testRegistry(t), testNight)
		rec := &recorder{}
		require.NoError(t, d.Sweep(testNight.Add(24*time.Hour), rec.commit))
		assert.Zero(t, rec.calls)
	})
}

func TestRestore(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	since := testNight.Add(-48 * time.Hour)
	d.Restore([]ActiveFault{
		{Nameplate: "IP1", Fault: FaultLampFailure, Since: since},
		{Nameplate: "IP1", Fault: "relayFailure", Since: since},
		{Nameplate: "IP2", Fault: FaultCommunicationFailure, Since: since},
		{Nameplate: "X9", Fault: FaultSupplyVoltageTooLow, Since: since},
	})
	assert.Equal(t, DeviceCounts{Known: 3, Online: 0, Faulty: 3}, d.Counts(testNight))
	v, ok := d.Device("IP1")
	require.True(t, ok)
	require.Len(t, v.Faults, 2)
	assert.True(t, v.Faults[0].Since.Equal(since))

	f := &feeder{t: t, d: d, rec: rec, now: testNight}
	// Dark at night again: already open, not raised again. The alarm is
	// not reported any more: cleared at once.
	_, evs := f.send("IP1", at(phaseNight, darkAt))
	require.Len(t, evs, 1)
	assert.Equal(t, Event{Kind: Clear, Fault: "relayFailure"}, Event{Kind: evs[0].Kind, Fault: evs[0].Fault})
	f.sendN("IP1", at(phaseNight, darkAt), 5)
	// Lit at night: the restored fault clears after ConfirmCount readings.
	f.sendN("IP1", at(phaseNight, litAt), 2)
	_, evs = f.send("IP1", at(phaseNight, litAt))
	require.Len(t, evs, 1)
	assert.Equal(t, Clear, evs[0].Kind)
	assert.Equal(t, FaultLampFailure, evs[0].Fault)

	// A device known only from the store: the right readings clear it.
	f.sendN("X9", at(phaseUnknown, litAt), 2)
	_, evs = f.send("X9", at(phaseUnknown, litAt))
	require.Len(t, evs, 1)
	assert.Equal(t, FaultSupplyVoltageTooLow, evs[0].Fault)
	assert.Equal(t, Clear, evs[0].Kind)

	// communicationFailure: not raised again by Sweep, cleared by a message.
	require.NoError(t, d.Sweep(testNight.Add(10*time.Hour), rec.commit))
	for _, ev := range rec.take() {
		assert.NotEqual(t, "IP2", ev.Nameplate)
	}
	_, evs = f.send("IP2", at(phaseNight, litAt))
	require.Len(t, evs, 1)
	assert.Equal(t, FaultCommunicationFailure, evs[0].Fault)
	assert.Equal(t, Clear, evs[0].Kind)

}

func TestCommitErrorRollsBack(t *testing.T) {
	errDisk := errors.New("disk full")
	t.Run("rule", func(t *testing.T) {
		d := newTestDetector(t)
		rec := &recorder{}
		for i := range 2 {
			require.NoError(t, d.Observe(darkAt("IP1", testNight.Add(time.Duration(i)*time.Minute)), rec.commit))
		}
		before, _ := d.Device("IP1")
		third := darkAt("IP1", testNight.Add(2*time.Minute))
		third.Received = testNight.Add(3 * time.Minute)
		rec.fail = errDisk
		for range 3 { // redelivered, failing each time
			err := d.Observe(third, rec.commit)
			require.ErrorIs(t, err, errDisk)
			after, _ := d.Device("IP1")
			assert.Equal(t, before, after, "rolled back")
		}
		assert.Equal(t, 3, rec.calls)
		rec.fail = nil
		require.NoError(t, d.Observe(third, rec.commit))
		require.Len(t, rec.events, 1)
		assert.True(t, rec.events[0].Since.Equal(testNight), "the same message raises again, with the same Since")
		v, _ := d.Device("IP1")
		assert.Len(t, v.Faults, 1)
		assert.Equal(t, 1, d.Counts(testNight).Faulty)
	})
	t.Run("alarm and clear", func(t *testing.T) {
		d := newTestDetector(t)
		rec := &recorder{}
		m := with(litAt("IP1", testNight), func(m *Telemetry) { m.Fields |= FieldAlarms; m.Alarms = []string{"relayFailure"} })
		rec.fail = errDisk
		require.ErrorIs(t, d.Observe(m, rec.commit), errDisk)
		v, _ := d.Device("IP1")
		assert.Empty(t, v.Faults)
		assert.Zero(t, d.Counts(testNight).Faulty)
		rec.fail = nil
		require.NoError(t, d.Observe(m, rec.commit))
		require.Len(t, rec.take(), 1)
		clear := litAt("IP1", testNight.Add(time.Minute))
		rec.fail = errDisk
		require.ErrorIs(t, d.Observe(clear, rec.commit), errDisk)
		v, _ = d.Device("IP1")
		assert.Len(t, v.Faults, 1, "the clear was rolled back: the alarm is still open")
		rec.fail = nil
		require.NoError(t, d.Observe(clear, rec.commit))
		require.Len(t, rec.take(), 1)
	})
	t.Run("sweep", func(t *testing.T) {
		d := newTestDetector(t)
		rec := &recorder{fail: errDisk}
		err := d.Sweep(testNight.Add(time.Hour), rec.commit)
		require.ErrorIs(t, err, errDisk)
		assert.Equal(t, 2, rec.calls, "every device tried")
		assert.Equal(t, 2, d.Counts(testNight.Add(time.Hour)).Known)
		assert.Zero(t, d.Counts(testNight.Add(time.Hour)).Faulty)
		rec.fail = nil
		require.NoError(t, d.Sweep(testNight.Add(time.Hour), rec.commit))
		assert.Len(t, rec.events, 2)
	})
}

func TestNoCommitWhenNothingChanges(t *testing.T) {
	d := newTestDetector(t)
	calls := 0
	commit := func([]Event) error { calls++; return nil }
	for i := range 50 {
		require.NoError(t, d.Observe(litAt("IP1", testNight.Add(time.Duration(i)*time.Minute)), commit))
		require.NoError(t, d.ObserveStatus(StatusReport{Nameplate: "IP1", Online: true, Received: testNight.Add(time.Duration(i) * time.Minute)}, commit))
	}
	assert.Zero(t, calls)
}

func nameplates(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Nameplate)
	}
	return out
}

func faultsOf(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Fault)
	}
	return out
}

func TestConfirmCountOne(t *testing.T) {
	for _, n := range []int{1, 0, -3} { // 0 and below mean 1
		cfg := testConfig()
		cfg.ConfirmCount = n
		d := NewDetector(cfg, testRegistry(t), testNight)
		rec := &recorder{}
		require.NoError(t, d.Observe(darkAt("IP1", testNight), rec.commit))
		evs := rec.take()
		require.Len(t, evs, 1, "ConfirmCount %d", n)
		assert.True(t, evs[0].Since.Equal(evs[0].At))
		require.NoError(t, d.Observe(litAt("IP1", testNight.Add(time.Minute)), rec.commit))
		evs = rec.take()
		require.Len(t, evs, 1)
		assert.Equal(t, Clear, evs[0].Kind)
	}
}

func TestDeviceViewJSON(t *testing.T) {
	// The status API encodes views: every value must be valid JSON (no NaN).
	d := newTestDetector(t)
	rec := &recorder{}
	require.NoError(t, d.Observe(tel("IP1", testNight, Reading{Fields: FieldPower, Power: 10}), rec.commit))
	require.NoError(t, d.Observe(with(darkAt("IP2", testNight), func(m *Telemetry) {
		m.Fields |= FieldAlarms
		m.Alarms = []string{"relayFailure"}
	}), rec.commit))
	for _, v := range d.Devices(true) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"nameplate_num":"`+v.Nameplate+`"`)
	}
	v, _ := d.Device("IP1")
	require.Len(t, v.History, 1)
	assert.Equal(t, -1.0, v.History[0].Voltage)
}
