package systemd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// scratch is this package's temporary directory, shared by the tests that
// reuse one expensive build (TestMain removes it).
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edge-agent-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// crossTargets are the file-name suffixes `make cross` produces.
var crossTargets = []string{"linux_amd64", "linux_arm64", "linux_armv7", "linux_armv6"}

// makeEnv is the environment for a nested make: without the stamps and flags
// a calling make (`make test VERSION=x`) or the user's shell might pass down,
// so that the Makefile computes them from git as a release build does.
func makeEnv() []string {
	drop := map[string]bool{
		"VERSION": true, "COMMIT": true, "BUILD_DATE": true, "LDFLAGS": true, "DIST": true,
		"GOFLAGS": true, "GOOS": true, "GOARCH": true, "GOARM": true, "CGO_ENABLED": true,
		"MAKEFLAGS": true, "MFLAGS": true, "MAKELEVEL": true, "MAKEOVERRIDES": true,
		"CROSS_TARGETS": true, "DEB_ARCHES": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return env
}

// cloneBuild is `make cross` run in a fresh clone of the current commit.
type cloneBuild struct {
	Dir, Dist         string
	Version, Commit   string
	BuildDate         string
	Files             map[string][]byte // by target suffix, plus "SHA256SUMS"
	Names             map[string]string // target suffix -> file path
	err               error
	skipReason, stage string
}

var (
	crossOnce   sync.Once
	crossBuilds [2]*cloneBuild
)

// crossBuildsOf clones the repository's HEAD commit twice, into paths of
// different lengths (so -trimpath is exercised), and runs `make cross` in
// each. Clones, not the working tree: other engineers may be editing it, and
// the claim is about a commit.
func crossBuildsOf(t *testing.T) [2]*cloneBuild {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP in -short: builds edge-agent for 4 targets twice")
	}
	for _, tool := range []string{"git", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s not found", tool)
		}
	}
	crossOnce.Do(func() {
		root := repoRoot(t)
		sha, err := runErr(t, root, nil, "git", "rev-parse", "HEAD")
		if err != nil {
			crossBuilds[0] = &cloneBuild{skipReason: "not a git checkout: " + strings.TrimSpace(sha)}
			crossBuilds[1] = crossBuilds[0]
			return
		}
		sha = strings.TrimSpace(sha)
		for i, sub := range []string{"a", filepath.Join("b", "a-longer-path", "elsewhere")} {
			crossBuilds[i] = buildClone(t, root, sha, filepath.Join(scratch, "cross", sub, "edge-agent"))
		}
	})
	for _, b := range crossBuilds {
		if b.skipReason != "" {
			t.Skip("SKIP: " + b.skipReason)
		}
		if b.err != nil {
			t.Fatalf("%s: %v", b.stage, b.err)
		}
	}
	return crossBuilds
}

func buildClone(t *testing.T, root, sha, dir string) *cloneBuild {
	b := &cloneBuild{Dir: dir, Dist: filepath.Join(dir, "dist"), Files: map[string][]byte{}, Names: map[string]string{}}
	step := func(stage, name string, args ...string) string {
		if b.err != nil {
			return ""
		}
		out, err := runErr(t, dir, makeEnv(), name, args...)
		if err != nil {
			b.err, b.stage = fmt.Errorf("%v\n%s", err, out), stage
		}
		return strings.TrimSpace(out)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		b.err, b.stage = err, "mkdir"
		return b
	}
	if out, err := runErr(t, root, nil, "git", "clone", "-q", "--shared", "--no-checkout", root, dir); err != nil {
		b.err, b.stage = fmt.Errorf("%v\n%s", err, out), "git clone"
		return b
	}
	step("git checkout", "git", "-c", "advice.detachedHead=false", "checkout", "-q", sha)
	b.Version = step("git describe", "git", "describe", "--tags", "--always", "--dirty")
	b.Commit = step("git rev-parse", "git", "rev-parse", "--short=12", "HEAD")
	b.BuildDate = step("git log", "sh", "-c", "TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ")
	step("make cross", "make", "--no-print-directory", "cross", "DIST="+b.Dist)
	if b.err != nil {
		return b
	}
	for _, target := range crossTargets {
		p := filepath.Join(b.Dist, "edge-agent_"+b.Version+"_"+target)
		data, err := os.ReadFile(p)
		if err != nil {
			b.err, b.stage = err, "make cross output"
			return b
		}
		b.Files[target], b.Names[target] = data, p
	}
	sums, err := os.ReadFile(filepath.Join(b.Dist, "edge-agent_"+b.Version+"_SHA256SUMS"))
	if err != nil {
		b.err, b.stage = err, "make cross SHA256SUMS"
		return b
	}
	b.Files["SHA256SUMS"] = sums
	return b
}

// TestCrossReproducible: the same commit, built twice in two places, gives
// the same bytes for every target.
func TestCrossReproducible(t *testing.T) {
	builds := crossBuildsOf(t)
	a, b := builds[0], builds[1]
	for _, name := range append(append([]string{}, crossTargets...), "SHA256SUMS") {
		if len(a.Files[name]) == 0 {
			t.Errorf("%s: empty output", name)
			continue
		}
		if !bytes.Equal(a.Files[name], b.Files[name]) {
			t.Errorf("%s differs between two builds of commit %s (%d vs %d bytes): the build is not reproducible",
				name, a.Commit, len(a.Files[name]), len(b.Files[name]))
		}
	}
	// The checksum file must list exactly the four binaries, verifiably.
	out, err := runErr(t, a.Dist, nil, "sha256sum", "--check", "--strict", "edge-agent_"+a.Version+"_SHA256SUMS")
	if err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}
	if n := strings.Count(strings.TrimSpace(string(a.Files["SHA256SUMS"])), "\n") + 1; n != len(crossTargets) {
		t.Errorf("SHA256SUMS lists %d files, want %d", n, len(crossTargets))
	}
}

// TestCrossBuildInfo reads what the Go toolchain recorded in each binary: the
// right GOOS/GOARCH/GOARM, static (CGO_ENABLED=0), trimmed paths, no VCS stamp.
func TestCrossBuildInfo(t *testing.T) {
	builds := crossBuildsOf(t)
	want := map[string][]string{
		"linux_amd64": {"GOARCH=amd64", "GOAMD64=v1"},
		"linux_arm64": {"GOARCH=arm64", "GOARM64=v8.0"},
		"linux_armv7": {"GOARCH=arm", "GOARM=7"},
		"linux_armv6": {"GOARCH=arm", "GOARM=6"},
	}
	for _, target := range crossTargets {
		out := run(t, "", nil, "go", "version", "-m", builds[0].Names[target])
		for _, w := range append(want[target], "GOOS=linux", "CGO_ENABLED=0", "-trimpath=true") {
			if !strings.Contains(out, "\t"+w+"\n") && !strings.Contains(out, " "+w+"\n") {
				t.Errorf("%s: build info lacks %q:\n%s", target, w, out)
			}
		}
		if strings.Contains(out, "vcs.") {
			t.Errorf("%s: VCS stamp present (it would differ between a clean and a dirty tree):\n%s", target, out)
		}
		for _, b := range builds {
			if bytes.Contains(b.Files[target], []byte(b.Dir)) {
				t.Errorf("%s: build directory %s leaked into the binary (-trimpath)", target, b.Dir)
			}
		}
	}
}

// TestCrossBinariesRun runs every binary's `version`: natively for the host's
// architecture, under qemu-user-static for ARM (called explicitly: binfmt_misc
// is often not registered in containers). The ARMv6 build runs on an emulated
// ARM1176 (Raspberry Pi 1/Zero) and the ARMv7 build must not: that is why the
// two builds exist.
func TestCrossBinariesRun(t *testing.T) {
	builds := crossBuildsOf(t)
	b := builds[0]
	stamp := fmt.Sprintf("edge-agent %s (commit %s, built %s)", b.Version, b.Commit, b.BuildDate)

	type runCase struct {
		target, emulator, cpu, goarch string
	}
	cases := []runCase{
		{"linux_arm64", "qemu-aarch64-static", "", "linux/arm64"},
		{"linux_armv7", "qemu-arm-static", "cortex-a7", "linux/arm"},
		{"linux_armv6", "qemu-arm-static", "arm1176", "linux/arm"},
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		cases = append(cases, runCase{"linux_amd64", "", "", "linux/amd64"})
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			name, args := b.Names[c.target], []string{"version"}
			if c.emulator != "" {
				args = append([]string{name}, args...)
				if c.cpu != "" {
					args = append([]string{"-cpu", c.cpu}, args...)
				}
				name = needTool(t, c.emulator, "qemu-user-static")
			}
			out := run(t, "", nil, name, args...)
			if !strings.Contains(out, stamp) {
				t.Errorf("version output %q lacks the stamps %q", out, stamp)
			}
			if !regexp.MustCompile(`\s` + regexp.QuoteMeta(c.goarch) + `\s*$`).MatchString(out) {
				t.Errorf("version output %q does not end with %s", out, c.goarch)
			}
			t.Logf("%s: %s", c.target, strings.TrimSpace(out))
		})
	}

	t.Run("armv7 refuses an ARMv6 CPU", func(t *testing.T) {
		emu := needTool(t, "qemu-arm-static", "qemu-user-static")
		out, err := runErr(t, "", nil, emu, "-cpu", "arm1176", b.Names["linux_armv7"], "version")
		if err == nil {
			t.Errorf("the GOARM=7 binary ran on an ARM1176 (%q): then the armv6 build is not needed, or is not what it claims", out)
		}
	})
}
