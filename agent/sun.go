package agent

import (
	"math"
	"time"
)

// The sun clock. Day and night rules (CONTRACT §4) are decided by the sun's
// elevation at a light point rather than by a fixed timetable, because a
// timetable is wrong somewhere in a country that spans 39 degrees of
// latitude, and wrong everywhere at some time of year.

// Elevation thresholds of the day/night rules, in degrees. Between them is
// twilight (civil twilight ends at −6°): a photocell or a schedule may
// legitimately switch at any moment in that band, so no rule fires there.
const (
	NightBelow = -6.0
	DayAbove   = 6.0
)

// SunElevation returns the geometric elevation of the sun's centre above the
// horizon, in degrees, at time t for an observer at lat, lon (decimal
// degrees, north and east positive). It uses the NOAA solar calculator's
// formulas (Meeus, Astronomical Algorithms, simplified), good to about 0.01°
// for years 1800–2100, which is far finer than the ±6° twilight band the rules
// use. It does not add atmospheric refraction: published sunrise and sunset
// are the moments the geometric elevation is −0.833° (0.567° of refraction
// plus the sun's 0.266° semi-diameter).
//
// The lightsim simulator uses it too, so that simulated lamps switch when
// the detector expects them to: keep the signature.
func SunElevation(t time.Time, lat, lon float64) float64 {
	// Julian day from Unix time: the Unix epoch is JD 2440587.5.
	sec := float64(t.Unix()) + float64(t.Nanosecond())/1e9
	jd := sec/86400 + 2440587.5
	jc := (jd - 2451545) / 36525 // Julian centuries since J2000.0

	meanLong := math.Mod(280.46646+jc*(36000.76983+jc*0.0003032), 360)
	meanAnom := 357.52911 + jc*(35999.05029-0.0001537*jc)
	ecc := 0.016708634 - jc*(0.000042037+0.0000001267*jc)
	mRad := meanAnom * deg2rad
	center := math.Sin(mRad)*(1.914602-jc*(0.004817+0.000014*jc)) +
		math.Sin(2*mRad)*(0.019993-0.000101*jc) +
		math.Sin(3*mRad)*0.000289
	trueLong := meanLong + center
	omega := (125.04 - 1934.136*jc) * deg2rad
	appLong := trueLong - 0.00569 - 0.00478*math.Sin(omega)
	meanObliq := 23 + (26+(21.448-jc*(46.815+jc*(0.00059-jc*0.001813)))/60)/60
	obliq := meanObliq + 0.00256*math.Cos(omega)
	obliqRad := obliq * deg2rad
	decl := math.Asin(math.Sin(obliqRad) * math.Sin(appLong*deg2rad))

	y := math.Tan(obliqRad / 2)
	y *= y
	l0 := meanLong * deg2rad
	eqTime := 4 / deg2rad * (y*math.Sin(2*l0) - 2*ecc*math.Sin(mRad) +
		4*ecc*y*math.Sin(mRad)*math.Cos(2*l0) -
		0.5*y*y*math.Sin(4*l0) - 1.25*ecc*ecc*math.Sin(2*mRad)) // minutes

	// True solar time in minutes from the UTC time of day.
	dayMin := math.Mod(sec, 86400) / 60
	if dayMin < 0 {
		dayMin += 1440
	}
	tst := math.Mod(dayMin+eqTime+4*lon, 1440)
	if tst < 0 {
		tst += 1440
	}
	hourAngle := tst/4 - 180

	latRad := lat * deg2rad
	cosZen := math.Sin(latRad)*math.Sin(decl) + math.Cos(latRad)*math.Cos(decl)*math.Cos(hourAngle*deg2rad)
	cosZen = max(-1, min(1, cosZen))
	return 90 - math.Acos(cosZen)/deg2rad
}

const deg2rad = math.Pi / 180

// sunPhase is the day/night class of a sun elevation.
type sunPhase uint8

const (
	phaseUnknown  sunPhase = iota // no position and no lux, or clock untrusted
	phaseNight                    // elevation below NightBelow
	phaseTwilight                 // between: no day/night rule fires
	phaseDay                      // elevation above DayAbove
)

func phaseOf(elev float64) sunPhase {
	switch {
	case elev < NightBelow:
		return phaseNight
	case elev > DayAbove:
		return phaseDay
	}
	return phaseTwilight
}

func (p sunPhase) String() string {
	switch p {
	case phaseNight:
		return "night"
	case phaseTwilight:
		return "twilight"
	case phaseDay:
		return "day"
	}
	return "unknown"
}
