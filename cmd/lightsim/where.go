package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Place is where the fleet stands: a centre the devices are spread around.
type Place struct {
	Name     string // "Uberaba", "Tokyo", or "" for coordinates given by hand
	State    string // two-letter region for the registry's state_abbreviation ("" when none)
	Lat, Lon float64
}

// Label names the place for the start line.
func (p Place) Label() string {
	name := p.Name
	if name == "" {
		name = "custom"
	}
	return fmt.Sprintf("%s (%.4f,%.4f)", name, p.Lat, p.Lon)
}

// defaultPlace is Uberaba, MG, where the M2M API's own example ticket is.
var defaultPlace = Place{Name: "Uberaba", State: "MG", Lat: -19.7472, Lon: -47.9381}

// places are real cities spread around the globe so that at any instant one
// of them is near local midnight and one near local noon (their longitudes
// are at most ~40° apart). Coordinates are the cities' centres, to 4
// decimals. Latitudes stay below ~56° so that nights and days are real ones
// all year round.
var places = []Place{
	defaultPlace,
	{"São Paulo", "SP", -23.5505, -46.6333},
	{"Manaus", "AM", -3.1190, -60.0217},
	{"Buenos Aires", "", -34.6037, -58.3816},
	{"Santiago", "", -33.4489, -70.6693},
	{"New York", "", 40.7128, -74.0060},
	{"Chicago", "", 41.8781, -87.6298},
	{"Mexico City", "", 19.4326, -99.1332},
	{"Los Angeles", "", 34.0522, -118.2437},
	{"Honolulu", "", 21.3069, -157.8583},
	{"Apia", "", -13.8333, -171.7500},
	{"Suva", "", -18.1416, 178.4419},
	{"Auckland", "", -36.8485, 174.7633},
	{"Sydney", "", -33.8688, 151.2093},
	{"Tokyo", "", 35.6762, 139.6503},
	{"Shanghai", "", 31.2304, 121.4737},
	{"Perth", "", -31.9505, 115.8605},
	{"Singapore", "", 1.3521, 103.8198},
	{"Bangkok", "", 13.7563, 100.5018},
	{"Dhaka", "", 23.8103, 90.4125},
	{"Delhi", "", 28.6139, 77.2090},
	{"Mumbai", "", 19.0760, 72.8777},
	{"Karachi", "", 24.8607, 67.0011},
	{"Dubai", "", 25.2048, 55.2708},
	{"Moscow", "", 55.7558, 37.6173},
	{"Nairobi", "", -1.2921, 36.8219},
	{"Cairo", "", 30.0444, 31.2357},
	{"Cape Town", "", -33.9249, 18.4241},
	{"Lagos", "", 6.5244, 3.3792},
	{"London", "", 51.5074, -0.1278},
	{"Lisbon", "", 38.7223, -9.1393},
	{"Praia", "", 14.9330, -23.5133},
}

// Thresholds of --where night and --where day: well past twilight (the
// agent's day/night rules are silent between −6° and +6°) so that the place
// stays night or day for hours after the pick.
const (
	nightBelow = -12.0
	dayAbove   = 20.0
)

// ErrBadWhere is wrapped by --where parse errors.
var ErrBadWhere = errors.New("bad --where")

// resolveWhere turns --where into a place at time now: "night" and "day"
// pick the city where the sun is lowest or highest right now (which is
// always below −12° or above +20°: the table covers every longitude);
// "LAT,LON" is taken as is; a city name from the table picks it.
func resolveWhere(where string, now time.Time) (Place, error) {
	switch w := strings.ToLower(strings.TrimSpace(where)); w {
	case "", "default":
		return defaultPlace, nil
	case "night", "day":
		p, elev := extremePlace(now, w == "night")
		if (w == "night" && elev >= nightBelow) || (w == "day" && elev <= dayAbove) {
			return p, fmt.Errorf("%w %s: no place found (best %s at %.1f°)", ErrBadWhere, w, p.Name, elev)
		}
		return p, nil
	default:
		for _, p := range places {
			if strings.EqualFold(p.Name, w) {
				return p, nil
			}
		}
		lat, lon, ok := parseLatLon(w)
		if !ok {
			return Place{}, fmt.Errorf("%w %q: want night, day, a city (uberaba, tokyo, ...) or LAT,LON in decimal degrees", ErrBadWhere, where)
		}
		return Place{Lat: lat, Lon: lon}, nil
	}
}

// extremePlace returns the place with the lowest (night) or highest sun now,
// and that elevation.
func extremePlace(now time.Time, night bool) (Place, float64) {
	best, bestElev := places[0], agent.SunElevation(now, places[0].Lat, places[0].Lon)
	for _, p := range places[1:] {
		e := agent.SunElevation(now, p.Lat, p.Lon)
		if (night && e < bestElev) || (!night && e > bestElev) {
			best, bestElev = p, e
		}
	}
	return best, bestElev
}

func parseLatLon(s string) (lat, lon float64, ok bool) {
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, false
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil || !(lat >= -90 && lat <= 90) || !(lon >= -180 && lon <= 180) {
		return 0, 0, false
	}
	return lat, lon, true
}

// spread returns a point uniformly distributed within radiusKm of (lat, lon).
func spread(rng *rand.Rand, lat, lon, radiusKm float64) (float64, float64) {
	if radiusKm <= 0 {
		return lat, lon
	}
	const kmPerDegree = 111.32
	r := radiusKm * math.Sqrt(rng.Float64())
	theta := 2 * math.Pi * rng.Float64()
	dLat := r * math.Cos(theta) / kmPerDegree
	dLon := r * math.Sin(theta) / (kmPerDegree * math.Max(math.Cos(lat*math.Pi/180), 0.01))
	lat = math.Max(-90, math.Min(90, lat+dLat))
	lon += dLon
	if lon > 180 {
		lon -= 360
	} else if lon < -180 {
		lon += 360
	}
	return lat, lon
}

// dayPhase names the light at a sun elevation as the agent sees it.
func dayPhase(elev float64) string {
	switch {
	case elev < -6:
		return "night"
	case elev > 6:
		return "day"
	}
	return "twilight"
}

// sunAt is the sun's elevation at a place, in degrees.
func sunAt(t time.Time, p Place) float64 { return agent.SunElevation(t, p.Lat, p.Lon) }
