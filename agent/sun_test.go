package agent

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Published sunrise and sunset are the moments the sun's centre is 0.833°
// below the horizon (34' of refraction plus 16' of semi-diameter), rounded
// to the minute. SunElevation is geometric, so it must cross −0.833° within
// a couple of minutes of each published time.
func TestSunElevationAgainstPublishedTimes(t *testing.T) {
	type event struct {
		hhmm   string
		rising bool
	}
	cases := []struct {
		place    string
		lat, lon float64
		date     string // local date
		utcOff   int    // hours, the zone the source publishes in
		events   []event
		source   string
	}{
		{
			place: "Uberaba, MG", lat: -19.7472, lon: -47.9381, date: "2023-01-01", utcOff: -3,
			events: []event{{"05:36", true}, {"18:54", false}},
			source: "stjerneskinn.com, Nascer do sol, pôr do sol e crepúsculo em Uberaba em 2023 " +
				"(http://stjerneskinn.com/nascer-do-sol-uberaba.htm), 1 Jan 2023",
		},
		{
			// Southern-hemisphere winter, on the solstice.
			place: "Melbourne", lat: -37.8333, lon: 145.0, date: "2017-06-21", utcOff: 10,
			events: []event{{"07:35", true}, {"17:08", false}},
			source: "Museums Victoria, Melbourne Planetarium, Skynotes June 2017, Sunrise & Sunset Times " +
				"(museumsvictoria.com.au/.../skynotes-june-2017), Wednesday 21st; location 37°50'S 145°E",
		},
		{
			// High latitude, the winter solstice: the sun barely rises, and
			// crawls through the horizon at a shallow angle.
			place: "Reykjavík", lat: 64.1466, lon: -21.9426, date: "2020-12-21", utcOff: 0,
			events: []event{{"11:22", true}, {"15:31", false}},
			source: "Iceland Monitor (mbl.is), Brighter Days Ahead, 1 Jan 2021: on Monday, December 21, " +
				"sunrise in Reykjavík was at 11:22 am and sunset at 3:31 pm",
		},
		{
			// Above the Arctic Circle near the equinox.
			place: "Tromsø", lat: 69.5, lon: 19.0, date: "2014-04-01", utcOff: 1,
			events: []event{{"04:50", true}, {"18:49", false}},
			source: "U.S. Naval Observatory, Sun and Moon Data for One Day, Tromso (E19.0, N69.5), " +
				"Tuesday 1 April 2014, Universal Time + 1h (as quoted on answers.com, How many hours of daylight in north Norway in April)",
		},
		{
			place: "Tromsø", lat: 69.5, lon: 19.0, date: "2014-04-30", utcOff: 1,
			events: []event{{"02:29", true}, {"20:58", false}},
			source: "U.S. Naval Observatory, Sun and Moon Data for One Day, Tromso, Wednesday 30 April 2014, UT + 1h (same page)",
		},
	}
	const horizon = -0.833
	const slack = 2 * time.Minute
	for _, c := range cases {
		zone := time.FixedZone(fmt.Sprintf("UTC%+d", c.utcOff), c.utcOff*3600)
		for _, ev := range c.events {
			name := fmt.Sprintf("%s %s %s", c.place, c.date, ev.hhmm)
			t.Run(name, func(t *testing.T) {
				at, err := time.ParseInLocation("2006-01-02 15:04", c.date+" "+ev.hhmm, zone)
				if err != nil {
					t.Fatal(err)
				}
				before := SunElevation(at.Add(-slack), c.lat, c.lon)
				after := SunElevation(at.Add(slack), c.lat, c.lon)
				if ev.rising {
					assert.True(t, before < horizon && after > horizon,
						"sunrise should cross %.3f° within ±%v of %s: %.3f° → %.3f° (source: %s)",
						horizon, slack, ev.hhmm, before, after, c.source)
				} else {
					assert.True(t, before > horizon && after < horizon,
						"sunset should cross %.3f° within ±%v of %s: %.3f° → %.3f° (source: %s)",
						horizon, slack, ev.hhmm, before, after, c.source)
				}
				assert.InDelta(t, horizon, SunElevation(at, c.lat, c.lon), 0.6, "at the published minute")
			})
		}
	}
}

func TestSunElevationGeometry(t *testing.T) {
	// At the March equinox the sun culminates near the zenith on the
	// equator and near 90°−lat elsewhere; at local midnight it is as far
	// below the horizon.
	noon := time.Date(2024, 3, 20, 12, 7, 0, 0, time.UTC) // solar noon at Greenwich, ±1 min
	assert.InDelta(t, 90, SunElevation(noon, 0, 0), 0.5)
	assert.InDelta(t, 90-51.48, SunElevation(noon, 51.48, 0), 0.5)
	assert.InDelta(t, -90, SunElevation(noon, 0, 180), 0.5)
	// Polar night and midnight sun.
	assert.Less(t, SunElevation(time.Date(2024, 12, 21, 12, 0, 0, 0, time.UTC), 80, 15), 0.0)
	assert.Greater(t, SunElevation(time.Date(2024, 6, 21, 0, 0, 0, 0, time.UTC), 80, 15), 0.0)
	// Range and finiteness over odd inputs.
	for _, tt := range []time.Time{{}, time.Unix(0, 0), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for _, p := range [][2]float64{{90, 0}, {-90, 0}, {0, 180}, {0, -180}} {
			e := SunElevation(tt, p[0], p[1])
			assert.False(t, math.IsNaN(e) || e < -90 || e > 90, "%v %v: %v", tt, p, e)
		}
	}
}

func TestPhaseOf(t *testing.T) {
	assert.Equal(t, phaseNight, phaseOf(-6.01))
	assert.Equal(t, phaseTwilight, phaseOf(-6))
	assert.Equal(t, phaseTwilight, phaseOf(0))
	assert.Equal(t, phaseTwilight, phaseOf(6))
	assert.Equal(t, phaseDay, phaseOf(6.01))
}

func BenchmarkSunElevation(b *testing.B) {
	t0 := time.Date(2026, 12, 4, 21, 10, 0, 0, time.UTC)
	var s float64
	for i := 0; b.Loop(); i++ {
		s += SunElevation(t0.Add(time.Duration(i)*time.Second), -19.7472, -47.9381)
	}
	_ = s
}
