package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/m2m/m2mtest"
	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

// The status page in a real browser: the daemon's parts (store, detector,
// pipeline, syncer, MQTT subscriber) started by startDaemon as `edge-agent
// run` starts them, a private mosquitto, the M2M simulator, a fleet of
// controllers whose telemetry over the last day shows four different faults,
// and headless Debian chromium loading the page served by serveStatus.

const (
	gwLat, gwLon = -19.7472, -47.9381 // Uberaba, MG (UTC−3)
)

// browserRegistry is the fleet: addresses for the page, positions for the
// sun clock. LP-0009 is registered but never reports.
const browserRegistry = `nameplate_num,address,address_number,neighborhood,municipality,state_abbreviation,latitude,longitude,nominal_power
LP-0001,Rua Tristão de Castro,120,Centro,Uberaba,MG,-19.7469,-47.9378,100
LP-0002,Avenida Leopoldino de Oliveira,3050,Centro,Uberaba,MG,-19.7475,-47.9391,100
LP-0003,Praça Rui Barbosa,1,Centro,Uberaba,MG,-19.7481,-47.9365,150
LP-0004,Rua Major Eustáquio,455,Abadia,Uberaba,MG,-19.7502,-47.9412,100
LP-0005,Rua Artur Machado,210,Centro,Uberaba,MG,-19.7466,-47.9359,100
LP-0006,Avenida Santos Dumont,980,Santa Marta,Uberaba,MG,-19.7533,-47.9447,150
LP-0007,Rua Segismundo Mendes,77,Centro,Uberaba,MG,-19.7458,-47.9401,100
LP-0008,Avenida Guilherme Ferreira,1500,São Benedito,Uberaba,MG,-19.7399,-47.9325,150
LP-0009,Rua Vigário Silva,33,Centro,Uberaba,MG,-19.7488,-47.9355,100
`

// chromium returns the browser binary, or "" when none is installed.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// seriesEnd is the last report of the simulated day: a time of deep night
// in Uberaba (21:00–04:00 local, 00:00–07:00 UTC), at most 17 h ago, so
// that the page's 24-hour charts show most of the day.
func seriesEnd(now time.Time) time.Time {
	now = now.UTC().Add(-5 * time.Minute)
	if now.Hour() < 7 {
		return now.Truncate(time.Minute)
	}
	return time.Date(now.Year(), now.Month(), now.Day(), 6, 55, 0, 0, time.UTC)
}

type reading struct {
	TS          string   `json:"ts"`
	Voltage     float64  `json:"voltage"`
	Current     float64  `json:"current"`
	Power       float64  `json:"power"`
	PowerFactor float64  `json:"power_factor"`
	LampOn      bool     `json:"lamp_on"`
	Dim         float64  `json:"dim"`
	Alarms      []string `json:"alarms,omitempty"`
}

// fleetReading is what device n reports at t: lit at night with its own
// small variations, off by day, and its fault in the last readings.
func fleetReading(name string, n int, t time.Time, last int) reading {
	lit := agent.SunElevation(t, gwLat, gwLon) < 0
	min := float64(t.Unix()/60%60) / 60
	r := reading{TS: t.Format(time.RFC3339), Voltage: 219 + 3*min + float64(n%3), Dim: 100, PowerFactor: 0.96}
	if lit {
		r.LampOn, r.Power, r.Current = true, 96+float64(n)+2*min, 0.45
	}
	switch {
	case name == "LP-0001" && last < 4 && lit: // the lamp died: relay on, no power
		r.Power, r.Current = 0.4, 0.01
	case name == "LP-0002" && last < 3: // swell on its feeder
		r.Voltage = 251 + float64(last)
	case name == "LP-0003" && last == 0:
		r.Alarms = []string{"relayFailure"}
	case name == "LP-0004" && last < 3 && lit: // failing driver
		r.PowerFactor = 0.62
	}
	return r
}

func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the browser test starts the whole agent and a browser")
	}
	browser := chromium()
	if browser == "" {
		t.Skip("chromium is not installed (apt-get install chromium; `make test-setup` does it): the status page browser test is skipped")
	}
	broker := mqtttest.StartT(t)
	api := m2mtest.StartT(t, m2mtest.Options{})
	dir := t.TempDir()
	registry := filepath.Join(dir, "devices.csv")
	if err := os.WriteFile(registry, []byte(browserRegistry), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := shortDir(t)
	httpAddr := freeLoopbackAddr(t)
	cfg, warnings, err := loadConfig([]string{
		"EDGE_GATEWAY_ID=gw-uberaba-centro",
		"EDGE_DATA_DIR=" + filepath.Join(dir, "data"),
		"EDGE_CONTROL_SOCKET=" + filepath.Join(sock, "daemon.sock"),
		"EDGE_HTTP_ADDR=" + httpAddr,
		"EDGE_MQTT_BROKER=" + broker.URL,
		"EDGE_M2M_BASE_URL=" + api.URL(),
		"EDGE_M2M_INSTANCE_ID=69",
		"EDGE_DEVICES_FILE=" + registry,
		"EDGE_CONFIRM_COUNT=2",
		"EDGE_LATITUDE=-19.7472", "EDGE_LONGITUDE=-47.9381",
		"EDGE_STORE_MAX_MB=64",
	})
	if err != nil {
		t.Fatalf("config: %v (warnings %v)", err, warnings)
	}
	logs := &pageLogBuffer{w: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	d, err := startDaemon(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("startDaemon: %v", err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- d.run(ctx) }()

	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	base := "http://" + httpAddr
	waitUntil(t, 15*time.Second, "broker connection and status server", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	})

	// A day of telemetry, every 30 minutes, for eight of the nine devices.
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("fleet").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	end := seriesEnd(time.Now())
	names := []string{"LP-0001", "LP-0002", "LP-0003", "LP-0004", "LP-0005", "LP-0006", "LP-0007", "LP-0008"}
	const steps = 48
	for i := 0; i < steps; i++ {
		at := end.Add(-time.Duration(steps-1-i) * 30 * time.Minute)
		for n, name := range names {
			b, _ := json.Marshal(fleetReading(name, n, at, steps-1-i))
			if tok := pub.Publish("streetlights/"+name+"/telemetry", 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
		// The agent handles messages concurrently; one device's messages
		// must arrive in order, so each round waits for the last.
		waitUntil(t, 10*time.Second, "telemetry applied", func() bool {
			for _, name := range names {
				v, ok := d.detector.Device(name)
				if !ok || !v.ReadingAt.Equal(at) {
					return false
				}
			}
			return true
		})
	}
	want := map[string]string{"LP-0001": agent.FaultLampFailure, "LP-0002": agent.FaultSupplyVoltageTooHigh,
		"LP-0003": "relayFailure", "LP-0004": agent.FaultPowerFactorTooLow}
	waitUntil(t, 20*time.Second, "four tickets created at the API", func() bool {
		c, err := d.store.Counts()
		return err == nil && c[agent.StateSent] == len(want)
	})
	for _, probe := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + probe)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s of the running agent: %d", probe, resp.StatusCode)
		}
	}
	for name, fault := range want {
		v, _ := d.detector.Device(name)
		if len(v.Faults) != 1 || v.Faults[0].Name != fault {
			t.Fatalf("%s: faults %+v, want %s", name, v.Faults, fault)
		}
	}

	// The rendered page, as a phone shows it.
	profile := t.TempDir()
	dom := runChromium(t, browser, profile, "--dump-dom", base+"/")
	for _, s := range []string{
		"gw-uberaba-centro", "Gateway funcionando normalmente", "Conectado desde", "384 mensagens",
		"Pontos com falha", "LP-0001", "Lâmpada apagada à noite", "LP-0002", "Tensão de alimentação alta",
		"LP-0003", "relayFailure", "LP-0004", "Fator de potência baixo", "Rua Tristão de Castro",
		"Fila vazia", "Enviado",
	} {
		if !strings.Contains(dom, s) {
			t.Errorf("the rendered page lacks %q", s)
		}
	}
	faultySection := sliceBetween(dom, `id="faulty"`, `</ul>`)
	for _, name := range []string{"LP-0005", "LP-0006", "LP-0009"} {
		if strings.Contains(faultySection, `data-nameplate="`+name+`"`) {
			t.Errorf("healthy %s is listed among the faulty devices", name)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	// Screenshots for people to look at after a run go to bin/screenshots
	// (ignored by git), so a test run leaves the tree clean; with
	// UPDATE_SCREENSHOTS=1 they replace the committed ones in
	// testdata/screenshots.
	shots := filepath.Join("..", "..", "bin", "screenshots")
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	runChromium(t, browser, profile, "--screenshot="+mustAbs(t, filepath.Join(shots, "status-phone.png")), "--window-size=360,800", base+"/")
	checkPNG(t, filepath.Join(shots, "status-phone.png"))

	// The device view: what is wrong, and the day's power and voltage.
	dom = runChromium(t, browser, profile, "--dump-dom", base+"/#/d/LP-0001")
	dev := sliceBetween(dom, `id="device-sec"`, `id="health-sec"`)
	for _, s := range []string{"LP-0001", "Lâmpada apagada à noite", "Potência (W), últimas 24 h", "Tensão (V), últimas 24 h", "<polyline", "Rua Tristão de Castro"} {
		if !strings.Contains(dev, s) {
			t.Errorf("the device view lacks %q", s)
		}
	}
	if strings.Contains(dev, " hidden") && !strings.Contains(dev, "<svg") {
		t.Error("the device view is hidden")
	}
	runChromium(t, browser, profile, "--screenshot="+mustAbs(t, filepath.Join(shots, "status-device-phone.png")), "--window-size=360,1100", base+"/#/d/LP-0001")
	checkPNG(t, filepath.Join(shots, "status-device-phone.png"))

	// English: chosen by a link, then remembered by the browser (the same
	// profile, no parameter).
	dom = runChromium(t, browser, profile, "--dump-dom", base+"/?lang=en")
	for _, s := range []string{`lang="en"`, "Gateway working normally", "Faulty devices", "Lamp out at night", "Supply voltage too high"} {
		if !strings.Contains(dom, s) {
			t.Errorf("the English page lacks %q", s)
		}
	}
	dom = runChromium(t, browser, profile, "--dump-dom", base+"/")
	if !strings.Contains(dom, "Lamp out at night") {
		t.Error("the language switch is not remembered")
	}
	runChromium(t, browser, profile, "--dump-dom", base+"/?lang=pt")

	// The CLI over the daemon's control socket sees the same.
	env := []string{"EDGE_CONTROL_SOCKET=" + cfg.ControlSocket, "EDGE_DATA_DIR=" + cfg.DataDir}
	r := runCLI(cliStatus, env)
	want2 := []string{"edge-agent gw-uberaba-centro", "Overall: OK", "Faulty devices (4):", "Lamp out at night", "Power factor too low"}
	for _, s := range want2 {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("edge-agent status lacks %q:\n%s\n%s", s, r.stdout, r.stderr)
		}
	}
	fits80(t, r.stdout)
	t.Logf("edge-agent status:\n%s", r.stdout)

	// The broker goes away: the page says so in colour and in words, and
	// the agent is no longer ready.
	if err := broker.Stop(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the broker connection to drop", func() bool { return !d.sub.Connected() })
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz without the broker: %d, want 503", resp.StatusCode)
	}
	dom = runChromium(t, browser, profile, "--dump-dom", base+"/")
	card := sliceBetween(dom, `data-area="broker"`, `</li>`)
	for _, s := range []string{"Gateway com falha", "Sem conexão com o broker MQTT"} {
		if !strings.Contains(dom, s) {
			t.Errorf("the page without the broker lacks %q", s)
		}
	}
	if !strings.Contains(card, "Falha") || !strings.Contains(card, "Desconectado de "+broker.URL) {
		t.Errorf("the broker card does not say it failed: %s", card)
	}
	runChromium(t, browser, profile, "--screenshot="+mustAbs(t, filepath.Join(shots, "status-phone-broker-down.png")), "--window-size=360,800", base+"/")
	checkPNG(t, filepath.Join(shots, "status-phone-broker-down.png"))
}

func sliceBetween(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// runChromium runs headless chromium once and returns its stdout. The page
// fetches its data after load; the virtual time budget lets those fetches
// and the first render finish before the DOM is dumped or the picture taken.
func runChromium(t *testing.T, browser, profile string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--hide-scrollbars", "--lang=pt-BR", "--user-data-dir=" + profile, "--virtual-time-budget=5000"}, args...)
	cmd := exec.CommandContext(ctx, browser, all...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(b) < 10<<10 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("%s is not a plausible screenshot (%d bytes)", path, len(b))
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pageLogBuffer serialises writes of the agent's goroutines to one buffer.
type pageLogBuffer struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *pageLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *pageLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
