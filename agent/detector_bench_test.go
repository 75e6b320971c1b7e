package agent

import (
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

// BenchmarkObserve is the hot path: a lit lamp at night reporting again,
// which changes no fault (no commit, no allocation).
func BenchmarkObserve(b *testing.B) {
	d, names := benchDetector(b, 1000)
	msgs := make([]Telemetry, len(names))
	for i, n := range names {
		msgs[i] = *litAt(n, testNight)
		if err := d.Observe(&msgs[i], noCommit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m := &msgs[i%len(msgs)]
		m.At = m.At.Add(5 * time.Second)
		m.Received = m.At
		if err := d.Observe(m, noCommit); err != nil {
			b.Fatal(err)
		}
		i++
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

// BenchmarkDeviceMemory reports the detector's live heap per device for
// 100,000 registry devices that all reported telemetry (history allocated),
// map entries included, registry excluded.
func BenchmarkDeviceMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		reg, names := benchRegistry(b, n)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		d := NewDetector(testConfig(), reg, testNight.Add(-time.Hour))
		for i, name := range names {
			m := litAt(name, testNight.Add(time.Duration(i)*time.Millisecond))
			if err := d.Observe(m, noCommit); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/device")
		runtime.KeepAlive(d)
	}
}
