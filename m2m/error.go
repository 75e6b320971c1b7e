package m2m

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edge-agent/edge-agent/agent"
)

// Sentinels, found with errors.Is through an *Error.
var (
	// ErrConfig wraps every problem New finds in a Config.
	ErrConfig = errors.New("invalid m2m configuration")
	// ErrInvalidInput is a request the client refuses to send (an empty
	// nameplate, a body that is not JSON, a non-finite measurement): a
	// permanent failure that no retry can fix.
	ErrInvalidInput = errors.New("invalid m2m request")
	// ErrStatus is wrapped by every *Error that carries an HTTP answer other
	// than 2xx.
	ErrStatus = errors.New("m2m answer")
)

// Call names, as in Error.Call, the Observe hook and the debug log.
const (
	CallCreate        = "create"
	CallCancel        = "cancel"
	CallUpdateDevices = "update_devices"
	CallUpdateDevice  = "update_device"
	// CallUpdateAttributes names the combined error of UpdateAttributes.
	CallUpdateAttributes = "update_attributes"
)

// Error is the classified failure of one call. It implements
// agent.APIError. A 409 on create and a 404 on cancel are Errors too, with
// the outcomes agent.OutcomeExists and agent.OutcomeGone: the caller decides
// what they mean for the ticket.
type Error struct {
	// Call is which call failed (CallCreate, ...).
	Call string
	// Devices lists the nameplates that were not applied, for the
	// attribute calls.
	Devices []string

	outcome        agent.Outcome
	status         int
	body           string
	retryAfter     time.Duration
	maybeDelivered bool
	err            error
}

var _ agent.APIError = (*Error)(nil)

// Outcome is the class of the failure.
func (e *Error) Outcome() agent.Outcome { return e.outcome }

// StatusCode is the HTTP status of the answer, 0 when none came.
func (e *Error) StatusCode() int { return e.status }

// ResponseBody is the answer's body, at most MaxResponseBody bytes.
func (e *Error) ResponseBody() string { return e.body }

// RetryAfter is the answer's Retry-After, 0 when absent or unreadable.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// MaybeDelivered is true when the request may have reached the API without
// a definite answer: a timeout or a lost connection after the request was
// written, or a 500/502/504, which an origin or a proxy in front of it may
// send after the work was done. False when nothing was sent (dial refused,
// DNS, TLS, a local refusal) and for every other answer.
func (e *Error) MaybeDelivered() bool { return e.maybeDelivered }

// Retryable reports whether trying again later may succeed.
func (e *Error) Retryable() bool { return e.outcome == agent.OutcomeRetryable }

// Permanent reports whether trying again cannot succeed.
func (e *Error) Permanent() bool { return e.outcome == agent.OutcomePermanent }

// Unwrap gives the cause: a transport or context error, ErrStatus,
// ErrInvalidInput, or (for UpdateAttributes) the joined causes.
func (e *Error) Unwrap() error { return e.err }

// NotApplied lists the devices an attribute update did not apply (nil for
// the other calls): the caller can count the rest as synced.
func (e *Error) NotApplied() []string { return e.Devices }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "m2m %s: %s", e.Call, e.outcome)
	if e.status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.status)
	}
	if len(e.Devices) > 0 {
		fmt.Fprintf(&b, ": %d device(s) not applied", len(e.Devices))
	}
	if e.err != nil && !errors.Is(e.err, ErrStatus) {
		fmt.Fprintf(&b, ": %v", e.err)
	}
	if e.body != "" {
		fmt.Fprintf(&b, ": %s", snippet(e.body, 200))
	}
	return b.String()
}

// classify maps an HTTP status of a call to its outcome.
func classify(call string, status int) agent.Outcome {
	switch {
	case status >= 200 && status <= 299:
		return agent.OutcomeOK
	case status == http.StatusConflict && call == CallCreate:
		return agent.OutcomeExists
	case status == http.StatusNotFound && call == CallCancel:
		return agent.OutcomeGone
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500 && status <= 599:
		return agent.OutcomeRetryable
	}
	// Other 4xx, and 3xx (redirects are not followed: a POST must not turn
	// into a GET, and a redirect means the base URL is wrong), and anything
	// out of range: retrying the same request cannot help.
	return agent.OutcomePermanent
}

// answerMaybeDelivered reports whether an HTTP answer leaves the request's
// effect unknown. 500 is an origin failing, possibly after its commit; 502
// and 504 are a proxy that lost or gave up on the origin, which may have
// done the work. 503, 429, 408 and 425 are refusals before any work.
func answerMaybeDelivered(status int) bool {
	return status == http.StatusInternalServerError || status == http.StatusBadGateway ||
		status == http.StatusGatewayTimeout
}

// maxRetryAfter caps a server's Retry-After: a typo of the API must not
// park the queue for years.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3), relative to now. It returns false for an empty or
// unreadable value; a date in the past is 0 and true. The result is at most
// 24 h.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			// All digits but too large for int64 or the cap: the server
			// means "a long time".
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		return 0, true
	}
	if d > maxRetryAfter {
		d = maxRetryAfter
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// snippet shortens s for an error message or a log line.
func snippet(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so that a log line stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
