package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/edge-agent/edge-agent/agent"
)

// value finds one sample in the gathered families: name and label pairs.
func value(t *testing.T, fams []*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	t.Helper()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	snap := healthySnapshot()
	snap.Tickets.Failed = 2
	snap.Store.Full = true
	snap.Clock = ClockStatus{Trusted: false, Reason: "before build"}
	src := &fakeSource{snap: snap}
	s, m := newTestServer(t, src, Config{})

	m.ObserveEvent(agent.Event{Kind: agent.Raise, Fault: agent.FaultLampFailure})
	m.ObserveEvent(agent.Event{Kind: agent.Raise, Fault: agent.FaultLampFailure})
	m.ObserveEvent(agent.Event{Kind: agent.Clear, Fault: agent.FaultLampFailure})
	m.ObserveEvent(agent.Event{Kind: agent.Raise, Fault: "relayFailure"})
	m.ObserveAPI("create", agent.OutcomeOK, 201, 120*time.Millisecond)
	m.ObserveAPI("create", agent.OutcomeRetryable, 503, 2*time.Second)
	m.ObserveAPI("cancel", agent.OutcomeGone, 404, 80*time.Millisecond)

	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"edge_agent_info", []string{"version", "1.2.3", "gateway_id", "gw-test"}, 1},
		{"edge_agent_mqtt_connected", nil, 1},
		{"edge_agent_mqtt_messages_received_total", nil, 120},
		{"edge_agent_mqtt_messages_rejected_total", []string{"reason", "not_json"}, 2},
		{"edge_agent_mqtt_messages_rejected_total", []string{"reason", "bad_value"}, 1},
		{"edge_agent_mqtt_reconnects_total", nil, 1},
		{"edge_agent_faults_raised_total", []string{"fault", "lampFailure"}, 2},
		{"edge_agent_faults_cleared_total", []string{"fault", "lampFailure"}, 1},
		{"edge_agent_faults_raised_total", []string{"fault", "relayFailure"}, 1},
		{"edge_agent_faults_raised_total", []string{"fault", "cyclingFailure"}, 0},
		{"edge_agent_tickets", []string{"state", "pending"}, 1},
		{"edge_agent_tickets", []string{"state", "sent"}, 5},
		{"edge_agent_tickets", []string{"state", "failed"}, 2},
		{"edge_agent_tickets", []string{"state", "cancel_pending"}, 0},
		{"edge_agent_tickets_oldest_queued_age_seconds", nil, 10},
		{"edge_agent_m2m_requests_total", []string{"call", "create", "outcome", "ok"}, 1},
		{"edge_agent_m2m_requests_total", []string{"call", "create", "outcome", "retryable"}, 1},
		{"edge_agent_m2m_requests_total", []string{"call", "cancel", "outcome", "gone"}, 1},
		{"edge_agent_m2m_request_duration_seconds", []string{"call", "create"}, 2},
		{"edge_agent_m2m_api_down", nil, 0},
		{"edge_agent_devices", []string{"status", "known"}, 5},
		{"edge_agent_devices", []string{"status", "faulty"}, 3},
		{"edge_agent_store_size_bytes", nil, 1 << 20},
		{"edge_agent_store_full", nil, 1},
		{"edge_agent_clock_trusted", nil, 0},
		{"edge_agent_problem", []string{"code", CodeStoreFull, "severity", StatusFail}, 1},
		{"edge_agent_problem", []string{"code", CodeClockUntrusted}, 1},
	}
	for _, c := range checks {
		got, ok := value(t, fams, c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "edge_agent_m2m_last_success_timestamp_seconds"} {
		if _, ok := value(t, fams, name); !ok {
			t.Errorf("%s missing", name)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "edge_agent_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	// The endpoint serves the text format.
	rec := do(t, s.Handler(), "GET", "/metrics")
	wantStatus(t, rec, 200)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, line := range []string{`edge_agent_tickets{state="sent"} 5`, `edge_agent_mqtt_messages_rejected_total{reason="not_json"} 2`,
		"# TYPE edge_agent_m2m_request_duration_seconds histogram"} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// A scrape reads the source once: the figures of one scrape agree.
func TestMetricsOneReadPerScrape(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	_, m := newTestServer(t, src, Config{})
	if _, err := m.Registry().Gather(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range src.callList() {
		if c == "status" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("one scrape called Status %d times, want 1", n)
	}
}

func TestFaultLabelCardinality(t *testing.T) {
	m := NewMetrics()
	for i := 0; i < 200; i++ {
		m.ObserveEvent(agent.Event{Kind: agent.Raise, Fault: fmt.Sprintf("vendorAlarm%03d", i)})
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, f := range fams {
		if f.GetName() == "edge_agent_faults_raised_total" {
			series = len(f.Metric)
		}
	}
	if series != maxFaultLabels+1 {
		t.Errorf("%d fault series, want %d (the cap plus \"other\")", series, maxFaultLabels+1)
	}
	other, _ := value(t, fams, "edge_agent_faults_raised_total", "fault", "other")
	if other != float64(200-(maxFaultLabels-8)) {
		t.Errorf("other = %v, want %d", other, 200-(maxFaultLabels-8))
	}
	// Without a Source nothing of the status is exported, and gathering works.
	if _, ok := value(t, fams, "edge_agent_tickets"); ok {
		t.Error("status metrics without a source")
	}
}
