package agent

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func benchDetector(b *testing.B, devices int) (*Detector, []string) {
	b.Helper()
	reg, names := benchRegistry(b, devices)
	return NewDetector(testConfig(), reg, testNight.Add(-time.Hour)), names
}

func benchRegistry(b *testing.B, devices int) (*Registry, []string) {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("nameplate_num,latitude,longitude,nominal_power,address,municipality,state_abbreviation\n")
	names := make([]string, devices)
	for i := range names {
		names[i] = fmt.Sprintf("IP%06d", i)
		fmt.Fprintf(&sb, "%s,%.5f,%.5f,100,Rua %d,Uberaba,MG\n", names[i], -19.7472+float64(i%100)*1e-4, -47.9381+float64(i/100%100)*1e-4, i%50)
	}
	reg, rowErrs, err := ParseRegistry(strings.NewReader(sb.String()))
	if err != nil || len(rowErrs) > 0 {
		b.Fatal(err, rowErrs)
	}
	return reg, names
}

func noCommit([]Event) error { return nil }

// BenchmarkObserve is the hot path: a device reporting again with nothing
// changing (no commit, no allocation): a lit lamp at night, a dark lamp
// whose lampFailure is already open, a controller repeating its alarms.
func BenchmarkObserve(b *testing.B) {
	cases := []struct {
		name string
		msg  func(name string, at time.Time) *Telemetry
	}{
		{"lit", litAt},
		{"fault-open", darkAt},
		{"alarms-repeated", func(name string, at time.Time) *Telemetry {
			return with(litAt(name, at), func(m *Telemetry) {
				m.Fields |= FieldAlarms
				m.Alarms = []string{"relayFailure", FaultLampFailure}
			})
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			d, names := benchDetector(b, 1000)
			msgs := make([]Telemetry, len(names))
			for i, n := range names {
				for k := range 4 { // past the confirm count: faults raised
					msgs[i] = *c.msg(n, testNight.Add(time.Duration(k)*time.Minute))
					if err := d.Observe(&msgs[i], noCommit); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m := &msgs[i%len(msgs)]
				m.At = m.At.Add(time.Millisecond) // stays night however long the run
				m.Received = m.At
				if err := d.Observe(m, failCommit); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// failCommit fails the benchmark's Observe if anything changed.
func failCommit([]Event) error { return errUnexpectedCommit }

var errUnexpectedCommit = errors.New("unexpected commit: the message changed a fault")

// BenchmarkSweep: one sweep over 100,000 devices none of which is silent.
func BenchmarkSweep(b *testing.B) {
	d, names := benchDetector(b, 100_000)
	for _, n := range names {
		if err := d.Observe(litAt(n, testNight), noCommit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Sweep(testNight.Add(time.Minute), failCommit); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserveParallel: many devices observed at once (sharded locks).
func BenchmarkObserveParallel(b *testing.B) {
	d, names := benchDetector(b, 10000)
	for _, n := range names {
		if err := d.Observe(litAt(n, testNight), noCommit); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		k := int(next.Add(1)) * 7919
		m := litAt(names[0], testNight)
		for i := 0; pb.Next(); i++ {
			m.Nameplate = names[(k+i)%len(names)]
			m.At = testNight.Add(time.Duration(i) * time.Millisecond)
			m.Received = m.At
			if err := d.Observe(m, noCommit); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDeviceMemory reports the live heap per device for 100,000
// registry devices that all reported telemetry (history allocated): the
// detector's state including map entries ("bytes/device"), and the
// registry's rows ("registry-bytes/device").
func BenchmarkDeviceMemory(b *testing.B) {
	const n = 100_000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		h0 := heap()
		reg, names := benchRegistry(b, n)
		h1 := heap()
		d := NewDetector(testConfig(), reg, testNight.Add(-time.Hour))
		for i, name := range names {
			m := litAt(name, testNight.Add(time.Duration(i)*time.Millisecond))
			if err := d.Observe(m, noCommit); err != nil {
				b.Fatal(err)
			}
		}
		h2 := heap()
		runtime.KeepAlive(names)
		b.ReportMetric(float64(h2-h1)/n, "bytes/device")
		b.ReportMetric(float64(h1-h0)/n, "registry-bytes/device")
		runtime.KeepAlive(d)
	}
}

// BenchmarkDeviceMemoryUnlisted is BenchmarkDeviceMemory with no registry
// (EDGE_DEVICES_FILE unset): every device is created by its first message,
// with its own nameplate.
func BenchmarkDeviceMemoryUnlisted(b *testing.B) {
	const n = 100_000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("IP%06d", i)
	}
	for b.Loop() {
		h0 := heap()
		d := NewDetector(testConfig(), nil, testNight.Add(-time.Hour))
		for i, name := range names {
			m := litAt(name, testNight.Add(time.Duration(i)*time.Millisecond))
			if err := d.Observe(m, noCommit); err != nil {
				b.Fatal(err)
			}
		}
		h1 := heap()
		b.ReportMetric(float64(h1-h0)/n, "bytes/device")
		runtime.KeepAlive(d)
	}
}
