package m2m

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// docExample is the create body of the API documentation, verbatim.
const docExample = `{
    "cod_external_ticket_origin": "tg",
    "ticket_origin_type_id": 107,
    "id_external_protocol": 7,
    "external_protocol": "7",
    "service_code": "m2m",
    "justification": null,
    "description": "",
    "id_worksite": 1,
    "state_abbreviation": "MG",
    "municipality": "Uberaba",
    "neighborhood": "",
    "address": "Avenida Cristovão Colombo, 485",
    "address_number": 1,
    "zip_code": null,
    "latitude": null,
    "longitude": null,
    "reference_point": "",
    "reporter": "Nox Manager",
    "reporter_phone": null,
    "reporter_birth_date": null,
    "nameplate_num": "IP05",
    "age_majority_checkbox": 0
}`

func docTicket() *agent.Ticket {
	return &agent.Ticket{
		TicketDraft: agent.TicketDraft{
			Nameplate: "IP05",
			Site: agent.Site{State: "MG", Municipality: "Uberaba",
				Address: "Avenida Cristovão Colombo, 485", AddressNumber: 1},
		},
		Protocol: 7,
	}
}

func docDefaults() TicketDefaults {
	return TicketDefaults{Origin: "tg", OriginTypeID: 107, ServiceCode: "m2m", WorksiteID: 1, Reporter: "Nox Manager"}
}

func TestEncodeCreateIsTheDocumentedExample(t *testing.T) {
	got, err := EncodeCreate(docTicket(), docDefaults())
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(docExample)); err != nil {
		t.Fatal(err)
	}
	// Byte for byte: same keys, same order, same JSON types, same nulls.
	if string(got) != want.String() {
		t.Errorf("create body differs from the documentation\n got: %s\nwant: %s", got, want.String())
	}
}

// decodeTypes returns each key's JSON type.
func decodeTypes(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	out := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			out[k] = "null"
		case string:
			out[k] = "string"
		case json.Number:
			if strings.ContainsAny(v.String(), ".eE") {
				out[k] = "float"
			} else {
				out[k] = "int"
			}
		default:
			out[k] = "other"
		}
	}
	return out
}

func TestEncodeCreateFieldsAndNulls(t *testing.T) {
	tk := &agent.Ticket{
		TicketDraft: agent.TicketDraft{
			Nameplate:   "LP-0042",
			Description: "Lâmpada apagada à noite <desde 21:10> & medições",
			Site: agent.Site{Address: "Rua A", Neighborhood: "Centro", Municipality: "Uberaba", State: "MG",
				ZipCode: "38010-000", ReferencePoint: "praça", Latitude: "-19.7472", Longitude: "-47.9381"},
		},
		Protocol: 9000000001,
	}
	d := docDefaults()
	d.ReporterPhone, d.ReporterBirthDate = "+55 34 0000-0000", "01/01/1970"
	b, err := EncodeCreate(tk, d)
	if err != nil {
		t.Fatal(err)
	}
	types := decodeTypes(t, b)
	want := map[string]string{
		"cod_external_ticket_origin": "string", "ticket_origin_type_id": "int", "id_external_protocol": "int",
		"external_protocol": "string", "service_code": "string", "justification": "null", "description": "string",
		"id_worksite": "int", "state_abbreviation": "string", "municipality": "string", "neighborhood": "string",
		"address": "string", "address_number": "int", "zip_code": "string", "latitude": "string",
		"longitude": "string", "reference_point": "string", "reporter": "string", "reporter_phone": "string",
		"reporter_birth_date": "string", "nameplate_num": "string", "age_majority_checkbox": "int",
	}
	if len(types) != len(want) {
		t.Errorf("%d keys, want %d: %v", len(types), len(want), types)
	}
	for k, w := range want {
		if types[k] != w {
			t.Errorf("%s is %q, want %q", k, types[k], w)
		}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m["external_protocol"] != "9000000001" || m["id_external_protocol"].(float64) != 9000000001 {
		t.Errorf("protocol fields: %v %v", m["external_protocol"], m["id_external_protocol"])
	}
	if m["address_number"].(float64) != 0 || m["age_majority_checkbox"].(float64) != 0 {
		t.Errorf("address_number %v, age_majority_checkbox %v; want 0, 0", m["address_number"], m["age_majority_checkbox"])
	}
	if m["description"] != tk.Description || !bytes.Contains(b, []byte("<desde 21:10> &")) {
		t.Errorf("description not sent as written: %s", b)
	}

	// Empty optional text is null, never a missing key, never "".
	tk.Site = agent.Site{}
	b, err = EncodeCreate(tk, docDefaults())
	if err != nil {
		t.Fatal(err)
	}
	types = decodeTypes(t, b)
	for _, k := range []string{"zip_code", "latitude", "longitude", "reporter_phone", "reporter_birth_date", "justification"} {
		if types[k] != "null" {
			t.Errorf("%s is %q, want null", k, types[k])
		}
	}
	for _, k := range []string{"address", "neighborhood", "municipality", "state_abbreviation", "reference_point"} {
		if types[k] != "string" {
			t.Errorf("%s is %q, want an (empty) string", k, types[k])
		}
	}
}

func TestEncodeCreateBadInput(t *testing.T) {
	ok := docTicket()
	for name, tc := range map[string]struct {
		t *agent.Ticket
		d TicketDefaults
	}{
		"nil ticket":   {nil, docDefaults()},
		"zero proto":   {&agent.Ticket{TicketDraft: agent.TicketDraft{Nameplate: "A"}}, docDefaults()},
		"neg proto":    {&agent.Ticket{TicketDraft: agent.TicketDraft{Nameplate: "A"}, Protocol: -1}, docDefaults()},
		"no nameplate": {&agent.Ticket{Protocol: 3}, docDefaults()},
		"no origin":    {ok, TicketDefaults{}},
	} {
		if _, err := EncodeCreate(tc.t, tc.d); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err %v, want ErrInvalidInput", name, err)
		}
	}
	// Invalid UTF-8 does not lose the ticket: the bad bytes become U+FFFD.
	bad := docTicket()
	bad.Description = "lamp \xff off"
	b, err := EncodeCreate(bad, docDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("lamp \uFFFD off")) {
		t.Errorf("invalid UTF-8 not replaced: %s", b)
	}
}

func TestParseCreateResponse(t *testing.T) {
	for _, tc := range []struct {
		body string
		id   int64
		date string
		ok   bool
	}{
		{`{"id_demanda": 0, "operacao": "cria", "data_recebido": "string", "status": "ok"}`, 0, "string", true},
		{`{"id_demanda": 1234, "operacao": "cria", "data_recebido": 1711217789710, "status": "ok"}`, 1234, "1711217789710", true},
		{`{"id_demanda": "77", "extra": {"x": [1,2]}, "data_recebido": "2024-03-23 18:16:29"}`, 77, "2024-03-23 18:16:29", true},
		{`{"id_demanda": 12.0}`, 12, "", true},
		{`{"id_demanda": 9007199254740993}`, 9007199254740993, "", true},
		{`{"id_demanda": -1}`, 0, "", false},
		{`{"id_demanda": 1.5}`, 0, "", false},
		{`{"id_demanda": null}`, 0, "", false},
		{`{"id_demanda": 1e30}`, 0, "", false},
		{`{"operacao": "cria"}`, 0, "", false},
		{`[1,2]`, 0, "", false},
		{`null`, 0, "", false},
		{``, 0, "", false},
		{`<html>bad gateway</html>`, 0, "", false},
	} {
		r, err := parseCreateResponse([]byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.body, err, tc.ok)
			continue
		}
		if tc.ok && (r.IDDemanda != tc.id || r.DataRecebido != tc.date) {
			t.Errorf("%s: got %+v, want id %d date %q", tc.body, r, tc.id, tc.date)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v  string
		d  time.Duration
		ok bool
	}{
		{"120", 120 * time.Second, true},
		{" 0 ", 0, true},
		{now.Add(90 * time.Second).Format(http1123), 90 * time.Second, true},
		{"Fri, 04 Dec 2026 20:00:00 GMT", 0, true},                 // in the past
		{"Friday, 04-Dec-26 21:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"99999999999999999999999", maxRetryAfter, true},
		{"86401", maxRetryAfter, true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	} {
		d, ok := ParseRetryAfter(tc.v, now)
		if d != tc.d || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, d, ok, tc.d, tc.ok)
		}
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 5 * time.Minute}
	one := func() float64 { return 0.999999999 }
	zero := func() float64 { return 0 }
	for attempt, wantCeil := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if d := b.Delay(attempt, zero); d != time.Second {
			t.Errorf("attempt %d, rnd 0: %v, want Min", attempt, d)
		}
		if d := b.Delay(attempt, one); d > wantCeil || d < wantCeil-time.Millisecond {
			t.Errorf("attempt %d, rnd ~1: %v, want ~%v", attempt, d, wantCeil)
		}
	}
	for _, attempt := range []int{9, 20, 62, 63, 64, 1000, 1 << 30} {
		if d := b.Delay(attempt, one); d > b.Max || d < b.Max-time.Millisecond {
			t.Errorf("attempt %d: %v, want ~Max", attempt, d)
		}
	}
	// Full jitter: draws spread over the whole range, never outside it.
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := b.Delay(5, nil)
		if d < b.Min || d > 32*time.Second {
			t.Fatalf("Delay(5) = %v, outside [1s, 32s]", d)
		}
		seen[d.Round(time.Second)] = true
	}
	if len(seen) < 20 {
		t.Errorf("only %d distinct seconds in 1000 draws: no jitter?", len(seen))
	}
	// Defaults, inverted bounds, bad random numbers.
	if d := (Backoff{}).Delay(0, zero); d != DefaultRetryMin {
		t.Errorf("zero Backoff: %v", d)
	}
	if d := (Backoff{Min: time.Minute, Max: time.Second}).Delay(3, one); d != time.Minute {
		t.Errorf("Max < Min: %v, want Min", d)
	}
	if d := b.Delay(-3, one); d != time.Second {
		t.Errorf("negative attempt: %v", d)
	}
	for _, f := range []float64{-1, 2, nan()} {
		if d := b.Delay(2, func() float64 { return f }); d < time.Second || d > 4*time.Second {
			t.Errorf("rnd %v: %v out of range", f, d)
		}
	}
}

func nan() float64 { return math.NaN() }
