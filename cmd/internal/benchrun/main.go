package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/cmd/internal/rig"
	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// plan is the sizes of one benchmark run.
type plan struct {
	Quick bool
	// Runs is how many times each end-to-end measurement is repeated;
	// GoRuns the -count of the hot-path benchmark (and the start-up runs),
	// StormRuns that of the storm (35 s a run for its per-tx half).
	Runs, GoRuns, StormRuns int
	// HotBenchtime is the -benchtime of the hot-path benchmark.
	HotBenchtime string
	// StormPerTx runs the one-transaction-per-ticket storm too (35 s each
	// on this machine).
	StormPerTx bool

	IngestDevices, IngestMessages int

	MemDevices []int
	MemRounds  int
	MemRate    int // msgs/s of the report rounds
	// MemLimit is a GOMEMLIMIT the largest fleet is measured with too:
	// the rule of thumb of systemd/edge-agent.env.example for it (16 MiB
	// plus 300 bytes per device).
	MemLimit string

	DrainTickets     int
	DrainLatency     time.Duration
	DrainConcurrency int
	DrainRate        int

	StartupFinished int
}

func fullPlan() plan {
	return plan{
		Runs: 3, GoRuns: 5, StormRuns: 3, HotBenchtime: "1s", StormPerTx: true,
		IngestDevices: 10_000, IngestMessages: 200_000,
		MemDevices: []int{10_000, 100_000}, MemRounds: 3, MemRate: 25_000, MemLimit: "45MiB",
		DrainTickets: 10_000, DrainLatency: 20 * time.Millisecond, DrainConcurrency: 8, DrainRate: 1000,
		StartupFinished: 100_000,
	}
}

func quickPlan() plan {
	return plan{
		Quick: true,
		Runs:  1, GoRuns: 1, StormRuns: 1, HotBenchtime: "20000x", StormPerTx: false,
		IngestDevices: 1_000, IngestMessages: 10_000,
		MemDevices: []int{1_000, 5_000}, MemRounds: 2, MemRate: 10_000, MemLimit: "16MiB",
		DrainTickets: 200, DrainLatency: 20 * time.Millisecond, DrainConcurrency: 8, DrainRate: 1000,
		StartupFinished: 2_000,
	}
}

// sections, in the order they run: the Go benchmarks first (no process of
// ours runs beside them), the end-to-end ones after.
var sections = []string{"hotpath", "storm", "ingest", "drain", "memory", "startup", "size"}

// env is what every section needs.
type env struct {
	ctx       context.Context
	plan      plan
	bins      rig.Binaries
	moduleDir string
	work      string
	goBin     string
	log       io.Writer
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "benchrun: "+format+"\n", args...)
}

// dir makes a fresh folder for one step under the work folder.
func (e *env) dir(name string) (string, error) {
	d := filepath.Join(e.work, name)
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	return d, os.MkdirAll(d, 0o755)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binDir := fs.String("bin", "bin", "folder holding edge-agent, m2m-sim and lightsim as `make build` leaves them")
	out := fs.String("out", "BENCHMARKS.md", "file whose generated section is rewritten (not with --quick)")
	quick := fs.Bool("quick", false, "small sizes, one run each; print the result, write no file")
	only := fs.String("only", "", "comma-separated sections to run (default all: "+strings.Join(sections, ",")+"); a partial run prints its figures and writes no file")
	runs := fs.Int("runs", 0, "repetitions of each end-to-end measurement (default 3; quick 1)")
	keep := fs.Bool("keep", false, "keep the work folder (logs of every process) instead of removing it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "benchrun: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	if *runs > 0 {
		p.Runs = *runs
	}
	want, err := selectSections(*only)
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 2
	}

	if _, err := mqtttest.Binary(); err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	bins := rig.InDir(*binDir)
	for _, b := range []string{bins.Agent, bins.Sim, bins.Lightsim} {
		if _, err := os.Stat(b); err != nil {
			fmt.Fprintf(stderr, "benchrun: %s is missing: run `make build` first (make bench does)\n", b)
			return 1
		}
	}
	moduleDir, err := findModule()
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	work, err := os.MkdirTemp("", "edge-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	if *keep {
		fmt.Fprintf(stderr, "benchrun: work folder %s (kept)\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	e := &env{ctx: ctx, plan: p, bins: bins, moduleDir: moduleDir, work: work, goBin: goBin, log: stderr}

	rep := &report{Plan: p, Started: time.Now()}
	rep.Machine = describeMachine(ctx, goBin)
	e.logf("machine: %s", rep.Machine.oneLine())
	for _, s := range sections {
		if !want[s] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		e.logf("=== %s", s)
		began := time.Now()
		load := loadAverage()
		var err error
		switch s {
		case "hotpath":
			rep.Hot, err = runHotPath(e)
		case "storm":
			rep.Storm, err = runStorm(e)
		case "ingest":
			rep.Ingest, err = runIngest(e)
		case "drain":
			rep.Drain, err = runDrain(e)
		case "memory":
			rep.Memory, err = runMemory(e)
		case "startup":
			rep.Startup, err = runStartup(e)
		case "size":
			rep.Size, err = runSize(e)
		}
		took := time.Since(began)
		rep.Sections = append(rep.Sections, sectionRun{Name: s, Took: took, LoadBefore: load, LoadAfter: loadAverage(), Err: err})
		if err != nil {
			e.logf("%s FAILED after %s: %v", s, took.Round(time.Second), err)
		} else {
			e.logf("%s done in %s", s, took.Round(time.Second))
		}
	}
	rep.Finished = time.Now()
	md := rep.markdown()
	failed := rep.failed() || ctx.Err() != nil
	switch {
	case *quick || *only != "":
		fmt.Fprint(stdout, md)
		e.logf("not writing %s (quick or partial run)", *out)
	case failed:
		fmt.Fprint(stdout, md)
		e.logf("not writing %s: a section failed", *out)
	default:
		if err := writeGenerated(*out, md); err != nil {
			fmt.Fprintf(stderr, "benchrun: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, md)
		e.logf("wrote the generated section of %s", *out)
	}
	if failed {
		return 1
	}
	return 0
}

func selectSections(only string) (map[string]bool, error) {
	want := map[string]bool{}
	if only == "" {
		for _, s := range sections {
			want[s] = true
		}
		return want, nil
	}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		ok := false
		for _, k := range sections {
			ok = ok || k == s
		}
		if !ok {
			return nil, fmt.Errorf("--only: unknown section %q (have %s)", s, strings.Join(sections, ", "))
		}
		want[s] = true
	}
	return want, nil
}

// findModule walks up from the working directory to the folder of go.mod.
func findModule() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run benchrun from the repository (make bench)")
		}
		dir = parent
	}
}
