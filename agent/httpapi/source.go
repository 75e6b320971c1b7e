package httpapi

import (
	"context"
	"errors"

	"github.com/edge-agent/edge-agent/agent"
)

// Sentinel errors. A Source wraps one of them so that the handlers answer
// with the right status code without parsing messages.
var (
	// ErrNotFound: no such device or ticket (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request does not fit the current state, e.g. a
	// retry of a ticket that is not failed (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: bad input (400).
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: the part that would answer is not running or not
	// reachable, e.g. the store is closed (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrNoToken: ServeTCP or Serve was asked to listen beyond loopback
	// without EDGE_HTTP_TOKEN.
	ErrNoToken = errors.New("refusing to serve beyond loopback without EDGE_HTTP_TOKEN")
	// ErrSocketInUse: another live process answers on the control socket.
	ErrSocketInUse = errors.New("control socket in use by a live process")
)

// TicketQuery selects tickets. Zero fields select everything.
type TicketQuery struct {
	State agent.TicketState
	// Nameplate selects one device's tickets.
	Nameplate string
	// Limit caps the result (newest first); 0 means the Source's own cap.
	Limit int
}

// Source is what the handlers need of the running agent. cmd/edge-agent
// implements it over the detector, the store, the MQTT subscriber and the
// syncer; the handlers never see those types. Every method must be safe for
// concurrent use and must not block for long: they are called per request and
// per metrics scrape.
type Source interface {
	// Status returns the gateway's state now. It must be cheap (counters,
	// no scan of tickets or devices): the page asks every 10 s and every
	// scrape asks once. Parts that cannot be read are reported in the
	// snapshot (Store.Error, …), not as an error; Assess is called by the
	// handler, not by the Source.
	Status(ctx context.Context) Snapshot
	// Devices returns every device's state, faulty devices first, then by
	// nameplate.
	Devices(ctx context.Context) ([]agent.DeviceView, error)
	// Device returns one device; ErrNotFound when unknown.
	Device(ctx context.Context, nameplate string) (agent.DeviceView, error)
	// Tickets returns tickets newest first.
	Tickets(ctx context.Context, q TicketQuery) ([]agent.Ticket, error)
	// Ticket returns one ticket by id_external_protocol; ErrNotFound.
	Ticket(ctx context.Context, protocol int64) (agent.Ticket, error)
	// Retry puts a failed ticket back in the queue and wakes the syncer.
	// It returns the ticket as it is now (it may carry a new protocol
	// after a protocol collision). ErrNotFound, ErrConflict when not failed.
	Retry(ctx context.Context, protocol int64) (agent.Ticket, error)
	// RetryFailed retries every failed ticket and returns how many.
	RetryFailed(ctx context.Context) (int, error)
	// Ready returns nil when the agent can do its job (the store is open
	// and the broker connected), else an error saying why.
	Ready(ctx context.Context) error
	// Healthy returns nil while the agent's loops are turning, else an
	// error naming the loop that stalled.
	Healthy(ctx context.Context) error
}
