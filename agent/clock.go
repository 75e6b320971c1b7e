package agent

import (
	"sync/atomic"
	"time"
)

// Clock trust. A gateway board without a real-time clock boots at its last
// saved time or at 1970; until NTP corrects it, "night" computed from that
// clock is fiction, and a fleet of lamps would all be declared dark at noon.
// Day and night rules are therefore neutral while the clock is not trusted
// (CONTRACT §4). Rules that do not depend on the sun (voltage, power factor,
// power, alarms, communication loss) keep working.

// clockReason says why the clock is not trusted; 0 means it is.
type clockReason uint8

const (
	clockOK clockReason = iota
	clockBeforeBuild
	clockUnsynced
)

type clockGuard struct {
	buildTime time.Time
	require   bool
	synced    func() bool

	// The kernel's flag costs a system call; it is read at most once per
	// minute of the gateway clock and cached here.
	checkedMin atomic.Int64
	lastSynced atomic.Bool
}

func newClockGuard(cfg *DetectorConfig) *clockGuard {
	c := &clockGuard{buildTime: cfg.BuildTime, require: cfg.RequireClockSync, synced: cfg.ClockSynced}
	c.checkedMin.Store(-1 << 62)
	return c
}

// check is the hot-path form: no allocation, the sync flag cached.
func (c *clockGuard) check(now time.Time) clockReason {
	if !c.buildTime.IsZero() && now.Before(c.buildTime) {
		return clockBeforeBuild
	}
	if !c.require {
		return clockOK
	}
	if c.synced == nil {
		return clockUnsynced
	}
	m := now.Unix() / 60
	if c.checkedMin.Load() != m {
		c.lastSynced.Store(c.synced())
		c.checkedMin.Store(m)
	}
	if !c.lastSynced.Load() {
		return clockUnsynced
	}
	return clockOK
}

// ClockTrust says whether day/night rules run at gateway time now, and if
// not, why, in words for the status page and the log.
func (d *Detector) ClockTrust(now time.Time) (trusted bool, reason string) {
	c := d.clock
	if !c.buildTime.IsZero() && now.Before(c.buildTime) {
		return false, "the gateway clock (" + now.UTC().Format(time.RFC3339) +
			") is earlier than the build date (" + c.buildTime.UTC().Format(time.RFC3339) +
			"): day/night rules are suspended until it is set"
	}
	if c.require {
		if c.synced == nil {
			return false, "EDGE_REQUIRE_CLOCK_SYNC is set but the clock's sync state is unknown: day/night rules are suspended"
		}
		if !c.synced() {
			return false, "the kernel reports the clock unsynchronised and EDGE_REQUIRE_CLOCK_SYNC is set: day/night rules are suspended"
		}
	}
	return true, ""
}
