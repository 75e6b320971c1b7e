package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// lookup walks a decoded JSON object along a dotted path.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TestStatusContractFields checks /api/status against CONTRACT §8: every
// name is there, with a JSON type a script can rely on.
func TestStatusContractFields(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	s, _ := newTestServer(t, src, Config{})
	rec := do(t, s.Handler(), "GET", "/api/status")
	wantStatus(t, rec, 200)
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	type kind int
	const (
		str kind = iota
		number
		boolean
		timeOrNull
	)
	fields := map[string]kind{
		"version": str, "gateway_id": str, "uptime_s": number,
		"mqtt.connected": boolean, "mqtt.messages_received": number, "mqtt.messages_rejected": number,
		"m2m.last_success_at": timeOrNull, "m2m.last_error": str, "m2m.consecutive_failures": number,
		"tickets.pending": number, "tickets.sent": number, "tickets.cancel_pending": number,
		"tickets.cancelled": number, "tickets.suppressed": number, "tickets.failed": number,
		"devices.known": number, "devices.online": number, "devices.faulty": number,
		"store.size_bytes": number,
		// Beyond the contract, what the page's health header needs.
		"health.overall": str, "health.broker": str, "health.api": str, "health.queue": str,
		"health.store": str, "health.clock": str, "mqtt.reconnects": number, "m2m.down": boolean,
		"m2m.protocol_collisions": number, "tickets.oldest_queued_age_s": number, "store.full": boolean,
		"store.corrupt_moved_to": str, "clock.trusted": boolean, "clock.reason": str, "registry.row_errors": number,
		"source": str,
	}
	for path, k := range fields {
		v, ok := lookup(got, path)
		if !ok {
			t.Errorf("%s: missing in %s", path, rec.Body.String())
			continue
		}
		switch k {
		case str:
			_, ok = v.(string)
		case number:
			_, ok = v.(float64)
		case boolean:
			_, ok = v.(bool)
		case timeOrNull:
			if v != nil {
				var s string
				if s, ok = v.(string); ok {
					_, err := time.Parse(time.RFC3339, s)
					ok = err == nil
				}
			}
		}
		if !ok {
			t.Errorf("%s: %#v has the wrong JSON type", path, v)
		}
	}
	if v, _ := lookup(got, "mqtt.rejected_by_reason.not_json"); v != float64(2) {
		t.Errorf("rejected_by_reason.not_json = %v, want 2", v)
	}
	if v, _ := lookup(got, "tickets.sent"); v != float64(5) {
		t.Errorf("tickets.sent = %v, want 5", v)
	}
	if v, _ := lookup(got, "health.overall"); v != StatusOK {
		t.Errorf("health.overall = %v, want ok for a healthy gateway", v)
	}
	// A never-succeeded API is null, not a zero time.
	src.snap.M2M.LastSuccessAt = nil
	rec = do(t, s.Handler(), "GET", "/api/status")
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if v, ok := lookup(got, "m2m.last_success_at"); !ok || v != nil {
		t.Errorf("m2m.last_success_at = %#v, want null", v)
	}
}

func TestDevicesEndpoint(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot(), devices: realDevices(t)}
	s, _ := newTestServer(t, src, Config{})
	h := s.Handler()

	all := decode[DeviceList](t, do(t, h, "GET", "/api/devices"))
	if all.Total != 5 || all.Count != 5 {
		t.Fatalf("all: total %d count %d, want 5 and 5", all.Total, all.Count)
	}
	var names []string
	for _, d := range all.Devices {
		names = append(names, d.Nameplate)
		if d.History != nil {
			t.Errorf("%s: the list carries history; only the one-device answer should", d.Nameplate)
		}
	}
	if want := []string{"LP-0001", "LP-0002", "LP-0003", "LP-0004", "lp-0005"}; !slices.Equal(names, want) {
		t.Errorf("order %v, want faulty first then by nameplate %v", names, want)
	}

	faulty := decode[DeviceList](t, do(t, h, "GET", "/api/devices?faulty=1"))
	got := map[string]string{}
	for _, d := range faulty.Devices {
		if len(d.Faults) != 1 {
			t.Fatalf("%s: faults %+v, want one", d.Nameplate, d.Faults)
		}
		got[d.Nameplate] = d.Faults[0].Name
		if d.Faults[0].Label.PT != agent.FaultLabel(d.Faults[0].Name, "pt") || d.Faults[0].Label.EN != agent.FaultLabel(d.Faults[0].Name, "en") {
			t.Errorf("%s: label %+v is not FaultLabel's", d.Nameplate, d.Faults[0].Label)
		}
		if d.Faults[0].Since == nil {
			t.Errorf("%s: fault without since", d.Nameplate)
		}
	}
	want := map[string]string{"LP-0001": agent.FaultLampFailure, "LP-0002": agent.FaultSupplyVoltageTooHigh, "LP-0003": "relayFailure"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("faulty devices %v, want %v", got, want)
	}
	lp1 := faulty.Devices[0]
	if lp1.Faults[0].Label.PT != "Lâmpada apagada à noite" || lp1.Site.Address != "Rua das Flores" || !lp1.InRegistry {
		t.Errorf("LP-0001: %+v", lp1)
	}
	if lp1.Reading.Power == nil || *lp1.Reading.Power != 0 || lp1.Reading.Current != nil {
		t.Errorf("LP-0001 reading %+v: want power 0 present and current absent", lp1.Reading)
	}

	// q is a case-insensitive substring of the nameplate.
	q := decode[DeviceList](t, do(t, h, "GET", "/api/devices?q=LP-000"))
	if q.Total != 5 {
		t.Errorf("q=LP-000 matched %d, want 5 (case-insensitive)", q.Total)
	}
	q = decode[DeviceList](t, do(t, h, "GET", "/api/devices?q=0005"))
	if q.Total != 1 || q.Devices[0].Nameplate != "lp-0005" {
		t.Errorf("q=0005: %+v", q)
	}
	q = decode[DeviceList](t, do(t, h, "GET", "/api/devices?faulty=true&q=0004"))
	if q.Total != 0 || len(q.Devices) != 0 || q.Devices == nil {
		t.Errorf("faulty&q=0004: %+v, want an empty list (not null)", q)
	}
	page := decode[DeviceList](t, do(t, h, "GET", "/api/devices?limit=2&offset=1"))
	if page.Total != 5 || page.Count != 2 || page.Devices[0].Nameplate != "LP-0002" || page.Devices[1].Nameplate != "LP-0003" {
		t.Errorf("limit=2&offset=1: %+v", page)
	}

	for _, bad := range []string{"?faulty=maybe", "?limit=-1", "?limit=x", "?offset=-3", "?q=" + strings.Repeat("a", 65)} {
		rec := do(t, h, "GET", "/api/devices"+bad)
		wantStatus(t, rec, 400)
		if e := decode[ErrorBody](t, rec); e.Code != codeBadRequest || e.Error == "" {
			t.Errorf("%s: %+v", bad, e)
		}
	}
	src.devicesErr = fmt.Errorf("detector: %w", ErrUnavailable)
	wantStatus(t, do(t, h, "GET", "/api/devices"), 503)
}

func TestDeviceEndpoint(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot(), devices: realDevices(t)}
	s, _ := newTestServer(t, src, Config{})
	h := s.Handler()

	d := decode[Device](t, do(t, h, "GET", "/api/devices/LP-0001"))
	if d.Nameplate != "LP-0001" || len(d.Faults) != 1 || d.Faults[0].Name != agent.FaultLampFailure {
		t.Fatalf("LP-0001: %+v", d)
	}
	// Five half hours reported, power and voltage in each.
	if len(d.History) != 5 {
		t.Fatalf("history %+v, want 5 points", d.History)
	}
	for _, p := range d.History {
		if p.Power == nil || p.Voltage == nil {
			t.Errorf("history point %+v: missing value", p)
		}
	}
	if last := d.History[len(d.History)-1]; *last.Power != 0 || *last.Voltage < 215 || *last.Voltage > 229 {
		t.Errorf("last point %+v: want power 0 and voltage about 222 (quantised)", last)
	}
	if d.Lat == nil || *d.Lat != -19.7472 {
		t.Errorf("lat %v, want the registry's", d.Lat)
	}

	rec := do(t, h, "GET", "/api/devices/LP-9999")
	wantStatus(t, rec, 404)
	if e := decode[ErrorBody](t, rec); e.Code != codeNotFound {
		t.Errorf("unknown device: %+v", e)
	}
	for _, bad := range []string{"/api/devices/bad%20name", "/api/devices/" + strings.Repeat("x", 65), "/api/devices/a%2Fb", "/api/devices/%C3%A9"} {
		rec := do(t, h, "GET", bad)
		wantStatus(t, rec, 400)
	}
}

func testTickets() []agent.Ticket {
	at := night.Add(-time.Hour)
	return []agent.Ticket{
		{TicketDraft: agent.TicketDraft{Nameplate: "LP-0001", Fault: agent.FaultLampFailure, RaisedAt: at, Since: at, Description: "Lâmpada apagada durante a noite."},
			Protocol: 1003, State: agent.StateFailed, Attempts: 1, LastError: "422 Unprocessable Entity", LastStatus: 422,
			ResponseBody: strings.Repeat("é", 1000), CreatedAt: at, UpdatedAt: at},
		{TicketDraft: agent.TicketDraft{Nameplate: "LP-0002", Fault: agent.FaultSupplyVoltageTooHigh, RaisedAt: at, Since: at},
			Protocol: 1002, State: agent.StateSent, IDDemanda: 555, SentAt: at, Attempts: 1, CreatedAt: at, UpdatedAt: at},
		{TicketDraft: agent.TicketDraft{Nameplate: "LP-0001", Fault: agent.FaultCommunicationFailure, RaisedAt: at, Since: at},
			Protocol: 1001, State: agent.StatePending, CreatedAt: at, UpdatedAt: at},
	}
}

func TestTicketsEndpoint(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot(), tickets: testTickets()}
	s, _ := newTestServer(t, src, Config{})
	h := s.Handler()

	all := decode[TicketList](t, do(t, h, "GET", "/api/tickets"))
	if all.Count != 3 || all.Limit != DefaultTicketLimit || src.lastQ.Limit != DefaultTicketLimit {
		t.Fatalf("all: %+v (query %+v)", all, src.lastQ)
	}
	failed := decode[TicketList](t, do(t, h, "GET", "/api/tickets?state=failed&limit=5"))
	if failed.Count != 1 || failed.State != "failed" || src.lastQ != (TicketQuery{State: agent.StateFailed, Limit: 5}) {
		t.Fatalf("failed: %+v (query %+v)", failed, src.lastQ)
	}
	tk := failed.Tickets[0]
	if tk.Protocol != 1003 || tk.FaultLabel.PT != "Lâmpada apagada à noite" || tk.LastStatus != 422 || tk.IDDemanda != nil {
		t.Errorf("failed ticket: %+v", tk)
	}
	if len(tk.ResponseBody) > maxResponseBody+len("…") || !strings.HasSuffix(tk.ResponseBody, "…") || !strings.HasPrefix(tk.ResponseBody, "éé") {
		t.Errorf("response body not cut on a rune boundary to 1 KiB: %d bytes", len(tk.ResponseBody))
	}
	// The JSON names the CLI and scripts use.
	var raw map[string]any
	if err := json.Unmarshal(do(t, h, "GET", "/api/tickets?state=sent").Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	sent := raw["tickets"].([]any)[0].(map[string]any)
	for k, want := range map[string]any{"id_external_protocol": float64(1002), "state": "sent", "fault": "supplyVoltageTooHigh",
		"nameplate_num": "LP-0002", "id_demanda": float64(555), "attempts": float64(1), "last_error": ""} {
		if sent[k] != want {
			t.Errorf("%s = %#v, want %#v", k, sent[k], want)
		}
	}
	byDevice := decode[TicketList](t, do(t, h, "GET", "/api/tickets?nameplate=LP-0001"))
	if byDevice.Count != 2 || src.lastQ.Nameplate != "LP-0001" {
		t.Errorf("nameplate=LP-0001: %+v", byDevice)
	}

	for _, bad := range []string{"?state=open", "?state=PENDING", "?limit=0", "?limit=10001", "?limit=ten", "?nameplate=a%20b"} {
		rec := do(t, h, "GET", "/api/tickets"+bad)
		wantStatus(t, rec, 400)
		if e := decode[ErrorBody](t, rec); !strings.Contains(e.Error, strings.SplitN(bad[1:], "=", 2)[0]) {
			t.Errorf("%s: error %q does not name the parameter", bad, e.Error)
		}
	}

	one := decode[Ticket](t, do(t, h, "GET", "/api/tickets/1002"))
	if one.Protocol != 1002 || one.IDDemanda == nil || *one.IDDemanda != 555 {
		t.Errorf("ticket 1002: %+v", one)
	}
	wantStatus(t, do(t, h, "GET", "/api/tickets/77"), 404)
	wantStatus(t, do(t, h, "GET", "/api/tickets/abc"), 400)
	wantStatus(t, do(t, h, "GET", "/api/tickets/-4"), 400)
}

func TestRetryEndpoints(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot(), tickets: testTickets()}
	src.retry = func(_ context.Context, p int64) (agent.Ticket, error) {
		switch p {
		case 1003:
			tk := testTickets()[0]
			tk.State = agent.StatePending
			return tk, nil
		case 1004: // lost a protocol collision: renumbered
			tk := testTickets()[0]
			tk.Protocol, tk.State = 2001, agent.StatePending
			return tk, nil
		case 1002:
			return agent.Ticket{}, fmt.Errorf("retry ticket 1002: %w (it is sent)", ErrConflict)
		}
		return agent.Ticket{}, fmt.Errorf("ticket %d: %w", p, ErrNotFound)
	}
	src.retryFailed = func(context.Context) (int, error) { return 4, nil }
	s, _ := newTestServer(t, src, Config{})
	h := s.Handler()

	res := decode[RetryResult](t, do(t, h, "POST", "/api/tickets/1003/retry"))
	if res.Ticket.State != "pending" || res.RenumberedFrom != 0 {
		t.Errorf("retry 1003: %+v", res)
	}
	res = decode[RetryResult](t, do(t, h, "POST", "/api/tickets/1004/retry"))
	if res.Ticket.Protocol != 2001 || res.RenumberedFrom != 1004 {
		t.Errorf("retry 1004: %+v, want renumbered from 1004 to 2001", res)
	}
	rec := do(t, h, "POST", "/api/tickets/1002/retry")
	wantStatus(t, rec, 409)
	if e := decode[ErrorBody](t, rec); e.Code != codeConflict || !strings.Contains(e.Error, "sent") {
		t.Errorf("retry of a sent ticket: %+v", e)
	}
	wantStatus(t, do(t, h, "POST", "/api/tickets/999/retry"), 404)
	wantStatus(t, do(t, h, "POST", "/api/tickets/x/retry"), 400)
	n := decode[RetryFailedResult](t, do(t, h, "POST", "/api/tickets/retry-failed"))
	if n.Retried != 4 {
		t.Errorf("retry-failed: %+v", n)
	}

	// Mutations only by POST; nothing is called for another method.
	before := len(src.callList())
	for _, target := range []string{"/api/tickets/1003/retry", "/api/tickets/retry-failed"} {
		for _, m := range []string{"GET", "HEAD", "PUT", "DELETE"} {
			rec := do(t, h, m, target)
			wantStatus(t, rec, 405)
			if a := rec.Header().Get("Allow"); a != "POST" {
				t.Errorf("%s %s: Allow %q", m, target, a)
			}
		}
	}
	if after := src.callList(); len(after) != before {
		t.Errorf("a refused method reached the source: %v", after[before:])
	}
}

func TestProbes(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	s, _ := newTestServer(t, src, Config{})
	h := s.Handler()
	for _, p := range []string{"/healthz", "/readyz"} {
		rec := do(t, h, "GET", p)
		wantStatus(t, rec, 200)
		if r := decode[ProbeResult](t, rec); r.Status != "ok" {
			t.Errorf("%s: %+v", p, r)
		}
	}
	src.ready = func(context.Context) error { return errors.New("not connected to the MQTT broker") }
	src.healthy = func(context.Context) error { return errors.New("syncer loop silent for 2m0s") }
	for p, reason := range map[string]string{"/readyz": "MQTT broker", "/healthz": "syncer"} {
		rec := do(t, h, "GET", p)
		wantStatus(t, rec, 503)
		if r := decode[ProbeResult](t, rec); r.Status != "fail" || !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: %+v", p, r)
		}
	}
}

func TestMethodsAndPaths(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	s, _ := newTestServer(t, src, Config{})
	h := s.Handler()
	for _, p := range []string{"/api/status", "/api/devices", "/api/tickets", "/healthz", "/readyz", "/metrics", "/", "/static/app.js"} {
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			rec := do(t, h, m, p)
			wantStatus(t, rec, 405)
			if a := rec.Header().Get("Allow"); a != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q", m, p, a)
			}
			if e := decode[ErrorBody](t, rec); e.Code != codeMethodNotAllowed {
				t.Errorf("%s %s: %+v", m, p, e)
			}
		}
	}
	for _, p := range []string{"/nope", "/api", "/api/", "/api/statuss", "/api/devices/", "/api/tickets/1/retry/x", "/static/", "/static/nope.js"} {
		rec := do(t, h, "GET", p)
		wantStatus(t, rec, 404)
		if e := decode[ErrorBody](t, rec); e.Code != codeNotFound {
			t.Errorf("GET %s: %+v", p, e)
		}
	}
	// HEAD over a real connection: headers, no body.
	ts := httptest.NewServer(h)
	defer ts.Close()
	head, err := http.Head(ts.URL + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(head.Body)
	_ = head.Body.Close()
	if head.StatusCode != 200 || len(b) != 0 || head.ContentLength <= 0 {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %d", head.StatusCode, len(b), head.ContentLength)
	}
	// Bodies are bounded.
	req := strings.Repeat("x", DefaultMaxBodyBytes+1)
	r := newRequest("POST", "/api/tickets/retry-failed", req)
	rec := serve(h, r)
	wantStatus(t, rec, http.StatusRequestEntityTooLarge)
	// A cross-site page cannot make the browser POST a retry.
	rec = do(t, h, "POST", "/api/tickets/retry-failed", "Sec-Fetch-Site", "cross-site")
	wantStatus(t, rec, 403)
	rec = do(t, h, "POST", "/api/tickets/retry-failed", "Origin", "http://evil.example")
	wantStatus(t, rec, 403)
	if slices.Contains(src.callList(), "retry-failed") {
		t.Error("a cross-origin POST reached the source")
	}
	rec = do(t, h, "GET", "/api/status")
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestPageAndAssets(t *testing.T) {
	s, _ := newTestServer(t, &fakeSource{snap: healthySnapshot()}, Config{})
	h := s.Handler()
	rec := do(t, h, "GET", "/")
	wantStatus(t, rec, 200)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("page Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{`lang="pt-BR"`, `/static/app.js`, `/static/style.css`, `name="viewport"`, "Pontos com falha"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "@import", "fonts.g"} {
		if strings.Contains(strings.ReplaceAll(body, "http://www.w3.org", ""), bad) {
			t.Errorf("page refers to something outside: %q", bad)
		}
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for name, ctype := range map[string]string{"app.js": "text/javascript", "style.css": "text/css"} {
		rec := do(t, h, "GET", "/static/"+name)
		wantStatus(t, rec, 200)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, ctype) {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		etag := rec.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", name)
		}
		wantStatus(t, do(t, h, "GET", "/static/"+name, "If-None-Match", etag), 304)
		text := strings.ReplaceAll(rec.Body.String(), "http://www.w3.org/2000/svg", "")
		if strings.Contains(text, ".innerHTML") || strings.Contains(text, "http://") || strings.Contains(text, "https://") || strings.Contains(text, "@import") {
			t.Errorf("%s builds HTML from strings or loads something from elsewhere", name)
		}
	}
}

func TestAssess(t *testing.T) {
	at := night
	cases := []struct {
		name    string
		change  func(*Snapshot)
		overall string
		area    func(Health) string
		areaIs  string
		code    string
	}{
		{"healthy", func(*Snapshot) {}, StatusOK, func(h Health) string { return h.Broker }, StatusOK, ""},
		{"broker down", func(s *Snapshot) { s.MQTT.Connected, s.MQTT.LastError = false, "connection refused" },
			StatusFail, func(h Health) string { return h.Broker }, StatusFail, CodeMQTTDisconnected},
		{"api down", func(s *Snapshot) {
			s.M2M.Down, s.M2M.ConsecutiveFailures, s.M2M.LastError = true, 7, "dial tcp: refused"
		},
			StatusFail, func(h Health) string { return h.API }, StatusFail, CodeAPIDown},
		{"api errors", func(s *Snapshot) { s.M2M.ConsecutiveFailures = 2 },
			StatusWarn, func(h Health) string { return h.API }, StatusWarn, CodeAPIErrors},
		{"collision", func(s *Snapshot) { s.M2M.ProtocolCollisions = 1 },
			StatusFail, func(h Health) string { return h.API }, StatusFail, CodeProtocolCollision},
		{"failed tickets", func(s *Snapshot) { s.Tickets.Failed = 2 },
			StatusWarn, func(h Health) string { return h.Queue }, StatusWarn, CodeTicketsFailed},
		{"stale queue", func(s *Snapshot) { s.Tickets.OldestQueuedAgeS = int64(StaleQueueAfter / time.Second) },
			StatusWarn, func(h Health) string { return h.Queue }, StatusWarn, CodeQueueStale},
		{"tickets unreadable", func(s *Snapshot) { s.Tickets.Error = "bolt: closed" },
			StatusFail, func(h Health) string { return h.Queue }, StatusFail, CodeTicketsUnreadable},
		{"store full", func(s *Snapshot) { s.Store.Full, s.Store.SizeBytes = true, s.Store.MaxBytes },
			StatusFail, func(h Health) string { return h.Store }, StatusFail, CodeStoreFull},
		{"store nearly full", func(s *Snapshot) { s.Store.SizeBytes = s.Store.MaxBytes * 95 / 100 },
			StatusWarn, func(h Health) string { return h.Store }, StatusWarn, CodeStoreNearlyFull},
		{"store closed", func(s *Snapshot) { s.Store.Open = false },
			StatusFail, func(h Health) string { return h.Store }, StatusFail, CodeStoreUnavailable},
		{"corrupt moved", func(s *Snapshot) {
			s.Store.CorruptMovedTo, s.Store.CorruptAt = "/var/lib/edge-agent/edge-agent.db.corrupt-x", &at
		},
			StatusWarn, func(h Health) string { return h.Store }, StatusWarn, CodeStoreCorruptMoved},
		{"clock", func(s *Snapshot) { s.Clock = ClockStatus{Trusted: false, Reason: "earlier than the build date"} },
			StatusWarn, func(h Health) string { return h.Clock }, StatusWarn, CodeClockUntrusted},
		{"registry", func(s *Snapshot) {
			s.Registry.RowErrors, s.Registry.RowErrorSamples = 3, []string{"line 7: bad latitude"}
		},
			StatusWarn, func(h Health) string { return h.Registry }, StatusWarn, CodeRegistryRowErrors},
		{"store only", func(s *Snapshot) { s.Source = SourceStore; s.MQTT = MQTTStatus{}; s.Clock = ClockStatus{} },
			StatusUnknown, func(h Health) string { return h.Broker }, StatusUnknown, CodeDaemonNotRunning},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := healthySnapshot()
			s.Source = SourceDaemon
			c.change(&s)
			s.Assess()
			if s.Health.Overall != c.overall || c.area(s.Health) != c.areaIs {
				t.Errorf("health %+v, want overall %s and the area %s", s.Health, c.overall, c.areaIs)
			}
			if c.code == "" {
				if len(s.Problems) != 0 || s.Problems == nil {
					t.Errorf("problems %+v, want [] (not null)", s.Problems)
				}
				return
			}
			if len(s.Problems) != 1 || s.Problems[0].Code != c.code || s.Problems[0].Message == "" {
				t.Errorf("problems %+v, want one %s", s.Problems, c.code)
			}
		})
	}
	s := healthySnapshot()
	s.M2M.ProtocolCollisions = 1
	s.Assess()
	if !strings.Contains(s.Problems[0].Message, "EDGE_PROTOCOL_BASE") {
		t.Errorf("the collision problem must tell the operator to check EDGE_PROTOCOL_BASE: %q", s.Problems[0].Message)
	}
	// Worst first.
	s = healthySnapshot()
	s.Tickets.Failed, s.MQTT.Connected = 1, false
	s.Assess()
	if s.Problems[0].Code != CodeMQTTDisconnected || s.Problems[1].Code != CodeTicketsFailed {
		t.Errorf("problems not sorted worst first: %+v", s.Problems)
	}
}

func TestHumanFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 59 * time.Second: "59s", 12 * time.Minute: "12m", 3*time.Hour + 5*time.Minute: "3h 05m",
		50 * time.Hour: "2d 2h", -time.Second: "0s",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{812: "812 B", 1024: "1 KiB", 1536: "1.5 KiB", 256 << 20: "256 MiB", 3 << 30: "3 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
