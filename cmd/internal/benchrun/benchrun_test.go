package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/edge-agent/edge-agent/mqtt
cpu: AMD EPYC
BenchmarkHotPath/core-2         	  803737	      2194 ns/op	       0 B/op	       0 allocs/op
BenchmarkHotPath/subscriber-2   	  457884	      1838.5 ns/op	     208 B/op	       1 allocs/op
BenchmarkStorm/per-tx-2         	       1	35120000000 ns/op	     10000 commits/storm	       284.7 raises/s
--- FAIL: BenchmarkBroken
BenchmarkNoNumbers-2 fast
PASS
ok  	github.com/edge-agent/edge-agent/mqtt	28.994s
`
	lines := parseBench(out)
	if len(lines) != 3 {
		t.Fatalf("parsed %d lines, want 3: %+v", len(lines), lines)
	}
	if l := lines[1]; l.Name != "BenchmarkHotPath/subscriber" || l.Iters != 457884 ||
		l.Metrics["ns/op"] != 1838.5 || l.Metrics["B/op"] != 208 || l.Metrics["allocs/op"] != 1 {
		t.Errorf("subscriber line: %+v", l)
	}
	if got := metric(lines, "BenchmarkStorm/per-tx", "commits/storm"); len(got) != 1 || got[0] != 10000 {
		t.Errorf("custom metric: %v", got)
	}
	if got := metric(lines, "BenchmarkHotPath/core", "raises/s"); got != nil {
		t.Errorf("a metric the line lacks: %v", got)
	}
	// The -GOMAXPROCS suffix goes, a dash inside the name stays.
	if lines[2].Name != "BenchmarkStorm/per-tx" {
		t.Errorf("name %q", lines[2].Name)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median reordered its argument: %v", c.in)
			}
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func TestRateBetween(t *testing.T) {
	// Samples every 0.1 s of a consumer that starts at 0.25 s and takes in
	// 1000 messages a second until it has 500 (at 0.75 s): the idle time
	// before and after must not count.
	var ts []float64
	var counts []int64
	for i := 0; i <= 12; i++ {
		at := float64(i) / 10
		c := int64(math.Round(math.Max(0, math.Min(500, (at-0.25)*1000))))
		ts, counts = append(ts, at), append(counts, c)
	}
	if got := rateBetween(ts, counts, 500); math.Abs(got-1000) > 1e-6 {
		t.Errorf("rate %v, want 1000", got)
	}
	if got := rateBetween(ts, counts, 501); got != 0 {
		t.Errorf("a target never reached gives %v, want 0", got)
	}
	// All messages within one sample: no interval to measure over.
	if got := rateBetween([]float64{0, 0.1}, []int64{0, 500}, 500); got != 0 {
		t.Errorf("a single sample gives %v, want 0", got)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 123456789: "123,456,789", -45000: "-45,000"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	c := command{Env: []string{"GOARCH=arm64"}, Name: "mosquitto_sub", Args: []string{"-t", "streetlights/+/telemetry", "-F", "%l", "-test.run", "^$", "it's"}}
	want := `GOARCH=arm64 mosquitto_sub -t streetlights/+/telemetry -F %l -test.run '^$' 'it'\''s'`
	if got := c.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestReplaceGenerated(t *testing.T) {
	old := "# Benchmarks\n\nprose before\n\n" + beginMarker + " old -->\nold table\n" + endMarker + "\n\nprose after\n"
	md := beginMarker + " new -->\nnew table\n" + endMarker + "\n"
	got, err := replaceGenerated(old, md)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nprose before\n\n" + md + "\nprose after\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if _, err := replaceGenerated("# no markers\n", md); err == nil {
		t.Error("a file without markers was accepted")
	}
	if _, err := replaceGenerated(endMarker+"\n"+beginMarker, md); err == nil {
		t.Error("markers in the wrong order were accepted")
	}
}

func TestWriteGeneratedKeepsProse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	md := beginMarker + " x -->\nfigures\n" + endMarker + "\n"
	if err := os.WriteFile(path, []byte("# B\n\nhand-written\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeGenerated(path, md); err == nil {
		t.Fatal("a file without markers was overwritten")
	}
	if b, _ := os.ReadFile(path); string(b) != "# B\n\nhand-written\n" {
		t.Errorf("the file changed: %q", b)
	}
	if err := os.WriteFile(path, []byte("# B\n\n"+md+"\nlessons\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	md2 := strings.Replace(md, "figures", "new figures", 1)
	if err := writeGenerated(path, md2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "# B\n\n"+md2+"\nlessons\n" {
		t.Errorf("got %q", b)
	}
}

// TestMarkdownVerdicts renders a report with figures on both sides of
// each target and checks the verdicts and that nothing is left out.
func TestMarkdownVerdicts(t *testing.T) {
	r := &report{
		Plan:    fullPlan(),
		Machine: machine{CPUs: 2, CPUModel: "AMD EPYC", GoVersion: "go version go1.26.8 linux/amd64"},
		Started: time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC), Finished: time.Date(2026, 12, 4, 17, 8, 0, 0, time.UTC),
		Ingest: &ingestResult{Devices: 10000, Messages: 200000, Runs: []ingestRun{
			{Mode: "live", AgentRate: 19000, SubRate: 19000, Ratio: 1, PubRate: 19000},
			{Mode: "backlog", AgentRate: 33000, SubRate: 51000, Ratio: 33.0 / 51, PubRate: 80000},
		}},
		Hot:   &hotResult{SubNs: []float64{1500}, SubAllocs: []float64{1}, SubBytes: []float64{208}, CoreNs: []float64{1400}, CoreAllocs: []float64{0}, ArmSubNs: []float64{13500}, ArmRatio: []float64{9}},
		Storm: &stormResult{Grouped: []float64{0.4}, PerTx: []float64{36}, Ratio: []float64{90}, GroupedCommits: []float64{75}, PerTxCommits: []float64{10000}},
		Drain: &drainResult{Tickets: 10000, Latency: 20 * time.Millisecond, Concurrency: 8, Runs: []drainRun{{Seconds: 31.5, Ideal: 25, Ratio: 1.26}}},
		Memory: &memResult{Rounds: 3, Sizes: []memSize{
			{Devices: 10000, Runs: []memRun{{RSS: 27e6, RSSAnon: 17e6, RSSFile: 10e6}}},
			{Devices: 100000, Runs: []memRun{{RSS: 120e6, RSSAnon: 95e6, RSSFile: 25e6}}},
			{Devices: 100000, MemLimit: "64MiB", Runs: []memRun{{RSS: 73e6, RSSAnon: 48e6, RSSFile: 25e6}}},
		}},
		Startup:  &startupResult{Finished: 100000, Ready: []float64{0.008}, LogLine: []float64{0.009}},
		Size:     &sizeResult{Bytes: 10_682_494, Stripped: true},
		Sections: []sectionRun{{Name: "ingest"}},
	}
	md := r.markdown()
	for _, want := range []string{
		"| ingest live: **agent / mosquitto_sub** (run by run) | 1.00 | one run | ≥ 0.9 | **met** |",
		"ingest backlog: agent / mosquitto_sub (run by run): the headroom | 0.65 | one run | (≥ 0.9) | **missed** (28 % short)",
		"1.50 µs/op, 1 allocs/op (208 B/op) | one run | ≤ 2 µs, ≤ 3 allocs | **met**",
		"| 400 ms (75 commits) | one run | ≤ 250 ms | **missed** (60.0 % over) |",
		"| 90.0 × | one run | ≥ 20 × | **met** |",
		"31.5 s = 1.260 × ideal",
		"31.5 s = 1.260 × ideal (25.0 s) | one run | ≤ 1.25 × ideal | **missed** (0.8 % over) |",
		"the attribute round: every device saved in the store and applied at the API), no GOMEMLIMIT | 27.0 MB",
		"| 27.0 MB (RssAnon 17.0 MB, RssFile 10.0 MB; 2,700 B/device overall) | one run | ≤ 30 MB | **met** |",
		"120.0 MB (RssAnon 95.0 MB, RssFile 25.0 MB; 1,200 B/device overall, 1,033 B per device added beyond 10,000)",
		"GOMEMLIMIT=64MiB | 73.0 MB (RssAnon 48.0 MB, RssFile 25.0 MB;",
		"| 120.0 MB (RssAnon 95.0 MB, RssFile 25.0 MB; 1,200 B/device overall, 1,033 B per device added beyond 10,000) | one run | ≤ 60 MB | **missed** (2.0 × the limit) |",
		"| 8.00 ms | one run | ≤ 300 ms | **met** |",
		"10.7 MB (10.19 MiB, 10,682,494 bytes) |  | ≤ 15 MB | **met** |",
		"9.0 × (13.50 µs/op under qemu)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
	if !strings.HasPrefix(md, beginMarker) || !strings.HasSuffix(md, endMarker+"\n") {
		t.Error("the section is not enclosed in its markers")
	}

	r.Plan = quickPlan()
	if md := r.markdown(); strings.Contains(md, "**missed**") || !strings.Contains(md, "(quick run: not judged)") {
		t.Error("a quick run's figures were judged against the targets")
	}

	failed := &report{Plan: fullPlan(), Sections: []sectionRun{{Name: "drain", Err: errors.New("the agent exited\nlog tail")}}}
	if !failed.failed() || !strings.Contains(failed.markdown(), "**failed**: the agent exited |") {
		t.Error("a failed section is not reported as failed")
	}
}
