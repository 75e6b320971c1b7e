package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// command is one program run, as it is shown in BENCHMARKS.md.
type command struct {
	Env  []string
	Name string
	Args []string
	Dir  string
}

func (c command) String() string {
	var parts []string
	parts = append(parts, c.Env...)
	parts = append(parts, shellQuote(c.Name))
	for _, a := range c.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,%+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// run runs c to completion and returns its combined output; a failure
// carries the output's tail.
func (e *env) run(c command) (string, error) {
	cmd := exec.CommandContext(e.ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		tail := out.String()
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		return out.String(), fmt.Errorf("%s: %w\n%s", c, err, tail)
	}
	return out.String(), nil
}

// testBinary builds the test binary of pkg (e.g. "./mqtt") into the work
// folder, with extra environment (GOARCH=...).
func (e *env) testBinary(pkg, name string, extraEnv ...string) (string, error) {
	out := filepath.Join(e.work, name)
	envs := append([]string{"CGO_ENABLED=0"}, extraEnv...)
	_, err := e.run(command{Env: envs, Name: e.goBin, Args: []string{"test", "-c", "-o", out, pkg}, Dir: e.moduleDir})
	return out, err
}

// hotResult is the hot-path benchmark, native and under qemu, run by run.
type hotResult struct {
	Command, ArmBuild, ArmCommand string

	CoreNs, CoreAllocs, SubNs, SubAllocs, SubBytes []float64
	ArmCoreNs, ArmSubNs                            []float64
	// ArmRatio is qemu/native ns/op of the subscriber level, run by run
	// (the two runs of a pair are back to back); ArmCoreRatio the same for
	// the core level.
	ArmRatio, ArmCoreRatio []float64
	ArmSkipped             string
}

const hotBench = "^BenchmarkHotPath$"

func runHotPath(e *env) (*hotResult, error) {
	p := e.plan
	native, err := e.testBinary("./mqtt", "mqtt.test")
	if err != nil {
		return nil, err
	}
	args := []string{"-test.run", "^$", "-test.bench", hotBench, "-test.benchmem", "-test.benchtime", p.HotBenchtime, "-test.count", "1"}
	pkgDir := filepath.Join(e.moduleDir, "mqtt")
	r := &hotResult{
		Command: fmt.Sprintf("CGO_ENABLED=0 go test -c -o mqtt.test ./mqtt && (cd mqtt && ../mqtt.test %s), %d times", strings.Join(quoteAll(args), " "), p.GoRuns),
	}
	var arm string
	qemu, qerr := exec.LookPath("qemu-aarch64-static")
	if qerr != nil {
		r.ArmSkipped = "qemu-aarch64-static is not installed (apt-get install qemu-user-static)"
	} else {
		armEnv := []string{"GOARCH=arm64", "GOARM64=v8.0"}
		if arm, err = e.testBinary("./mqtt", "mqtt-arm64.test", armEnv...); err != nil {
			return nil, err
		}
		r.ArmBuild = "CGO_ENABLED=0 GOARCH=arm64 GOARM64=v8.0 go test -c -o mqtt-arm64.test ./mqtt"
		r.ArmCommand = fmt.Sprintf("(cd mqtt && qemu-aarch64-static ../mqtt-arm64.test %s), each run right after the native one", strings.Join(quoteAll(args), " "))
	}
	for i := range p.GoRuns {
		out, err := e.run(command{Name: native, Args: args, Dir: pkgDir})
		if err != nil {
			return nil, err
		}
		lines := parseBench(out)
		core, sub := metric(lines, "BenchmarkHotPath/core", "ns/op"), metric(lines, "BenchmarkHotPath/subscriber", "ns/op")
		if len(core) != 1 || len(sub) != 1 {
			return nil, fmt.Errorf("hot path: unexpected output:\n%s", out)
		}
		r.CoreNs = append(r.CoreNs, core[0])
		r.SubNs = append(r.SubNs, sub[0])
		r.CoreAllocs = append(r.CoreAllocs, metric(lines, "BenchmarkHotPath/core", "allocs/op")...)
		r.SubAllocs = append(r.SubAllocs, metric(lines, "BenchmarkHotPath/subscriber", "allocs/op")...)
		r.SubBytes = append(r.SubBytes, metric(lines, "BenchmarkHotPath/subscriber", "B/op")...)
		e.logf("hot path %d/%d: core %s, subscriber %s", i+1, p.GoRuns, fmtNs(core[0]), fmtNs(sub[0]))
		if arm == "" {
			continue
		}
		out, err = e.run(command{Name: qemu, Args: append([]string{arm}, args...), Dir: pkgDir})
		if err != nil {
			return nil, err
		}
		lines = parseBench(out)
		acore, asub := metric(lines, "BenchmarkHotPath/core", "ns/op"), metric(lines, "BenchmarkHotPath/subscriber", "ns/op")
		if len(acore) != 1 || len(asub) != 1 {
			return nil, fmt.Errorf("hot path under qemu: unexpected output:\n%s", out)
		}
		r.ArmCoreNs = append(r.ArmCoreNs, acore[0])
		r.ArmSubNs = append(r.ArmSubNs, asub[0])
		r.ArmRatio = append(r.ArmRatio, asub[0]/sub[0])
		r.ArmCoreRatio = append(r.ArmCoreRatio, acore[0]/core[0])
		e.logf("hot path %d/%d under qemu: core %s, subscriber %s (%.1f×)", i+1, p.GoRuns, fmtNs(acore[0]), fmtNs(asub[0]), asub[0]/sub[0])
	}
	return r, nil
}

func quoteAll(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return q
}

// stormResult is the store's BenchmarkStorm: group commit and one
// transaction per ticket, alternating in one process.
type stormResult struct {
	Command string
	// Seconds per storm of 10,000 raises, and commits per storm.
	Grouped, PerTx               []float64
	GroupedCommits, PerTxCommits []float64
	Ratio                        []float64 // per-tx / grouped, pair by pair
	PerTxSkipped                 string
}

func runStorm(e *env) (*stormResult, error) {
	p := e.plan
	bin, err := e.testBinary("./store", "store.test")
	if err != nil {
		return nil, err
	}
	bench := "^BenchmarkStorm$"
	r := &stormResult{}
	if !p.StormPerTx {
		bench = "^BenchmarkStorm$/^grouped$"
		r.PerTxSkipped = "quick run: the one-transaction-per-ticket storm (≈ 35 s) is left out"
	}
	args := []string{"-test.run", "^$", "-test.bench", bench, "-test.benchtime", "1x", "-test.count", fmt.Sprint(p.StormRuns)}
	r.Command = fmt.Sprintf("CGO_ENABLED=0 go test -c -o store.test ./store && (cd store && ../store.test %s)", strings.Join(quoteAll(args), " "))
	out, err := e.run(command{Name: bin, Args: args, Dir: filepath.Join(e.moduleDir, "store")})
	if err != nil {
		return nil, err
	}
	lines := parseBench(out)
	for _, ns := range metric(lines, "BenchmarkStorm/grouped", "ns/op") {
		r.Grouped = append(r.Grouped, ns/1e9)
	}
	for _, ns := range metric(lines, "BenchmarkStorm/per-tx", "ns/op") {
		r.PerTx = append(r.PerTx, ns/1e9)
	}
	r.GroupedCommits = metric(lines, "BenchmarkStorm/grouped", "commits/storm")
	r.PerTxCommits = metric(lines, "BenchmarkStorm/per-tx", "commits/storm")
	if len(r.Grouped) != p.StormRuns || (p.StormPerTx && len(r.PerTx) != p.StormRuns) {
		return nil, fmt.Errorf("storm: want %d results of each kind, got %d grouped and %d per-tx:\n%s", p.StormRuns, len(r.Grouped), len(r.PerTx), out)
	}
	for i := range r.PerTx {
		r.Ratio = append(r.Ratio, r.PerTx[i]/r.Grouped[i])
	}
	e.logf("storm: grouped %s, per-tx %s", fmtList(r.Grouped, fmtDur), fmtList(r.PerTx, fmtDur))
	if len(r.Grouped) == 0 {
		return nil, errors.New("storm: no result")
	}
	return r, nil
}
