package agent

import (
	"math"
	"time"
)

// Recent measurements of one device, for the technicians' page and the
// devices API: the last 24 hours of power and voltage at 30-minute
// resolution. It is a display aid, not a record, so it is kept small: one
// byte per value, quantised, 104 bytes a device (a 100,000-device gateway
// keeps it in 11 MB), held in the device record itself (a zero history is
// an empty one) rather than allocated apart. The exact latest values are
// in the device's reading.

const (
	historyBuckets = 48
	historyBucket  = 30 * time.Minute
	histSecs       = int64(historyBucket / time.Second)
)

// HistoryPoint is one 30-minute bucket of a device's history: the last
// power and voltage reported in it (quantised, see history). A value the
// device did not report in that bucket is −1.
type HistoryPoint struct {
	At      time.Time `json:"at"`
	Power   float64   `json:"power"`
	Voltage float64   `json:"voltage"`
}

// history is a ring of historyBuckets buckets. Codes are 0 for "not
// reported" and 1..255 for a value: power on a per-device linear scale
// (full scale grows when a larger power is seen, so resolution is 1/254 of
// the device's largest power, about 0.4 W for a 100 W lamp); voltage on
// 0..1.5 × nominal (about 1.3 V steps at 220 V nominal).
type history struct {
	power, volt [historyBuckets]uint8
	last        uint32  // absolute bucket number of the newest write (Unix time / 30 min)
	scale       float32 // power full scale in W
}

// add records a reading taken at (Unix seconds) sec. Readings older than
// the ring are dropped; a reading older than the newest bucket only writes
// its own bucket (delivery is unordered).
func (h *history) add(sec int64, r *Reading, nominalVolt float64) {
	if sec < 0 || !r.Has(FieldPower) && !r.Has(FieldVoltage) {
		return
	}
	b := uint32(sec / histSecs)
	switch {
	case h.last == 0 || (b > h.last && b-h.last >= historyBuckets):
		h.power, h.volt = [historyBuckets]uint8{}, [historyBuckets]uint8{}
		h.last = b
	case b > h.last:
		// Clear the buckets skipped since the newest write.
		for n := h.last + 1; n <= b; n++ {
			h.power[n%historyBuckets], h.volt[n%historyBuckets] = 0, 0
		}
		h.last = b
	case h.last-b >= historyBuckets:
		return // older than the window
	}
	k := b % historyBuckets
	if r.Has(FieldPower) {
		h.power[k] = h.powerCode(r.Power)
	}
	if r.Has(FieldVoltage) {
		h.volt[k] = quantise(r.Voltage, 1.5*nominalVolt)
	}
}

func (h *history) powerCode(p float64) uint8 {
	if p < 0 {
		p = 0
	}
	if float32(p) > h.scale {
		// Grow the full scale with headroom and re-quantise what is kept.
		next := float32(max(p*1.25, 10))
		if h.scale > 0 {
			for i, c := range h.power {
				if c > 0 {
					h.power[i] = quantise(float64(c-1)/254*float64(h.scale), float64(next))
				}
			}
		}
		h.scale = next
	}
	return quantise(p, float64(h.scale))
}

func quantise(v, full float64) uint8 {
	if full <= 0 || math.IsNaN(v) {
		return 0
	}
	v = max(0, min(v, full))
	return uint8(1 + math.Round(v/full*254))
}

// dequantise returns the value of a code rounded to 0.1, or −1 for "not
// reported" (JSON has no NaN).
func dequantise(c uint8, full float64) float64 {
	if c == 0 {
		return -1
	}
	return math.Round(float64(c-1)/254*full*10) / 10
}

// points returns the buckets that hold a value, oldest first, values
// rounded to 0.1.
func (h *history) points(nominalVolt float64) []HistoryPoint {
	if h == nil || h.last == 0 {
		return nil
	}
	var out []HistoryPoint
	for age := int64(historyBuckets - 1); age >= 0; age-- {
		b := int64(h.last) - age
		if b < 0 {
			continue
		}
		k := b % historyBuckets
		if h.power[k] == 0 && h.volt[k] == 0 {
			continue
		}
		out = append(out, HistoryPoint{
			At:      time.Unix(b*histSecs, 0).UTC(),
			Power:   dequantise(h.power[k], float64(h.scale)),
			Voltage: dequantise(h.volt[k], 1.5*nominalVolt),
		})
	}
	return out
}
