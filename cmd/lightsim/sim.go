package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// lineWriter serialises the stdout lines other programs parse: one
// Fprintf per line, never interleaved.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

// faultTimeLayout is RFC 3339 with milliseconds, so that a fault line's
// time can be matched with the ts (unixms) of the message that shows it.
const faultTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// fleetRun is the fleet mode: every device publishes once per interval,
// the devices spread evenly over the interval (device k of N at offset
// k×interval/N), with faults raising and clearing on their cycles.
type fleetRun struct {
	fleet     *Fleet
	pub       *publisher
	out       *lineWriter
	prefix    string
	interval  time.Duration
	report    time.Duration // 0: no report lines
	status    bool          // publish "online" (retained) for each device at start
	offline   bool          // silence publishes "offline" (retained) on the status topic
	logFaults bool
	quiet     bool
	now       func() time.Time

	buf []byte
}

// run publishes until ctx ends: that is how the fleet mode stops (SIGINT,
// SIGTERM, --duration). Publishing failures are counted, not returned.
func (r *fleetRun) run(ctx context.Context) {
	start := r.now()
	if r.status {
		for _, d := range r.fleet.Devices {
			if err := r.pub.publish(ctx, statusTopic(r.prefix, d.Nameplate), []byte("online"), true, classStatus); err != nil {
				return // ctx ended
			}
		}
	}
	n := len(r.fleet.Devices)
	slot := r.interval / time.Duration(n)
	idx, round := 0, int64(0)
	nextReport := start.Add(r.report)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		due := start.Add(time.Duration(round)*r.interval + time.Duration(idx)*slot)
		now := r.now()
		if now.Sub(due) > r.interval {
			// Far behind (the window was full while the broker was away):
			// skip the missed rounds rather than burst them; a controller
			// reports its state now, not its backlog.
			behind := int64(now.Sub(due) / r.interval)
			round += behind
			due = due.Add(time.Duration(behind) * r.interval)
		}
		if r.report > 0 && !now.Before(nextReport) {
			r.reportLine(now, start)
			nextReport = nextReport.Add(r.report * (1 + now.Sub(nextReport)/r.report))
		}
		if wait := due.Sub(now); wait > 0 {
			if r.report > 0 {
				wait = min(wait, nextReport.Sub(now))
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			continue
		}
		if err := r.publishDevice(ctx, r.fleet.Devices[idx], now); err != nil {
			return // ctx ended while the window was full
		}
		idx++
		if idx == n {
			idx, round = 0, round+1
		}
	}
}

// publishDevice steps one device to t and publishes what it says.
func (r *fleetRun) publishDevice(ctx context.Context, d *Device, t time.Time) error {
	s := d.step(r.fleet, t)
	for _, c := range s.Changes {
		if r.logFaults {
			state := "off"
			if c.On {
				state = "on"
			}
			r.out.printf("fault %s %s %s %s", d.Nameplate, c.Fault, state, t.UTC().Format(faultTimeLayout))
		}
		if c.Fault.Kind == kindSilence && r.offline {
			payload := "online"
			if c.On {
				payload = "offline"
			}
			if err := r.pub.publish(ctx, statusTopic(r.prefix, d.Nameplate), []byte(payload), true, classStatus); err != nil {
				return err
			}
		}
	}
	switch {
	case s.Silent:
		return nil
	case s.Garbage:
		topic, payload, _ := d.garbage(r.prefix, &s)
		return r.pub.publish(ctx, topic, payload, false, classGarbage)
	}
	r.buf = appendTelemetry(r.buf[:0], &s)
	// paho keeps the payload until the broker acknowledges it: a copy each.
	return r.pub.publish(ctx, telemetryTopic(r.prefix, d.Nameplate), append([]byte(nil), r.buf...), false, classTelemetry)
}

func (r *fleetRun) reportLine(now, start time.Time) {
	if !r.quiet {
		printReport(r.out, r.pub, r.fleet, now.Sub(start), r.fleet.ActiveFaults(now))
	}
}

// printReport prints the report line. published counts the telemetry-topic
// messages acknowledged, garbage included (as the summary line does);
// garbage and status say how many of those were garbage, and how many
// status messages went out besides.
func printReport(out *lineWriter, p *publisher, f *Fleet, elapsed time.Duration, active int) {
	out.printf("lightsim: report elapsed=%s published=%d garbage=%d status=%d failed=%d pending=%d faults_active=%d",
		elapsed.Round(time.Second), p.ok(classTelemetry)+p.ok(classGarbage), p.ok(classGarbage), p.ok(classStatus),
		p.failed(classTelemetry)+p.failed(classGarbage)+p.failed(classStatus), p.pending(), active)
}
