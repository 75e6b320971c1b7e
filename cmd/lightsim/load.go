package main

import (
	"context"
	"time"
)

// loadRun is the load mode: valid telemetry, round-robin over the fleet, at
// a fixed rate or as fast as the window lets, until count messages were
// handed to the client or ctx ends. Faults that change values apply;
// silence and garbage are refused by the flags (the load mode's messages
// must all be valid, for counting).
type loadRun struct {
	fleet  *Fleet
	pub    *publisher
	prefix string
	rate   float64 // msgs/s; 0: as fast as possible
	count  int64   // 0: until ctx ends
	now    func() time.Time

	buf []byte
}

// run returns the number of messages handed to the client.
func (r *loadRun) run(ctx context.Context) int64 {
	start := r.now()
	n := len(r.fleet.Devices)
	var sent int64
	timer := time.NewTimer(0)
	defer timer.Stop()
	var now time.Time
	for r.count == 0 || sent < r.count {
		if sent%256 == 0 {
			// Reading the clock for every message is measurable at 50k/s;
			// messages of one batch share a timestamp.
			now = r.now()
			if ctx.Err() != nil {
				break
			}
		}
		if r.rate > 0 {
			// Pace: message k leaves at start + k/rate. Sleeping only when
			// more than a millisecond ahead keeps the timer calls few.
			due := start.Add(time.Duration(float64(sent) / r.rate * float64(time.Second)))
			if wait := due.Sub(r.now()); wait > time.Millisecond {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return sent
				case <-timer.C:
				}
				now = r.now()
			}
		}
		d := r.fleet.Devices[int(sent%int64(n))]
		s := d.step(r.fleet, now)
		r.buf = appendTelemetry(r.buf[:0], &s)
		if err := r.pub.publish(ctx, telemetryTopic(r.prefix, d.Nameplate), append([]byte(nil), r.buf...), false, classTelemetry); err != nil {
			return sent
		}
		sent++
	}
	return sent
}
