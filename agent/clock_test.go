package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUntrustedClock(t *testing.T) {
	t.Run("before the build date", func(t *testing.T) {
		d := newTestDetector(t)
		rec := &recorder{}
		old := time.Date(1970, 1, 1, 0, 10, 0, 0, time.UTC) // a board without RTC, just booted
		ok, reason := d.ClockTrust(old)
		assert.False(t, ok)
		assert.Contains(t, reason, "earlier than the build date")
		for i := range 10 {
			m := darkAt("IP1", testNight.Add(time.Duration(i)*time.Minute)) // the controller's own ts is fine
			m.Received = old.Add(time.Duration(i) * time.Minute)
			require.NoError(t, d.Observe(m, rec.commit))
		}
		assert.Zero(t, rec.calls, "day/night rules wait")
		// Rules that need no sun still work.
		for i := range 3 {
			m := with(litAt("IP1", testNight.Add(time.Hour+time.Duration(i)*time.Minute)), func(m *Telemetry) { m.Voltage = 250 })
			m.Received = old
			require.NoError(t, d.Observe(m, rec.commit))
		}
		require.Len(t, rec.events, 1)
		assert.Equal(t, FaultSupplyVoltageTooHigh, rec.events[0].Fault)
		ok, _ = d.ClockTrust(testNight)
		assert.True(t, ok)
	})
	t.Run("sync required", func(t *testing.T) {
		for _, synced := range []bool{false, true} {
			cfg := testConfig()
			cfg.RequireClockSync = true
			calls := 0
			cfg.ClockSynced = func() bool { calls++; return synced }
			d := NewDetector(cfg, testRegistry(t), testNight)
			rec := &recorder{}
			for i := range 3 {
				require.NoError(t, d.Observe(darkAt("IP1", testNight.Add(time.Duration(i)*10*time.Second)), rec.commit))
			}
			ok, reason := d.ClockTrust(testNight)
			assert.Equal(t, synced, ok)
			if synced {
				assert.Len(t, rec.events, 1)
			} else {
				assert.Empty(t, rec.events)
				assert.Contains(t, reason, "unsynchronised")
			}
			assert.Equal(t, 2, calls, "the kernel flag is read once a minute (and once by ClockTrust)")
		}
		cfg := testConfig()
		cfg.RequireClockSync = true // and no way to know
		ok, reason := NewDetector(cfg, nil, testNight).ClockTrust(testNight)
		assert.False(t, ok)
		assert.Contains(t, reason, "unknown")
	})
}
