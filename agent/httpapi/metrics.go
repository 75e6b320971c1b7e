package httpapi

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edge-agent/edge-agent/agent"
)

// Metric namespace: every metric of the agent is edge_agent_*.
const namespace = "edge_agent"

// maxFaultLabels bounds the fault label of the fault counters: controller
// alarms bring their own names, and a misbehaving controller must not grow
// the metrics without bound. Names past the bound count as "other".
const maxFaultLabels = 64

// scrapeTimeout bounds the Source call of one scrape.
const scrapeTimeout = 5 * time.Second

// Metrics is the agent's Prometheus registry (a private one: nothing else
// in the process can add to it by accident). Counters of events that happen
// in other parts (faults, API requests) are fed through ObserveEvent and
// ObserveAPI; everything else is read from the Source at scrape time, so that
// the metrics and /api/status never disagree and nothing is copied.
type Metrics struct {
	reg *prometheus.Registry

	faultsRaised  *prometheus.CounterVec
	faultsCleared *prometheus.CounterVec
	apiRequests   *prometheus.CounterVec
	apiDuration   *prometheus.HistogramVec

	mu         sync.Mutex
	faultNames map[string]struct{}

	src  atomic.Pointer[sourceRef]
	hndl http.Handler
}

type sourceRef struct{ Source }

// NewMetrics builds the registry with the Go runtime and process collectors.
// Make one per process, pass ObserveAPI to the M2M client (m2m.Config.Observe)
// and ObserveEvent to the pipeline (OnEvent), then give it to New.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg:        prometheus.NewRegistry(),
		faultNames: map[string]struct{}{},
		faultsRaised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "faults_raised_total",
			Help: "Faults confirmed (raised) by the detector and made durable, by fault name.",
		}, []string{"fault"}),
		faultsCleared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "faults_cleared_total",
			Help: "Faults confirmed gone (cleared) by the detector and made durable, by fault name.",
		}, []string{"fault"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "m2m_requests_total",
			Help: "Requests to the M2M API by call and outcome class (ok, exists, gone, permanent, retryable).",
		}, []string{"call", "outcome"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "m2m_request_duration_seconds",
			Help:    "Duration of requests to the M2M API by call, answered or not.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"call"}),
	}
	for _, f := range []string{
		agent.FaultLampFailure, agent.FaultLampUnexpectedOn, agent.FaultSupplyVoltageTooHigh,
		agent.FaultSupplyVoltageTooLow, agent.FaultPowerFactorTooLow, agent.FaultLampPowerTooHigh,
		agent.FaultCyclingFailure, agent.FaultCommunicationFailure,
	} {
		// Every built-in fault is exported from the start, at 0: a rate()
		// over a series that appears only with its first event misses it.
		m.faultNames[f] = struct{}{}
		m.faultsRaised.WithLabelValues(f)
		m.faultsCleared.WithLabelValues(f)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.faultsRaised, m.faultsCleared, m.apiRequests, m.apiDuration,
		&statusCollector{m: m},
	)
	m.hndl = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             2 * scrapeTimeout,
	})
	return m
}

// Registry returns the registry, for tests and for anyone adding a
// collector of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) handler() http.Handler { return m.hndl }

// bind makes the scrape read src (the last New wins).
func (m *Metrics) bind(src Source) {
	if src != nil {
		m.src.Store(&sourceRef{src})
	}
}

// ObserveEvent counts a durable raise or clear (agent.PipelineConfig.OnEvent).
func (m *Metrics) ObserveEvent(ev agent.Event) {
	name := m.faultLabel(ev.Fault)
	switch ev.Kind {
	case agent.Raise:
		m.faultsRaised.WithLabelValues(name).Inc()
	case agent.Clear:
		m.faultsCleared.WithLabelValues(name).Inc()
	}
}

func (m *Metrics) faultLabel(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.faultNames[name]; ok {
		return name
	}
	if len(m.faultNames) >= maxFaultLabels {
		return "other"
	}
	m.faultNames[name] = struct{}{}
	return name
}

// ObserveAPI counts one request to the M2M API; its signature is
// m2m.Config.Observe's. status is not a label (the outcome class is what
// alerts need, and a label per code multiplies series).
func (m *Metrics) ObserveAPI(call string, outcome agent.Outcome, _ int, d time.Duration) {
	m.apiRequests.WithLabelValues(call, outcome.String()).Inc()
	m.apiDuration.WithLabelValues(call).Observe(d.Seconds())
}

// statusCollector reads one snapshot from the Source per scrape and exports
// it: consistent figures, one cheap read, no copies kept between scrapes.
type statusCollector struct{ m *Metrics }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	descInfo          = desc("info", "Always 1; the labels name this agent.", "version", "gateway_id")
	descUptime        = desc("uptime_seconds", "Seconds since the agent started.")
	descMQTTConnected = desc("mqtt_connected", "1 while connected to the broker with the subscriptions confirmed.")
	descMQTTReceived  = desc("mqtt_messages_received_total", "MQTT messages taken in (handled, rejected or failed).")
	descMQTTRejected  = desc("mqtt_messages_rejected_total", "MQTT messages rejected, by reason (CONTRACT §3).", "reason")
	descMQTTReconn    = desc("mqtt_reconnects_total", "Connections to the broker made after the first one.")
	descMQTTHandler   = desc("mqtt_handler_errors_total", "MQTT messages left unacknowledged because their effect could not be made durable.")
	descAPIDown       = desc("m2m_api_down", "1 while the M2M API is considered unreachable.")
	descAPIFailures   = desc("m2m_consecutive_failures", "Failed requests to the M2M API in a row.")
	descAPILastOK     = desc("m2m_last_success_timestamp_seconds", "Unix time of the last definite answer of the M2M API (absent before the first).")
	descCollisions    = desc("m2m_protocol_collisions_total", "409s on a first create: another gateway uses this EDGE_PROTOCOL_BASE range.")
	descTickets       = desc("tickets", "Tickets in the store by state.", "state")
	descOldestQueued  = desc("tickets_oldest_queued_age_seconds", "Age of the oldest ticket still queued (pending or cancel_pending); 0 when none.")
	descDevices       = desc("devices", "Devices by status: known (registry or heard from), online, faulty (an open fault).", "status")
	descStoreSize     = desc("store_size_bytes", "Size of the store file.")
	descStoreMax      = desc("store_max_bytes", "EDGE_STORE_MAX_MB in bytes; 0 when uncapped.")
	descStoreFull     = desc("store_full", "1 while the store is full and nothing finished is left to prune.")
	descStoreOpen     = desc("store_open", "1 while the store is open.")
	descStoreCorrupt  = desc("store_corrupt_moved", "1 when a corrupt store file was moved aside (see /api/status).")
	descClock         = desc("clock_trusted", "1 while the gateway clock is trusted for day/night rules.")
	descRegistryErrs  = desc("registry_row_errors", "Rows of the device registry skipped at the last load.")
	descProblem       = desc("problem", "1 for each problem /api/status reports now, by area, code and severity.", "area", "code", "severity")
)

var allDescs = []*prometheus.Desc{
	descInfo, descUptime, descMQTTConnected, descMQTTReceived, descMQTTRejected, descMQTTReconn, descMQTTHandler,
	descAPIDown, descAPIFailures, descAPILastOK, descCollisions, descTickets, descOldestQueued, descDevices,
	descStoreSize, descStoreMax, descStoreFull, descStoreOpen, descStoreCorrupt, descClock, descRegistryErrs, descProblem,
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ref := c.m.src.Load()
	if ref == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s := ref.Status(ctx)
	if s.Source == "" {
		s.Source = SourceDaemon
	}
	s.Assess()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descInfo, 1, s.Version, s.GatewayID)
	gauge(descUptime, float64(s.UptimeS))
	gauge(descMQTTConnected, b2f(s.MQTT.Connected))
	counter(descMQTTReceived, float64(s.MQTT.MessagesReceived))
	for reason, n := range s.MQTT.RejectedByReason {
		counter(descMQTTRejected, float64(n), reason)
	}
	counter(descMQTTReconn, float64(s.MQTT.Reconnects))
	counter(descMQTTHandler, float64(s.MQTT.HandlerErrors))
	gauge(descAPIDown, b2f(s.M2M.Down))
	gauge(descAPIFailures, float64(s.M2M.ConsecutiveFailures))
	if s.M2M.LastSuccessAt != nil {
		gauge(descAPILastOK, float64(s.M2M.LastSuccessAt.UnixNano())/1e9)
	}
	counter(descCollisions, float64(s.M2M.ProtocolCollisions))
	if s.Tickets.Error == "" {
		t := &s.Tickets
		for _, st := range []struct {
			state agent.TicketState
			n     int
		}{
			{agent.StatePending, t.Pending}, {agent.StateSent, t.Sent}, {agent.StateCancelPending, t.CancelPending},
			{agent.StateCancelled, t.Cancelled}, {agent.StateSuppressed, t.Suppressed}, {agent.StateFailed, t.Failed},
		} {
			gauge(descTickets, float64(st.n), string(st.state))
		}
		gauge(descOldestQueued, float64(t.OldestQueuedAgeS))
	}
	gauge(descDevices, float64(s.Devices.Known), "known")
	gauge(descDevices, float64(s.Devices.Online), "online")
	gauge(descDevices, float64(s.Devices.Faulty), "faulty")
	gauge(descStoreSize, float64(s.Store.SizeBytes))
	gauge(descStoreMax, float64(s.Store.MaxBytes))
	gauge(descStoreFull, b2f(s.Store.Full))
	gauge(descStoreOpen, b2f(s.Store.Open))
	gauge(descStoreCorrupt, b2f(s.Store.CorruptMovedTo != ""))
	gauge(descClock, b2f(s.Clock.Trusted))
	gauge(descRegistryErrs, float64(s.Registry.RowErrors))
	seen := map[[2]string]bool{}
	for _, p := range s.Problems {
		// One series per (area, code): a code may come twice in theory.
		k := [2]string{p.Area, p.Code}
		if seen[k] {
			continue
		}
		seen[k] = true
		gauge(descProblem, 1, p.Area, p.Code, p.Severity)
	}
}
