package systemd

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// debArch maps each package architecture to the cross build it carries.
var debArch = map[string]struct{ goarch, goarm string }{
	"amd64": {"amd64", ""},
	"arm64": {"arm64", ""},
	"armhf": {"arm", "6"}, // ARMv6+: see the Makefile's DEB_ARCHES
}

type debBuild struct {
	Dist string
	Debs map[string]string // arch -> .deb path
	err  error
}

var (
	debOnce sync.Once
	debOut  debBuild
)

// debsOf runs `make deb` once, in the working tree (the packaging under test
// is the one being edited), into a scratch directory.
func debsOf(t *testing.T) debBuild {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP in -short: builds edge-agent for 4 targets and 3 packages")
	}
	needTool(t, "dpkg-deb", "dpkg")
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("SKIP: make not found")
	}
	debOnce.Do(func() {
		debOut = debBuild{Dist: filepath.Join(scratch, "deb"), Debs: map[string]string{}}
		out, err := runErr(t, repoRoot(t), makeEnv(), "make", "--no-print-directory", "deb", "DIST="+debOut.Dist)
		if err != nil {
			debOut.err = fmt.Errorf("make deb: %v\n%s", err, out)
			return
		}
		for arch := range debArch {
			m, _ := filepath.Glob(filepath.Join(debOut.Dist, "edge-agent_*_"+arch+".deb"))
			if len(m) != 1 {
				debOut.err = fmt.Errorf("make deb: want one .deb for %s, found %v\n%s", arch, m, out)
				return
			}
			debOut.Debs[arch] = m[0]
		}
	})
	if debOut.err != nil {
		t.Fatal(debOut.err)
	}
	return debOut
}

// debEntry is one line of `dpkg-deb -c`.
type debEntry struct {
	Mode, Owner, Time string
	Size              int64
}

var debListRE = regexp.MustCompile(`^(\S+)\s+(\S+)\s+(\d+)\s+(\S+ \S+)\s+\./(.*)$`)

func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	out := run(t, "", append(os.Environ(), "TZ=UTC"), "dpkg-deb", "-c", deb)
	entries := map[string]debEntry{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		m := debListRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected dpkg-deb -c line %q", line)
		}
		size, _ := strconv.ParseInt(m[3], 10, 64)
		entries[strings.TrimSuffix(m[5], "/")] = debEntry{Mode: m[1], Owner: m[2], Size: size, Time: m[4]}
	}
	return entries
}

var snapshotVersionRE = regexp.MustCompile(`^0~git(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})\d{2}\+`)

// TestDebPackages inspects each package: the file list with modes and
// owners, one timestamp for everything, control fields, conffiles, and the
// maintainer scripts, and the binary's architecture.
func TestDebPackages(t *testing.T) {
	d := debsOf(t)
	root := repoRoot(t)
	wantFiles := map[string]string{
		"":                                      "drwxr-xr-x",
		"etc":                                   "drwxr-xr-x",
		"etc/edge-agent":                        "drwxr-xr-x",
		"etc/edge-agent/edge-agent.env":         "-rw-r-----",
		"lib":                                   "drwxr-xr-x",
		"lib/systemd":                           "drwxr-xr-x",
		"lib/systemd/system":                    "drwxr-xr-x",
		"lib/systemd/system/edge-agent.service": "-rw-r--r--",
		"usr":                                   "drwxr-xr-x",
		"usr/bin":                               "drwxr-xr-x",
		"usr/bin/edge-agent":                    "-rwxr-xr-x",
		"usr/share":                             "drwxr-xr-x",
		"usr/share/doc":                         "drwxr-xr-x",
		"usr/share/doc/edge-agent":              "drwxr-xr-x",
		"usr/share/doc/edge-agent/README.install.md": "-rw-r--r--",
	}
	for arch, deb := range d.Debs {
		t.Run(arch, func(t *testing.T) {
			entries := debContents(t, deb)
			var names []string
			for n := range entries {
				names = append(names, n)
			}
			slices.Sort(names)
			wantNames := slices.Sorted(func(yield func(string) bool) {
				for n := range wantFiles {
					if !yield(n) {
						return
					}
				}
			})
			if !slices.Equal(names, wantNames) {
				t.Errorf("files %v, want %v", names, wantNames)
			}
			times := map[string]bool{}
			for n, e := range entries {
				if want, ok := wantFiles[n]; ok && e.Mode != want {
					t.Errorf("%s: mode %s, want %s", n, e.Mode, want)
				}
				if e.Owner != "root/root" {
					t.Errorf("%s: owner %s, want root/root (postinst sets the env file's group)", n, e.Owner)
				}
				times[e.Time] = true
			}
			if len(times) != 1 {
				t.Errorf("mtimes %v: want every file at the commit date (SOURCE_DATE_EPOCH)", times)
			}

			field := func(name string) string {
				return strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", deb, name))
			}
			version := field("Version")
			if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(version) {
				t.Errorf("Version %q is not a valid native Debian version", version)
			}
			if m := snapshotVersionRE.FindStringSubmatch(version); m != nil {
				// The snapshot version carries the commit date: the files must have it too.
				want := fmt.Sprintf("%s-%s-%s %s:%s", m[1], m[2], m[3], m[4], m[5])
				if !times[want] {
					t.Errorf("files dated %v, the version says the commit is of %s", times, want)
				}
			}
			for name, want := range map[string]string{
				"Package": "edge-agent", "Architecture": arch, "Section": "net",
				"Priority": "optional", "Depends": "passwd, procps",
			} {
				if got := field(name); got != want {
					t.Errorf("control %s: %q, want %q", name, got, want)
				}
			}
			for _, name := range []string{"Maintainer", "Installed-Size", "Description"} {
				if field(name) == "" {
					t.Errorf("control %s missing", name)
				}
			}
			if size, err := strconv.Atoi(field("Installed-Size")); err != nil || int64(size) < entries["usr/bin/edge-agent"].Size/1024 {
				t.Errorf("Installed-Size %q is less than the binary (%d bytes)", field("Installed-Size"), entries["usr/bin/edge-agent"].Size)
			}

			// Control archive: conffiles and the maintainer scripts, as in packaging/debian.
			ctl := t.TempDir()
			run(t, "", nil, "dpkg-deb", "-e", deb, ctl)
			if got, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(got) != "/etc/edge-agent/edge-agent.env\n" {
				t.Errorf("conffiles = %q", got)
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				got, err := os.ReadFile(filepath.Join(ctl, s))
				if err != nil {
					t.Errorf("%s missing: %v", s, err)
					continue
				}
				want, _ := os.ReadFile(filepath.Join(root, "packaging", "debian", s))
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from packaging/debian/%s", s, s)
				}
				if st, _ := os.Stat(filepath.Join(ctl, s)); st.Mode().Perm() != 0o755 {
					t.Errorf("%s mode %v, want 0755", s, st.Mode().Perm())
				}
			}
			md5s, _ := os.ReadFile(filepath.Join(ctl, "md5sums"))
			for _, f := range []string{"usr/bin/edge-agent", "lib/systemd/system/edge-agent.service"} {
				if !bytes.Contains(md5s, []byte("  "+f+"\n")) {
					t.Errorf("md5sums lacks %s:\n%s", f, md5s)
				}
			}

			// Payload: the unit and env file are the repository's; the binary
			// is the right build for the architecture.
			fs := t.TempDir()
			run(t, "", nil, "dpkg-deb", "-x", deb, fs)
			for pkgPath, src := range map[string]string{
				"lib/systemd/system/edge-agent.service":      "systemd/edge-agent.service",
				"etc/edge-agent/edge-agent.env":              "systemd/edge-agent.env.example",
				"usr/share/doc/edge-agent/README.install.md": "docs/readme-install.md",
			} {
				got, _ := os.ReadFile(filepath.Join(fs, pkgPath))
				want, _ := os.ReadFile(filepath.Join(root, src))
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s", pkgPath, src)
				}
			}
			info := run(t, "", nil, "go", "version", "-m", filepath.Join(fs, "usr/bin/edge-agent"))
			want := debArch[arch]
			if !strings.Contains(info, "GOARCH="+want.goarch+"\n") {
				t.Errorf("binary is not GOARCH=%s:\n%s", want.goarch, info)
			}
			if want.goarm != "" && !strings.Contains(info, "GOARM="+want.goarm+"\n") {
				t.Errorf("binary is not GOARM=%s:\n%s", want.goarm, info)
			}
		})
	}
}

// TestDebReproducible builds one package twice from the same inputs.
func TestDebReproducible(t *testing.T) {
	d := debsOf(t)
	root := repoRoot(t)
	fs := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-x", d.Debs["amd64"], fs)
	var sums [2][32]byte
	for i := range sums {
		out := filepath.Join(t.TempDir(), strconv.Itoa(i))
		deb := strings.TrimSpace(run(t, root, nil, filepath.Join(root, "packaging", "build-deb"),
			"--arch", "amd64", "--binary", filepath.Join(fs, "usr/bin/edge-agent"),
			"--version", "v1.2.3-4-gabcdef", "--date", "2026-12-04T15:37:00Z", "--out", out))
		if filepath.Base(deb) != "edge-agent_1.2.3+4+gabcdef_amd64.deb" {
			t.Errorf("release version mapped to %s, want edge-agent_1.2.3+4+gabcdef_amd64.deb", filepath.Base(deb))
		}
		data, err := os.ReadFile(deb)
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(data)
	}
	if sums[0] != sums[1] {
		t.Errorf("two builds of the same package differ: %x vs %x", sums[0], sums[1])
	}
}

// TestBuildDebRejectsBadInput: a wrong call says what is wrong and builds nothing.
func TestBuildDebRejectsBadInput(t *testing.T) {
	needTool(t, "dpkg-deb", "dpkg")
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "edge-agent")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "packaging", "build-deb")
	good := map[string]string{"--arch": "amd64", "--binary": bin, "--version": "v1.0.0", "--date": "2026-12-04T15:37:00Z"}
	tests := []struct {
		name, key, value, want string
	}{
		{"unknown arch", "--arch", "mips", "unsupported architecture"},
		{"missing binary", "--binary", filepath.Join(t.TempDir(), "none"), "missing or not executable"},
		{"bad date", "--date", "unknown", "cannot parse --date"},
		{"bad version", "--version", "v1.0_beta", "valid Debian version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := []string{"--out", out}
			for k, v := range good {
				if k == tt.key {
					v = tt.value
				}
				args = append(args, k, v)
			}
			msg, err := runErr(t, root, nil, script, args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("want exit 2, got %v: %s", err, msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q lacks %q", msg, tt.want)
			}
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Errorf("a failed build left %v", left)
			}
		})
	}
}

// scratchRoot is an empty system for `dpkg --root`: a dpkg database and the
// account files the maintainer scripts edit.
func scratchRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// dpkgIn runs dpkg on a scratch root. --force-script-chrootless runs the
// maintainer scripts on this machine with DPKG_ROOT set (they must honour
// it); --force-depends because the scratch root has no passwd package.
func dpkgIn(t *testing.T, r string, args ...string) string {
	t.Helper()
	base := []string{"--root=" + r, "--force-not-root", "--force-script-chrootless", "--force-depends",
		"--force-architecture", "--log=/dev/null"}
	return run(t, "", append(os.Environ(), "DEBIAN_FRONTEND=noninteractive"), "dpkg", append(base, args...)...)
}

func hostFileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(data)
}

func accountLine(t *testing.T, file, name string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Split(line, ":"); f[0] == name {
			return f
		}
	}
	return nil
}

func checkMode(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != uid || int(sys.Gid) != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", path, sys.Uid, sys.Gid, uid, gid)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

const enabledLink = "etc/systemd/system/multi-user.target.wants/edge-agent.service"

// TestDebInstallRemovePurge installs the package into a scratch root with
// dpkg, checks the layout the maintainer scripts leave, then removes and
// purges it.
func TestDebInstallRemovePurge(t *testing.T) {
	d := debsOf(t)
	needTool(t, "dpkg", "dpkg")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the scratch-root install sets file owners (chown): run as root")
	}
	passwdBefore, groupBefore := hostFileHash(t, "/etc/passwd"), hostFileHash(t, "/etc/group")
	r := scratchRoot(t)
	out := dpkgIn(t, r, "-i", d.Debs["amd64"])
	if !strings.Contains(out, "installed, not started") {
		t.Errorf("an unconfigured install must say it did not start the service:\n%s", out)
	}

	// The scripts worked on the scratch root, never on this machine.
	if hostFileHash(t, "/etc/passwd") != passwdBefore || hostFileHash(t, "/etc/group") != groupBefore {
		t.Fatal("the maintainer scripts changed this machine's /etc/passwd or /etc/group: DPKG_ROOT not honoured")
	}

	user := accountLine(t, filepath.Join(r, "etc/passwd"), "edge-agent")
	group := accountLine(t, filepath.Join(r, "etc/group"), "edge-agent")
	if user == nil || group == nil {
		t.Fatalf("no edge-agent user/group in the scratch root:\n%s", out)
	}
	uid, _ := strconv.Atoi(user[2])
	gid, _ := strconv.Atoi(group[2])
	if uid == 0 || uid >= 1000 || user[3] != group[2] {
		t.Errorf("edge-agent user %v: want a system uid (1-999) in group edge-agent (%s)", user, group[2])
	}
	if user[5] != "/var/lib/edge-agent" || user[6] != "/usr/sbin/nologin" {
		t.Errorf("edge-agent user %v: want home /var/lib/edge-agent and shell /usr/sbin/nologin", user)
	}

	checkMode(t, filepath.Join(r, "usr/bin/edge-agent"), 0o755, 0, 0)
	checkMode(t, filepath.Join(r, "lib/systemd/system/edge-agent.service"), 0o644, 0, 0)
	checkMode(t, filepath.Join(r, "etc/edge-agent/edge-agent.env"), 0o640, 0, gid)
	checkMode(t, filepath.Join(r, "etc/edge-agent/credentials"), 0o700, 0, 0)
	for _, c := range []string{"http-token", "mqtt-password", "m2m-token", "m2m-api-key"} {
		p := filepath.Join(r, "etc/edge-agent/credentials", c)
		checkMode(t, p, 0o600, 0, 0)
		if st, err := os.Stat(p); err == nil && st.Size() != 0 {
			t.Errorf("%s: a new credential file must be empty", p)
		}
	}
	if exists(filepath.Join(r, enabledLink)) {
		t.Error("an unconfigured service was enabled")
	}
	if st := run(t, "", nil, "dpkg-query", "--admindir="+filepath.Join(r, "var/lib/dpkg"), "-W", "-f=${Status}", "edge-agent"); st != "install ok installed" {
		t.Errorf("dpkg status %q", st)
	}

	// The operator's work: a secret and some state. Reinstalling (an upgrade)
	// keeps the secret and resets nothing.
	secret := filepath.Join(r, "etc/edge-agent/credentials/m2m-token")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(r, "var/lib/edge-agent"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r, "var/lib/edge-agent/edge-agent.db"), []byte("store"), 0o640); err != nil {
		t.Fatal(err)
	}
	dpkgIn(t, r, "-i", d.Debs["amd64"])
	if got, _ := os.ReadFile(secret); string(got) != "s3cret\n" {
		t.Errorf("reinstall changed a credential: %q", got)
	}
	checkMode(t, secret, 0o600, 0, 0) // and made it root-only again

	// Remove: program gone, configuration, secrets, store and user kept.
	dpkgIn(t, r, "-r", "edge-agent")
	for _, gone := range []string{"usr/bin/edge-agent", "lib/systemd/system/edge-agent.service"} {
		if exists(filepath.Join(r, gone)) {
			t.Errorf("remove left %s", gone)
		}
	}
	for _, kept := range []string{"etc/edge-agent/edge-agent.env", "etc/edge-agent/credentials/m2m-token", "var/lib/edge-agent/edge-agent.db"} {
		if !exists(filepath.Join(r, kept)) {
			t.Errorf("remove deleted %s (only purge may)", kept)
		}
	}

	// Purge: configuration, secrets and store gone; the user stays.
	dpkgIn(t, r, "-P", "edge-agent")
	for _, gone := range []string{"etc/edge-agent", "var/lib/edge-agent"} {
		if exists(filepath.Join(r, gone)) {
			t.Errorf("purge left %s", gone)
		}
	}
	if accountLine(t, filepath.Join(r, "etc/passwd"), "edge-agent") == nil {
		t.Error("purge removed the edge-agent user (Debian keeps system users)")
	}
}

// TestDebStartsOnlyWhenConfigured: on a first install, postinst enables the
// service only when the env file gives both required variables a value. The
// env file is put in place before installing, as a provisioning tool does.
// Without a running systemd (the scratch root) enabling is the symlink
// `systemctl --root` makes.
func TestDebStartsOnlyWhenConfigured(t *testing.T) {
	d := debsOf(t)
	needTool(t, "dpkg", "dpkg")
	needTool(t, "systemctl", "systemd")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the scratch-root install sets file owners (chown): run as root")
	}
	const url, id = "EDGE_M2M_BASE_URL=https://m2m.example/api\n", "EDGE_M2M_INSTANCE_ID=42\n"
	tests := []struct {
		name, env string
		enabled   bool
	}{
		{"both set", url + id, true},
		{"quoted values", "EDGE_M2M_BASE_URL=\"https://m2m.example/api\"\nEDGE_M2M_INSTANCE_ID='42'\n", true},
		{"spaces around =", "EDGE_M2M_BASE_URL = https://m2m.example/api\n EDGE_M2M_INSTANCE_ID=42 \n", true},
		{"instance id missing", url, false},
		{"instance id empty", url + "EDGE_M2M_INSTANCE_ID=\n", false},
		{"instance id empty quotes", url + "EDGE_M2M_INSTANCE_ID=\"\"\n", false},
		{"commented out", "#" + url + "#" + id, false},
		{"last assignment empty", url + id + "EDGE_M2M_BASE_URL=\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scratchRoot(t)
			if err := os.MkdirAll(filepath.Join(r, "etc/edge-agent"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(r, "etc/edge-agent/edge-agent.env"), []byte(tt.env), 0o600); err != nil {
				t.Fatal(err)
			}
			out := dpkgIn(t, r, "--force-confold", "-i", d.Debs["amd64"])
			if got := exists(filepath.Join(r, enabledLink)); got != tt.enabled {
				t.Errorf("enabled=%v, want %v\n%s", got, tt.enabled, out)
			}
			if got, _ := os.ReadFile(filepath.Join(r, "etc/edge-agent/edge-agent.env")); string(got) != tt.env {
				t.Errorf("the install replaced the operator's env file")
			}
			if tt.enabled {
				// Purge removes the enablement too.
				dpkgIn(t, r, "-P", "edge-agent")
				if exists(filepath.Join(r, enabledLink)) {
					t.Error("purge left the service enabled")
				}
			}
		})
	}
}

// envFileVars reads an EnvironmentFile the way systemd does for the simple
// lines our example has: KEY=VALUE, comments skipped, one level of quotes
// removed.
func envFileVars(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", path, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env = append(env, strings.TrimSpace(k)+"="+v)
	}
	return env
}

// TestDebConfigEndToEnd runs the packaged binary's `edge-agent config` the
// way the unit runs it: the installed env file (required variables filled
// in), $CREDENTIALS_DIRECTORY holding the credential files postinst created
// (empty: "not set") and one the operator filled, and the state and runtime
// directories systemd would pass. The package, the example file and the
// configuration code must agree on all of it.
func TestDebConfigEndToEnd(t *testing.T) {
	d := debsOf(t)
	needTool(t, "dpkg", "dpkg")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the scratch-root install sets file owners (chown): run as root")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("SKIP: runs the amd64 package's binary; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	r := scratchRoot(t)
	dpkgIn(t, r, "-i", d.Debs["amd64"])

	envPath := filepath.Join(r, "etc/edge-agent/edge-agent.env")
	example, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	filled := strings.Replace(string(example), "\nEDGE_M2M_BASE_URL=\n", "\nEDGE_M2M_BASE_URL=https://m2m.example/api\n", 1)
	filled = strings.Replace(filled, "\nEDGE_M2M_INSTANCE_ID=\n", "\nEDGE_M2M_INSTANCE_ID=42\n", 1)
	if filled == string(example) {
		t.Fatal("the installed env file has no empty EDGE_M2M_BASE_URL= / EDGE_M2M_INSTANCE_ID= lines to fill in")
	}
	if err := os.WriteFile(envPath, []byte(filled), 0o640); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(r, "etc/edge-agent/credentials")
	if err := os.WriteFile(filepath.Join(creds, "m2m-token"), []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state, runtimeDir := t.TempDir(), t.TempDir()
	env := append(envFileVars(t, envPath),
		"PATH=/usr/bin:/bin",
		"CREDENTIALS_DIRECTORY="+creds,
		"STATE_DIRECTORY="+state,
		"RUNTIME_DIRECTORY="+runtimeDir,
	)
	out, err := runErr(t, "", env, filepath.Join(r, "usr/bin/edge-agent"), "config")
	if err != nil {
		t.Fatalf("edge-agent config with the packaged files: %v\n%s", err, out)
	}
	for _, want := range []string{
		"EDGE_M2M_BASE_URL=https://m2m.example/api",
		"EDGE_M2M_INSTANCE_ID=42",
		"EDGE_DATA_DIR=" + state,
		"EDGE_CONTROL_SOCKET=" + filepath.Join(runtimeDir, "control.sock"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tok-123") {
		t.Errorf("config printed a secret:\n%s", out)
	}
	tokenLine := regexp.MustCompile(`(?m)^EDGE_M2M_TOKEN=(.*)$`).FindStringSubmatch(out)
	if tokenLine == nil || !strings.Contains(tokenLine[1], "redacted") {
		t.Errorf("EDGE_M2M_TOKEN from the credential should show as redacted, got %q:\n%s", tokenLine, out)
	}
}
