package m2mtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// docBody is the documentation's create example.
const docBody = `{"cod_external_ticket_origin":"tg","ticket_origin_type_id":107,"id_external_protocol":7,
"external_protocol":"7","service_code":"m2m","justification":null,"description":"","id_worksite":1,
"state_abbreviation":"MG","municipality":"Uberaba","neighborhood":"","address":"Avenida Cristovão Colombo, 485",
"address_number":1,"zip_code":null,"latitude":null,"longitude":null,"reference_point":"","reporter":"Nox Manager",
"reporter_phone":null,"reporter_birth_date":null,"nameplate_num":"IP05","age_majority_checkbox":0}`

const ticketsURL = "/vendors/m2m/clients/69/tickets"

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, body string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// withField returns the doc body with one field replaced (raw JSON) or
// removed (raw == "").
func withField(t *testing.T, name, raw string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(docBody), &m); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(m, name)
	} else {
		m[name] = json.RawMessage(raw)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestCreateDocumentedAnswer(t *testing.T) {
	s := StartT(t, Options{Now: func() time.Time { return time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC) }})
	r := do(t, "POST", s.URL()+ticketsURL, docBody)
	if r.status != 201 {
		t.Fatalf("doc example: %d %s", r.status, r.body)
	}
	if r.body != `{"id_demanda":1,"operacao":"cria","data_recebido":"2026-12-04T21:00:00Z","status":"ok"}` {
		t.Errorf("answer %s", r.body)
	}
	r = do(t, "POST", s.URL()+ticketsURL, docBody)
	if r.status != 409 || !strings.Contains(r.body, "already exists") {
		t.Errorf("repeat: %d %s", r.status, r.body)
	}
	rec := s.Record()
	tr, ok := rec.Ticket(7)
	if !ok || tr.Nameplate != "IP05" || tr.Conflicts != 1 || tr.IDDemanda != 1 || string(tr.Body) != docBody {
		t.Errorf("record %+v", tr)
	}
}

func TestCreateChecksEveryField(t *testing.T) {
	s := StartT(t, Options{})
	wrong := map[kind]string{kString: `7`, kInt: `"7"`, kNullString: `12`, kFlag: `2`}
	for i, f := range createFields {
		r := do(t, "POST", s.URL()+ticketsURL, withField(t, f.name, ""))
		if r.status != 422 || !strings.Contains(r.body, `missing field \"`+f.name+`\"`) {
			t.Errorf("without %s: %d %s", f.name, r.status, r.body)
		}
		r = do(t, "POST", s.URL()+ticketsURL, withField(t, f.name, wrong[f.kind]))
		if r.status != 422 || !strings.Contains(r.body, f.name) {
			t.Errorf("%s = %s: %d %s", f.name, wrong[f.kind], r.status, r.body)
		}
		if f.kind != kNullString {
			r = do(t, "POST", s.URL()+ticketsURL, withField(t, f.name, "null"))
			if r.status != 422 {
				t.Errorf("%s = null: %d %s", f.name, r.status, r.body)
			}
		} else {
			// Nullable fields take a string too.
			body := withField(t, f.name, `"x"`)
			body = strings.Replace(body, `"id_external_protocol":7`, fmt.Sprintf(`"id_external_protocol":%d`, 100+i), 1)
			body = strings.Replace(body, `"external_protocol":"7"`, fmt.Sprintf(`"external_protocol":"%d"`, 100+i), 1)
			if r := do(t, "POST", s.URL()+ticketsURL, body); r.status != 201 {
				t.Errorf("%s as a string: %d %s", f.name, r.status, r.body)
			}
		}
	}
	for name, tc := range map[string]struct {
		body   string
		status int
		reason string
	}{
		"float int":     {withField(t, "ticket_origin_type_id", "107.0"), 422, "non-integer"},
		"unknown field": {withField(t, "extra", "1"), 422, `unknown field \"extra\"`},
		"mismatch":      {withField(t, "external_protocol", `"8"`), 422, "not id_external_protocol"},
		"zero protocol": {strings.Replace(strings.Replace(docBody, `:7,`, `:0,`, 1), `"7"`, `"0"`, 1), 422, "positive"},
		"empty plate":   {withField(t, "nameplate_num", `""`), 422, "nameplate_num is empty"},
		"duplicate key": {strings.Replace(docBody, `"description":""`, `"description":"","description":"x"`, 1), 422, "duplicate"},
		"not json":      {"{nope", 400, "not JSON"},
		"array":         {"[]", 400, "not a JSON object"},
		"trailing":      {docBody + "{}", 400, "trailing"},
		"empty":         {"", 400, "not JSON"},
	} {
		r := do(t, "POST", s.URL()+ticketsURL, tc.body)
		if r.status != tc.status || !strings.Contains(r.body, tc.reason) {
			t.Errorf("%s: %d %s; want %d %q", name, r.status, r.body, tc.status, tc.reason)
		}
	}
	nullable := 0
	for _, f := range createFields {
		if f.kind == kNullString {
			nullable++
		}
	}
	if n := s.Counts(); n.Created != int64(nullable) || n.Invalid != int64(3*len(createFields)-nullable+10) {
		t.Errorf("counts %+v", n)
	}
}

func TestCancel(t *testing.T) {
	s := StartT(t, Options{})
	u := s.URL() + ticketsURL
	cancel := `{"cod_external_ticket_origin":"tg","id_external_protocol":7,"justification":"voltou a funcionar"}`
	if r := do(t, "DELETE", u, cancel); r.status != 404 {
		t.Errorf("cancel before create: %d %s", r.status, r.body)
	}
	do(t, "POST", u, docBody)
	r := do(t, "DELETE", u, cancel)
	var a struct {
		IDProtocolo  int64  `json:"id_protocolo"`
		Operacao     string `json:"operacao"`
		DataRecebido int64  `json:"data_recebido"`
		Status       string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.body), &a); r.status != 200 || err != nil || a.IDProtocolo != 7 ||
		a.Operacao != "cancela" || a.Status != "ok" || a.DataRecebido == 0 {
		t.Errorf("cancel: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", u, cancel); r.status != 404 || !strings.Contains(r.body, "already cancelled") {
		t.Errorf("second cancel: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", u, `{"id_external_protocol":7,"justification":"x"}`); r.status != 422 {
		t.Errorf("cancel without origin: %d %s", r.status, r.body)
	}
	tr, _ := s.Record().Ticket(7)
	if !tr.Cancelled || tr.Justification != "voltou a funcionar" || tr.CancelNotFound != 1 {
		t.Errorf("record %+v", tr)
	}
}

func TestAttributes(t *testing.T) {
	s := StartT(t, Options{})
	many := s.URL() + "/vendors/m2m/clients/69/devices"
	ok := `{"devices":[{"nameplate_num":"A","attributes":{"lamp_on":true,"voltage":220.5,"online":true,
"last_seen":"2026-12-04T21:10:00Z","active_faults":["lampFailure"]}},{"nameplate_num":"B","attributes":{}}]}`
	if r := do(t, "PATCH", many, ok); r.status != 200 {
		t.Fatalf("many: %d %s", r.status, r.body)
	}
	if r := do(t, "PATCH", many+"/A%2Fb", `{"attributes":{"dim":50,"last_seen":null}}`); r.status != 200 {
		t.Fatalf("one: %d %s", r.status, r.body)
	}
	rec := s.Record()
	a, _ := rec.Device("A")
	ab, _ := rec.Device("A/b")
	if a.ManyUpdates != 1 || ab.OneUpdates != 1 || !strings.Contains(string(a.Attributes), "lampFailure") {
		t.Errorf("devices %+v", rec.Devices)
	}
	for name, body := range map[string]string{
		"bad type":     `{"devices":[{"nameplate_num":"A","attributes":{"lamp_on":"yes"}}]}`,
		"unknown attr": `{"devices":[{"nameplate_num":"A","attributes":{"colour":1}}]}`,
		"bad time":     `{"devices":[{"nameplate_num":"A","attributes":{"last_seen":"yesterday"}}]}`,
		"no devices":   `{"devices":[]}`,
		"no nameplate": `{"devices":[{"attributes":{}}]}`,
		"too many":     `{"devices":[` + strings.TrimSuffix(strings.Repeat(`{"nameplate_num":"A","attributes":{}},`, 101), ",") + `]}`,
	} {
		if r := do(t, "PATCH", many, body); r.status != 422 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := do(t, "PUT", many, ok); r.status != 405 || r.header.Get("Allow") != "PATCH" {
		t.Errorf("PUT: %d %v", r.status, r.header)
	}
	if r := do(t, "PATCH", many+"/..", `{"attributes":{}}`); r.status != 400 {
		t.Errorf("dot segment: %d %s", r.status, r.body)
	}
	if r := do(t, "PATCH", s.URL()+"/vendors/m2m/clients/70/devices", ok); r.status != 404 || !strings.Contains(r.body, "unknown instance") {
		t.Errorf("other instance: %d %s", r.status, r.body)
	}

	un := StartT(t, Options{ManyUnsupported: true})
	if r := do(t, "PATCH", un.URL()+"/vendors/m2m/clients/69/devices", ok); r.status != 405 {
		t.Errorf("many unsupported: %d", r.status)
	}
	if r := do(t, "PATCH", un.URL()+"/vendors/m2m/clients/69/devices/A", `{"attributes":{}}`); r.status != 200 {
		t.Errorf("one while many unsupported: %d", r.status)
	}
}

func TestAuth(t *testing.T) {
	s := StartT(t, Options{Token: "t", APIKey: "k", APIKeyHeader: "X-Key"})
	u := s.URL() + ticketsURL
	for _, tc := range []struct {
		hdr    []string
		status int
	}{
		{nil, 401},
		{[]string{"Authorization", "Bearer t"}, 401},
		{[]string{"Authorization", "Bearer x", "X-Key", "k"}, 403},
		{[]string{"Authorization", "Basic t", "X-Key", "k"}, 401},
		{[]string{"Authorization", "Bearer t", "X-Key", "j"}, 403},
		{[]string{"Authorization", "Bearer t", "X-Key", "k"}, 201},
	} {
		if r := do(t, "POST", u, docBody, tc.hdr...); r.status != tc.status {
			t.Errorf("%v: %d, want %d", tc.hdr, r.status, tc.status)
		}
	}
	// The control endpoints need no credentials.
	if r := do(t, "GET", s.URL()+"/_sim/record", ""); r.status != 200 {
		t.Errorf("record: %d", r.status)
	}
}

func TestFaultsAndControlEndpoints(t *testing.T) {
	s := StartT(t, Options{})
	u := s.URL() + ticketsURL
	put := func(method, body string) reply { return do(t, method, s.URL()+"/_sim/faults", body) }
	if r := put("PUT", `{"down":true,"retry_after":"12","latency":"1ms"}`); r.status != 200 {
		t.Fatalf("put faults: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", u, docBody); r.status != 503 || r.header.Get("Retry-After") != "12" {
		t.Errorf("down: %d %v", r.status, r.header)
	}
	// PATCH merges: latency and retry_after stay.
	if r := put("PATCH", `{"down":false,"throttle_rate":1}`); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	if f := s.Faults(); f.Down || f.Latency != time.Millisecond || f.RetryAfter != "12" || f.ThrottleRate != 1 {
		t.Errorf("faults after PATCH: %+v", f)
	}
	if r := do(t, "POST", u, docBody); r.status != 429 || r.header.Get("Retry-After") != "12" {
		t.Errorf("throttled: %d %v", r.status, r.header)
	}
	// PUT replaces: everything else back to zero.
	if r := put("PUT", `{"error_rate":1,"error_status":502}`); r.status != 200 {
		t.Fatal(r.body)
	}
	if r := do(t, "POST", u, docBody); r.status != 502 || r.header.Get("Retry-After") != "" {
		t.Errorf("injected: %d %v", r.status, r.header)
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"latency":"-1s"}`, `{"retry_after":"soon"}`, `{"error_status":404}`, `{"nope":1}`, `[`} {
		if r := put("PUT", bad); r.status != 400 {
			t.Errorf("PUT %s: %d", bad, r.status)
		}
	}
	r := do(t, "GET", s.URL()+"/_sim/faults", "")
	if r.status != 200 || !strings.Contains(r.body, `"error_status": 502`) {
		t.Errorf("GET faults: %s", r.body)
	}
	var rec Record
	r = do(t, "GET", s.URL()+"/_sim/record", "")
	if err := json.Unmarshal([]byte(r.body), &rec); err != nil || rec.Counts.Down != 1 || rec.Counts.Throttled != 1 ||
		rec.Counts.InjectedErrors != 1 || len(rec.Requests) != 3 || rec.Requests[0].Outcome != "down" {
		t.Errorf("record: %v %+v", err, rec.Counts)
	}
	if r := do(t, "POST", s.URL()+"/_sim/reset", ""); r.status != 204 {
		t.Errorf("reset: %d", r.status)
	}
	if n := s.Counts(); n.Requests != 0 {
		t.Errorf("after reset %+v", n)
	}
	if r := do(t, "GET", s.URL()+"/_sim/nothing", ""); r.status != 404 {
		t.Errorf("unknown control: %d", r.status)
	}
}

// outcomes sends n creates and lists the statuses.
func outcomes(t *testing.T, s *Server, n int) []int {
	var out []int
	for i := range n {
		body := strings.Replace(strings.Replace(docBody, `:7,`, fmt.Sprintf(":%d,", i+1), 1), `"7"`, fmt.Sprintf(`"%d"`, i+1), 1)
		out = append(out, do(t, "POST", s.URL()+ticketsURL, body).status)
	}
	return out
}

func TestSeedIsDeterministic(t *testing.T) {
	f := Faults{ErrorRate: 0.3, ThrottleRate: 0.3}
	a := outcomes(t, StartT(t, Options{Seed: 42, Faults: f}), 40)
	b := outcomes(t, StartT(t, Options{Seed: 42, Faults: f}), 40)
	c := outcomes(t, StartT(t, Options{Seed: 43, Faults: f}), 40)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed, different answers:\n%v\n%v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("different seeds, same answers: %v", a)
	}
	kinds := map[int]int{}
	for _, st := range a {
		kinds[st]++
	}
	if kinds[201] == 0 || kinds[500] == 0 || kinds[429] == 0 {
		t.Errorf("40 draws at 30%%/30%% gave %v", kinds)
	}
}

func TestRecordIsBounded(t *testing.T) {
	s := StartT(t, Options{KeepRequests: 5, KeepBodies: 3})
	outcomes(t, s, 10)
	rec := s.Record()
	if rec.Counts.Created != 10 || len(rec.Tickets) != 10 || len(rec.Requests) != 5 || rec.Requests[0].Seq != 6 {
		t.Errorf("counts %+v, %d tickets, %d requests", rec.Counts, len(rec.Tickets), len(rec.Requests))
	}
	withBody := 0
	for _, tr := range rec.Tickets {
		if tr.Body != nil {
			withBody++
			if tr.Protocol < 8 {
				t.Errorf("old ticket %d kept its body", tr.Protocol)
			}
		}
	}
	if withBody != 3 {
		t.Errorf("%d bodies kept, want 3", withBody)
	}
}

func TestLostAnswerAndSlowBody(t *testing.T) {
	s := StartT(t, Options{Faults: Faults{LoseAnswers: 1}})
	_, err := http.Post(s.URL()+ticketsURL, "application/json", strings.NewReader(docBody))
	if err == nil {
		t.Fatal("lost answer: got a response")
	}
	if r := do(t, "POST", s.URL()+ticketsURL, docBody); r.status != 409 {
		t.Errorf("after a lost answer: %d", r.status)
	}
	_ = s.SetFaults(Faults{SlowBody: time.Millisecond})
	r := do(t, "DELETE", s.URL()+ticketsURL, `{"cod_external_ticket_origin":"tg","id_external_protocol":7,"justification":"j"}`)
	if r.status != 200 || !strings.HasSuffix(r.body, `"status":"ok"}`) {
		t.Errorf("slow body: %d %q", r.status, r.body)
	}
	if n := s.Counts(); n.LostAnswers != 1 || n.Created != 1 || n.Cancelled != 1 {
		t.Errorf("counts %+v", n)
	}
}

func TestCloseCutsLatency(t *testing.T) {
	s := New(Options{Faults: Faults{Latency: time.Hour}})
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Post(s.URL()+ticketsURL, "application/json", bytes.NewReader([]byte(docBody)))
		if err == nil {
			resp.Body.Close()
		}
	}()
	for s.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	s.Close() // must not wait an hour
	<-done
	s.Close()
	if _, err := s.Start(""); err == nil {
		t.Error("a closed server started again")
	}
}
