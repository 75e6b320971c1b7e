package systemd

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitName = "edge-agent.service"

// maxExposure is the bar for `systemd-analyze security`.
const maxExposure = 2.0

var exposureRE = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitName) + `:\s*([0-9]+(?:\.[0-9]+)?)`)

func TestUnitSecurityScore(t *testing.T) {
	sa := needTool(t, "systemd-analyze", "systemd")
	unit := filepath.Join(repoRoot(t), "systemd", unitName)
	// --offline=yes scores the file itself; no running systemd is needed.
	out, err := runErr(t, "", nil, sa, "security", "--offline=yes", "--no-pager", unit)
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze output (err %v):\n%s", err, out)
	}
	score, perr := strconv.ParseFloat(m[1], 64)
	if perr != nil {
		t.Fatal(perr)
	}
	t.Logf("systemd-analyze security --offline=yes %s: exposure %.1f", unitName, score)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f; the open items:\n%s", score, maxExposure, openItems(out))
	}
	// A line systemd could not parse is ignored by the scorer (and by
	// systemd): the score would then be for a different unit than we think.
	if strings.Contains(out, "ignoring") || strings.Contains(out, "Unknown key") {
		t.Errorf("systemd-analyze ignored part of the unit:\n%s", out)
	}
}

func openItems(out string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "✗") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestUnitVerify runs systemd's own parser over the unit. The only message
// allowed is that /usr/bin/edge-agent is not installed on this machine (the
// test runs from the source tree); an unknown key, a bad value or an
// ignored line fails.
func TestUnitVerify(t *testing.T) {
	sa := needTool(t, "systemd-analyze", "systemd")
	unit := filepath.Join(repoRoot(t), "systemd", unitName)
	out, err := runErr(t, "", nil, sa, "verify", "--man=no", unit)
	allowed := regexp.MustCompile(`^` + regexp.QuoteMeta(unitName) + `: Command /usr/bin/edge-agent is not executable: No such file or directory$`)
	var problems []string
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if line == "" || allowed.MatchString(line) {
			continue
		}
		problems = append(problems, line)
	}
	if len(problems) > 0 {
		t.Errorf("systemd-analyze verify (err %v):\n%s", err, strings.Join(problems, "\n"))
	}
	if err != nil && len(problems) == 0 && !allowed.MatchString(strings.TrimSpace(out)) {
		t.Errorf("systemd-analyze verify failed without saying why: %v", err)
	}
}

// TestUnitKeys checks what the issue and DESIGN ask of the unit, key by key,
// so that a well-meant edit cannot drop one silently.
func TestUnitKeys(t *testing.T) {
	u := parseUnit(t, filepath.Join(repoRoot(t), "systemd", unitName))

	exact := []struct{ section, key, want string }{
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "ExecStart", "/usr/bin/edge-agent run"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "Restart", "on-failure"},
		{"Service", "RestartPreventExitStatus", "2"},
		{"Service", "User", "edge-agent"},
		{"Service", "Group", "edge-agent"},
		{"Service", "UMask", "0027"},
		{"Service", "StateDirectory", "edge-agent"},
		{"Service", "StateDirectoryMode", "0750"},
		{"Service", "RuntimeDirectory", "edge-agent"},
		{"Service", "RuntimeDirectoryMode", "0750"},
		{"Service", "EnvironmentFile", "-/etc/edge-agent/edge-agent.env"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "PrivateDevices", "yes"},
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
		{"Service", "SystemCallErrorNumber", "EPERM"},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, c := range exact {
		got, ok := u.last(c.section, c.key)
		if !ok {
			t.Errorf("[%s] %s= missing (want %q)", c.section, c.key, c.want)
		} else if got != c.want {
			t.Errorf("[%s] %s=%s, want %q", c.section, c.key, got, c.want)
		}
	}

	durations := []struct {
		key      string
		min, max time.Duration
	}{
		// Pinged at half of it; long enough for a slow flash fsync storm.
		{"WatchdogSec", 10 * time.Second, 2 * time.Minute},
		{"RestartSec", time.Second, time.Minute},
		// The agent stops within 10 s (issue 7): give it that, and not much more.
		{"TimeoutStopSec", 10 * time.Second, 30 * time.Second},
		{"TimeoutStartSec", 30 * time.Second, 10 * time.Minute},
	}
	for _, d := range durations {
		v, ok := u.last("Service", d.key)
		if !ok {
			t.Errorf("%s= missing", d.key)
			continue
		}
		got, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("%s=%s: use a Go-parsable duration like 30s: %v", d.key, v, err)
			continue
		}
		if got < d.min || got > d.max {
			t.Errorf("%s=%s, want between %s and %s", d.key, v, d.min, d.max)
		}
	}

	// The secrets: one LoadCredential per credential name the configuration
	// code reads, from /etc/edge-agent/credentials/<name>.
	wantCreds := []string{"http-token", "m2m-api-key", "m2m-token", "mqtt-password"}
	if vars, ok := configVars(t); ok {
		var fromConfig []string
		for _, v := range vars {
			if v.Cred != "" {
				fromConfig = append(fromConfig, v.Cred)
			}
		}
		slices.Sort(fromConfig)
		if !slices.Equal(fromConfig, wantCreds) {
			t.Errorf("cmd/edge-agent/config.go reads credentials %v, the unit and this test know %v", fromConfig, wantCreds)
		}
	}
	var gotCreds []string
	for _, lc := range u["Service"]["LoadCredential"] {
		name, path, ok := strings.Cut(lc, ":")
		if !ok {
			t.Errorf("LoadCredential=%s: want NAME:PATH", lc)
			continue
		}
		if want := "/etc/edge-agent/credentials/" + name; path != want {
			t.Errorf("LoadCredential=%s: path %s, want %s", lc, path, want)
		}
		gotCreds = append(gotCreds, name)
	}
	slices.Sort(gotCreds)
	if !slices.Equal(gotCreds, wantCreds) {
		t.Errorf("LoadCredential names %v, want %v", gotCreds, wantCreds)
	}

	// The syscall filter: an allow list, then denials, and adjtimex added back
	// last (the kernel's clock-synchronised flag); ProtectClock= would deny it.
	filters := u["Service"]["SystemCallFilter"]
	if len(filters) == 0 || filters[0] != "@system-service" {
		t.Errorf("SystemCallFilter must start with the @system-service allow list, got %q", filters)
	}
	if len(filters) == 0 || filters[len(filters)-1] != "adjtimex" {
		t.Errorf("SystemCallFilter=adjtimex must come last (after any ~ deny list, which would remove it), got %q", filters)
	}
	if v, ok := u.last("Service", "ProtectClock"); ok && v != "no" {
		t.Errorf("ProtectClock=%s denies adjtimex, which EDGE_REQUIRE_CLOCK_SYNC needs", v)
	}
}
