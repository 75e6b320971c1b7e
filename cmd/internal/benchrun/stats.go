package main

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// median of xs (the mean of the middle two for an even count); NaN for
// none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}

// benchLine is one result line of `go test -bench`.
type benchLine struct {
	Name    string // without the -GOMAXPROCS suffix
	Iters   int64
	Metrics map[string]float64 // by unit: "ns/op", "B/op", "allocs/op", custom ones
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads the result lines of `go test -bench` output, in order;
// other lines are ignored.
func parseBench(out string) []benchLine {
	var lines []benchLine
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		bl := benchLine{Name: procsSuffix.ReplaceAllString(f[0], ""), Iters: iters, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			bl.Metrics[f[i+1]] = v
		}
		if len(bl.Metrics) > 0 {
			lines = append(lines, bl)
		}
	}
	return lines
}

// metric collects one metric of the lines named name, in order.
func metric(lines []benchLine, name, unit string) []float64 {
	var xs []float64
	for _, l := range lines {
		if v, ok := l.Metrics[unit]; ok && l.Name == name {
			xs = append(xs, v)
		}
	}
	return xs
}

// rateBetween is the rate of a counter sampled at times ts, while it ran:
// between its first sample above zero and its last sample below target.
// Both ends are samples taken while messages flowed, so the polling
// interval biases neither (a sample at or past the end would add up to one
// interval of idle time). It returns 0 when the counter never reached
// target or no two such samples exist.
func rateBetween(ts []float64, counts []int64, target int64) float64 {
	first, last, reached := -1, -1, false
	for i, c := range counts {
		switch {
		case c >= target:
			reached = true
		case c > 0:
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if !reached || first < 0 || last <= first {
		return 0
	}
	dt := ts[last] - ts[first]
	if dt <= 0 {
		return 0
	}
	return float64(counts[last]-counts[first]) / dt
}

// Formatting helpers for the report.

// thousands formats n with a comma every three digits (the README's style).
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtRate(v float64) string { return thousands(int64(math.Round(v))) }

func fmtMB(bytes float64) string { return fmt.Sprintf("%.1f MB", bytes/1e6) }

func fmtDur(seconds float64) string {
	switch {
	case math.IsNaN(seconds):
		return "n/a"
	case seconds >= 10:
		return fmt.Sprintf("%.1f s", seconds)
	case seconds >= 1:
		return fmt.Sprintf("%.2f s", seconds)
	case seconds >= 0.01:
		return fmt.Sprintf("%.0f ms", seconds*1e3)
	default:
		return fmt.Sprintf("%.2f ms", seconds*1e3)
	}
}

func fmtNs(ns float64) string {
	if ns >= 1000 {
		return fmt.Sprintf("%.2f µs", ns/1000)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// fmtList formats each value with f, joined by commas.
func fmtList(xs []float64, f func(float64) string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = f(x)
	}
	return strings.Join(s, ", ")
}
