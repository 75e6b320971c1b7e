package m2mtest

import (
	"encoding/json"
	"time"
)

// Counts are the simulator's totals since start or the last Reset. They
// are kept however long it runs.
type Counts struct {
	Requests         int64 `json:"requests"`           // API requests received (not /_sim/)
	Created          int64 `json:"created"`            // tickets created (201)
	Conflicts        int64 `json:"conflicts"`          // 409 to a create
	Cancelled        int64 `json:"cancelled"`          // cancels accepted (200)
	CancelNotFound   int64 `json:"cancel_not_found"`   // 404 to a cancel
	ManyUpdates      int64 `json:"many_updates"`       // many-devices calls applied
	OneUpdates       int64 `json:"one_updates"`        // one-device calls applied
	DevicesUpdated   int64 `json:"devices_updated"`    // device updates applied, by either call
	Invalid          int64 `json:"invalid"`            // 400 and 422
	Unauthorized     int64 `json:"unauthorized"`       // 401 and 403
	NotFound         int64 `json:"not_found"`          // 404 for a path or an instance
	MethodNotAllowed int64 `json:"method_not_allowed"` // 405, including the many call when unsupported
	Down             int64 `json:"down"`               // 503 because Down
	InjectedErrors   int64 `json:"injected_errors"`    // ErrorRate answers
	Throttled        int64 `json:"throttled"`          // 429
	LostAnswers      int64 `json:"lost_answers"`       // took effect, answer dropped
	MaxInFlight      int64 `json:"max_in_flight"`      // most API requests seen at once
}

// TicketRecord is one ticket the simulator created.
type TicketRecord struct {
	Protocol  int64     `json:"id_external_protocol"`
	IDDemanda int64     `json:"id_demanda"`
	Nameplate string    `json:"nameplate_num"`
	Origin    string    `json:"cod_external_ticket_origin"`
	CreatedAt time.Time `json:"created_at"`
	// Conflicts counts the 409s answered to later creates of this protocol.
	Conflicts int `json:"conflicts"`
	// LostAnswers counts creates and cancels of it whose answer was dropped.
	LostAnswers int `json:"lost_answers"`
	// Body is the accepted create body; kept for the last KeepBodies tickets.
	Body          json.RawMessage `json:"body,omitempty"`
	Cancelled     bool            `json:"cancelled"`
	CancelledAt   time.Time       `json:"cancelled_at,omitzero"`
	Justification string          `json:"justification,omitempty"`
	// CancelNotFound counts the 404s answered to cancels after it was
	// cancelled.
	CancelNotFound int `json:"cancel_not_found"`
}

// DeviceRecord is the attributes of one device as last applied.
type DeviceRecord struct {
	Nameplate   string          `json:"nameplate_num"`
	Updates     int             `json:"updates"`
	ManyUpdates int             `json:"many_updates"`
	OneUpdates  int             `json:"one_updates"`
	Attributes  json.RawMessage `json:"attributes"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// RequestRecord is one API request as received and answered.
type RequestRecord struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Path   string    `json:"path"` // as sent, escaped
	Call   string    `json:"call"` // create, cancel, update_devices, update_device, or ""
	Status int       `json:"status"`
	// Outcome: created, conflict, cancelled, not_found, updated, invalid,
	// unauthorized, forbidden, method_not_allowed, unknown_instance, down,
	// injected_error, throttled, lost, too_large.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Body    string `json:"body,omitempty"` // the request body, at most 4 KiB
}

// Record is a snapshot of everything the simulator received.
type Record struct {
	Counts  Counts         `json:"counts"`
	Tickets []TicketRecord `json:"tickets"` // by protocol
	Devices []DeviceRecord `json:"devices"` // by nameplate
	// Requests are the last KeepRequests requests, oldest first.
	Requests []RequestRecord `json:"requests"`
}

// Ticket returns the record of one protocol.
func (r Record) Ticket(protocol int64) (TicketRecord, bool) {
	for _, t := range r.Tickets {
		if t.Protocol == protocol {
			return t, true
		}
	}
	return TicketRecord{}, false
}

// Device returns the record of one nameplate.
func (r Record) Device(nameplate string) (DeviceRecord, bool) {
	for _, d := range r.Devices {
		if d.Nameplate == nameplate {
			return d, true
		}
	}
	return DeviceRecord{}, false
}

// ring keeps the last n request records.
type ring struct {
	buf  []RequestRecord
	next int
	full bool
}

func (r *ring) add(rec RequestRecord) {
	if len(r.buf) == 0 {
		return
	}
	r.buf[r.next] = rec
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *ring) list() []RequestRecord {
	if !r.full {
		return append([]RequestRecord(nil), r.buf[:r.next]...)
	}
	out := make([]RequestRecord, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
