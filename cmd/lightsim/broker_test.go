package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

// received is one message a test subscriber got.
type received struct {
	topic   string
	payload []byte
}

// subscriber is a paho client that records every message under a filter.
type subscriber struct {
	client paho.Client
	mu     sync.Mutex
	msgs   []received
}

func subscribe(t *testing.T, url, filter string) *subscriber {
	t.Helper()
	s := &subscriber{}
	opts := paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("sub-%s-%d", t.Name(), time.Now().UnixNano())).
		SetCleanSession(true).SetOrderMatters(false).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			s.mu.Lock()
			s.msgs = append(s.msgs, received{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)})
			s.mu.Unlock()
		})
	s.client = paho.NewClient(opts)
	if tok := s.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	if tok := s.client.Subscribe(filter, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.client.Disconnect(100) })
	return s
}

func (s *subscriber) snapshot() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// waitFor polls until cond holds on the messages so far, or fails after 10 s.
func (s *subscriber) waitFor(t *testing.T, what string, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs := s.snapshot()
		if cond(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%d messages so far)", what, len(msgs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the writes of paho's goroutines
// (log lines from its handlers can come late, after run returned).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runSim runs lightsim in-process and returns its exit status and stdout.
func runSim(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(ctx, args, &stdout, &stderr)
	if t.Failed() || code != exitOK {
		t.Logf("lightsim %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	return code, stdout.String()
}

var (
	summaryRe = regexp.MustCompile(`(?m)^lightsim: published=(\d+) failed=(\d+) elapsed=([0-9.]+) rate=([0-9.]+) msgs/s$`)
	faultRe   = regexp.MustCompile(`(?m)^fault (\S+) (\S+) (on|off) (\S+)$`)
)

func parseSummary(t *testing.T, out string) (published, failed int, elapsed float64) {
	t.Helper()
	m := summaryRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", out)
	}
	published, _ = strconv.Atoi(m[1])
	failed, _ = strconv.Atoi(m[2])
	elapsed, _ = strconv.ParseFloat(m[3], 64)
	return published, failed, elapsed
}

type faultLine struct {
	nameplate, kind string
	on              bool
	at              time.Time
}

func parseFaultLines(t *testing.T, out string) []faultLine {
	t.Helper()
	var lines []faultLine
	for _, m := range faultRe.FindAllStringSubmatch(out, -1) {
		at, err := time.Parse(time.RFC3339, m[4])
		if err != nil {
			t.Fatalf("fault line time %q: %v", m[4], err)
		}
		lines = append(lines, faultLine{m[1], m[2], m[3] == "on", at})
	}
	return lines
}

// telemetryOf splits messages by nameplate (valid topics only).
func telemetryOf(msgs []received) map[string][][]byte {
	by := map[string][][]byte{}
	for _, m := range msgs {
		if np, ok := topicNameplate("streetlights", m.topic); ok {
			by[np] = append(by[np], m.payload)
		}
	}
	return by
}

func TestFleetPublishesFaultsToBroker(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	sub := subscribe(t, b.URL, "streetlights/#")
	code, out := runSim(t, t.Context(), "--broker", b.URL, "--devices", "6", "--interval", "300ms",
		"--duration", "2500ms", "--where", "night", "--report", "1s", "--log-faults", "--status-offline",
		"--ts-format", "unixms", "--seed", "3", "--client-id", "lightsim-test",
		"--fault", "dark=IP00002", "--fault", "swell=IP00003", "--fault", "garbage=IP00004",
		"--fault", "alarm:relayFailure=IP00005", "--fault", "silence=IP00006")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "lightsim: start mode=fleet devices=6 ") || !strings.Contains(out, " light=night ") {
		t.Errorf("start line missing or not at night:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^lightsim: report elapsed=\S+ published=\d+ garbage=\d+ status=\d+ failed=0 pending=\d+ faults_active=5$`).MatchString(out) {
		t.Errorf("no report line with 5 active faults:\n%s", out)
	}
	published, failed, _ := parseSummary(t, out)
	if failed != 0 {
		t.Errorf("failed=%d", failed)
	}

	// Every telemetry-topic message the summary counts reaches a subscriber.
	isTelemetryTopic := func(topic string) bool { return strings.HasSuffix(topic, "/telemetry") }
	msgs := sub.waitFor(t, fmt.Sprintf("%d telemetry-topic messages", published), func(ms []received) bool {
		n := 0
		for _, m := range ms {
			if isTelemetryTopic(m.topic) {
				n++
			}
		}
		return n >= published
	})

	by := telemetryOf(msgs)
	for _, np := range []string{"IP00001", "IP00002", "IP00003", "IP00005"} {
		if len(by[np]) < 4 {
			t.Errorf("%s: %d messages in 2.5 s at 300 ms", np, len(by[np]))
		}
		for _, raw := range by[np] {
			p, err := decodeContract(raw)
			if err != nil || p.Voltage == nil || p.LampOn == nil || p.Power == nil || p.Dim == nil || p.Alarms == nil {
				t.Fatalf("%s: invalid telemetry %s: %v", np, raw, err)
			}
			dark := !*p.LampOn || *p.Power < 5
			switch np {
			case "IP00001":
				if dark || *p.Voltage > 242 || len(*p.Alarms) != 0 {
					t.Errorf("healthy device at night: %s", raw)
				}
			case "IP00002":
				if !dark || *p.Dim == 0 {
					t.Errorf("dark device: %s", raw)
				}
			case "IP00003":
				if *p.Voltage <= 242 {
					t.Errorf("swell device: %s", raw)
				}
			case "IP00005":
				if len(*p.Alarms) != 1 || (*p.Alarms)[0] != "relayFailure" {
					t.Errorf("alarm device: %s", raw)
				}
			}
		}
	}
	if n := len(by["IP00006"]); n != 0 {
		t.Errorf("silent device published %d messages", n)
	}
	garbage := 0
	for _, m := range msgs {
		if !isTelemetryTopic(m.topic) {
			continue
		}
		np, ok := topicNameplate("streetlights", m.topic)
		if ok && np != "IP00004" {
			continue
		}
		garbage++
		if _, err := decodeContract(m.payload); ok && err == nil && len(m.payload) <= 16384 {
			t.Errorf("garbage device sent a valid message on a valid topic: %s %.80s", m.topic, m.payload)
		}
	}
	if garbage < 4 {
		t.Errorf("%d garbage messages", garbage)
	}

	lines := parseFaultLines(t, out)
	want := map[string]bool{"IP00002 dark": true, "IP00003 swell": true, "IP00004 garbage": true,
		"IP00005 alarm:relayFailure": true, "IP00006 silence": true}
	for _, l := range lines {
		key := l.nameplate + " " + l.kind
		if !want[key] || !l.on {
			t.Errorf("unexpected fault line %+v", l)
		}
		delete(want, key)
	}
	if len(want) > 0 {
		t.Errorf("no fault line for %v", want)
	}

	// The retained statuses a newcomer sees: online, except the silent one.
	late := subscribe(t, b.URL, "streetlights/+/status")
	status := late.waitFor(t, "6 retained statuses", func(ms []received) bool { return len(ms) >= 6 })
	for _, m := range status {
		want := "online"
		if m.topic == "streetlights/IP00006/status" {
			want = "offline"
		}
		if string(m.payload) != want {
			t.Errorf("%s = %q, want %q", m.topic, m.payload, want)
		}
	}
}

func TestFaultCycleLinesMatchMessages(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	sub := subscribe(t, b.URL, "streetlights/+/telemetry")
	code, out := runSim(t, t.Context(), "--broker", b.URL, "--devices", "2", "--interval", "150ms",
		"--duration", "4s", "--fault", "swell=IP00001", "--fault-cycle", "900ms", "--log-faults",
		"--ts-format", "unixms", "--report", "0", "--status=false", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	published, _, _ := parseSummary(t, out)
	msgs := sub.waitFor(t, "all messages", func(ms []received) bool { return len(ms) >= published })
	lines := parseFaultLines(t, out)
	if len(lines) < 4 {
		t.Fatalf("%d fault lines in 4 s with a 900 ms cycle:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if l.nameplate != "IP00001" || l.kind != "swell" || l.on != (i%2 == 0) {
			t.Fatalf("fault line %d: %+v; want alternating on/off for IP00001 swell, starting on", i, l)
		}
	}
	// Each message shows the state of the last line at or before its ts,
	// and each line's time is the ts of a message that shows it.
	lineAt := map[int64]bool{}
	for _, l := range lines {
		lineAt[l.at.UnixMilli()] = l.on
	}
	matched := 0
	for _, raw := range telemetryOf(msgs)["IP00001"] {
		var p struct {
			TS      int64   `json:"ts"`
			Voltage float64 `json:"voltage"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		var state, found bool
		for _, l := range lines {
			if l.at.UnixMilli() <= p.TS {
				state, found = l.on, true
			}
		}
		if !found {
			t.Fatalf("message at %d before the first fault line", p.TS)
		}
		if swelled := p.Voltage > 242; swelled != state {
			t.Errorf("message at %d: voltage %.1f, but the fault lines say swell=%v", p.TS, p.Voltage, state)
		}
		if on, ok := lineAt[p.TS]; ok && on == (p.Voltage > 242) {
			matched++
		}
	}
	if matched != len(lines) {
		t.Errorf("%d of %d fault lines have a message with their time showing the change", matched, len(lines))
	}
}

func TestLoadPublishesExactlyCount(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	sub := subscribe(t, b.URL, "streetlights/#")
	code, out := runSim(t, t.Context(), "--broker", b.URL, "--load", "--count", "3000", "--devices", "30",
		"--inflight", "200", "--fault", "lowpf=IP00007")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	published, failed, _ := parseSummary(t, out)
	if published != 3000 || failed != 0 {
		t.Fatalf("published=%d failed=%d, want 3000 and 0", published, failed)
	}
	sub.waitFor(t, "3000 messages", func(ms []received) bool { return len(ms) >= 3000 })
	time.Sleep(300 * time.Millisecond) // anything extra would show up now
	msgs := sub.snapshot()
	if len(msgs) != 3000 {
		t.Fatalf("subscriber got %d messages, want exactly 3000 (no status in load mode)", len(msgs))
	}
	by := telemetryOf(msgs)
	if len(by) != 30 {
		t.Fatalf("%d devices, want 30", len(by))
	}
	for np, ps := range by {
		if len(ps) != 100 {
			t.Errorf("%s: %d messages, want 100 (round-robin)", np, len(ps))
		}
		for _, raw := range ps {
			p, err := decodeContract(raw)
			if err != nil {
				t.Fatalf("%s: %s: %v", np, raw, err)
			}
			if np == "IP00007" && *p.LampOn && *p.PowerFactor > 0.65 {
				t.Fatalf("lowpf device lit with PF %.2f", *p.PowerFactor)
			}
		}
	}
}

func TestLoadRateIsPaced(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	code, out := runSim(t, t.Context(), "--broker", b.URL, "--load", "--rate", "400", "--count", "400", "--qos", "0")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	published, _, elapsed := parseSummary(t, out)
	// Message k leaves no earlier than k/rate: 400 at 400/s take at least
	// 399/400 s. (A lower bound only: how fast it can go is the benchmark's.)
	if published != 400 || elapsed < 0.99 {
		t.Fatalf("published=%d in %.3f s; want 400 in ≥ 0.99 s", published, elapsed)
	}
}

func TestSurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("restarts a broker")
	}
	b := mqtttest.StartT(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		var stdout, stderr syncBuffer
		code := run(ctx, []string{"--broker", b.URL, "--devices", "3", "--interval", "200ms", "--report", "0",
			"--status=false", "--drain", "10s"}, &stdout, &stderr)
		done <- result{code, stdout.String() + stderr.String()}
	}()
	first := subscribe(t, b.URL, "streetlights/+/telemetry")
	first.waitFor(t, "telemetry before the restart", func(ms []received) bool { return len(ms) >= 3 })
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	after := subscribe(t, b.URL, "streetlights/+/telemetry")
	after.waitFor(t, "telemetry after the restart", func(ms []received) bool { return len(telemetryOf(ms)) == 3 })
	cancel()
	r := <-done
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	if _, failed, _ := parseSummary(t, r.out); failed != 0 {
		t.Errorf("failed=%d across a broker restart (messages should wait for the reconnection):\n%s", failed, r.out)
	}
}

func TestUnreachableBroker(t *testing.T) {
	t.Parallel()
	var stderr syncBuffer
	code := run(t.Context(), []string{"--broker", "tcp://127.0.0.1:1", "--connect-timeout", "500ms"}, &syncBuffer{}, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "connect to broker tcp://127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q; want 1 naming the broker", code, stderr.String())
	}
}

// BenchmarkLoadPublish measures the load mode end to end against a private
// mosquitto: msgs/s acknowledged at QoS 1 (and 0), window 1000.
func BenchmarkLoadPublish(b *testing.B) {
	for _, qos := range []string{"1", "0"} {
		b.Run("qos"+qos, func(b *testing.B) {
			br := mqtttest.StartT(b)
			n := max(b.N, 1000)
			var stdout, stderr syncBuffer
			b.ResetTimer()
			code := run(b.Context(), []string{"--broker", br.URL, "--load", "--count", strconv.Itoa(n),
				"--devices", "1000", "--qos", qos, "--quiet"}, &stdout, &stderr)
			b.StopTimer()
			if code != exitOK {
				b.Fatalf("exit %d: %s %s", code, stdout.String(), stderr.String())
			}
			m := summaryRe.FindStringSubmatch(stdout.String())
			if m == nil {
				b.Fatalf("no summary: %s", stdout.String())
			}
			rate, _ := strconv.ParseFloat(m[4], 64)
			b.ReportMetric(rate, "msgs/s")
		})
	}
}
