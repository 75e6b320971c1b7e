package m2mtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Faults are the failures the simulator injects into the API calls (never
// into the /_sim/ control endpoints). Rates are shares in [0, 1], drawn
// per request from the seeded generator. The zero value injects nothing.
type Faults struct {
	// Down answers 503 to every call.
	Down bool
	// ErrorRate is the share of calls answered ErrorStatus before they
	// take effect.
	ErrorRate float64
	// ErrorStatus is the injected error's status, 500 to 599 (default 500).
	ErrorStatus int
	// ThrottleRate is the share of calls answered 429 before they take
	// effect.
	ThrottleRate float64
	// Latency delays every answer, plus a uniform draw in [0, Jitter).
	Latency, Jitter time.Duration
	// RetryAfter is the Retry-After header sent with 503 and 429: a number
	// of seconds or an HTTP-date; "" sends none.
	RetryAfter string
	// LoseAnswers is the share of calls that take effect (a ticket created
	// or cancelled, attributes applied) but whose answer is lost: the
	// connection is closed without a response. A create retried after that
	// meets 409.
	LoseAnswers float64
	// SlowBody trickles every answer's body: a pause of SlowBody before
	// each piece of 16 bytes (the status and headers go out at once).
	SlowBody time.Duration
}

// faultsJSON is the wire form: durations as Go duration text ("150ms").
type faultsJSON struct {
	Down         bool    `json:"down"`
	ErrorRate    float64 `json:"error_rate"`
	ErrorStatus  int     `json:"error_status,omitempty"`
	ThrottleRate float64 `json:"throttle_rate"`
	Latency      string  `json:"latency"`
	Jitter       string  `json:"jitter"`
	RetryAfter   string  `json:"retry_after"`
	LoseAnswers  float64 `json:"lose_answers"`
	SlowBody     string  `json:"slow_body"`
}

// MarshalJSON writes durations as text.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Down: f.Down, ErrorRate: f.ErrorRate, ErrorStatus: f.ErrorStatus, ThrottleRate: f.ThrottleRate,
		Latency: f.Latency.String(), Jitter: f.Jitter.String(), RetryAfter: f.RetryAfter,
		LoseAnswers: f.LoseAnswers, SlowBody: f.SlowBody.String(),
	})
}

// UnmarshalJSON reads the wire form onto f: keys absent keep f's values
// (so decoding onto the current faults is a merge, onto a zero Faults a
// replacement). Durations are Go duration text or integer milliseconds.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for k, v := range raw {
		var err error
		switch k {
		case "down":
			err = json.Unmarshal(v, &f.Down)
		case "error_rate":
			err = json.Unmarshal(v, &f.ErrorRate)
		case "error_status":
			err = json.Unmarshal(v, &f.ErrorStatus)
		case "throttle_rate":
			err = json.Unmarshal(v, &f.ThrottleRate)
		case "latency":
			f.Latency, err = parseDurationJSON(v)
		case "jitter":
			f.Jitter, err = parseDurationJSON(v)
		case "retry_after":
			err = json.Unmarshal(v, &f.RetryAfter)
		case "lose_answers":
			err = json.Unmarshal(v, &f.LoseAnswers)
		case "slow_body":
			f.SlowBody, err = parseDurationJSON(v)
		default:
			err = fmt.Errorf("unknown fault")
		}
		if err != nil {
			return fmt.Errorf("fault %q: %w", k, err)
		}
	}
	return nil
}

func parseDurationJSON(v json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if s == "" {
			return 0, nil
		}
		return time.ParseDuration(s)
	}
	var ms int64
	if err := json.Unmarshal(v, &ms); err != nil {
		return 0, fmt.Errorf("want a duration like \"150ms\" or integer milliseconds")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Validate reports the first problem of f.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_rate", f.ErrorRate}, {"throttle_rate", f.ThrottleRate}, {"lose_answers", f.LoseAnswers}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v: must be in [0, 1]", r.name, r.v)
		}
	}
	if f.ErrorStatus != 0 && (f.ErrorStatus < 500 || f.ErrorStatus > 599) {
		return fmt.Errorf("error_status %d: must be 500 to 599", f.ErrorStatus)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"latency", f.Latency}, {"jitter", f.Jitter}, {"slow_body", f.SlowBody}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v: must not be negative", d.name, d.v)
		}
	}
	if ra := strings.TrimSpace(f.RetryAfter); ra != "" {
		if _, err := strconv.ParseUint(ra, 10, 63); err != nil {
			if _, err := http.ParseTime(ra); err != nil {
				return fmt.Errorf("retry_after %q: want seconds or an HTTP-date", f.RetryAfter)
			}
		}
	}
	return nil
}

func (f Faults) errorStatus() int {
	if f.ErrorStatus == 0 {
		return http.StatusInternalServerError
	}
	return f.ErrorStatus
}
