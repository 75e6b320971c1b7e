package agent

import (
	"encoding/json"
	"fmt"
	"time"
)

// TicketState is where a ticket stands in its life (CONTRACT §6).
type TicketState string

// Ticket states. The names are part of the contract (CLI, status API).
const (
	StatePending       TicketState = "pending"        // to be created at the API
	StateSent          TicketState = "sent"           // created there (201, or 409 after an uncertain try)
	StateCancelPending TicketState = "cancel_pending" // fault cleared after it was sent: cancel to send
	StateCancelled     TicketState = "cancelled"      // cancel accepted (2xx, or 404: not open there)
	StateSuppressed    TicketState = "suppressed"     // cleared before it was ever sent: never sent
	StateFailed        TicketState = "failed"         // a permanent answer; kept until an operator retries
)

// TicketStates lists every state, in lifecycle order, for counts and docs.
var TicketStates = []TicketState{
	StatePending, StateSent, StateCancelPending, StateCancelled, StateSuppressed, StateFailed,
}

// Valid reports whether s is one of the contract's states.
func (s TicketState) Valid() bool {
	for _, v := range TicketStates {
		if s == v {
			return true
		}
	}
	return false
}

// Queued reports whether a ticket in this state still has a request to make
// at the API. Queued tickets are never dropped by the store.
func (s TicketState) Queued() bool { return s == StatePending || s == StateCancelPending }

// transitions is the ticket state machine. A move not listed is illegal and
// refused by the store. Staying in the same state (to record an attempt, or a
// clear on a sent ticket when cancel-on-clear is off) is always legal for a
// non-terminal state.
var transitions = map[TicketState][]TicketState{
	StatePending:       {StateSent, StateSuppressed, StateFailed},
	StateSent:          {StateCancelPending},
	StateCancelPending: {StateCancelled, StateFailed},
	// retry: a failed create goes back to pending (or is suppressed when its
	// fault cleared meanwhile), a failed cancel back to cancel_pending.
	StateFailed:     {StatePending, StateCancelPending, StateSuppressed},
	StateCancelled:  nil,
	StateSuppressed: nil,
}

// Terminal reports whether no move leaves s.
func (s TicketState) Terminal() bool { return s == StateCancelled || s == StateSuppressed }

// ErrIllegalTransition is returned (wrapped) for a move the state machine refuses.
var ErrIllegalTransition = fmt.Errorf("illegal ticket state transition")

// CheckTransition returns nil when a ticket may move from one state to the
// other, and an error wrapping ErrIllegalTransition otherwise.
func CheckTransition(from, to TicketState) error {
	if !from.Valid() || !to.Valid() {
		return fmt.Errorf("%w: %q → %q: unknown state", ErrIllegalTransition, from, to)
	}
	if from == to && !from.Terminal() {
		return nil
	}
	for _, t := range transitions[from] {
		if t == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, from, to)
}

// Site is where a light point stands, as the ticket will tell the city. It
// is captured when the ticket is raised, from the device registry or the
// EDGE_TICKET_* defaults, so that later registry edits do not change a
// ticket already queued.
type Site struct {
	Address        string `json:"address,omitempty"`
	AddressNumber  int    `json:"address_number,omitempty"`
	Neighborhood   string `json:"neighborhood,omitempty"`
	Municipality   string `json:"municipality,omitempty"`
	State          string `json:"state_abbreviation,omitempty"`
	ZipCode        string `json:"zip_code,omitempty"`        // "" is sent as null
	ReferencePoint string `json:"reference_point,omitempty"` //
	Latitude       string `json:"latitude,omitempty"`        // decimal degrees as text; "" is sent as null
	Longitude      string `json:"longitude,omitempty"`       // decimal degrees as text; "" is sent as null
}

// TicketDraft is what the agent knows of a new ticket before the store
// numbers it.
type TicketDraft struct {
	Nameplate string `json:"nameplate"`
	Fault     string `json:"fault"`
	// RaisedAt is when the fault was confirmed; Since when it was first seen.
	RaisedAt time.Time `json:"raised_at"`
	Since    time.Time `json:"since"`
	// Reading holds the measurements that showed the fault.
	Reading     Reading `json:"reading"`
	Site        Site    `json:"site"`
	Description string  `json:"description"` // Brazilian Portuguese, for the city's crew
}

// Ticket is a fault's ticket as the store keeps it.
type Ticket struct {
	TicketDraft

	// Protocol is the id_external_protocol: EDGE_PROTOCOL_BASE plus a local
	// sequence number that is never reused. Fixed at creation and sent on
	// every retry, which is what makes a create idempotent at the API.
	Protocol int64       `json:"id_external_protocol"`
	State    TicketState `json:"state"`
	// CreateBody is the exact JSON the create call sends, built once when
	// the ticket is numbered.
	CreateBody json.RawMessage `json:"create_body,omitempty"`

	IDDemanda int64     `json:"id_demanda,omitempty"` // from the 201 answer
	SentAt    time.Time `json:"sent_at,omitzero"`     // when the API accepted the create

	ClearedAt     time.Time `json:"cleared_at,omitzero"`     // when the fault cleared, if it has
	Justification string    `json:"justification,omitempty"` // the cancel's justification
	// CancelWanted records a clear that must cancel the ticket once it is
	// known to exist at the API: set when the fault cleared while a create
	// was in flight or uncertain (the ticket may exist there, so it cannot
	// simply be suppressed), and EDGE_CANCEL_ON_CLEAR was on.
	CancelWanted bool `json:"cancel_wanted,omitempty"`

	Attempts      int       `json:"attempts"`
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// InFlight is written (durably) before each request is sent and cleared
	// with its answer. Found set at start-up, it means the agent died while
	// a request may have reached the API: the syncer turns it into Uncertain.
	InFlight bool `json:"in_flight,omitempty"`
	// Uncertain is set when an earlier create attempt ended without a
	// definite answer (timeout, connection lost after the request may have
	// been delivered, or a crash mid-request): a later 409 then means the
	// ticket is ours and was created. Without it a 409 is someone else's
	// ticket with our number (two gateways sharing a protocol range).
	Uncertain    bool   `json:"uncertain,omitempty"`
	LastError    string `json:"last_error,omitempty"`
	LastStatus   int    `json:"last_status,omitempty"` // HTTP status of the last answer, 0 for none
	ResponseBody string `json:"response_body,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"` // when it reached a state with nothing left to do
}

// Open reports whether the ticket stands for a fault still active: the
// detector must not raise the same fault of the same device again while an
// open ticket exists (CONTRACT §4: at most one open ticket per fault).
func (t *Ticket) Open() bool {
	switch t.State {
	case StatePending, StateSent, StateFailed:
		return t.ClearedAt.IsZero()
	}
	return false
}

// Outcome classifies an answer of the M2M API, so that callers never parse
// status codes or strings. The m2m package's errors report one.
type Outcome int

// Outcomes of one API call.
const (
	OutcomeOK        Outcome = iota // 2xx
	OutcomeExists                   // 409 on create: a ticket with this protocol exists there
	OutcomeGone                     // 404 on cancel: not (or no longer) open there; counts as done
	OutcomePermanent                // other 4xx: will not succeed by retrying
	OutcomeRetryable                // network error, timeout, 429, 5xx
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeExists:
		return "exists"
	case OutcomeGone:
		return "gone"
	case OutcomePermanent:
		return "permanent"
	case OutcomeRetryable:
		return "retryable"
	}
	return "unknown"
}
