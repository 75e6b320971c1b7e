package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistory(t *testing.T) {
	var h history
	t0 := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	r := func(p, v float64) *Reading {
		return &Reading{Fields: FieldPower | FieldVoltage, Power: p, Voltage: v}
	}
	h.add(t0.Unix(), r(88.1, 221.4), 220)
	h.add(t0.Add(10*time.Minute).Unix(), r(90, 222), 220) // same bucket: the last one counts
	pts := h.points(220)
	require.Len(t, pts, 1)
	assert.True(t, pts[0].At.Equal(t0))
	assert.InDelta(t, 90, pts[0].Power, 0.3)
	assert.InDelta(t, 222, pts[0].Voltage, 0.7)

	// A larger power rescales what is kept.
	h.add(t0.Add(31*time.Minute).Unix(), &Reading{Fields: FieldPower, Power: 400}, 220)
	pts = h.points(220)
	require.Len(t, pts, 2)
	assert.InDelta(t, 90, pts[0].Power, 2.5)
	assert.InDelta(t, 400, pts[1].Power, 1)
	assert.Equal(t, -1.0, pts[1].Voltage, "not reported in that bucket")
	// An older reading writes its own bucket; one older than 24 h is dropped.
	h.add(t0.Add(-60*time.Minute).Unix(), r(0, 230), 220)
	h.add(t0.Add(-25*time.Hour).Unix(), r(0, 230), 220)
	pts = h.points(220)
	require.Len(t, pts, 3)
	assert.True(t, pts[0].At.Equal(t0.Add(-60*time.Minute)))
	assert.Equal(t, 0.0, pts[0].Power)
	// Values out of the scale clamp.
	h.add(t0.Add(time.Hour).Unix(), r(-5, 1000), 220)
	pts = h.points(220)
	assert.Equal(t, 0.0, pts[3].Power)
	assert.Equal(t, 330.0, pts[3].Voltage)
	// A day later, the old buckets are gone; 48 buckets at most.
	for i := range 60 {
		h.add(t0.Add(24*time.Hour+time.Duration(i)*30*time.Minute).Unix(), r(50, 220), 220)
	}
	pts = h.points(220)
	require.Len(t, pts, historyBuckets)
	for i := 1; i < len(pts); i++ {
		assert.Equal(t, historyBucket, pts[i].At.Sub(pts[i-1].At))
	}
	// A silence longer than the window leaves only what came after it;
	// a shorter one leaves the skipped buckets empty.
	h.add(t0.Add(80*time.Hour).Unix(), r(50, 220), 220)
	assert.Len(t, h.points(220), 1)
	h.add(t0.Add(82*time.Hour).Unix(), r(50, 220), 220)
	pts = h.points(220)
	require.Len(t, pts, 2)
	assert.Equal(t, 2*time.Hour, pts[1].At.Sub(pts[0].At))
	var empty *history
	assert.Nil(t, empty.points(220))
}
