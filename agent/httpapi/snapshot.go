package httpapi

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Snapshot is GET /api/status: the gateway at a glance. The field names of
// CONTRACT §8 (version, gateway_id, uptime_s, mqtt.connected, …) are fixed;
// the rest is documented in docs/readme-status.md. Times are RFC 3339 in
// UTC, null when there is none.
type Snapshot struct {
	Version   string     `json:"version"`
	GatewayID string     `json:"gateway_id"`
	UptimeS   int64      `json:"uptime_s"`
	StartedAt *time.Time `json:"started_at"`
	// Now is the gateway clock when the snapshot was taken.
	Now *time.Time `json:"now"`
	// Source is "daemon" when the running agent answered, "store" when the
	// CLI read the store file because no daemon runs (then only Tickets and
	// Store are known).
	Source string `json:"source"`

	// Health and Problems are filled by Assess.
	Health   Health    `json:"health"`
	Problems []Problem `json:"problems"`

	MQTT     MQTTStatus     `json:"mqtt"`
	M2M      M2MStatus      `json:"m2m"`
	Tickets  TicketCounts   `json:"tickets"`
	Devices  DeviceCounts   `json:"devices"`
	Store    StoreStatus    `json:"store"`
	Clock    ClockStatus    `json:"clock"`
	Registry RegistryStatus `json:"registry"`
}

// Snapshot sources.
const (
	SourceDaemon = "daemon"
	SourceStore  = "store"
)

// MQTTStatus is the broker connection and the message counters.
type MQTTStatus struct {
	Connected bool `json:"connected"`
	// Broker is EDGE_MQTT_BROKER without any user or password part.
	Broker           string     `json:"broker"`
	ConnectedSince   *time.Time `json:"connected_since"`
	MessagesReceived int64      `json:"messages_received"`
	MessagesRejected int64      `json:"messages_rejected"`
	// RejectedByReason has every reason, zero included.
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	Reconnects       int64            `json:"reconnects"`
	// HandlerErrors counts messages left unacknowledged because their
	// effect could not be made durable (the broker sends them again).
	HandlerErrors int64      `json:"handler_errors"`
	LastError     string     `json:"last_error"`
	LastErrorAt   *time.Time `json:"last_error_at"`
}

// M2MStatus is what the syncer knows of the cloud API.
type M2MStatus struct {
	LastSuccessAt       *time.Time `json:"last_success_at"`
	LastError           string     `json:"last_error"`
	LastErrorAt         *time.Time `json:"last_error_at"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	// Down: the API is considered unreachable (the syncer probes it one
	// request at a time).
	Down bool `json:"down"`
	// ProtocolCollisions counts 409s on a first try: another gateway uses
	// our id_external_protocol range (check EDGE_PROTOCOL_BASE).
	ProtocolCollisions int `json:"protocol_collisions"`
}

// TicketCounts are the tickets by state (CONTRACT §6) and the queue.
type TicketCounts struct {
	Pending       int `json:"pending"`
	Sent          int `json:"sent"`
	CancelPending int `json:"cancel_pending"`
	Cancelled     int `json:"cancelled"`
	Suppressed    int `json:"suppressed"`
	Failed        int `json:"failed"`
	// Queued is pending + cancel_pending: requests still to make.
	Queued int `json:"queued"`
	// The oldest queued ticket (lowest protocol), when there is one.
	OldestQueuedProtocol int64      `json:"oldest_queued_protocol"`
	OldestQueuedAt       *time.Time `json:"oldest_queued_at"`
	OldestQueuedAgeS     int64      `json:"oldest_queued_age_s"`
	// Error says why the counts could not be read ("" when they were).
	Error string `json:"error"`
}

// DeviceCounts are the fleet figures.
type DeviceCounts struct {
	Known  int `json:"known"`
	Online int `json:"online"`
	Faulty int `json:"faulty"`
}

// StoreStatus is the ticket store's health.
type StoreStatus struct {
	Path      string `json:"path"`
	Open      bool   `json:"open"`
	ReadOnly  bool   `json:"read_only"`
	SizeBytes int64  `json:"size_bytes"`
	// MaxBytes is EDGE_STORE_MAX_MB in bytes; 0 means no cap.
	MaxBytes  int64      `json:"max_bytes"`
	Full      bool       `json:"full"`
	FullSince *time.Time `json:"full_since"`
	// CorruptMovedTo is where a corrupt store file was moved aside (the
	// agent started a new one), "" if that never happened.
	CorruptMovedTo string     `json:"corrupt_moved_to"`
	CorruptAt      *time.Time `json:"corrupt_at"`
	LastError      string     `json:"last_error"`
	LastErrorAt    *time.Time `json:"last_error_at"`
}

// ClockStatus says whether day/night rules run (CONTRACT §4).
type ClockStatus struct {
	Trusted bool `json:"trusted"`
	// Reason says why not, in words ("" when trusted).
	Reason string `json:"reason"`
}

// RegistryStatus is the device registry (EDGE_DEVICES_FILE) as loaded.
type RegistryStatus struct {
	Path    string `json:"path"`
	Devices int    `json:"devices"`
	// RowErrors counts the skipped rows; RowErrorSamples lists the first
	// few ("line 7: …").
	RowErrors       int      `json:"row_errors"`
	RowErrorSamples []string `json:"row_error_samples"`
}

// Severities, from best to worst. An area's status is the worst severity
// of its problems.
const (
	StatusOK      = "ok"
	StatusUnknown = "unknown"
	StatusWarn    = "warn"
	StatusFail    = "fail"
)

func rank(s string) int {
	switch s {
	case StatusOK:
		return 0
	case StatusUnknown:
		return 1
	case StatusWarn:
		return 2
	case StatusFail:
		return 3
	}
	return 1
}

// Health is the status of each area shown at the top of the page.
type Health struct {
	Overall  string `json:"overall"`
	Broker   string `json:"broker"`
	API      string `json:"api"`
	Queue    string `json:"queue"`
	Store    string `json:"store"`
	Clock    string `json:"clock"`
	Registry string `json:"registry"`
}

// Problem is one thing an operator should look at. Code is stable (the page
// translates it); Message is English words for the CLI and logs.
type Problem struct {
	Area     string `json:"area"`
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// Areas.
const (
	AreaBroker   = "broker"
	AreaAPI      = "api"
	AreaQueue    = "queue"
	AreaStore    = "store"
	AreaClock    = "clock"
	AreaRegistry = "registry"
)

// Problem codes (stable: the page and scripts key on them).
const (
	CodeDaemonNotRunning  = "daemon_not_running"
	CodeMQTTDisconnected  = "mqtt_disconnected"
	CodeAPIDown           = "api_down"
	CodeAPIErrors         = "api_errors"
	CodeProtocolCollision = "protocol_collision"
	CodeTicketsFailed     = "tickets_failed"
	CodeQueueStale        = "queue_stale"
	CodeTicketsUnreadable = "tickets_unreadable"
	CodeStoreUnavailable  = "store_unavailable"
	CodeStoreFull         = "store_full"
	CodeStoreNearlyFull   = "store_nearly_full"
	CodeStoreCorruptMoved = "store_corrupt_moved"
	CodeClockUntrusted    = "clock_untrusted"
	CodeRegistryRowErrors = "registry_row_errors"
)

// Thresholds of the assessment.
const (
	// StaleQueueAfter: a queued ticket normally leaves within seconds; one
	// waiting this long means requests keep failing.
	StaleQueueAfter = 30 * time.Minute
	// NearlyFullRatio of EDGE_STORE_MAX_MB warns before the store is full.
	NearlyFullRatio = 0.9
)

// Assess fills Health and Problems from the other fields. It is pure, so
// that the daemon, the CLI reading the store and the tests agree.
func (s *Snapshot) Assess() {
	var ps []Problem
	add := func(area, code, sev, format string, args ...any) {
		ps = append(ps, Problem{Area: area, Code: code, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	live := s.Source != SourceStore

	if !live {
		add(AreaBroker, CodeDaemonNotRunning, StatusUnknown, "the agent is not running: the broker connection, the API and the devices are unknown; only the store was read")
	} else if !s.MQTT.Connected {
		msg := "not connected to the MQTT broker " + s.MQTT.Broker
		if s.MQTT.LastError != "" {
			msg += ": " + s.MQTT.LastError
		}
		add(AreaBroker, CodeMQTTDisconnected, StatusFail, "%s", msg)
	}

	if live {
		switch {
		case s.M2M.Down:
			add(AreaAPI, CodeAPIDown, StatusFail, "the M2M API is unreachable (%d failures in a row; last error: %s); tickets wait in the queue and are sent when it answers",
				s.M2M.ConsecutiveFailures, orNone(s.M2M.LastError))
		case s.M2M.ConsecutiveFailures > 0:
			add(AreaAPI, CodeAPIErrors, StatusWarn, "the last %d requests to the M2M API failed: %s", s.M2M.ConsecutiveFailures, orNone(s.M2M.LastError))
		}
		if s.M2M.ProtocolCollisions > 0 {
			add(AreaAPI, CodeProtocolCollision, StatusFail, "%d ticket(s) collided with a ticket of another gateway at the API (409 on a first try): "+
				"another gateway of this instance uses the same id_external_protocol range; give each gateway its own EDGE_PROTOCOL_BASE, then run `edge-agent retry --failed`",
				s.M2M.ProtocolCollisions)
		}
	}

	t := &s.Tickets
	switch {
	case t.Error != "":
		add(AreaQueue, CodeTicketsUnreadable, StatusFail, "the tickets cannot be read: %s", t.Error)
	default:
		if t.Failed > 0 {
			add(AreaQueue, CodeTicketsFailed, StatusWarn, "%d ticket(s) failed with a permanent answer from the API: see `edge-agent tickets --state failed`, fix the cause, then `edge-agent retry`", t.Failed)
		}
		if t.Queued > 0 && time.Duration(t.OldestQueuedAgeS)*time.Second >= StaleQueueAfter {
			add(AreaQueue, CodeQueueStale, StatusWarn, "%d ticket(s) queued; the oldest (protocol %d) has waited %s", t.Queued, t.OldestQueuedProtocol, HumanDuration(time.Duration(t.OldestQueuedAgeS)*time.Second))
		}
	}

	st := &s.Store
	switch {
	case !st.Open:
		add(AreaStore, CodeStoreUnavailable, StatusFail, "the store is not open: %s", orNone(st.LastError))
	case st.Full:
		add(AreaStore, CodeStoreFull, StatusFail, "the store is full (%s of EDGE_STORE_MAX_MB %s) and nothing finished is left to prune: queued tickets are kept, new faults cannot be saved until space is freed or the cap raised",
			HumanBytes(st.SizeBytes), HumanBytes(st.MaxBytes))
	case st.MaxBytes > 0 && float64(st.SizeBytes) >= NearlyFullRatio*float64(st.MaxBytes):
		add(AreaStore, CodeStoreNearlyFull, StatusWarn, "the store file is %s of its %s cap (EDGE_STORE_MAX_MB); finished tickets are pruned first", HumanBytes(st.SizeBytes), HumanBytes(st.MaxBytes))
	}
	if st.CorruptMovedTo != "" {
		when := ""
		if st.CorruptAt != nil {
			when = " on " + st.CorruptAt.UTC().Format(time.RFC3339)
		}
		add(AreaStore, CodeStoreCorruptMoved, StatusWarn, "a corrupt store file was moved aside to %s%s and a new one started: tickets it held are not in the new store", st.CorruptMovedTo, when)
	}

	if live && !s.Clock.Trusted {
		add(AreaClock, CodeClockUntrusted, StatusWarn, "%s", orNone(s.Clock.Reason))
	}
	if r := &s.Registry; r.RowErrors > 0 {
		first := ""
		if len(r.RowErrorSamples) > 0 {
			first = " (first: " + r.RowErrorSamples[0] + ")"
		}
		add(AreaRegistry, CodeRegistryRowErrors, StatusWarn, "%d row(s) of the device registry were skipped%s: fix %s and send SIGHUP (systemctl reload edge-agent)", r.RowErrors, first, orNone(r.Path))
	}

	slices.SortStableFunc(ps, func(a, b Problem) int { return rank(b.Severity) - rank(a.Severity) })
	if ps == nil {
		ps = []Problem{}
	}
	s.Problems = ps
	area := func(name string, known bool) string {
		if !known {
			return StatusUnknown
		}
		worst := StatusOK
		for _, p := range ps {
			if p.Area == name && rank(p.Severity) > rank(worst) {
				worst = p.Severity
			}
		}
		return worst
	}
	s.Health = Health{
		Broker:   area(AreaBroker, live),
		API:      area(AreaAPI, live),
		Queue:    area(AreaQueue, true),
		Store:    area(AreaStore, true),
		Clock:    area(AreaClock, live),
		Registry: area(AreaRegistry, live),
	}
	overall := StatusOK
	for _, p := range ps {
		if rank(p.Severity) > rank(overall) {
			overall = p.Severity
		}
	}
	s.Health.Overall = overall
}

func orNone(s string) string {
	if s == "" {
		return "none recorded"
	}
	return s
}

// TimePtr returns a pointer to t in UTC, or nil for the zero time and for
// times at or before the Unix epoch (a restored fault with no start).
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() || t.Unix() <= 0 {
		return nil
	}
	u := t.UTC()
	return &u
}

// HumanDuration formats d for people: "45s", "12m", "3h 05m", "2d 4h".
func HumanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd %dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// HumanBytes formats n bytes with binary units: "812 B", "1.5 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	s := fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
	return strings.Replace(s, ".0 ", " ", 1)
}
