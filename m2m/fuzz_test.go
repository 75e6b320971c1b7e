package m2m

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// FuzzParseCreateResponse: whatever a server answers, parsing never panics,
// an accepted id is never negative, and an accepted id survives a round
// trip. The seed corpus is below and in testdata/fuzz.
func FuzzParseCreateResponse(f *testing.F) {
	for _, s := range []string{
		`{"id_demanda": 0, "operacao": "cria", "data_recebido": "string", "status": "ok"}`,
		`{"id_demanda": 1234, "operacao": "cria", "data_recebido": 1711217789710, "status": "ok"}`,
		`{"id_demanda": "77"}`,
		`{"id_demanda": 1e3}`,
		`{"id_demanda": 9223372036854775807}`,
		`{"id_demanda": 9223372036854775808}`,
		`{"id_demanda": -0}`,
		`{"id_demanda": {"a": 1}}`,
		`{"id_demanda": 1, "id_demanda": 2}`,
		`[]`, `null`, `""`, `{`, `<html></html>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseCreateResponse(body)
		if err != nil {
			if r != (createResponse{}) {
				t.Fatalf("error %v with a non-zero result %+v", err, r)
			}
			return
		}
		if r.IDDemanda < 0 {
			t.Fatalf("negative id %d from %q", r.IDDemanda, body)
		}
		again, err := parseCreateResponse([]byte(`{"id_demanda":` + strconv.FormatInt(r.IDDemanda, 10) + `}`))
		if err != nil || again.IDDemanda != r.IDDemanda {
			t.Fatalf("id %d does not round-trip: %+v, %v", r.IDDemanda, again, err)
		}
	})
}

// FuzzParseRetryAfter: never panics, never negative, never past the cap,
// and 0 when unreadable; digits alone are always readable.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "  7 ", "Fri, 04 Dec 2026 21:01:00 GMT", "Friday, 04-Dec-26 21:00:30 GMT",
		"Fri Dec  4 21:00:30 2026", "99999999999999999999", "-1", "1.5", "", "soon"} {
		f.Add(s, int64(1796418000))
	}
	f.Fuzz(func(t *testing.T, v string, unix int64) {
		now := time.Unix(unix%(1<<40), 0)
		d, ok := ParseRetryAfter(v, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v out of range", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v but not ok", v, d)
		}
		if isDigits(v) && !ok {
			t.Fatalf("digits %q not readable", v)
		}
	})
}

// FuzzEncodeCreate: any text in a ticket gives a JSON body with all the
// documented keys, or a clear ErrInvalidInput; never a panic.
func FuzzEncodeCreate(f *testing.F) {
	f.Add("IP05", "Lâmpada apagada", "Avenida Cristovão Colombo, 485", "38010-000", "-19.7472", int64(7), 1)
	f.Add("", "", "", "", "", int64(0), 0)
	f.Add("a\xffb", "<&>\u2028", "\x00", "\"", "\\", int64(1<<62), -5)
	f.Fuzz(func(t *testing.T, nameplate, desc, addr, zip, lat string, protocol int64, number int) {
		tk := &agent.Ticket{TicketDraft: agent.TicketDraft{Nameplate: nameplate, Description: desc,
			Site: agent.Site{Address: addr, ZipCode: zip, Latitude: lat, AddressNumber: number}}, Protocol: protocol}
		b, err := EncodeCreate(tk, docDefaults())
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("not JSON: %v: %q", err, b)
		}
		if len(m) != 22 {
			t.Fatalf("%d keys in %s", len(m), b)
		}
		if string(m["external_protocol"]) != strconv.Quote(strconv.FormatInt(protocol, 10)) {
			t.Fatalf("external_protocol %s for %d", m["external_protocol"], protocol)
		}
	})
}
