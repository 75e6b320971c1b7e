package agent

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeviceView(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	full := Reading{
		Fields: litFields | FieldEnergy | FieldTemperature | FieldBurnHours | FieldSwitchCount | FieldLux,
		LampOn: true, Power: 88.1, Voltage: 221.4, PowerFactor: 0.96, Dim: 100, Current: 0.42,
		Energy: 1234.5, Temperature: 38.5, BurnHours: 10234, SwitchCount: 5531, Lux: 2.1,
	}
	require.NoError(t, d.Observe(tel("IP1", testNight, full), rec.commit))
	// A later message with fewer fields: the others keep their last value.
	later := testNight.Add(5 * time.Minute)
	m := tel("IP1", later, Reading{Fields: FieldVoltage | FieldPosition, Voltage: 219.9})
	m.Lat, m.Lon = 1, 2
	m.Received = later.Add(3 * time.Second)
	require.NoError(t, d.Observe(m, rec.commit))

	v, ok := d.Device("IP1")
	require.True(t, ok)
	want := full
	want.Voltage = 219.9
	assert.Equal(t, want, v.Reading, "values as sent (float32 kept, shortest decimal restored)")
	assert.True(t, v.ReadingAt.Equal(later))
	assert.True(t, v.LastSeen.Equal(later.Add(3*time.Second)))
	assert.True(t, v.Online)
	assert.True(t, v.InRegistry)
	assert.Equal(t, "Av. Leopoldino de Oliveira", v.Info.Site.Address)
	assert.Equal(t, uberabaLat, v.Lat, "the registry's position over the reported one")
	assert.True(t, v.HasPosition)
	assert.Empty(t, v.Faults)
	assert.NotNil(t, v.Faults, "an empty list, not null, in JSON")
	require.Len(t, v.History, 1, "both readings fall in one 30-minute bucket")
	assert.InDelta(t, 219.9, v.History[0].Voltage, 0.7)
	assert.InDelta(t, 88.1, v.History[0].Power, 0.3)

	v, ok = d.Device("IP2")
	require.True(t, ok, "registry devices exist before they speak")
	assert.False(t, v.Online)
	assert.True(t, v.LastSeen.IsZero())
	assert.True(t, v.ReadingAt.IsZero())
	assert.Zero(t, v.Reading.Fields)
	assert.Nil(t, v.History)
	_, ok = d.Device("nope")
	assert.False(t, ok)
}

func TestDevicesSortedFaultyFirst(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	for _, n := range []string{"C", "A", "B"} {
		require.NoError(t, d.Observe(litAt(n, testNight), rec.commit))
	}
	m := with(litAt("B", testNight.Add(time.Minute)), func(m *Telemetry) { m.Fields |= FieldAlarms; m.Alarms = []string{"x"} })
	require.NoError(t, d.Observe(m, rec.commit))
	var names []string
	for _, v := range d.Devices(false) {
		names = append(names, v.Nameplate)
	}
	assert.Equal(t, []string{"A", "B", "C", "IP1", "IP2"}, names)
	names = nil
	for _, v := range d.Devices(true) {
		names = append(names, v.Nameplate)
	}
	assert.Equal(t, []string{"B", "A", "C", "IP1", "IP2"}, names)
	assert.Equal(t, 5, d.Counts(testNight).Known)
}

func TestCollectAttributes(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	for i := range 3 {
		m := litAt("IP1", testNight.Add(time.Duration(i)*time.Minute))
		m.Power = 80 + float64(i)
		require.NoError(t, d.Observe(m, rec.commit))
	}
	require.NoError(t, d.ObserveStatus(StatusReport{Nameplate: "X", Online: true, Received: testNight}, rec.commit))
	attrs := d.CollectAttributes(nil)
	require.Len(t, attrs, 2, "one record per device, coalesced")
	byName := map[string]DeviceAttributes{}
	for _, a := range attrs {
		byName[a.Nameplate] = a
	}
	ip1 := byName["IP1"]
	assert.Equal(t, 82.0, ip1.Reading.Power)
	assert.True(t, ip1.Online)
	assert.True(t, ip1.LastSeen.Equal(testNight.Add(2*time.Minute)))
	assert.Equal(t, []string{}, ip1.ActiveFaults)
	assert.Zero(t, byName["X"].Reading.Fields)
	assert.True(t, byName["X"].Online)

	assert.Empty(t, d.CollectAttributes(nil), "nothing changed since")
	// The sweep changes IP2 (never heard) and X: offline, with the fault.
	require.NoError(t, d.Sweep(testNight.Add(time.Hour), rec.commit))
	attrs = d.CollectAttributes(attrs[:0])
	require.Len(t, attrs, 3)
	for _, a := range attrs {
		assert.False(t, a.Online, a.Nameplate)
		assert.Equal(t, []string{FaultCommunicationFailure}, a.ActiveFaults)
	}
}

func TestSetRegistryKeepsState(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	for i := range 3 {
		require.NoError(t, d.Observe(darkAt("IP1", testNight.Add(time.Duration(i)*time.Minute)), rec.commit))
	}
	require.Len(t, rec.take(), 1)
	reg, rowErrs, err := parseRegistryString("nameplate_num,latitude,longitude\nIP3,-19.75,-47.94\n")
	require.NoError(t, err)
	require.Empty(t, rowErrs)
	d.SetRegistry(reg)
	assert.Same(t, reg, d.Registry())

	v, ok := d.Device("IP1")
	require.True(t, ok, "heard from: kept")
	assert.False(t, v.InRegistry)
	require.Len(t, v.Faults, 1)
	_, ok = d.Device("IP2")
	assert.False(t, ok, "never heard, no fault, no longer in the registry: forgotten")
	_, ok = d.Device("IP3")
	assert.True(t, ok)
	assert.Equal(t, 2, d.Counts(testNight).Known)

	// IP1 has no position now (the message carried none): no night rule;
	// its open fault neither clears nor re-raises.
	for i := range 5 {
		require.NoError(t, d.Observe(litAt("IP1", testNight.Add(time.Duration(10+i)*time.Minute)), rec.commit))
	}
	assert.Empty(t, rec.take())

	// IP3's silence counts from the first sweep after it was added.
	first := testNight.Add(2 * time.Hour)
	require.NoError(t, d.Sweep(first, rec.commit))
	for _, ev := range rec.take() {
		assert.NotEqual(t, "IP3", ev.Nameplate)
	}
	require.NoError(t, d.Sweep(first.Add(15*time.Minute), rec.commit))
	evs := rec.take()
	require.Len(t, evs, 1)
	assert.Equal(t, "IP3", evs[0].Nameplate)
	assert.True(t, evs[0].Since.Equal(first))

	d.SetRegistry(nil)
	_, ok = d.Device("IP3")
	assert.True(t, ok, "it has an open fault: kept")
}

func parseRegistryString(s string) (*Registry, []RowError, error) {
	return ParseRegistry(strings.NewReader(s))
}

func TestPackedReadingRoundTrip(t *testing.T) {
	var p packedReading
	r := Reading{Fields: FieldVoltage | FieldEnergy | FieldSwitchCount | FieldPower | FieldAlarms | FieldTime,
		Voltage: 221.4, Energy: 98765.43, SwitchCount: 1234567, Power: math.MaxFloat64}
	p.merge(&r)
	got := p.unpack()
	assert.Equal(t, FieldVoltage|FieldEnergy|FieldSwitchCount|FieldPower, got.Fields, "not measurements: not kept")
	assert.Equal(t, 221.4, got.Voltage)
	assert.Equal(t, 98765.43, got.Energy)
	assert.Equal(t, 1234567.0, got.SwitchCount)
	assert.False(t, math.IsInf(got.Power, 0), "clamped to a finite value")
}

func TestWarnings(t *testing.T) {
	assert.Empty(t, testConfig().Warnings())
	c := testConfig()
	c.CommLossAfter = 6 * time.Minute
	c.CyclingSwitches = 20
	c.ConfirmCount = 300
	c.NominalVoltage = 0
	w := c.Warnings()
	require.Len(t, w, 4)
	assert.Contains(t, w[0], "EDGE_CONFIRM_COUNT")
	assert.Contains(t, w[1], "EDGE_COMM_LOSS_AFTER")
	assert.Contains(t, w[2], "at most 12 lamp changes")
	assert.Contains(t, w[3], "EDGE_NOMINAL_VOLTAGE")
}

// TestConcurrentUse runs every entry point at once (run with -race) and
// then checks the counters against the devices themselves.
func TestConcurrentUse(t *testing.T) {
	d := newTestDetector(t)
	const workers, devices, rounds = 8, 200, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for i := w; i < devices; i += workers {
					name := fmt.Sprintf("D%03d", i)
					at := testNight.Add(time.Duration(r) * time.Minute)
					m := darkAt(name, at)
					if i%3 == 0 {
						m = litAt(name, at)
					}
					m.Fields |= FieldPosition
					m.Lat, m.Lon = uberabaLat, uberabaLon
					if i%7 == 0 && r%2 == 0 {
						m.Fields |= FieldAlarms
						m.Alarms = []string{"relayFailure"}
					}
					if err := d.Observe(m, func([]Event) error { return nil }); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for r := range rounds {
			_ = d.Sweep(testNight.Add(time.Duration(r)*time.Minute), func([]Event) error { return nil })
			_ = d.Devices(true)
			_ = d.Counts(testNight)
			_ = d.CollectAttributes(nil)
			if r == rounds/2 {
				d.SetRegistry(d.Registry())
			}
		}
	})
	wg.Wait()
	require.NoError(t, d.Sweep(testNight.Add(rounds*time.Minute), func([]Event) error { return nil }))
	views := d.Devices(false)
	faulty, online := 0, 0
	for _, v := range views {
		if len(v.Faults) > 0 {
			faulty++
		}
		if v.Online {
			online++
		}
	}
	c := d.Counts(testNight.Add(rounds * time.Minute))
	assert.Equal(t, DeviceCounts{Known: len(views), Online: online, Faulty: faulty}, c)
	assert.Equal(t, devices+2, c.Known)
	assert.Greater(t, faulty, devices/2, "the dark lamps")
}

// TestLooseDevicesAndReload: devices outside the registry (thousands, so
// their shards' indexes grow several times) are found with their state; a
// reload that lists some of them moves them into the registry's rows and
// keeps their state, and one that drops them keeps those heard from.
func TestLooseDevicesAndReload(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	const n = 5000
	name := func(i int) string { return fmt.Sprintf("L%04d", i) }
	for i := range n {
		m := litAt(name(i), testNight)
		m.Voltage = 200 + float64(i%20)
		require.NoError(t, d.Observe(m, rec.commit))
	}
	check := func(stage string, inRegistry func(i int) bool) {
		t.Helper()
		for i := range n {
			v, ok := d.Device(name(i))
			require.True(t, ok, "%s: %s", stage, name(i))
			assert.Equal(t, name(i), v.Nameplate)
			assert.Equal(t, inRegistry(i), v.InRegistry, "%s: %s", stage, name(i))
			assert.Equal(t, 200+float64(i%20), v.Reading.Voltage, "%s: %s keeps its reading", stage, name(i))
			assert.True(t, v.LastSeen.Equal(testNight), stage)
			require.Len(t, v.History, 1, stage)
		}
		_, ok := d.Device("L9999")
		assert.False(t, ok, stage)
	}
	check("loose", func(int) bool { return false })
	assert.Equal(t, n+2, d.Counts(testNight).Known)

	// The even ones join the registry (with a position), IP1 stays, IP2
	// (never heard from) is dropped from it and forgotten.
	var sb strings.Builder
	sb.WriteString("nameplate_num,latitude,longitude,address\nIP1,-19.7472,-47.9381,Rua A\n")
	for i := 0; i < n; i += 2 {
		fmt.Fprintf(&sb, "%s,-19.75,-47.94,Rua %d\n", name(i), i)
	}
	reg2, rowErrs, err := parseRegistryString(sb.String())
	require.NoError(t, err)
	require.Empty(t, rowErrs)
	d.SetRegistry(reg2)
	check("half listed", func(i int) bool { return i%2 == 0 })
	v, ok := d.Device(name(4))
	require.True(t, ok)
	assert.Equal(t, "Rua 4", v.Info.Site.Address)
	assert.Equal(t, -19.75, v.Lat)
	_, ok = d.Device("IP2")
	assert.False(t, ok)
	assert.Equal(t, n+1, d.Counts(testNight).Known)

	// Dropped again: the loose devices own their nameplates, so the old
	// registry's text is not kept alive by them.
	d.SetRegistry(nil)
	check("none listed", func(int) bool { return false })
	text := unsafe.StringData(reg2.text)
	for i := range d.shards {
		sh := &d.shards[i]
		require.Empty(t, sh.devs)
		for _, x := range sh.loose {
			p := uintptr(unsafe.Pointer(unsafe.StringData(x.name)))
			assert.False(t, p >= uintptr(unsafe.Pointer(text)) && p < uintptr(unsafe.Pointer(text))+uintptr(len(reg2.text)),
				"%s is a view of the dropped registry's text", x.name)
		}
	}
	_, ok = d.Device("IP1")
	assert.False(t, ok, "never heard from: forgotten")
	assert.Equal(t, n, d.Counts(testNight).Known)
}

// TestRunKeepsExtensionOnlyWhileRunning: a debounce run's start lives in
// the device's extension, which a healthy device does not have; it is
// dropped again when the run ends without a raise.
func TestRunKeepsExtensionOnlyWhileRunning(t *testing.T) {
	d := newTestDetector(t)
	rec := &recorder{}
	ext := func() *deviceExt {
		sh, h := d.shardOf("IP1")
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return sh.find(h, "IP1").ext
	}
	high := func(at time.Time) *Telemetry {
		return with(litAt("IP1", at), func(m *Telemetry) { m.Voltage = 250 }) // over 220 V + 10 %
	}
	require.NoError(t, d.Observe(litAt("IP1", testNight), rec.commit))
	assert.Nil(t, ext(), "healthy: no extension")
	require.NoError(t, d.Observe(high(testNight.Add(time.Minute)), rec.commit))
	require.NoError(t, d.Observe(high(testNight.Add(2*time.Minute)), rec.commit))
	require.NotNil(t, ext(), "a run in progress keeps its start")
	require.NoError(t, d.Observe(litAt("IP1", testNight.Add(3*time.Minute)), rec.commit))
	assert.Nil(t, ext(), "the run ended: dropped")
	for i := range 3 {
		require.NoError(t, d.Observe(high(testNight.Add(time.Duration(10+i)*time.Minute)), rec.commit))
	}
	evs := rec.take()
	require.Len(t, evs, 1)
	assert.Equal(t, FaultSupplyVoltageTooHigh, evs[0].Fault)
	assert.True(t, evs[0].Since.Equal(testNight.Add(10*time.Minute)), "Since is the first reading of the confirming run")
}

// TestRecordSizes: the per-device records stay within the sizes the
// memory figures (docs/readme-detection.md, BENCHMARKS.md) are built on.
func TestRecordSizes(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(device{}), uintptr(200))
	assert.LessOrEqual(t, unsafe.Sizeof(regEntry{}), uintptr(44))
	assert.LessOrEqual(t, unsafe.Sizeof(history{}), uintptr(104))
}
