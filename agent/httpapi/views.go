package httpapi

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edge-agent/edge-agent/agent"
)

// The JSON shapes of devices and tickets. They are the API's own, not the
// agent's internal structs: field names are stable and documented, absent
// measurements are absent (not zero), and fault names come with their words
// in both languages so that the page and the CLI share one vocabulary
// (agent.FaultLabel).

// Label is a text in the page's two languages.
type Label struct {
	PT string `json:"pt"`
	EN string `json:"en"`
}

// FaultLabels returns a fault's short words in Portuguese and English.
func FaultLabels(fault string) Label {
	return Label{PT: agent.FaultLabel(fault, "pt"), EN: agent.FaultLabel(fault, "en")}
}

// Fault is one open fault of a device.
type Fault struct {
	Name  string     `json:"name"`
	Label Label      `json:"label"`
	Since *time.Time `json:"since"`
}

// Measurements are a device's latest reported values; a field the device
// never reported is absent.
type Measurements struct {
	Voltage     *float64 `json:"voltage,omitempty"`
	Current     *float64 `json:"current,omitempty"`
	Power       *float64 `json:"power,omitempty"`
	PowerFactor *float64 `json:"power_factor,omitempty"`
	Energy      *float64 `json:"energy,omitempty"`
	LampOn      *bool    `json:"lamp_on,omitempty"`
	Dim         *float64 `json:"dim,omitempty"`
	Lux         *float64 `json:"lux,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	BurnHours   *float64 `json:"burn_hours,omitempty"`
	SwitchCount *float64 `json:"switch_count,omitempty"`
}

// MeasurementsOf keeps the fields the reading has.
func MeasurementsOf(r agent.Reading) Measurements {
	var m Measurements
	f := func(field agent.Field, v float64) *float64 {
		if !r.Has(field) {
			return nil
		}
		return &v
	}
	m.Voltage = f(agent.FieldVoltage, r.Voltage)
	m.Current = f(agent.FieldCurrent, r.Current)
	m.Power = f(agent.FieldPower, r.Power)
	m.PowerFactor = f(agent.FieldPowerFactor, r.PowerFactor)
	m.Energy = f(agent.FieldEnergy, r.Energy)
	m.Dim = f(agent.FieldDim, r.Dim)
	m.Lux = f(agent.FieldLux, r.Lux)
	m.Temperature = f(agent.FieldTemperature, r.Temperature)
	m.BurnHours = f(agent.FieldBurnHours, r.BurnHours)
	m.SwitchCount = f(agent.FieldSwitchCount, r.SwitchCount)
	if r.Has(agent.FieldLampOn) {
		on := r.LampOn
		m.LampOn = &on
	}
	return m
}

// HistoryPoint is one half hour of a device's recent power and voltage;
// null where the device reported none in that half hour.
type HistoryPoint struct {
	At      time.Time `json:"at"`
	Power   *float64  `json:"power"`
	Voltage *float64  `json:"voltage"`
}

// Device is one device, as /api/devices lists it and /api/devices/{nameplate}
// returns it (with History).
type Device struct {
	Nameplate  string `json:"nameplate_num"`
	InRegistry bool   `json:"in_registry"`
	Online     bool   `json:"online"`
	// LastSeen is the last sign of life since the agent started.
	LastSeen *time.Time `json:"last_seen"`
	// ReadingAt is when the newest telemetry was measured.
	ReadingAt *time.Time   `json:"reading_at"`
	Reading   Measurements `json:"reading"`
	// Faults are the open faults, oldest first; [] when none.
	Faults []Fault `json:"faults"`
	// Alarms are the controller's own alarms active now.
	Alarms []string `json:"alarms"`
	// Site is the registry's address block (empty for devices not in it).
	Site agent.Site `json:"site"`
	// Lat and Lon: the registry's position, else the device's own reports.
	Lat          *float64 `json:"lat"`
	Lon          *float64 `json:"lon"`
	NominalPower float64  `json:"nominal_power,omitempty"`
	// History is the last 24 h, oldest first; only for one device.
	History []HistoryPoint `json:"history,omitempty"`
}

// DeviceOf converts the detector's view; History is kept when withHistory.
func DeviceOf(v agent.DeviceView, withHistory bool) Device {
	d := Device{
		Nameplate:    v.Nameplate,
		InRegistry:   v.InRegistry,
		Online:       v.Online,
		LastSeen:     TimePtr(v.LastSeen),
		ReadingAt:    TimePtr(v.ReadingAt),
		Reading:      MeasurementsOf(v.Reading),
		Faults:       make([]Fault, 0, len(v.Faults)),
		Alarms:       append([]string{}, v.Alarms...),
		Site:         v.Info.Site,
		NominalPower: v.Info.NominalPower,
	}
	for _, f := range v.Faults {
		d.Faults = append(d.Faults, Fault{Name: f.Name, Label: FaultLabels(f.Name), Since: TimePtr(f.Since)})
	}
	if v.HasPosition {
		lat, lon := v.Lat, v.Lon
		d.Lat, d.Lon = &lat, &lon
	}
	if withHistory {
		d.History = make([]HistoryPoint, 0, len(v.History))
		for _, h := range v.History {
			d.History = append(d.History, HistoryPoint{At: h.At.UTC(), Power: nonNegative(h.Power), Voltage: nonNegative(h.Voltage)})
		}
	}
	return d
}

// nonNegative maps the detector's −1 ("not reported") to null.
func nonNegative(v float64) *float64 {
	if v < 0 {
		return nil
	}
	return &v
}

// DeviceList is GET /api/devices.
type DeviceList struct {
	// Total is how many devices matched; Count how many are in Devices
	// (fewer when limit or offset cut the list).
	Total   int      `json:"total"`
	Count   int      `json:"count"`
	Offset  int      `json:"offset"`
	Devices []Device `json:"devices"`
}

// Ticket is one ticket as /api/tickets lists it.
type Ticket struct {
	Protocol   int64  `json:"id_external_protocol"`
	State      string `json:"state"`
	Fault      string `json:"fault"`
	FaultLabel Label  `json:"fault_label"`
	Nameplate  string `json:"nameplate_num"`
	// IDDemanda is the API's id once created, null before.
	IDDemanda *int64 `json:"id_demanda"`
	Attempts  int    `json:"attempts"`
	// LastError and LastStatus are the last failed answer ("" and 0 when
	// none); ResponseBody its body, cut to 1 KiB.
	LastError    string `json:"last_error"`
	LastStatus   int    `json:"last_status"`
	ResponseBody string `json:"response_body,omitempty"`
	// Uncertain: an earlier create ended without a definite answer.
	Uncertain bool `json:"uncertain"`
	// CancelWanted: the fault cleared while a create was uncertain; the
	// ticket is cancelled once it is known to exist.
	CancelWanted  bool       `json:"cancel_wanted"`
	Description   string     `json:"description"`
	Site          agent.Site `json:"site"`
	Since         *time.Time `json:"since"`
	RaisedAt      *time.Time `json:"raised_at"`
	CreatedAt     *time.Time `json:"created_at"`
	UpdatedAt     *time.Time `json:"updated_at"`
	SentAt        *time.Time `json:"sent_at"`
	ClearedAt     *time.Time `json:"cleared_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

// maxResponseBody bounds a ticket's response body in lists.
const maxResponseBody = 1024

// TicketOf converts a stored ticket.
func TicketOf(t agent.Ticket) Ticket {
	out := Ticket{
		Protocol:      t.Protocol,
		State:         string(t.State),
		Fault:         t.Fault,
		FaultLabel:    FaultLabels(t.Fault),
		Nameplate:     t.Nameplate,
		Attempts:      t.Attempts,
		LastError:     t.LastError,
		LastStatus:    t.LastStatus,
		ResponseBody:  truncate(t.ResponseBody, maxResponseBody),
		Uncertain:     t.Uncertain,
		CancelWanted:  t.CancelWanted,
		Description:   t.Description,
		Site:          t.Site,
		Since:         TimePtr(t.Since),
		RaisedAt:      TimePtr(t.RaisedAt),
		CreatedAt:     TimePtr(t.CreatedAt),
		UpdatedAt:     TimePtr(t.UpdatedAt),
		SentAt:        TimePtr(t.SentAt),
		ClearedAt:     TimePtr(t.ClearedAt),
		FinishedAt:    TimePtr(t.FinishedAt),
		LastAttemptAt: TimePtr(t.LastAttemptAt),
		NextAttemptAt: TimePtr(t.NextAttemptAt),
	}
	if t.IDDemanda != 0 {
		id := t.IDDemanda
		out.IDDemanda = &id
	}
	return out
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}

// TicketList is GET /api/tickets.
type TicketList struct {
	// State is the filter ("" for all); Count how many are listed.
	State     string   `json:"state"`
	Nameplate string   `json:"nameplate_num"`
	Count     int      `json:"count"`
	Limit     int      `json:"limit"`
	Tickets   []Ticket `json:"tickets"`
}

// RetryResult is POST /api/tickets/{id}/retry.
type RetryResult struct {
	// Ticket is the ticket after the retry. Its id_external_protocol
	// differs from the one asked for when the ticket had lost a protocol
	// collision: it was renumbered (RenumberedFrom is then the old number).
	Ticket         Ticket `json:"ticket"`
	RenumberedFrom int64  `json:"renumbered_from,omitempty"`
}

// RetryFailedResult is POST /api/tickets/retry-failed.
type RetryFailedResult struct {
	Retried int `json:"retried"`
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// ProbeResult is the JSON of /healthz and /readyz.
type ProbeResult struct {
	Status string `json:"status"` // "ok" or "fail"
	Reason string `json:"reason,omitempty"`
}
