package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secretValue = "s3cr3t-Value-42"

func TestSecretPrintsRedacted(t *testing.T) {
	t.Parallel()
	s := NewSecret(secretValue)
	cases := []struct {
		format string
		want   string
	}{
		{"%v", "[redacted]"},
		{"%+v", "[redacted]"},
		{"%#v", `"[redacted]"`},
		{"%s", "[redacted]"},
		{"%q", `"[redacted]"`},
		{"%x", "[redacted]"},
		{"%X", "[redacted]"},
		{"%d", "[redacted]"},
		{"%20s", "[redacted]"},
		{"%.3s", "[redacted]"},
	}
	for _, tc := range cases {
		got := fmt.Sprintf(tc.format, s)
		if got != tc.want {
			t.Errorf("Sprintf(%q) = %q, want %q", tc.format, got, tc.want)
		}
		if ptr := fmt.Sprintf(tc.format, &s); strings.Contains(ptr, secretValue) {
			t.Errorf("Sprintf(%q, &s) shows the secret: %q", tc.format, ptr)
		}
	}
	if got := s.String(); got != "[redacted]" {
		t.Errorf("String() = %q", got)
	}
	if got := s.GoString(); got != `"[redacted]"` {
		t.Errorf("GoString() = %q", got)
	}
	if got := fmt.Sprint(s); got != "[redacted]" {
		t.Errorf("Sprint = %q", got)
	}
	if got := s.Reveal(); got != secretValue {
		t.Errorf("Reveal() = %q, want the value", got)
	}
	if !s.IsSet() || s.Len() != len(secretValue) {
		t.Errorf("IsSet/Len wrong: %v %d", s.IsSet(), s.Len())
	}
}

func TestSecretEmptyShowsNothing(t *testing.T) {
	t.Parallel()
	var zero Secret
	for _, s := range []Secret{zero, NewSecret("")} {
		if s.IsSet() || s.Reveal() != "" {
			t.Fatalf("empty secret reports a value")
		}
		for format, want := range map[string]string{"%v": "", "%s": "", "%q": `""`, "%#v": `""`} {
			if got := fmt.Sprintf(format, s); got != want {
				t.Errorf("empty Sprintf(%q) = %q, want %q", format, got, want)
			}
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != `""` {
			t.Errorf("empty JSON = %s, %v", b, err)
		}
	}
}

func TestSecretSetAndEqual(t *testing.T) {
	t.Parallel()
	var s Secret
	if err := s.Set(secretValue); err != nil {
		t.Fatal(err)
	}
	if !s.Equal(NewSecret(secretValue)) || s.Equal(NewSecret("other")) {
		t.Error("Equal compares wrongly")
	}
}

// holder has the shapes in which a Secret travels: exported, in a slice, in
// a map, behind a pointer, and in an unexported field (where fmt cannot call
// its methods and must fall back to printing the pointer).
type holder struct {
	Token   Secret
	List    []Secret
	ByName  map[string]Secret
	Ptr     *Secret
	hidden  Secret
	Headers []Header
}

func newHolder() holder {
	s := NewSecret(secretValue)
	return holder{
		Token: s, List: []Secret{s}, ByName: map[string]Secret{"k": s}, Ptr: &s, hidden: s,
		Headers: []Header{{Name: "X-Key", Value: s}},
	}
}

func TestSecretNestedNeverShown(t *testing.T) {
	t.Parallel()
	h := newHolder()
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{h, &h, h.Headers, h.Headers[0]} {
			if got := fmt.Sprintf(format, v); strings.Contains(got, secretValue) || strings.Contains(got, fmt.Sprintf("%x", secretValue)) {
				t.Errorf("Sprintf(%q, %T) shows the secret: %s", format, v, got)
			}
		}
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secretValue) || !strings.Contains(string(b), `"Token":"[redacted]"`) {
		t.Errorf("JSON = %s", b)
	}
	txt, err := NewSecret(secretValue).MarshalText()
	if err != nil || string(txt) != "[redacted]" {
		t.Errorf("MarshalText = %q, %v", txt, err)
	}
}

func TestSecretInSlog(t *testing.T) {
	t.Parallel()
	h := newHolder()
	for name, mk := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(mk(&buf))
		log.Info("secrets", "token", h.Token, "holder", h, "ptr", &h, "headers", h.Headers,
			slog.Any("any", h.Token), slog.Group("g", "s", h.Token))
		out := buf.String()
		if strings.Contains(out, secretValue) {
			t.Errorf("%s handler logged the secret: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s handler shows no [redacted] marker: %s", name, out)
		}
	}
}
