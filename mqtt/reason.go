package mqtt

import (
	"errors"
	"slices"
	"strconv"
)

// Reason says why a message was rejected. The values are stable: they are
// the labels of the rejection metric and appear in the logs.
type Reason string

// Rejection reasons.
const (
	// ReasonBadTopic: the topic is not {prefix}/{nameplate}/telemetry|status
	// with a valid nameplate.
	ReasonBadTopic Reason = "bad_topic"
	// ReasonTooLarge: the payload exceeds Config.MaxPayload.
	ReasonTooLarge Reason = "too_large"
	// ReasonNotJSON: the telemetry payload is not valid JSON (trailing
	// garbage included).
	ReasonNotJSON Reason = "not_json"
	// ReasonWrongType: valid JSON, but not an object, or a known field has
	// the wrong JSON type.
	ReasonWrongType Reason = "wrong_type"
	// ReasonNonFinite: NaN or Infinity (not JSON, but what some encoders
	// write), or a number outside the float64 range.
	ReasonNonFinite Reason = "non_finite"
	// ReasonBadValue: a value outside physical sense (negative voltage, dim
	// outside 0..100, power factor outside 0..1, ...) or a bad alarm list.
	ReasonBadValue Reason = "bad_value"
	// ReasonBadTime: ts is a string but not an RFC 3339 time.
	ReasonBadTime Reason = "bad_time"
	// ReasonBadStatus: a status payload that is neither online/offline nor
	// {"online": bool}.
	ReasonBadStatus Reason = "bad_status"
	// ReasonRetained: a retained telemetry message replayed by the broker
	// on (re)subscription; it is an old reading, not a new one.
	ReasonRetained Reason = "retained"
	// ReasonOverload: a QoS 0 message arrived while Config.MaxInFlight
	// messages were being handled. QoS 1 messages are never dropped: the
	// broker's max_inflight_messages bounds them.
	ReasonOverload Reason = "overload"
)

// reasons lists every Reason in a fixed order; the counters are indexed by
// position in it.
var reasons = [...]Reason{
	ReasonBadTopic, ReasonTooLarge, ReasonNotJSON, ReasonWrongType, ReasonNonFinite,
	ReasonBadValue, ReasonBadTime, ReasonBadStatus, ReasonRetained, ReasonOverload,
}

// Reasons returns every rejection reason, so that a metric can expose all
// its labels from the start.
func Reasons() []Reason { return slices.Clone(reasons[:]) }

func (r Reason) index() int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return -1
}

// ErrRejected matches every *RejectError with errors.Is.
var ErrRejected = errors.New("message rejected")

// RejectError is a message refused by the decoder or the topic parser.
// Detail is for the debug log; Reason is for the metric.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string {
	if e.Detail == "" {
		return "message rejected: " + string(e.Reason)
	}
	return "message rejected: " + string(e.Reason) + ": " + e.Detail
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

func reject(r Reason, detail string) *RejectError { return &RejectError{Reason: r, Detail: detail} }

// quoteTrunc quotes s for a log detail, cut to a readable length: details
// come from untrusted payloads and topics.
func quoteTrunc(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
