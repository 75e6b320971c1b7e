package systemd

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// contractVars is CONTRACT §2, in its order, with the *_FILE variants of the
// four secrets. The contract is fixed; the configuration code is checked
// against the example file too, when it exists (TestEnvExampleMatchesConfig).
var contractVars = []string{
	"EDGE_GATEWAY_ID", "EDGE_DATA_DIR", "EDGE_CONTROL_SOCKET", "EDGE_HTTP_ADDR",
	"EDGE_HTTP_TOKEN", "EDGE_HTTP_TOKEN_FILE", "EDGE_LOG_LEVEL", "EDGE_LOG_FORMAT",
	"EDGE_MQTT_BROKER", "EDGE_MQTT_CLIENT_ID", "EDGE_MQTT_USERNAME",
	"EDGE_MQTT_PASSWORD", "EDGE_MQTT_PASSWORD_FILE",
	"EDGE_MQTT_CA_FILE", "EDGE_MQTT_CERT_FILE", "EDGE_MQTT_KEY_FILE",
	"EDGE_MQTT_TOPIC_PREFIX", "EDGE_MQTT_MAX_PAYLOAD",
	"EDGE_M2M_BASE_URL", "EDGE_M2M_INSTANCE_ID", "EDGE_M2M_TOKEN", "EDGE_M2M_TOKEN_FILE",
	"EDGE_M2M_API_KEY", "EDGE_M2M_API_KEY_FILE", "EDGE_M2M_API_KEY_HEADER",
	"EDGE_M2M_HEADERS", "EDGE_M2M_CA_FILE", "EDGE_M2M_TIMEOUT", "EDGE_M2M_CONCURRENCY",
	"EDGE_M2M_RATE", "EDGE_M2M_RETRY_MIN", "EDGE_M2M_RETRY_MAX",
	"EDGE_M2M_TICKETS_PATH", "EDGE_M2M_DEVICES_PATH", "EDGE_M2M_DEVICE_PATH",
	"EDGE_M2M_ATTRIBUTES_METHOD", "EDGE_ATTRIBUTES_INTERVAL",
	"EDGE_TICKET_ORIGIN", "EDGE_TICKET_ORIGIN_TYPE_ID", "EDGE_TICKET_SERVICE_CODE",
	"EDGE_TICKET_WORKSITE_ID", "EDGE_TICKET_REPORTER", "EDGE_TICKET_STATE",
	"EDGE_TICKET_MUNICIPALITY", "EDGE_PROTOCOL_BASE", "EDGE_CANCEL_ON_CLEAR",
	"EDGE_DEVICES_FILE", "EDGE_LATITUDE", "EDGE_LONGITUDE", "EDGE_REPORT_INTERVAL",
	"EDGE_COMM_LOSS_AFTER", "EDGE_CONFIRM_COUNT", "EDGE_NOMINAL_VOLTAGE",
	"EDGE_VOLTAGE_TOLERANCE", "EDGE_LAMP_MIN_POWER", "EDGE_MIN_POWER_FACTOR",
	"EDGE_CYCLING_SWITCHES", "EDGE_CYCLING_WINDOW", "EDGE_DAY_LUX",
	"EDGE_REQUIRE_CLOCK_SYNC", "EDGE_STORE_MAX_MB", "EDGE_TICKET_RETENTION",
}

// contractRequired are the variables CONTRACT §2 marks required.
var contractRequired = []string{"EDGE_M2M_BASE_URL", "EDGE_M2M_INSTANCE_ID"}

// envSetting is one NAME=value line of the example file.
type envSetting struct {
	Name, Value string
	Commented   bool   // "#NAME=value": shows the default, not set
	Group       string // the "# ---- Group ----" header above it
	Comment     string // the prose comment lines just above it
	Line        int
}

var (
	settingRE = regexp.MustCompile(`^(#?)(EDGE_[A-Z0-9_]+)=(.*)$`)
	groupRE   = regexp.MustCompile(`^# ---- (.+) ----$`)
	// runtimeRE: the Go runtime's memory limit, documented in the example
	// (commented out only: the example sets no default) but not part of
	// the contract or the configuration code.
	runtimeRE = regexp.MustCompile(`^#GOMEMLIMIT=$`)
)

// parseEnvExample reads settings ("NAME=v" and "#NAME=v", no space after the
// #) apart from prose comments ("# text").
func parseEnvExample(t *testing.T) (settings []envSetting, groups []string) {
	t.Helper()
	path := filepath.Join(repoRoot(t), "systemd", "edge-agent.env.example")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	group := ""
	var prose []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line != strings.TrimRight(line, " \t") {
			t.Errorf("%s:%d: trailing space (systemd would keep it in a value)", path, n)
		}
		if m := groupRE.FindStringSubmatch(line); m != nil {
			group = m[1]
			groups = append(groups, group)
			prose = nil
			continue
		}
		if m := settingRE.FindStringSubmatch(line); m != nil {
			settings = append(settings, envSetting{
				Name: m[2], Value: m[3], Commented: m[1] == "#",
				Group: group, Comment: strings.Join(prose, " "), Line: n,
			})
			continue
		}
		switch {
		case runtimeRE.MatchString(line):
			prose = nil
		case line == "":
			prose = nil
		case strings.HasPrefix(line, "# ") || line == "#":
			prose = append(prose, strings.TrimPrefix(line, "#"))
		default:
			t.Errorf("%s:%d: neither a comment nor an EDGE_* setting: %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings, groups
}

func settingNames(settings []envSetting) []string {
	var names []string
	for _, s := range settings {
		names = append(names, s.Name)
	}
	return names
}

func TestEnvExampleListsTheContract(t *testing.T) {
	settings, _ := parseEnvExample(t)
	names := settingNames(settings)
	if !slices.Equal(names, contractVars) {
		missing, extra := diff(contractVars, names)
		t.Errorf("example variables differ from CONTRACT §2 (or are out of its order)\nmissing: %v\nextra:   %v\ngot order: %v",
			missing, extra, names)
	}
	for _, s := range settings {
		required := slices.Contains(contractRequired, s.Name)
		switch {
		case required && s.Commented:
			t.Errorf("line %d: %s is required: it must be an uncommented line to fill in", s.Line, s.Name)
		case required && s.Value != "":
			t.Errorf("line %d: %s=%s: a required variable has no default; leave it empty in the example", s.Line, s.Name, s.Value)
		case required && !strings.Contains(s.Comment, "REQUIRED"):
			t.Errorf("line %d: %s: the comment above must say REQUIRED", s.Line, s.Name)
		case !required && !s.Commented:
			t.Errorf("line %d: %s is set; the example sets only the required variables, the others show their default commented out", s.Line, s.Name)
		}
	}
}

// TestEnvExampleMatchesConfig compares the example with what the configuration
// code actually reads: the same names (with *_FILE for each secret), the same
// groups in the same order, and the same defaults.
func TestEnvExampleMatchesConfig(t *testing.T) {
	vars, ok := configVars(t)
	if !ok {
		t.Skip("SKIP: cmd/edge-agent/config.go has no Config struct yet; TestEnvExampleListsTheContract checks the contract's list")
	}
	settings, groups := parseEnvExample(t)
	byName := map[string]envSetting{}
	for _, s := range settings {
		if _, dup := byName[s.Name]; dup {
			t.Errorf("line %d: %s listed twice", s.Line, s.Name)
		}
		byName[s.Name] = s
	}

	var known, configGroups []string
	for _, v := range vars {
		known = append(known, v.Name)
		if v.Cred != "" {
			known = append(known, v.Name+"_FILE")
		}
		if len(configGroups) == 0 || configGroups[len(configGroups)-1] != v.Group {
			configGroups = append(configGroups, v.Group)
		}

		s, found := byName[v.Name]
		if !found {
			continue // reported by the name comparison below
		}
		if s.Group != v.Group {
			t.Errorf("%s is under %q in the example, %q in config.go", v.Name, s.Group, v.Group)
		}
		if v.Required != !s.Commented {
			t.Errorf("%s: required=%v in config.go, but the example line is commented=%v", v.Name, v.Required, s.Commented)
		}
		wantValue := ""
		if v.HasDef {
			wantValue = v.Default
		}
		if s.Value != wantValue {
			t.Errorf("line %d: %s shows %q, config.go's default is %q", s.Line, v.Name, s.Value, wantValue)
		}
		if v.Cred != "" {
			if !strings.Contains(s.Comment, `credential "`+v.Cred+`"`) {
				t.Errorf("line %d: %s is a secret: the comment must name its credential %q", s.Line, v.Name, v.Cred)
			}
			if f, ok := byName[v.Name+"_FILE"]; ok && (!f.Commented || f.Value != "") {
				t.Errorf("line %d: %s_FILE must be commented out and empty", f.Line, v.Name)
			}
		}
	}
	names := settingNames(settings)
	slices.Sort(known)
	sorted := slices.Sorted(slices.Values(names))
	if !slices.Equal(sorted, known) {
		missing, extra := diff(known, sorted)
		t.Errorf("example vs cmd/edge-agent/config.go\nmissing from the example: %v\nunknown to the config code: %v", missing, extra)
	}
	if !slices.Equal(groups, configGroups) {
		t.Errorf("example groups %q, config.go groups %q", groups, configGroups)
	}
}

// diff returns the names in want but not in got, and in got but not in want.
func diff(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}
