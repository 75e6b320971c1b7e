package main

import (
	"fmt"
	"log/slog"
	"strconv"
)

// redacted is what every printed form of a set Secret shows.
const redacted = "[redacted]"

// Secret holds a credential (a token, a password, an API key). Every way of
// printing it — fmt verbs, JSON, text marshalling, slog — shows "[redacted]",
// or nothing when it is empty, so that "not set" stays visible. Reveal is the
// one way to get the value, for the single place that sends it.
//
// The value sits behind a pointer on purpose: when a Secret is reached by
// reflection through an unexported field (where fmt cannot call its methods),
// fmt prints the pointer's address, not the value.
type Secret struct {
	p *string
}

// NewSecret wraps a value.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{p: &v}
}

// Reveal returns the value. Call it only where the secret is sent.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsSet reports whether the secret holds a non-empty value.
func (s Secret) IsSet() bool { return s.p != nil && *s.p != "" }

// Equal compares the values (== on Secret compares pointers).
func (s Secret) Equal(o Secret) bool { return s.Reveal() == o.Reveal() }

// Len is the value's length in bytes, for checks that must not see it.
func (s Secret) Len() int { return len(s.Reveal()) }

func (s Secret) shown() string {
	if !s.IsSet() {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.shown() }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return strconv.Quote(s.shown()) }

// Format implements fmt.Formatter so that no verb (%x, %d, width, flags…)
// reaches the value: %q and %#v quote, every other verb prints plainly.
func (s Secret) Format(f fmt.State, verb rune) {
	out := s.shown()
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		out = strconv.Quote(out)
	}
	_, _ = f.Write([]byte(out))
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.shown())), nil }

// MarshalText implements encoding.TextMarshaler (used by slog's JSON handler
// for map keys, by encoding/xml, yaml and others).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// Set implements envconfig.Setter and flag.Value, so that envconfig can fill
// a Secret field. There is deliberately no UnmarshalText: it would let
// "[redacted]" from a marshalled config come back as a credential.
func (s *Secret) Set(v string) error {
	*s = NewSecret(v)
	return nil
}
