package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// contractVariables is CONTRACT §2, copied by hand: a renamed or forgotten
// tag in Config fails TestKnownVariablesMatchContract.
var contractVariables = []string{
	"EDGE_GATEWAY_ID", "EDGE_DATA_DIR", "EDGE_CONTROL_SOCKET", "EDGE_HTTP_ADDR", "EDGE_HTTP_TOKEN",
	"EDGE_LOG_LEVEL", "EDGE_LOG_FORMAT",
	"EDGE_MQTT_BROKER", "EDGE_MQTT_CLIENT_ID", "EDGE_MQTT_USERNAME", "EDGE_MQTT_PASSWORD",
	"EDGE_MQTT_CA_FILE", "EDGE_MQTT_CERT_FILE", "EDGE_MQTT_KEY_FILE", "EDGE_MQTT_TOPIC_PREFIX", "EDGE_MQTT_MAX_PAYLOAD",
	"EDGE_M2M_BASE_URL", "EDGE_M2M_INSTANCE_ID", "EDGE_M2M_TOKEN", "EDGE_M2M_API_KEY", "EDGE_M2M_API_KEY_HEADER",
	"EDGE_M2M_HEADERS", "EDGE_M2M_CA_FILE", "EDGE_M2M_TIMEOUT", "EDGE_M2M_CONCURRENCY", "EDGE_M2M_RATE",
	"EDGE_M2M_RETRY_MIN", "EDGE_M2M_RETRY_MAX", "EDGE_M2M_TICKETS_PATH", "EDGE_M2M_DEVICES_PATH", "EDGE_M2M_DEVICE_PATH",
	"EDGE_M2M_ATTRIBUTES_METHOD", "EDGE_ATTRIBUTES_INTERVAL",
	"EDGE_TICKET_ORIGIN", "EDGE_TICKET_ORIGIN_TYPE_ID", "EDGE_TICKET_SERVICE_CODE", "EDGE_TICKET_WORKSITE_ID",
	"EDGE_TICKET_REPORTER", "EDGE_TICKET_STATE", "EDGE_TICKET_MUNICIPALITY", "EDGE_PROTOCOL_BASE", "EDGE_CANCEL_ON_CLEAR",
	"EDGE_DEVICES_FILE", "EDGE_LATITUDE", "EDGE_LONGITUDE", "EDGE_REPORT_INTERVAL", "EDGE_COMM_LOSS_AFTER",
	"EDGE_CONFIRM_COUNT", "EDGE_NOMINAL_VOLTAGE", "EDGE_VOLTAGE_TOLERANCE", "EDGE_LAMP_MIN_POWER",
	"EDGE_MIN_POWER_FACTOR", "EDGE_CYCLING_SWITCHES", "EDGE_CYCLING_WINDOW", "EDGE_DAY_LUX",
	"EDGE_REQUIRE_CLOCK_SYNC", "EDGE_STORE_MAX_MB", "EDGE_TICKET_RETENTION",
}

var secretVariables = []string{"EDGE_HTTP_TOKEN", "EDGE_MQTT_PASSWORD", "EDGE_M2M_TOKEN", "EDGE_M2M_API_KEY"}

func TestKnownVariablesMatchContract(t *testing.T) {
	t.Parallel()
	want := slices.Clone(contractVariables)
	for _, s := range secretVariables {
		i := slices.Index(want, s)
		want = slices.Insert(want, i+1, s+"_FILE")
	}
	if got := knownVariables(); !slices.Equal(got, want) {
		t.Errorf("known variables differ from the contract:\n got %v\nwant %v", got, want)
	}
}

// setEnv returns env with each "K=V" of kvs replacing K's entry, or added.
// "K" alone (no "=") removes K.
func setEnv(env []string, kvs ...string) []string {
	out := slices.Clone(env)
	for _, kv := range kvs {
		k, _, hasValue := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		if hasValue {
			out = append(out, kv)
		}
	}
	return out
}

// validEnv is the smallest valid environment, with everything that would
// touch the host (data dir, socket) inside dir.
func validEnv(dir string) []string {
	return []string{
		"EDGE_M2M_BASE_URL=https://m2m.example/staging",
		"EDGE_M2M_INSTANCE_ID=69",
		"EDGE_GATEWAY_ID=gw-test",
		"EDGE_DATA_DIR=" + filepath.Join(dir, "data"),
		"EDGE_CONTROL_SOCKET=" + filepath.Join(dir, "control.sock"),
		"PATH=/usr/bin:/bin",
		"HOME=/root",
	}
}

func mustLoad(t *testing.T, env []string) (*Config, []string) {
	t.Helper()
	cfg, warnings, err := loadConfig(env)
	if err != nil {
		t.Fatalf("loadConfig: unexpected error:\n%v", err)
	}
	return cfg, warnings
}

// problemsOf loads env, which must be invalid, and returns its problem lines.
func problemsOf(t *testing.T, env []string) []string {
	t.Helper()
	cfg, _, err := loadConfig(env)
	if err == nil {
		t.Fatalf("loadConfig accepted an invalid configuration: %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("loadConfig returned a config with an error")
	}
	var ce *configError
	if !errors.As(err, &ce) || !errors.Is(err, errInvalidConfig) || exitCodeFor(err) != 2 {
		t.Fatalf("error %T is not a configError with exit code 2: %v", err, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if !slices.Equal(lines, ce.Problems()) {
		t.Errorf("Error() lines differ from Problems()")
	}
	return lines
}

func varOf(line string) string {
	name, _, _ := strings.Cut(line, ":")
	return name
}

// testFiles makes PEM and registry files for the checks that read files.
type testFiles struct {
	dir, ca, cert, key, otherKey, notPEM, devices string
}

func makeTestFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	f := testFiles{
		dir:      dir,
		ca:       filepath.Join(dir, "ca.pem"),
		cert:     filepath.Join(dir, "client.pem"),
		key:      filepath.Join(dir, "client.key"),
		otherKey: filepath.Join(dir, "other.key"),
		notPEM:   filepath.Join(dir, "not.pem"),
		devices:  filepath.Join(dir, "devices.csv"),
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge-agent test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	writeKey := func(path string, k *ecdsa.PrivateKey) {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})))
	}
	writeFile(t, f.ca, string(certPEM))
	writeFile(t, f.cert, string(certPEM))
	writeKey(f.key, key)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeKey(f.otherKey, other)
	writeFile(t, f.notPEM, "this is not a certificate\n")
	writeFile(t, f.devices, "nameplate_num,address\nIP05,Rua A\n")
	return f
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name here: %v", err)
	}
	env := []string{"EDGE_M2M_BASE_URL=https://m2m.example", "EDGE_M2M_INSTANCE_ID=69"}
	// load, not loadConfig: the default data dir /var/lib/edge-agent may not
	// be creatable by the user running the tests; the values are what matter.
	l := load(env, osDeps())
	for _, p := range l.problems {
		if !strings.HasPrefix(p.text, "EDGE_DATA_DIR:") && !(strings.HasPrefix(p.text, "EDGE_GATEWAY_ID:") && !validGatewayID(host)) {
			t.Errorf("unexpected problem with defaults: %s", p.text)
		}
	}
	want := &Config{
		GatewayID: host, DataDir: "/var/lib/edge-agent", ControlSocket: "/run/edge-agent/control.sock",
		HTTPAddr: "127.0.0.1:8080", LogLevel: "info", LogFormat: "text",
		MQTTBroker: "tcp://127.0.0.1:1883", MQTTClientID: "edge-agent-" + host,
		MQTTTopicPrefix: "streetlights", MQTTMaxPayload: 16384,
		M2MBaseURL: "https://m2m.example", M2MInstanceID: "69", M2MAPIKeyHeader: "apikey",
		M2MTimeout: 15 * time.Second, M2MConcurrency: 4, M2MRate: 10,
		M2MRetryMin: time.Second, M2MRetryMax: 5 * time.Minute,
		M2MTicketsPath:      "/vendors/m2m/clients/{idInstance}/tickets",
		M2MDevicesPath:      "/vendors/m2m/clients/{idInstance}/devices",
		M2MDevicePath:       "/vendors/m2m/clients/{idInstance}/devices/{nameplate_num}",
		M2MAttributesMethod: "PATCH", AttributesInterval: 60 * time.Second,
		TicketOrigin: "tg", TicketOriginTypeID: 107, TicketServiceCode: "m2m", TicketWorksiteID: 1,
		TicketReporter: "edge-agent", ProtocolBase: 0, CancelOnClear: true,
		ReportInterval: 5 * time.Minute, CommLossAfter: 15 * time.Minute, ConfirmCount: 3,
		NominalVoltage: 220, VoltageTolerance: 0.10, LampMinPower: 5, MinPowerFactor: 0.85,
		CyclingSwitches: 6, CyclingWindow: time.Hour, DayLux: 50, RequireClockSync: false,
		StoreMaxMB: 256, TicketRetention: 720 * time.Hour,
	}
	if !reflect.DeepEqual(l.cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", l.cfg, want)
	}
	for _, v := range l.vars {
		setByTest := v.Name == "EDGE_M2M_BASE_URL" || v.Name == "EDGE_M2M_INSTANCE_ID"
		if v.Default == setByTest {
			t.Errorf("%s: Default = %v", v.Name, v.Default)
		}
	}
}

func TestDefaultsFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state1, state2 := filepath.Join(dir, "state1"), filepath.Join(dir, "state2")
	base := setEnv(validEnv(dir), "EDGE_DATA_DIR", "EDGE_CONTROL_SOCKET", "EDGE_GATEWAY_ID")
	fixedHost := sysDeps{hostname: func() (string, error) { return "lamp-gw.3", nil }}
	cases := []struct {
		name                             string
		env                              []string
		deps                             sysDeps
		dataDir, socket, gateway, client string
		problem                          string // a variable expected to have a problem
	}{
		{name: "systemd single entries", env: []string{"STATE_DIRECTORY=" + state1, "RUNTIME_DIRECTORY=/run/x"},
			dataDir: state1, socket: "/run/x/control.sock", gateway: "lamp-gw.3", client: "edge-agent-lamp-gw.3"},
		{name: "colon lists take the first", env: []string{"STATE_DIRECTORY=" + state1 + ":" + state2, "RUNTIME_DIRECTORY=/run/a:/run/b"},
			dataDir: state1, socket: "/run/a/control.sock", gateway: "lamp-gw.3", client: "edge-agent-lamp-gw.3"},
		{name: "explicit values win", env: []string{"STATE_DIRECTORY=" + state1, "RUNTIME_DIRECTORY=/run/x",
			"EDGE_DATA_DIR=" + state2, "EDGE_CONTROL_SOCKET=/tmp/s.sock", "EDGE_GATEWAY_ID=gw9"},
			dataDir: state2, socket: "/tmp/s.sock", gateway: "gw9", client: "edge-agent-gw9"},
		{name: "empty values count as unset", env: []string{"STATE_DIRECTORY=" + state1, "EDGE_DATA_DIR=", "EDGE_GATEWAY_ID=", "EDGE_MQTT_CLIENT_ID="},
			dataDir: state1, socket: "/run/edge-agent/control.sock", gateway: "lamp-gw.3", client: "edge-agent-lamp-gw.3"},
		{name: "explicit client id", env: []string{"STATE_DIRECTORY=" + state1, "EDGE_MQTT_CLIENT_ID=my-client"},
			dataDir: state1, socket: "/run/edge-agent/control.sock", gateway: "lamp-gw.3", client: "my-client"},
		{name: "host name unreadable", env: []string{"STATE_DIRECTORY=" + state1},
			deps:    sysDeps{hostname: func() (string, error) { return "", errors.New("uts gone") }},
			dataDir: state1, socket: "/run/edge-agent/control.sock", gateway: "", client: "edge-agent-", problem: "EDGE_GATEWAY_ID"},
		{name: "host name not a valid id", env: []string{"STATE_DIRECTORY=" + state1},
			deps:    sysDeps{hostname: func() (string, error) { return "bad host", nil }},
			dataDir: state1, socket: "/run/edge-agent/control.sock", gateway: "bad host", client: "edge-agent-bad host", problem: "EDGE_GATEWAY_ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			deps := tc.deps
			if deps.hostname == nil {
				deps = fixedHost
			}
			l := load(append(slices.Clone(base), tc.env...), deps)
			c := l.cfg
			if c.DataDir != tc.dataDir || c.ControlSocket != tc.socket || c.GatewayID != tc.gateway || c.MQTTClientID != tc.client {
				t.Errorf("got data %q socket %q gateway %q client %q", c.DataDir, c.ControlSocket, c.GatewayID, c.MQTTClientID)
			}
			var names []string
			for _, p := range l.problems {
				names = append(names, varOf(p.text))
			}
			if tc.problem == "" && len(names) > 0 {
				t.Errorf("unexpected problems: %v", l.problems)
			}
			if tc.problem != "" && !slices.Contains(names, tc.problem) {
				t.Errorf("want a problem on %s, got %v", tc.problem, l.problems)
			}
		})
	}
}

// everyVariable sets every variable of the contract to a value other than
// its default.
func everyVariable(f testFiles) []string {
	return []string{
		"EDGE_GATEWAY_ID=gw-07.north",
		"EDGE_DATA_DIR=" + filepath.Join(f.dir, "new", "data"),
		"EDGE_CONTROL_SOCKET=" + filepath.Join(f.dir, "ctl.sock"),
		"EDGE_HTTP_ADDR=0.0.0.0:9090",
		"EDGE_HTTP_TOKEN=http-token-0123456789",
		"EDGE_LOG_LEVEL=debug",
		"EDGE_LOG_FORMAT=json",
		"EDGE_MQTT_BROKER=mqtts://broker.example:8884",
		"EDGE_MQTT_CLIENT_ID=custom-client",
		"EDGE_MQTT_USERNAME=gw",
		"EDGE_MQTT_PASSWORD=mqtt-pw",
		"EDGE_MQTT_CA_FILE=" + f.ca,
		"EDGE_MQTT_CERT_FILE=" + f.cert,
		"EDGE_MQTT_KEY_FILE=" + f.key,
		"EDGE_MQTT_TOPIC_PREFIX=city/lights",
		"EDGE_MQTT_MAX_PAYLOAD=4096",
		"EDGE_M2M_BASE_URL=https://m2m.example/staging",
		"EDGE_M2M_INSTANCE_ID=69",
		"EDGE_M2M_TOKEN=m2m-token",
		"EDGE_M2M_API_KEY=m2m-key",
		"EDGE_M2M_API_KEY_HEADER=X-Api-Key",
		"EDGE_M2M_HEADERS=x-vendor-uuid:abc-def,X-Id-Instance:69",
		"EDGE_M2M_CA_FILE=" + f.ca,
		"EDGE_M2M_TIMEOUT=30s",
		"EDGE_M2M_CONCURRENCY=8",
		"EDGE_M2M_RATE=2.5",
		"EDGE_M2M_RETRY_MIN=2s",
		"EDGE_M2M_RETRY_MAX=10m",
		"EDGE_M2M_TICKETS_PATH=/api/{idInstance}/t",
		"EDGE_M2M_DEVICES_PATH=/api/{idInstance}/d",
		"EDGE_M2M_DEVICE_PATH=/api/{idInstance}/d/{nameplate_num}",
		"EDGE_M2M_ATTRIBUTES_METHOD=PUT",
		"EDGE_ATTRIBUTES_INTERVAL=0s",
		"EDGE_TICKET_ORIGIN=xx",
		"EDGE_TICKET_ORIGIN_TYPE_ID=108",
		"EDGE_TICKET_SERVICE_CODE=svc",
		"EDGE_TICKET_WORKSITE_ID=3",
		"EDGE_TICKET_REPORTER=Gateway 7",
		"EDGE_TICKET_STATE=MG",
		"EDGE_TICKET_MUNICIPALITY=Uberaba",
		"EDGE_PROTOCOL_BASE=1000000",
		"EDGE_CANCEL_ON_CLEAR=false",
		"EDGE_DEVICES_FILE=" + f.devices,
		"EDGE_LATITUDE=-19.7472",
		"EDGE_LONGITUDE=-47.9381",
		"EDGE_REPORT_INTERVAL=1m",
		"EDGE_COMM_LOSS_AFTER=10m",
		"EDGE_CONFIRM_COUNT=5",
		"EDGE_NOMINAL_VOLTAGE=127",
		"EDGE_VOLTAGE_TOLERANCE=0.15",
		"EDGE_LAMP_MIN_POWER=3.5",
		"EDGE_MIN_POWER_FACTOR=0.9",
		"EDGE_CYCLING_SWITCHES=4",
		"EDGE_CYCLING_WINDOW=30m",
		"EDGE_DAY_LUX=80",
		"EDGE_REQUIRE_CLOCK_SYNC=true",
		"EDGE_STORE_MAX_MB=64",
		"EDGE_TICKET_RETENTION=168h",
	}
}

func everyVariableConfig(f testFiles) *Config {
	return &Config{
		GatewayID: "gw-07.north", DataDir: filepath.Join(f.dir, "new", "data"), ControlSocket: filepath.Join(f.dir, "ctl.sock"),
		HTTPAddr: "0.0.0.0:9090", HTTPToken: NewSecret("http-token-0123456789"), LogLevel: "debug", LogFormat: "json",
		MQTTBroker: "mqtts://broker.example:8884", MQTTClientID: "custom-client", MQTTUsername: "gw",
		MQTTPassword: NewSecret("mqtt-pw"), MQTTCAFile: f.ca, MQTTCertFile: f.cert, MQTTKeyFile: f.key,
		MQTTTopicPrefix: "city/lights", MQTTMaxPayload: 4096,
		M2MBaseURL: "https://m2m.example/staging", M2MInstanceID: "69", M2MToken: NewSecret("m2m-token"),
		M2MAPIKey: NewSecret("m2m-key"), M2MAPIKeyHeader: "X-Api-Key",
		M2MHeaders: []Header{{"x-vendor-uuid", NewSecret("abc-def")}, {"X-Id-Instance", NewSecret("69")}},
		M2MCAFile:  f.ca, M2MTimeout: 30 * time.Second, M2MConcurrency: 8, M2MRate: 2.5,
		M2MRetryMin: 2 * time.Second, M2MRetryMax: 10 * time.Minute,
		M2MTicketsPath: "/api/{idInstance}/t", M2MDevicesPath: "/api/{idInstance}/d", M2MDevicePath: "/api/{idInstance}/d/{nameplate_num}",
		M2MAttributesMethod: "PUT", AttributesInterval: 0,
		TicketOrigin: "xx", TicketOriginTypeID: 108, TicketServiceCode: "svc", TicketWorksiteID: 3,
		TicketReporter: "Gateway 7", TicketState: "MG", TicketMunicipality: "Uberaba", ProtocolBase: 1000000, CancelOnClear: false,
		DevicesFile: f.devices, Latitude: -19.7472, Longitude: -47.9381, HasPosition: true,
		ReportInterval: time.Minute, CommLossAfter: 10 * time.Minute, ConfirmCount: 5,
		NominalVoltage: 127, VoltageTolerance: 0.15, LampMinPower: 3.5, MinPowerFactor: 0.9,
		CyclingSwitches: 4, CyclingWindow: 30 * time.Minute, DayLux: 80, RequireClockSync: true,
		StoreMaxMB: 64, TicketRetention: 168 * time.Hour,
	}
}

func TestEveryVariableParses(t *testing.T) {
	t.Parallel()
	f := makeTestFiles(t)
	env := everyVariable(f)
	var names []string
	for _, kv := range env {
		names = append(names, varOf(strings.Replace(kv, "=", ":", 1)))
	}
	if !slices.Equal(names, contractVariables) {
		t.Fatalf("the test must set every variable of the contract, in order:\n%v", names)
	}
	cfg, warnings := mustLoad(t, env)
	if want := everyVariableConfig(f); !reflect.DeepEqual(cfg, want) {
		t.Errorf("parsed:\n got %+v\nwant %+v", cfg, want)
	}
	if len(warnings) != 0 {
		t.Errorf("unexpected warnings: %q", warnings)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loadConfig created the data directory (or it is otherwise there): %v", err)
	}
}

// TestEnvconfigAgrees proves Config is a valid envconfig specification:
// envconfig.Process, reading the process environment, fills it exactly as
// loadConfig does from a slice — for explicit values and for the defaults.
// Not parallel: it sets the process environment.
func TestEnvconfigAgrees(t *testing.T) {
	f := makeTestFiles(t)
	for _, name := range knownVariables() {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	minimal := []string{"EDGE_M2M_BASE_URL=https://m2m.example", "EDGE_M2M_INSTANCE_ID=69",
		"EDGE_GATEWAY_ID=gw1", "EDGE_DATA_DIR=" + f.dir, "EDGE_CONTROL_SOCKET=/tmp/x.sock", "EDGE_MQTT_CLIENT_ID=c1"}
	for name, env := range map[string][]string{"every variable": everyVariable(f), "defaults": minimal} {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		var viaEnvconfig Config
		if err := envconfig.Process("", &viaEnvconfig); err != nil {
			t.Fatalf("%s: envconfig.Process: %v", name, err)
		}
		cfg, _ := mustLoad(t, env)
		viaEnvconfig.HasPosition = cfg.HasPosition // ignored by envconfig: derived
		if !reflect.DeepEqual(&viaEnvconfig, cfg) {
			t.Errorf("%s: envconfig and loadConfig differ:\nenvconfig %+v\nloadConfig %+v", name, viaEnvconfig, *cfg)
		}
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			os.Unsetenv(k)
		}
	}
}

func TestValidEdgeCases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name  string
		env   []string
		check func(*Config) bool
	}{
		{"http disabled needs no token", []string{"EDGE_HTTP_ADDR="}, func(c *Config) bool { return c.HTTPAddr == "" && !c.HTTPOnLoopback() }},
		{"localhost needs no token", []string{"EDGE_HTTP_ADDR=localhost:8080"}, (*Config).HTTPOnLoopback},
		{"ipv6 loopback", []string{"EDGE_HTTP_ADDR=[::1]:8080"}, (*Config).HTTPOnLoopback},
		{"127/8", []string{"EDGE_HTTP_ADDR=127.0.0.5:80"}, (*Config).HTTPOnLoopback},
		{"all interfaces with token", []string{"EDGE_HTTP_ADDR=:8080", "EDGE_HTTP_TOKEN=0123456789abcdef"}, func(c *Config) bool { return !c.HTTPOnLoopback() }},
		{"attributes disabled", []string{"EDGE_ATTRIBUTES_INTERVAL=0"}, func(c *Config) bool { return c.AttributesInterval == 0 }},
		{"position 0,0 is a position", []string{"EDGE_LATITUDE=0", "EDGE_LONGITUDE=0"}, func(c *Config) bool { return c.HasPosition }},
		{"empty coordinates are none", []string{"EDGE_LATITUDE=", "EDGE_LONGITUDE="}, func(c *Config) bool { return !c.HasPosition }},
		{"coordinate limits", []string{"EDGE_LATITUDE=-90", "EDGE_LONGITUDE=180"}, func(c *Config) bool { return c.Latitude == -90 && c.Longitude == 180 }},
		{"mqtt scheme, default port", []string{"EDGE_MQTT_BROKER=mqtt://broker"}, func(c *Config) bool { return c.MQTTBrokerURL() == "tcp://broker:1883" }},
		{"ws with a path", []string{"EDGE_MQTT_BROKER=ws://broker:8080/mqtt"}, func(c *Config) bool { return c.MQTTBrokerURL() == "ws://broker:8080/mqtt" }},
		{"base URL trailing slash removed", []string{"EDGE_M2M_BASE_URL=https://m2m.example/staging/"}, func(c *Config) bool { return c.M2MBaseURL == "https://m2m.example/staging" }},
		{"base URL with port", []string{"EDGE_M2M_BASE_URL=http://127.0.0.1:9999"}, func(c *Config) bool { return c.M2MBaseURL == "http://127.0.0.1:9999" }},
		{"case normalised", []string{"EDGE_LOG_LEVEL=DEBUG", "EDGE_LOG_FORMAT=JSON", "EDGE_M2M_ATTRIBUTES_METHOD=post", "EDGE_TICKET_STATE=sp"},
			func(c *Config) bool {
				return c.LogLevel == "debug" && c.LogFormat == "json" && c.M2MAttributesMethod == "POST" && c.TicketState == "SP"
			}},
		{"spaces around values", []string{"EDGE_M2M_CONCURRENCY= 8 ", "EDGE_M2M_TIMEOUT= 20s", "EDGE_CANCEL_ON_CLEAR= false"},
			func(c *Config) bool {
				return c.M2MConcurrency == 8 && c.M2MTimeout == 20*time.Second && !c.CancelOnClear
			}},
		{"headers with spaces and a stray comma", []string{"EDGE_M2M_HEADERS= X-A : one ,X-B:two:three,"}, func(c *Config) bool {
			return len(c.M2MHeaders) == 2 && c.M2MHeaders[0].Name == "X-A" && c.M2MHeaders[0].Value.Reveal() == "one" &&
				c.M2MHeaders[1].Name == "X-B" && c.M2MHeaders[1].Value.Reveal() == "two:three"
		}},
		{"limits of ranges", []string{"EDGE_M2M_CONCURRENCY=64", "EDGE_CONFIRM_COUNT=100", "EDGE_MIN_POWER_FACTOR=1",
			"EDGE_CYCLING_SWITCHES=2", "EDGE_LAMP_MIN_POWER=0", "EDGE_MQTT_MAX_PAYLOAD=1048576", "EDGE_STORE_MAX_MB=1",
			"EDGE_NOMINAL_VOLTAGE=50", "EDGE_M2M_RETRY_MIN=5m", "EDGE_M2M_RETRY_MAX=5m"},
			func(c *Config) bool {
				return c.M2MConcurrency == 64 && c.StoreMaxMB == 1 && c.M2MRetryMin == c.M2MRetryMax
			}},
		{"32-bit store limit", []string{"EDGE_STORE_MAX_MB=2047"}, func(c *Config) bool { return c.StoreMaxBytes() == 2047<<20 }},
		{"data dir exists", []string{"EDGE_DATA_DIR=" + dir}, func(c *Config) bool { return c.DataDir == dir }},
		{"relative data dir", []string{"EDGE_DATA_DIR=data"}, func(c *Config) bool { return c.DataDir == "data" }},
		{"bools", []string{"EDGE_CANCEL_ON_CLEAR=0", "EDGE_REQUIRE_CLOCK_SYNC=1"}, func(c *Config) bool { return !c.CancelOnClear && c.RequireClockSync }},
		{"durations in other units", []string{"EDGE_CYCLING_WINDOW=90m", "EDGE_TICKET_RETENTION=1h30m"},
			func(c *Config) bool { return c.CyclingWindow == 90*time.Minute && c.TicketRetention == 90*time.Minute }},
		{"protocol base at the limit", []string{"EDGE_PROTOCOL_BASE=9007199254740991"}, func(c *Config) bool { return c.ProtocolBase == 1<<53-1 }},
		{"multi-level topic prefix", []string{"EDGE_MQTT_TOPIC_PREFIX=br/mg/uberaba"}, func(c *Config) bool { return c.MQTTTopicPrefix == "br/mg/uberaba" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := mustLoad(t, setEnv(validEnv(dir), tc.env...))
			if !tc.check(cfg) {
				t.Errorf("unexpected config: %+v", cfg)
			}
		})
	}
}

func TestEveryProblemNamesItsVariable(t *testing.T) {
	t.Parallel()
	f := makeTestFiles(t)
	dir := t.TempDir()
	aFile := filepath.Join(dir, "a-file")
	writeFile(t, aFile, "x")
	type tc struct {
		env  []string
		want string // "EDGE_X: fragment"; the only variable with a problem
	}
	cases := []tc{
		{[]string{"EDGE_M2M_BASE_URL"}, "EDGE_M2M_BASE_URL: required"},
		{[]string{"EDGE_M2M_BASE_URL="}, "EDGE_M2M_BASE_URL: required"},
		{[]string{"EDGE_M2M_BASE_URL=ftp://x"}, `EDGE_M2M_BASE_URL: the scheme must be http or https (got "ftp://x")`},
		{[]string{"EDGE_M2M_BASE_URL=https://"}, "EDGE_M2M_BASE_URL: has no host"},
		{[]string{"EDGE_M2M_BASE_URL=m2m.example/staging"}, "EDGE_M2M_BASE_URL: the scheme must be"},
		{[]string{"EDGE_M2M_BASE_URL=https://x/a?b=1"}, "EDGE_M2M_BASE_URL: must not have a query"},
		{[]string{"EDGE_M2M_BASE_URL=https://x/a#f"}, "EDGE_M2M_BASE_URL: must not have a query or fragment"},
		{[]string{"EDGE_M2M_BASE_URL=https://x:99999"}, "EDGE_M2M_BASE_URL: the port must be"},
		{[]string{"EDGE_M2M_BASE_URL=https://u:pw@x"}, `EDGE_M2M_BASE_URL: no credentials in the URL: use EDGE_M2M_TOKEN or EDGE_M2M_API_KEY (got "https://u:xxxxx@x")`},
		{[]string{"EDGE_M2M_BASE_URL=::"}, "EDGE_M2M_BASE_URL: not a URL"},
		{[]string{"EDGE_M2M_INSTANCE_ID"}, "EDGE_M2M_INSTANCE_ID: required"},
		{[]string{"EDGE_M2M_INSTANCE_ID=  "}, "EDGE_M2M_INSTANCE_ID: required"},
		{[]string{"EDGE_M2M_INSTANCE_ID=6/9"}, "EDGE_M2M_INSTANCE_ID: must not contain"},
		{[]string{"EDGE_GATEWAY_ID=gw 1"}, `EDGE_GATEWAY_ID: must be 1 to 64 of A-Z a-z 0-9 . _ - (it goes into the MQTT client id and topics) (got "gw 1")`},
		{[]string{"EDGE_GATEWAY_ID=gw/1"}, "EDGE_GATEWAY_ID: must be 1 to 64"},
		{[]string{"EDGE_GATEWAY_ID=" + strings.Repeat("g", 65)}, "EDGE_GATEWAY_ID: must be 1 to 64"},
		{[]string{"EDGE_DATA_DIR=" + aFile}, "EDGE_DATA_DIR: exists and is not a directory"},
		{[]string{"EDGE_DATA_DIR=" + filepath.Join(aFile, "sub", "dir")}, "EDGE_DATA_DIR: cannot be created: " + aFile + " is not a directory"},
		{[]string{"EDGE_CONTROL_SOCKET=/" + strings.Repeat("s", 107)}, "EDGE_CONTROL_SOCKET: longer than 107 bytes"},
		{[]string{"EDGE_CONTROL_SOCKET=" + dir}, "EDGE_CONTROL_SOCKET: is a directory"},
		{[]string{"EDGE_HTTP_ADDR=8080"}, "EDGE_HTTP_ADDR: not host:port"},
		{[]string{"EDGE_HTTP_ADDR=127.0.0.1:0"}, "EDGE_HTTP_ADDR: the port must be a number from 1 to 65535"},
		{[]string{"EDGE_HTTP_ADDR=127.0.0.1:http"}, "EDGE_HTTP_ADDR: the port must be"},
		{[]string{"EDGE_HTTP_ADDR=:8080"}, `EDGE_HTTP_TOKEN: required because EDGE_HTTP_ADDR (":8080") listens on all interfaces`},
		{[]string{"EDGE_HTTP_ADDR=0.0.0.0:8080"}, "EDGE_HTTP_TOKEN: required because EDGE_HTTP_ADDR (\"0.0.0.0:8080\") listens on all interfaces"},
		{[]string{"EDGE_HTTP_ADDR=[::]:8080"}, "EDGE_HTTP_TOKEN: required because"},
		{[]string{"EDGE_HTTP_ADDR=192.168.1.5:8080"}, `EDGE_HTTP_TOKEN: required because EDGE_HTTP_ADDR ("192.168.1.5:8080") listens on host "192.168.1.5"`},
		{[]string{"EDGE_HTTP_ADDR=gateway.local:80"}, "EDGE_HTTP_TOKEN: required because"},
		{[]string{"EDGE_HTTP_TOKEN=abc\ndef0123456789012"}, "EDGE_HTTP_TOKEN: contains a line break"},
		{[]string{"EDGE_LOG_LEVEL=verbose"}, `EDGE_LOG_LEVEL: must be debug, info, warn or error (got "verbose")`},
		{[]string{"EDGE_LOG_FORMAT=xml"}, "EDGE_LOG_FORMAT: must be text or json"},
		{[]string{"EDGE_MQTT_BROKER=http://x"}, "EDGE_MQTT_BROKER: the scheme must be one of"},
		{[]string{"EDGE_MQTT_BROKER=localhost:1883"}, "EDGE_MQTT_BROKER: "},
		{[]string{"EDGE_MQTT_BROKER=broker"}, "EDGE_MQTT_BROKER: the scheme must be one of"},
		{[]string{"EDGE_MQTT_BROKER=tcp://"}, "EDGE_MQTT_BROKER: has no host"},
		{[]string{"EDGE_MQTT_BROKER=tcp://x:0"}, "EDGE_MQTT_BROKER: the port must be"},
		{[]string{"EDGE_MQTT_BROKER=tcp://x:65536"}, "EDGE_MQTT_BROKER: the port must be"},
		{[]string{"EDGE_MQTT_BROKER=tcp://user:pw@x"}, `EDGE_MQTT_BROKER: no credentials in the URL: use EDGE_MQTT_USERNAME and EDGE_MQTT_PASSWORD (got "tcp://user:xxxxx@x")`},
		{[]string{"EDGE_MQTT_BROKER=tcp://x/path"}, "EDGE_MQTT_BROKER: only ws:// and wss:// URLs may have a path"},
		{[]string{"EDGE_MQTT_BROKER=tcp://x?a=1"}, "EDGE_MQTT_BROKER: must not have a query"},
		{[]string{"EDGE_MQTT_CLIENT_ID=a b"}, "EDGE_MQTT_CLIENT_ID: must be non-empty UTF-8 without spaces"},
		{[]string{"EDGE_MQTT_PASSWORD=pw"}, "EDGE_MQTT_PASSWORD: set without EDGE_MQTT_USERNAME"},
		{[]string{"EDGE_MQTT_BROKER=ssl://x", "EDGE_MQTT_CA_FILE=" + filepath.Join(dir, "missing.pem")}, "EDGE_MQTT_CA_FILE: cannot read: no such file or directory"},
		{[]string{"EDGE_MQTT_BROKER=ssl://x", "EDGE_MQTT_CA_FILE=" + f.notPEM}, "EDGE_MQTT_CA_FILE: holds no PEM certificate"},
		{[]string{"EDGE_MQTT_BROKER=ssl://x", "EDGE_MQTT_CA_FILE=" + dir}, "EDGE_MQTT_CA_FILE: not a regular file"},
		{[]string{"EDGE_MQTT_BROKER=ssl://x", "EDGE_MQTT_CERT_FILE=" + f.cert}, "EDGE_MQTT_KEY_FILE: required with EDGE_MQTT_CERT_FILE"},
		{[]string{"EDGE_MQTT_BROKER=ssl://x", "EDGE_MQTT_KEY_FILE=" + f.key}, "EDGE_MQTT_CERT_FILE: required with EDGE_MQTT_KEY_FILE"},
		{[]string{"EDGE_MQTT_BROKER=ssl://x", "EDGE_MQTT_CERT_FILE=" + f.cert, "EDGE_MQTT_KEY_FILE=" + f.otherKey}, "EDGE_MQTT_CERT_FILE: does not load with EDGE_MQTT_KEY_FILE"},
		{[]string{"EDGE_MQTT_BROKER=ssl://x", "EDGE_MQTT_CERT_FILE=" + filepath.Join(dir, "nope"), "EDGE_MQTT_KEY_FILE=" + f.key}, "EDGE_MQTT_CERT_FILE: cannot read"},
		{[]string{"EDGE_MQTT_TOPIC_PREFIX="}, "EDGE_MQTT_TOPIC_PREFIX: must not be empty"},
		{[]string{"EDGE_MQTT_TOPIC_PREFIX=a/+"}, "EDGE_MQTT_TOPIC_PREFIX: must not contain the wildcards"},
		{[]string{"EDGE_MQTT_TOPIC_PREFIX=#"}, "EDGE_MQTT_TOPIC_PREFIX: must not contain the wildcards"},
		{[]string{"EDGE_MQTT_TOPIC_PREFIX=/a"}, "EDGE_MQTT_TOPIC_PREFIX: must not start or end with /"},
		{[]string{"EDGE_MQTT_TOPIC_PREFIX=a/"}, "EDGE_MQTT_TOPIC_PREFIX: must not start or end with /"},
		{[]string{"EDGE_MQTT_TOPIC_PREFIX=a//b"}, "EDGE_MQTT_TOPIC_PREFIX: must not start or end with / nor contain an empty level"},
		{[]string{"EDGE_MQTT_TOPIC_PREFIX=$SYS"}, "EDGE_MQTT_TOPIC_PREFIX: must not start with $"},
		{[]string{"EDGE_MQTT_MAX_PAYLOAD=255"}, `EDGE_MQTT_MAX_PAYLOAD: must be from 256 to 1048576 bytes (got "255")`},
		{[]string{"EDGE_MQTT_MAX_PAYLOAD=1048577"}, "EDGE_MQTT_MAX_PAYLOAD: must be from 256 to 1048576"},
		{[]string{"EDGE_MQTT_MAX_PAYLOAD=16k"}, `EDGE_MQTT_MAX_PAYLOAD: not a whole number (got "16k")`},
		{[]string{"EDGE_MQTT_MAX_PAYLOAD="}, `EDGE_MQTT_MAX_PAYLOAD: not a whole number (got "")`},
		{[]string{"EDGE_MQTT_MAX_PAYLOAD=99999999999999999999"}, "EDGE_MQTT_MAX_PAYLOAD: out of range"},
		{[]string{"EDGE_M2M_TOKEN=a\rb"}, "EDGE_M2M_TOKEN: contains a line break"},
		{[]string{"EDGE_M2M_API_KEY=a\x00b"}, "EDGE_M2M_API_KEY: contains a line break or another control character"},
		{[]string{"EDGE_M2M_API_KEY_HEADER=api key"}, `EDGE_M2M_API_KEY_HEADER: not a valid header name (letters, digits and !#$%&'*+-.^_` + "`" + `|~) (got "api key")`},
		{[]string{"EDGE_M2M_API_KEY_HEADER="}, "EDGE_M2M_API_KEY_HEADER: not a valid header name"},
		{[]string{"EDGE_M2M_API_KEY_HEADER=Authorization", "EDGE_M2M_API_KEY=k", "EDGE_M2M_TOKEN=t"}, "EDGE_M2M_API_KEY_HEADER: would overwrite the Authorization header"},
		{[]string{"EDGE_M2M_HEADERS=novalue"}, "EDGE_M2M_HEADERS: item 1 is not name:value"},
		{[]string{"EDGE_M2M_HEADERS=X-A:1,bad name:2"}, "EDGE_M2M_HEADERS: item 2 has an invalid header name"},
		{[]string{"EDGE_M2M_HEADERS=X-A:1,x-a:2"}, "EDGE_M2M_HEADERS: header x-a given twice"},
		{[]string{"EDGE_M2M_HEADERS=X-A:a\x01b"}, "EDGE_M2M_HEADERS: header X-A: the value contains a control character"},
		{[]string{"EDGE_M2M_HEADERS=Host:x"}, "EDGE_M2M_HEADERS: header Host is set by the client itself"},
		{[]string{"EDGE_M2M_HEADERS=content-length:5"}, "EDGE_M2M_HEADERS: header content-length is set by the client itself"},
		{[]string{"EDGE_M2M_HEADERS=Authorization:x", "EDGE_M2M_TOKEN=t"}, "EDGE_M2M_HEADERS: header Authorization conflicts with EDGE_M2M_TOKEN"},
		{[]string{"EDGE_M2M_HEADERS=APIKEY:x", "EDGE_M2M_API_KEY=k"}, "EDGE_M2M_HEADERS: header APIKEY conflicts with EDGE_M2M_API_KEY"},
		{[]string{"EDGE_M2M_CA_FILE=" + filepath.Join(dir, "missing.pem")}, "EDGE_M2M_CA_FILE: cannot read"},
		{[]string{"EDGE_M2M_CA_FILE=" + f.key}, "EDGE_M2M_CA_FILE: holds no PEM certificate"},
		{[]string{"EDGE_M2M_TIMEOUT=0"}, `EDGE_M2M_TIMEOUT: must be more than 0 (got "0s")`},
		{[]string{"EDGE_M2M_TIMEOUT=-1s"}, "EDGE_M2M_TIMEOUT: must be more than 0"},
		{[]string{"EDGE_M2M_TIMEOUT=15"}, `EDGE_M2M_TIMEOUT: not a duration: write it like 90s, 15m or 1h30m (got "15")`},
		{[]string{"EDGE_M2M_TIMEOUT="}, "EDGE_M2M_TIMEOUT: not a duration"},
		{[]string{"EDGE_M2M_CONCURRENCY=0"}, "EDGE_M2M_CONCURRENCY: must be from 1 to 64"},
		{[]string{"EDGE_M2M_CONCURRENCY=65"}, "EDGE_M2M_CONCURRENCY: must be from 1 to 64"},
		{[]string{"EDGE_M2M_CONCURRENCY=four"}, `EDGE_M2M_CONCURRENCY: not a whole number (got "four")`},
		{[]string{"EDGE_M2M_CONCURRENCY=0x10"}, "EDGE_M2M_CONCURRENCY: not a whole number"},
		{[]string{"EDGE_M2M_RATE=0"}, "EDGE_M2M_RATE: must be more than 0"},
		{[]string{"EDGE_M2M_RATE=-1"}, "EDGE_M2M_RATE: must be more than 0"},
		{[]string{"EDGE_M2M_RATE=fast"}, `EDGE_M2M_RATE: not a finite number (got "fast")`},
		{[]string{"EDGE_M2M_RATE=NaN"}, "EDGE_M2M_RATE: not a finite number"},
		{[]string{"EDGE_M2M_RATE=+Inf"}, "EDGE_M2M_RATE: not a finite number"},
		{[]string{"EDGE_M2M_RETRY_MIN=0s"}, "EDGE_M2M_RETRY_MIN: must be more than 0"},
		{[]string{"EDGE_M2M_RETRY_MAX=-5m"}, "EDGE_M2M_RETRY_MAX: must be more than 0"},
		{[]string{"EDGE_M2M_RETRY_MIN=10m", "EDGE_M2M_RETRY_MAX=1m"}, `EDGE_M2M_RETRY_MIN: must not exceed EDGE_M2M_RETRY_MAX (1m) (got "10m")`},
		{[]string{"EDGE_M2M_TICKETS_PATH=vendors/{idInstance}"}, "EDGE_M2M_TICKETS_PATH: must start with /"},
		{[]string{"EDGE_M2M_TICKETS_PATH=/tickets"}, "EDGE_M2M_TICKETS_PATH: must contain {idInstance}"},
		{[]string{"EDGE_M2M_TICKETS_PATH=/c/{idInstance}/{nameplate_num}"}, "EDGE_M2M_TICKETS_PATH: unknown placeholder: only {idInstance}"},
		{[]string{"EDGE_M2M_TICKETS_PATH=/c/{idInstance}/t?x=1"}, "EDGE_M2M_TICKETS_PATH: must not contain ?"},
		{[]string{"EDGE_M2M_DEVICES_PATH=/c/{idinstance}/d"}, "EDGE_M2M_DEVICES_PATH: must contain {idInstance}"},
		{[]string{"EDGE_M2M_DEVICES_PATH=/c/{idInstance}/d/{x}"}, "EDGE_M2M_DEVICES_PATH: unknown placeholder"},
		{[]string{"EDGE_M2M_DEVICE_PATH=/c/{idInstance}/d"}, "EDGE_M2M_DEVICE_PATH: must contain {nameplate_num}"},
		{[]string{"EDGE_M2M_DEVICE_PATH=/c/{idInstance}/d/{nameplate}/{nameplate_num}"}, "EDGE_M2M_DEVICE_PATH: unknown placeholder: only {idInstance} and {nameplate_num}"},
		{[]string{"EDGE_M2M_ATTRIBUTES_METHOD=GET"}, `EDGE_M2M_ATTRIBUTES_METHOD: must be PATCH, PUT or POST (got "GET")`},
		{[]string{"EDGE_ATTRIBUTES_INTERVAL=-1s"}, "EDGE_ATTRIBUTES_INTERVAL: must not be negative"},
		{[]string{"EDGE_ATTRIBUTES_INTERVAL=soon"}, "EDGE_ATTRIBUTES_INTERVAL: not a duration"},
		{[]string{"EDGE_TICKET_ORIGIN="}, "EDGE_TICKET_ORIGIN: must not be empty"},
		{[]string{"EDGE_TICKET_ORIGIN=  "}, "EDGE_TICKET_ORIGIN: must not be empty"},
		{[]string{"EDGE_TICKET_ORIGIN_TYPE_ID=-1"}, "EDGE_TICKET_ORIGIN_TYPE_ID: must not be negative"},
		{[]string{"EDGE_TICKET_ORIGIN_TYPE_ID=x"}, "EDGE_TICKET_ORIGIN_TYPE_ID: not a whole number"},
		{[]string{"EDGE_TICKET_SERVICE_CODE="}, "EDGE_TICKET_SERVICE_CODE: must not be empty"},
		{[]string{"EDGE_TICKET_WORKSITE_ID=-3"}, "EDGE_TICKET_WORKSITE_ID: must not be negative"},
		{[]string{"EDGE_TICKET_STATE=Minas"}, "EDGE_TICKET_STATE: must be a two-letter state abbreviation"},
		{[]string{"EDGE_TICKET_STATE=M1"}, "EDGE_TICKET_STATE: must be a two-letter"},
		{[]string{"EDGE_PROTOCOL_BASE=-1"}, "EDGE_PROTOCOL_BASE: must be from 0 to 9007199254740991"},
		{[]string{"EDGE_PROTOCOL_BASE=9007199254740992"}, "EDGE_PROTOCOL_BASE: must be from 0 to"},
		{[]string{"EDGE_PROTOCOL_BASE=1e6"}, "EDGE_PROTOCOL_BASE: not a whole number"},
		{[]string{"EDGE_CANCEL_ON_CLEAR=maybe"}, `EDGE_CANCEL_ON_CLEAR: not a boolean: use true or false (got "maybe")`},
		{[]string{"EDGE_DEVICES_FILE=" + filepath.Join(dir, "devices.csv")}, "EDGE_DEVICES_FILE: cannot read: no such file or directory"},
		{[]string{"EDGE_DEVICES_FILE=" + dir}, "EDGE_DEVICES_FILE: not a regular file"},
		{[]string{"EDGE_LATITUDE=91", "EDGE_LONGITUDE=0"}, "EDGE_LATITUDE: must be from -90 to 90"},
		{[]string{"EDGE_LATITUDE=-90.5", "EDGE_LONGITUDE=0"}, "EDGE_LATITUDE: must be from -90 to 90"},
		{[]string{"EDGE_LATITUDE=north", "EDGE_LONGITUDE=0"}, "EDGE_LATITUDE: not a finite number"},
		{[]string{"EDGE_LATITUDE=0", "EDGE_LONGITUDE=181"}, "EDGE_LONGITUDE: must be from -180 to 180"},
		{[]string{"EDGE_LATITUDE=0", "EDGE_LONGITUDE=-180.1"}, "EDGE_LONGITUDE: must be from -180 to 180"},
		{[]string{"EDGE_LATITUDE=-19.7"}, "EDGE_LONGITUDE: required with EDGE_LATITUDE"},
		{[]string{"EDGE_LONGITUDE=-47.9"}, "EDGE_LATITUDE: required with EDGE_LONGITUDE"},
		{[]string{"EDGE_REPORT_INTERVAL=0"}, "EDGE_REPORT_INTERVAL: must be more than 0"},
		{[]string{"EDGE_COMM_LOSS_AFTER=0"}, "EDGE_COMM_LOSS_AFTER: must be more than 0"},
		{[]string{"EDGE_CONFIRM_COUNT=0"}, "EDGE_CONFIRM_COUNT: must be from 1 to 100"},
		{[]string{"EDGE_CONFIRM_COUNT=101"}, "EDGE_CONFIRM_COUNT: must be from 1 to 100"},
		{[]string{"EDGE_NOMINAL_VOLTAGE=49"}, "EDGE_NOMINAL_VOLTAGE: must be from 50 to 1000"},
		{[]string{"EDGE_NOMINAL_VOLTAGE=1000.5"}, "EDGE_NOMINAL_VOLTAGE: must be from 50 to 1000"},
		{[]string{"EDGE_VOLTAGE_TOLERANCE=0"}, "EDGE_VOLTAGE_TOLERANCE: must be more than 0 and less than 1 (0.10 = ±10 %)"},
		{[]string{"EDGE_VOLTAGE_TOLERANCE=1"}, "EDGE_VOLTAGE_TOLERANCE: must be more than 0 and less than 1"},
		{[]string{"EDGE_LAMP_MIN_POWER=-1"}, "EDGE_LAMP_MIN_POWER: must not be negative"},
		{[]string{"EDGE_MIN_POWER_FACTOR=0"}, "EDGE_MIN_POWER_FACTOR: must be more than 0 and at most 1"},
		{[]string{"EDGE_MIN_POWER_FACTOR=1.01"}, "EDGE_MIN_POWER_FACTOR: must be more than 0 and at most 1"},
		{[]string{"EDGE_CYCLING_SWITCHES=1"}, "EDGE_CYCLING_SWITCHES: must be at least 2"},
		{[]string{"EDGE_CYCLING_WINDOW=0"}, "EDGE_CYCLING_WINDOW: must be more than 0"},
		{[]string{"EDGE_DAY_LUX=0"}, "EDGE_DAY_LUX: must be more than 0"},
		{[]string{"EDGE_REQUIRE_CLOCK_SYNC=sometimes"}, "EDGE_REQUIRE_CLOCK_SYNC: not a boolean"},
		{[]string{"EDGE_STORE_MAX_MB=0"}, "EDGE_STORE_MAX_MB: must be from 1 to"},
		{[]string{"EDGE_STORE_MAX_MB=1048577"}, "EDGE_STORE_MAX_MB: must be from 1 to"},
		{[]string{"EDGE_TICKET_RETENTION=0"}, "EDGE_TICKET_RETENTION: must be more than 0"},
		{[]string{"EDGE_TICKET_RETENTION=30d"}, "EDGE_TICKET_RETENTION: not a duration"},
	}
	if strconv.IntSize == 32 {
		cases = append(cases, tc{[]string{"EDGE_STORE_MAX_MB=2048"}, "EDGE_STORE_MAX_MB: must be from 1 to 2047 on this 32-bit system"})
	}
	if os.Geteuid() != 0 {
		locked := filepath.Join(dir, "locked")
		if err := os.Mkdir(locked, 0o500); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc{[]string{"EDGE_DATA_DIR=" + filepath.Join(locked, "data")}, "EDGE_DATA_DIR: does not exist and cannot be created: " + locked + " is not writable"})
	}
	for _, c := range cases {
		t.Run(strings.Join(c.env, " "), func(t *testing.T) {
			t.Parallel()
			lines := problemsOf(t, setEnv(validEnv(dir), c.env...))
			name := varOf(c.want)
			found := false
			for _, line := range lines {
				if varOf(line) != name {
					t.Errorf("a problem on another variable than %s: %s", name, line)
				}
				if strings.HasPrefix(line, c.want) || strings.Contains(line, c.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("want a problem %q, got:\n%s", c.want, strings.Join(lines, "\n"))
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	env := []string{
		"EDGE_STORE_MAX_MB=0",
		"EDGE_M2M_RATE=fast",
		"EDGE_LOG_LEVEL=loud",
		"EDGE_MQTT_BROKER=http://x",
		"EDGE_HTTP_ADDR=0.0.0.0:80",
		"EDGE_CONFIRM_COUNT=1000",
		"EDGE_M2M_TICKETS_PATH=/t",
		"EDGE_GATEWAY_ID=bad id",
	}
	lines := problemsOf(t, env) // also without the required two
	var got []string
	for _, l := range lines {
		got = append(got, varOf(l))
	}
	// In contract order, one line each.
	want := []string{"EDGE_GATEWAY_ID", "EDGE_HTTP_TOKEN", "EDGE_LOG_LEVEL", "EDGE_MQTT_BROKER",
		"EDGE_M2M_BASE_URL", "EDGE_M2M_INSTANCE_ID", "EDGE_M2M_RATE", "EDGE_M2M_TICKETS_PATH",
		"EDGE_CONFIRM_COUNT", "EDGE_STORE_MAX_MB"}
	// The data dir may be a problem too when /var/lib is not writable.
	got = slices.DeleteFunc(got, func(s string) bool { return s == "EDGE_DATA_DIR" })
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %v\nwant %v\n%s", got, want, strings.Join(lines, "\n"))
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	withNL := file("nl", "tok-nl\n")
	withTwoNL := file("nl2", "tok-nl2\n\n")
	withCRLF := file("crlf", "tok-crlf\r\n")
	plain := file("plain", "tok plain")
	pwTwoNL := file("pw2", "pw\n\n")
	empty := file("empty", "")
	onlyNL := file("onlynl", "\n")
	big := file("big", strings.Repeat("x", maxSecretFile+1))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := []struct {
		env  []string
		want string
	}{
		{[]string{"EDGE_M2M_TOKEN_FILE=" + withNL}, "tok-nl"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + withCRLF}, "tok-crlf"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + plain}, "tok plain"},
		{[]string{"EDGE_M2M_TOKEN_FILE= " + withNL + " "}, "tok-nl"},
		{[]string{"EDGE_M2M_TOKEN=direct", "EDGE_M2M_TOKEN_FILE="}, "direct"},
		{[]string{"EDGE_M2M_TOKEN=", "EDGE_M2M_TOKEN_FILE=" + withNL}, "tok-nl"},
	}
	for _, tc := range ok {
		cfg, _ := mustLoad(t, setEnv(validEnv(dir), tc.env...))
		if got := cfg.M2MToken.Reveal(); got != tc.want {
			t.Errorf("%v: token %q, want %q", tc.env, got, tc.want)
		}
	}
	// A password may hold any byte: of two newlines, one stays.
	cfg, _ := mustLoad(t, setEnv(validEnv(dir), "EDGE_MQTT_USERNAME=u", "EDGE_MQTT_PASSWORD_FILE="+pwTwoNL))
	if got := cfg.MQTTPassword.Reveal(); got != "pw\n" {
		t.Errorf("password %q, want \"pw\\n\"", got)
	}
	bad := []struct {
		env  []string
		want string
	}{
		{[]string{"EDGE_M2M_TOKEN=x", "EDGE_M2M_TOKEN_FILE=" + withNL}, "EDGE_M2M_TOKEN: set both directly and as EDGE_M2M_TOKEN_FILE; keep one"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + filepath.Join(dir, "missing")}, "EDGE_M2M_TOKEN_FILE: cannot read: no such file or directory (got \"" + filepath.Join(dir, "missing") + "\")"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + dir}, "EDGE_M2M_TOKEN_FILE: not a regular file"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + fifo}, "EDGE_M2M_TOKEN_FILE: not a regular file"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + empty}, "EDGE_M2M_TOKEN_FILE: the file is empty"},
		// Only one trailing newline is trimmed; the other stays, and a token
		// sent in a header cannot hold it.
		{[]string{"EDGE_M2M_TOKEN_FILE=" + withTwoNL}, "EDGE_M2M_TOKEN: contains a line break"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + onlyNL}, "EDGE_M2M_TOKEN_FILE: the file is empty"},
		{[]string{"EDGE_M2M_TOKEN_FILE=" + big}, "EDGE_M2M_TOKEN_FILE: larger than 64 KiB"},
		{[]string{"EDGE_HTTP_TOKEN=x", "EDGE_HTTP_TOKEN_FILE=" + withNL}, "EDGE_HTTP_TOKEN: set both"},
		{[]string{"EDGE_MQTT_USERNAME=u", "EDGE_MQTT_PASSWORD=x", "EDGE_MQTT_PASSWORD_FILE=" + withNL}, "EDGE_MQTT_PASSWORD: set both"},
		{[]string{"EDGE_M2M_API_KEY=x", "EDGE_M2M_API_KEY_FILE=" + withNL}, "EDGE_M2M_API_KEY: set both"},
		// A token that could not be read is one problem, not also "required".
		{[]string{"EDGE_HTTP_ADDR=:8080", "EDGE_HTTP_TOKEN_FILE=" + empty}, "EDGE_HTTP_TOKEN_FILE: the file is empty"},
	}
	if os.Geteuid() != 0 {
		unreadable := file("unreadable", "tok")
		if err := os.Chmod(unreadable, 0); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, struct {
			env  []string
			want string
		}{[]string{"EDGE_M2M_TOKEN_FILE=" + unreadable}, "EDGE_M2M_TOKEN_FILE: cannot read: permission denied"})
	}
	for _, tc := range bad {
		lines := problemsOf(t, setEnv(validEnv(dir), tc.env...))
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
			t.Errorf("%v: want exactly %q, got:\n%s", tc.env, tc.want, strings.Join(lines, "\n"))
		}
	}
}

func TestCredentialsDirectory(t *testing.T) {
	t.Parallel()
	creds := t.TempDir()
	for name, v := range map[string]string{
		"http-token": "cred-http-token-123456\n", "mqtt-password": "cred-mqtt", "m2m-token": "cred-m2m", "m2m-api-key": "cred-key\n",
	} {
		writeFile(t, filepath.Join(creds, name), v)
	}
	other := filepath.Join(t.TempDir(), "other")
	writeFile(t, other, "from-file")
	dir := t.TempDir()
	base := setEnv(validEnv(dir), "CREDENTIALS_DIRECTORY="+creds, "EDGE_MQTT_USERNAME=u")

	l := load(base, osDeps())
	if len(l.problems) > 0 {
		t.Fatalf("problems: %v", l.problems)
	}
	c := l.cfg
	if c.HTTPToken.Reveal() != "cred-http-token-123456" || c.MQTTPassword.Reveal() != "cred-mqtt" ||
		c.M2MToken.Reveal() != "cred-m2m" || c.M2MAPIKey.Reveal() != "cred-key" {
		t.Errorf("credentials not read: %q %q %q %q", c.HTTPToken.Reveal(), c.MQTTPassword.Reveal(), c.M2MToken.Reveal(), c.M2MAPIKey.Reveal())
	}
	for _, v := range l.vars {
		if slices.Contains(secretVariables, v.Name) && (v.Default || !strings.HasPrefix(v.From, "credential ")) {
			t.Errorf("%s: source %+v, want a credential", v.Name, v)
		}
	}

	// The variable and its _FILE variant win over the credential.
	cfg, _ := mustLoad(t, setEnv(base, "EDGE_M2M_TOKEN=env-token", "EDGE_M2M_API_KEY_FILE="+other))
	if cfg.M2MToken.Reveal() != "env-token" || cfg.M2MAPIKey.Reveal() != "from-file" {
		t.Errorf("precedence: token %q key %q", cfg.M2MToken.Reveal(), cfg.M2MAPIKey.Reveal())
	}

	// A missing credential is simply not set.
	emptyCreds := t.TempDir()
	cfg, _ = mustLoad(t, setEnv(validEnv(dir), "CREDENTIALS_DIRECTORY="+emptyCreds))
	if cfg.M2MToken.IsSet() || cfg.HTTPToken.IsSet() {
		t.Errorf("secrets set from an empty credentials directory")
	}

	// An empty credential file is not set either: the package installs all
	// four empty, because systemd will not start a unit whose
	// LoadCredential= file is missing.
	emptyFiles := t.TempDir()
	writeFile(t, filepath.Join(emptyFiles, "m2m-token"), "")
	cfg, _ = mustLoad(t, setEnv(validEnv(dir), "CREDENTIALS_DIRECTORY="+emptyFiles))
	if cfg.M2MToken.IsSet() {
		t.Errorf("secret set from an empty credential file")
	}

	// A credential holding only a newline is a problem naming the variable
	// and the credential: someone meant to put a secret there.
	badCreds := t.TempDir()
	writeFile(t, filepath.Join(badCreds, "m2m-token"), "\n")
	lines := problemsOf(t, setEnv(validEnv(dir), "CREDENTIALS_DIRECTORY="+badCreds))
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "EDGE_M2M_TOKEN: systemd credential m2m-token: ") {
		t.Errorf("blank credential: %q", lines)
	}
}

func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := makeTestFiles(t)
	secrets := map[string]string{
		"EDGE_HTTP_TOKEN": "HTTPSECRETaaaaaaaaaaaa", "EDGE_MQTT_PASSWORD": "MQTTSECRETbbbb",
		"EDGE_M2M_TOKEN": "M2MSECRETcccc", "EDGE_M2M_API_KEY": "APIKEYSECRETdddd",
	}
	fileSecret := filepath.Join(dir, "tok")
	writeFile(t, fileSecret, "FILESECRETeeee\n")
	creds := t.TempDir()
	writeFile(t, filepath.Join(creds, "m2m-api-key"), "CREDSECRETffff")
	all := []string{"HTTPSECRET", "MQTTSECRET", "M2MSECRET", "APIKEYSECRET", "FILESECRET", "CREDSECRET", "HEADERSECRET", "TYPOSECRET"}
	check := func(where, s string) {
		t.Helper()
		for _, v := range all {
			if strings.Contains(s, v) {
				t.Errorf("%s shows a secret (%s):\n%s", where, v, s)
			}
		}
	}

	env := setEnv(everyVariable(f), "CREDENTIALS_DIRECTORY="+creds,
		"EDGE_M2M_HEADERS=X-Key:HEADERSECRET1,X-Other:HEADERSECRET2",
		"EDGE_M2M_TOKN=TYPOSECRET") // a misspelt secret is still a secret
	for k, v := range secrets {
		env = setEnv(env, k+"="+v)
	}
	env = setEnv(env, "EDGE_M2M_API_KEY", "EDGE_M2M_TOKEN", "EDGE_M2M_TOKEN_FILE="+fileSecret)
	cfg, warnings := mustLoad(t, env)
	if cfg.M2MAPIKey.Reveal() != "CREDSECRETffff" || cfg.M2MToken.Reveal() != "FILESECRETeeee" {
		t.Fatalf("test set-up: secrets not loaded as planned")
	}
	check("warnings", strings.Join(warnings, "\n"))
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		check("Sprintf "+format, fmt.Sprintf(format, cfg))
		check("Sprintf "+format+" (value)", fmt.Sprintf(format, *cfg))
	}

	var out, errOut strings.Builder
	if code := cmdConfig(nil, env, &out, &errOut); code != 0 {
		t.Fatalf("config: exit %d: %s", code, errOut.String())
	}
	check("config output", out.String()+errOut.String())
	if !strings.Contains(out.String(), "EDGE_M2M_HEADERS=X-Key:[redacted],X-Other:[redacted]") ||
		!strings.Contains(out.String(), "EDGE_M2M_TOKEN=[redacted]  (from EDGE_M2M_TOKEN_FILE)") ||
		!strings.Contains(out.String(), "EDGE_M2M_API_KEY=[redacted]  (from credential m2m-api-key)") ||
		!strings.Contains(out.String(), "EDGE_HTTP_TOKEN=[redacted]\n") {
		t.Errorf("config output lacks the redacted lines:\n%s", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := cmdConfig([]string{"--json"}, env, &out, &errOut); code != 0 {
		t.Fatalf("config --json: exit %d: %s", code, errOut.String())
	}
	check("config --json output", out.String()+errOut.String())

	// Problems about secrets never quote them either.
	badEnv := setEnv(env,
		"EDGE_M2M_HEADERS=X-Key:HEADERSECRET1,HEADERSECRET2,Bad Name:HEADERSECRET3,X-C:HEADERSECRET4\x01",
		"EDGE_HTTP_TOKEN=HTTPSECRET\nline", "EDGE_MQTT_USERNAME=", "EDGE_M2M_API_KEY_FILE="+fileSecret)
	_, warnings, err := loadConfig(badEnv)
	if err == nil {
		t.Fatal("invalid secrets accepted")
	}
	check("error", err.Error())
	check("warnings", strings.Join(warnings, "\n"))
	for _, want := range []string{"EDGE_HTTP_TOKEN:", "EDGE_MQTT_PASSWORD:", "EDGE_M2M_HEADERS: item 2", "EDGE_M2M_HEADERS: item 3", "EDGE_M2M_HEADERS: header X-C"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%v", want, err)
		}
	}
	out.Reset()
	errOut.Reset()
	if code := cmdConfig(nil, badEnv, &out, &errOut); code != 2 {
		t.Errorf("config with bad secrets: exit %d", code)
	}
	check("config problems", out.String()+errOut.String())
}

func TestTypoWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		env  []string
		want []string
	}{
		{[]string{"EDGE_MQTT_BROKR=tcp://x:1883"}, []string{"EDGE_MQTT_BROKR: unknown variable, ignored (did you mean EDGE_MQTT_BROKER?)"}},
		{[]string{"EDGE_LOGLEVEL=debug"}, []string{"EDGE_LOGLEVEL: unknown variable, ignored (did you mean EDGE_LOG_LEVEL?)"}},
		{[]string{"edge_log_level=debug"}, []string{"edge_log_level: unknown variable, ignored (did you mean EDGE_LOG_LEVEL?)"}},
		{[]string{"EDGE_M2M_TOKEN_FIEL=/x"}, []string{"EDGE_M2M_TOKEN_FIEL: unknown variable, ignored (did you mean EDGE_M2M_TOKEN_FILE?)"}},
		{[]string{"EDGE_HTPP_ADDR=x"}, []string{"EDGE_HTPP_ADDR: unknown variable, ignored (did you mean EDGE_HTTP_ADDR?)"}},
		{[]string{"EDGE_SOMETHING_ELSE_ENTIRELY=1"}, []string{"EDGE_SOMETHING_ELSE_ENTIRELY: unknown variable, ignored"}},
		{[]string{"EDGE_Z=1", "EDGE_A=1"}, []string{"EDGE_A: unknown variable, ignored", "EDGE_Z: unknown variable, ignored"}},
		{[]string{"EDGE_HTTP_TOKEN_FILE=", "EDGE_MQTT_PASSWORD_FILE=", "DATA_DIR=/nowhere", "HTTP_ADDR=x", "EDGEWISE=1"}, nil},
	}
	for _, tc := range cases {
		_, warnings := mustLoad(t, append(validEnv(dir), tc.env...))
		if !slices.Equal(warnings, tc.want) {
			t.Errorf("%v: warnings\n got %q\nwant %q", tc.env, warnings, tc.want)
		}
	}

	// A stray unprefixed DATA_DIR is not read (envconfig's fallback).
	cfg, _ := mustLoad(t, append(validEnv(dir), "DATA_DIR=/nowhere", "HTTP_ADDR=0.0.0.0:1", "GATEWAY_ID=x"))
	if cfg.DataDir == "/nowhere" || cfg.HTTPAddr != "127.0.0.1:8080" || cfg.GatewayID != "gw-test" {
		t.Errorf("read an unprefixed variable: %+v", cfg)
	}

	// Repeated names: the first wins (as os.Getenv), with a warning.
	cfg, warnings := mustLoad(t, append(validEnv(dir), "EDGE_LOG_LEVEL=warn", "EDGE_LOG_LEVEL=error"))
	if cfg.LogLevel != "warn" || !slices.Equal(warnings, []string{"EDGE_LOG_LEVEL: set more than once; the first value is used"}) {
		t.Errorf("repeated: level %q warnings %q", cfg.LogLevel, warnings)
	}
}

func TestOtherWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := makeTestFiles(t)
	cases := []struct {
		env  []string
		want string
	}{
		{[]string{"EDGE_MQTT_CA_FILE=" + f.ca}, "EDGE_MQTT_CA_FILE: ignored: EDGE_MQTT_BROKER does not use TLS"},
		{[]string{"EDGE_COMM_LOSS_AFTER=5m"}, "EDGE_COMM_LOSS_AFTER: 5m is not longer than EDGE_REPORT_INTERVAL (5m)"},
		{[]string{"EDGE_HTTP_TOKEN=short"}, "EDGE_HTTP_TOKEN: shorter than 16 characters"},
		{[]string{"EDGE_M2M_BASE_URL=http://m2m.example", "EDGE_M2M_TOKEN=t"}, "EDGE_M2M_BASE_URL: plain http to a remote host"},
	}
	for _, tc := range cases {
		_, warnings := mustLoad(t, setEnv(validEnv(dir), tc.env...))
		if len(warnings) != 1 || !strings.HasPrefix(warnings[0], tc.want) {
			t.Errorf("%v: warnings %q, want %q", tc.env, warnings, tc.want)
		}
	}
	// No warning: TLS files with a TLS broker, plain http to loopback.
	for _, env := range [][]string{
		{"EDGE_MQTT_BROKER=wss://b/mqtt", "EDGE_MQTT_CA_FILE=" + f.ca},
		{"EDGE_M2M_BASE_URL=http://127.0.0.1:8080", "EDGE_M2M_TOKEN=t"},
	} {
		if _, warnings := mustLoad(t, setEnv(validEnv(dir), env...)); len(warnings) != 0 {
			t.Errorf("%v: unexpected warnings %q", env, warnings)
		}
	}
}

func TestMQTTBrokerURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"tcp://b:1883":      "tcp://b:1883",
		"tcp://b":           "tcp://b:1883",
		"mqtt://b":          "tcp://b:1883",
		"mqtt://b:1884":     "tcp://b:1884",
		"ssl://b":           "ssl://b:8883",
		"tls://b:9999":      "ssl://b:9999",
		"mqtts://b":         "ssl://b:8883",
		"ws://b/mqtt":       "ws://b:80/mqtt",
		"wss://b:8443/mqtt": "wss://b:8443/mqtt",
		"wss://b":           "wss://b:443",
		"mqtt://[::1]":      "tcp://[::1]:1883",
	} {
		c := &Config{MQTTBroker: in}
		if got := c.MQTTBrokerURL(); got != want {
			t.Errorf("MQTTBrokerURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHTTPOnLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]:8080": true, "localhost:80": true, "LOCALHOST:80": true,
		"": false, ":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.1:80": false,
		"gateway:80": false, "127.0.0.1": false,
	} {
		if got := (&Config{HTTPAddr: addr}).HTTPOnLoopback(); got != want {
			t.Errorf("HTTPOnLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestExitCodeFor(t *testing.T) {
	t.Parallel()
	cfgErr := &configError{problems: []string{"EDGE_X: bad"}}
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{cfgErr, 2},
		{fmt.Errorf("start: %w", cfgErr), 2},
		{errors.New("store locked"), 1},
	}
	for _, tc := range cases {
		if got := exitCodeFor(tc.err); got != tc.want {
			t.Errorf("exitCodeFor(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]string{
		0: "0s", time.Second: "1s", time.Minute: "1m", 90 * time.Second: "1m30s", time.Hour: "1h",
		720 * time.Hour: "720h", 90 * time.Minute: "1h30m", time.Hour + 30*time.Second: "1h0m30s", 1500 * time.Millisecond: "1.5s",
	} {
		got := fmtDuration(in)
		if got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", in, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != in {
			t.Errorf("fmtDuration(%v) = %q does not read back: %v %v", in, got, back, err)
		}
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "abc", 0}, {"abc", "ab", 1}, {"ab", "ba", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
	for lv, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR"} {
		if got := (&Config{LogLevel: lv}).SlogLevel().String(); got != want {
			t.Errorf("SlogLevel(%s) = %s", lv, got)
		}
	}
}

func TestConfigCommandText(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := setEnv(validEnv(dir), "EDGE_M2M_TOKEN=tok", "STATE_DIRECTORY="+dir, "EDGE_DATA_DIR", "EDGE_MQTT_BROKR=x",
		"EDGE_TICKET_REPORTER=Gateway 7")
	var out, errOut strings.Builder
	if code := cmdConfig(nil, env, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	if got := errOut.String(); got != "warning: EDGE_MQTT_BROKR: unknown variable, ignored (did you mean EDGE_MQTT_BROKER?)\n" {
		t.Errorf("stderr = %q", got)
	}
	// Every variable once, in contract order, under its group headings.
	var names []string
	groups := 0
	for line := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "# "):
			groups++
		default:
			name, _, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("not NAME=value: %q", line)
			}
			names = append(names, name)
		}
	}
	if !slices.Equal(names, contractVariables) {
		t.Errorf("printed variables differ from the contract:\n got %v\nwant %v", names, contractVariables)
	}
	if groups != 6 {
		t.Errorf("%d groups, want 6", groups)
	}
	for _, want := range []string{
		"# General\nEDGE_GATEWAY_ID=gw-test\n",
		"EDGE_DATA_DIR=" + dir + "  (default: $STATE_DIRECTORY)\n",
		"EDGE_HTTP_ADDR=127.0.0.1:8080  (default)\n",
		"EDGE_HTTP_TOKEN=  (default)\n",
		"EDGE_MQTT_CLIENT_ID=edge-agent-gw-test  (default: gateway id)\n",
		"\n# M2M API\nEDGE_M2M_BASE_URL=https://m2m.example/staging\n",
		"EDGE_M2M_TOKEN=[redacted]\n",
		"EDGE_M2M_TIMEOUT=15s  (default)\n",
		"EDGE_ATTRIBUTES_INTERVAL=1m  (default)\n",
		"EDGE_TICKET_REPORTER=\"Gateway 7\"\n",
		"EDGE_LATITUDE=  (default)\n",
		"EDGE_VOLTAGE_TOLERANCE=0.1  (default)\n",
		"# Store\nEDGE_STORE_MAX_MB=256  (default)\nEDGE_TICKET_RETENTION=720h  (default)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestConfigCommandJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := setEnv(validEnv(dir), "EDGE_M2M_API_KEY=key", "EDGE_LATITUDE=-19.5", "EDGE_LONGITUDE=-47.25")
	var out, errOut strings.Builder
	if code := cmdConfig([]string{"--json"}, env, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	var rep configReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if !rep.Valid || rep.Warnings == nil || len(rep.Warnings) != 0 || len(rep.Variables) != len(contractVariables) {
		t.Fatalf("report: valid %v warnings %v, %d variables", rep.Valid, rep.Warnings, len(rep.Variables))
	}
	byName := map[string]configVariable{}
	for i, v := range rep.Variables {
		if v.Name != contractVariables[i] {
			t.Errorf("variable %d is %s, want %s", i, v.Name, contractVariables[i])
		}
		byName[v.Name] = v
	}
	for _, want := range []configVariable{
		{Name: "EDGE_M2M_API_KEY", Value: "[redacted]", Group: "M2M API", Source: "environment"},
		{Name: "EDGE_LATITUDE", Value: "-19.5", Group: "Devices and fault detection", Source: "environment"},
		{Name: "EDGE_LOG_LEVEL", Value: "info", Group: "General", Default: true, Source: "default"},
		{Name: "EDGE_MQTT_CLIENT_ID", Value: "edge-agent-gw-test", Group: "MQTT", Default: true, Source: "gateway id"},
		{Name: "EDGE_M2M_TOKEN", Value: "", Group: "M2M API", Default: true, Source: "default"},
	} {
		if got := byName[want.Name]; got != want {
			t.Errorf("%s: got %+v, want %+v", want.Name, got, want)
		}
	}
}

func TestConfigCommandInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := setEnv(validEnv(dir), "EDGE_M2M_RATE=fast", "EDGE_LOG_LEVEL=loud", "EDGE_LOGLEVEL=x")
	for _, args := range [][]string{nil, {"--json"}} {
		var out, errOut strings.Builder
		if code := cmdConfig(args, env, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout not empty for an invalid configuration:\n%s", args, out.String())
		}
		want := "warning: EDGE_LOGLEVEL: unknown variable, ignored (did you mean EDGE_LOG_LEVEL?)\n" +
			"EDGE_LOG_LEVEL: must be debug, info, warn or error (got \"loud\")\n" +
			"EDGE_M2M_RATE: not a finite number (got \"fast\")\n"
		if errOut.String() != want {
			t.Errorf("%v: stderr\n%q\nwant\n%q", args, errOut.String(), want)
		}
	}
}

func TestConfigCommandUsage(t *testing.T) {
	t.Parallel()
	env := validEnv(t.TempDir())
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--json=maybe"}, 2, "invalid boolean value"},
		{[]string{"-h"}, 0, "usage: edge-agent config [--json]"},
	}
	for _, tc := range cases {
		var out, errOut strings.Builder
		if code := cmdConfig(tc.args, env, &out, &errOut); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
		}
		if !strings.Contains(errOut.String(), tc.stderr) || out.Len() != 0 {
			t.Errorf("%v: stdout %q stderr %q, want stderr with %q", tc.args, out.String(), errOut.String(), tc.stderr)
		}
	}
}

// TestConfigBinary runs the real binary: the subcommand is wired into main,
// reads the process environment and exits 2 naming the variable.
func TestConfigBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "edge-agent")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(env []string, args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run: %v", err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}
	code, out, errOut := run(setEnv(validEnv(dir), "EDGE_M2M_RATE=fast", "EDGE_M2M_TOKEN=BINARYSECRET"), "config")
	if code != 2 || out != "" || errOut != "EDGE_M2M_RATE: not a finite number (got \"fast\")\n" {
		t.Errorf("invalid: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = run(setEnv(validEnv(dir), "EDGE_M2M_TOKEN=BINARYSECRET"), "config")
	if code != 0 || !strings.Contains(out, "EDGE_M2M_TOKEN=[redacted]\n") || strings.Contains(out+errOut, "BINARYSECRET") {
		t.Errorf("valid: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// BenchmarkLoadConfig measures a load of a typical configuration (it runs
// once per start and once per CLI call).
func BenchmarkLoadConfig(b *testing.B) {
	dir := b.TempDir()
	env := setEnv(validEnv(dir), "EDGE_M2M_TOKEN=tok", "EDGE_LATITUDE=-19", "EDGE_LONGITUDE=-47")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := loadConfig(env); err != nil {
			b.Fatal(err)
		}
	}
}
