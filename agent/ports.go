package agent

import (
	"context"
	"errors"
	"time"
)

// This file declares what the agent needs of the outside packages. The
// concrete *store.Store and *m2m.Client satisfy these; cmd/edge-agent wires
// them and asserts it at compile time. Tests use hand-written fakes.

// TicketChange is one fault change to persist: a Raise makes a pending
// ticket from Draft; a Clear suppresses or cancels the open ticket of
// (Nameplate, Fault).
type TicketChange struct {
	Kind EventKind
	// Draft is the new ticket, for a Raise. Its Nameplate and Fault name it.
	Draft TicketDraft
	// For a Clear: which fault of which device, when it cleared, whether a
	// sent ticket must be cancelled (EDGE_CANCEL_ON_CLEAR) and with what
	// justification.
	Nameplate     string
	Fault         string
	ClearedAt     time.Time
	Cancel        bool
	Justification string
}

// ChangeResult says what a TicketChange did. Changed is false when a Raise
// found an open ticket for the same fault (it is returned, nothing is
// written) or a Clear found no open ticket (Ticket is zero).
type ChangeResult struct {
	Ticket  Ticket
	Changed bool
}

// ErrStoreFull is wrapped by the store's errors when a write does not fit
// under its size cap and nothing finished is left to prune.
var ErrStoreFull = errors.New("store is full")

// TicketStore is the durable memory of tickets.
type TicketStore interface {
	// ApplyChanges applies the changes in order, in one transaction that is
	// group-committed with those of concurrent callers, and returns once it
	// is durable. A Raise numbers its ticket (id_external_protocol) in the
	// same transaction.
	ApplyChanges(ctx context.Context, changes []TicketChange) ([]ChangeResult, error)
	// UpdateTicket loads the ticket, lets fn change it, checks the state
	// transition, re-indexes and saves it durably (group-committed). fn may
	// be called more than once and must depend only on its argument.
	UpdateTicket(ctx context.Context, protocol int64, fn func(*Ticket) error) (Ticket, error)
	// DueTickets returns up to limit queued tickets (pending or
	// cancel_pending) whose NextAttemptAt is not after now, in protocol
	// (raise) order, and the earliest NextAttemptAt of the queued tickets
	// not returned (zero when there are none). When more than limit are
	// due, next is now: the scan stops there instead of walking the rest
	// of the queue.
	DueTickets(now time.Time, limit int) (due []Ticket, next time.Time, err error)
	// Ticket returns one ticket by its protocol.
	Ticket(protocol int64) (Ticket, error)
	// OpenFaults lists the faults with an open ticket, to restore the
	// detector at start-up.
	OpenFaults() ([]ActiveFault, error)
}

// AttributeRecord is a device's coalesced attributes and the version the
// store gave them; marking a record synced clears its dirty flag only if no
// newer version was written meanwhile.
type AttributeRecord struct {
	Attributes DeviceAttributes
	Version    uint64
}

// AttributeStore keeps one coalesced attribute record per device.
type AttributeStore interface {
	// PutAttributes writes the latest attributes of the given devices and
	// marks them dirty, durably, in one transaction.
	PutAttributes(ctx context.Context, attrs []DeviceAttributes) error
	// DirtyAttributes returns up to limit dirty records.
	DirtyAttributes(limit int) ([]AttributeRecord, error)
	// MarkAttributesSynced clears the dirty flag of records still at the
	// given versions.
	MarkAttributesSynced(ctx context.Context, recs []AttributeRecord) error
}

// CreateResult is what a 201 to a create says.
type CreateResult struct {
	IDDemanda int64
	// Body is the raw answer, kept on the ticket for the record.
	Body string
}

// TicketAPI is the cloud's ticket calls. Errors returned are APIError.
type TicketAPI interface {
	CreateTicket(ctx context.Context, body []byte) (CreateResult, error)
	CancelTicket(ctx context.Context, protocol int64, justification string) error
}

// AttributeAPI is the cloud's device attribute calls. UpdateAttributes sends
// the many-devices call in chunks, falling back to the one-device call when
// the many call is not supported (404/405), and returns nil only when every
// device was applied.
type AttributeAPI interface {
	UpdateAttributes(ctx context.Context, attrs []DeviceAttributes) error
}

// PartialError is an AttributeAPI error that names the devices not applied;
// the others of the call were applied.
type PartialError interface {
	error
	NotApplied() []string
}

// APIError is the classified error of one API call; the m2m package's
// errors implement it. Callers never parse status codes or messages.
type APIError interface {
	error
	Outcome() Outcome
	// StatusCode is the HTTP status, 0 when there was no answer.
	StatusCode() int
	// ResponseBody is the answer's body (size-limited), "" when none.
	ResponseBody() string
	// RetryAfter is the server's Retry-After, 0 when absent.
	RetryAfter() time.Duration
	// MaybeDelivered is true when the request may have reached the API
	// although no definite answer came back (timeout, connection lost after
	// writing). False for answers, and for failures before sending (dial
	// refused, DNS).
	MaybeDelivered() bool
}
