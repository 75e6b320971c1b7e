package m2mtest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// InstanceID is the only idInstance served (default "69"); another
	// one is answered 404.
	InstanceID string
	// Token, when set, is required as "Authorization: Bearer <Token>".
	Token string
	// APIKey, when set, is required in the APIKeyHeader (default "apikey").
	APIKey       string
	APIKeyHeader string
	// RequireHeaders must all be present with these values.
	RequireHeaders map[string]string
	// Faults are injected from the start; SetFaults changes them.
	Faults Faults
	// Seed seeds the generator that draws jitter and fault rates: the same
	// seed and the same sequence of requests give the same answers.
	Seed uint64
	// Paths and attribute method, with the client's defaults.
	TicketsPath, DevicesPath, DevicePath string
	AttributesMethod                     string
	// ManyUnsupported answers 405 to the many-devices call, to exercise the
	// client's fallback to the one-device call.
	ManyUnsupported bool
	// NumericDates sends data_recebido of a create as epoch milliseconds
	// (as the sister API does) instead of a string.
	NumericDates bool
	// KeepRequests is how many recent requests the record keeps (default
	// 1000); KeepBodies how many recent tickets keep their create body
	// (default 10000). Counts are always kept.
	KeepRequests, KeepBodies int
	// Logger logs each request at debug; nil logs nothing.
	Logger *slog.Logger
	// Now is the clock for data_recebido and the record (default time.Now).
	Now func() time.Time
	// OnRequest, when set, is called with the call name ("" when the path
	// is none of the API's) for every API request, once it counts as in
	// flight and before anything else. Tests block in it to hold requests
	// in flight.
	OnRequest func(call string)
}

// Call names.
const (
	CallCreate        = "create"
	CallCancel        = "cancel"
	CallUpdateDevices = "update_devices"
	CallUpdateDevice  = "update_device"
)

const (
	maxRequestBody = 1 << 20
	recordBodyMax  = 4 << 10
)

// Server is the simulated API. It is an http.Handler; Start serves it on
// its own listener.
type Server struct {
	opts       Options
	ticketsTpl []string
	devicesTpl []string
	deviceTpl  []string
	attrMethod string
	now        func() time.Time
	log        *slog.Logger

	inFlight atomic.Int64

	mu          sync.Mutex
	faults      Faults
	rng         *rand.Rand
	tickets     map[int64]*TicketRecord
	bodyQueue   []int64 // protocols whose ticket holds its body, oldest first
	devices     map[string]*DeviceRecord
	counts      Counts
	nextDemanda int64
	seq         int64
	requests    ring

	closing   chan struct{}
	closeOnce sync.Once

	srvMu     sync.Mutex
	srv       *http.Server
	url       string
	serveDone chan struct{}
}

// New builds a Server. It does no I/O. Options that cannot work (a bad
// path template, invalid faults) panic: they are a test's mistake.
func New(opts Options) *Server {
	if opts.InstanceID == "" {
		opts.InstanceID = DefaultInstanceID
	}
	if opts.APIKeyHeader == "" {
		opts.APIKeyHeader = DefaultAPIKeyHeader
	}
	if opts.KeepRequests == 0 {
		opts.KeepRequests = 1000
	}
	if opts.KeepBodies == 0 {
		opts.KeepBodies = 10000
	}
	if err := opts.Faults.Validate(); err != nil {
		panic("m2mtest: " + err.Error())
	}
	s := &Server{
		opts:       opts,
		ticketsTpl: template(opts.TicketsPath, DefaultTicketsPath),
		devicesTpl: template(opts.DevicesPath, DefaultDevicesPath),
		deviceTpl:  template(opts.DevicePath, DefaultDevicePath),
		attrMethod: strings.ToUpper(opts.AttributesMethod),
		now:        opts.Now,
		log:        opts.Logger,
		faults:     opts.Faults,
		closing:    make(chan struct{}),
	}
	if s.attrMethod == "" {
		s.attrMethod = DefaultAttributesMethod
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.resetLocked()
	return s
}

func template(p, def string) []string {
	if p == "" {
		p = def
	}
	if !strings.HasPrefix(p, "/") {
		panic("m2mtest: path template must start with /: " + p)
	}
	return strings.Split(p[1:], "/")
}

// StartT starts a Server on a free loopback port for a test and closes it
// when the test ends.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start m2m simulator: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start serves on addr ("" is 127.0.0.1:0, a free loopback port) and
// returns the base URL, "http://host:port".
func (s *Server) Start(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return "", errors.New("m2m simulator already started")
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("m2m simulator listen: %w", err)
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		_ = s.srv.Serve(ln) // returns ErrServerClosed on Close
	}()
	return s.url, nil
}

// URL is the base URL once started, "" before.
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.url
}

// Close stops the server started by Start, waiting for its goroutine, and
// cuts short the latency and slow bodies of requests still being answered.
// It is safe to call more than once, and on a Server never started.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srvMu.Lock()
	srv, done := s.srv, s.serveDone
	s.srvMu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	<-done
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// Faults returns the injected faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Reset forgets every ticket, device, count and request, and re-seeds the
// generator; faults and options stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.rng = rand.New(rand.NewPCG(s.opts.Seed, s.opts.Seed^0x9e3779b97f4a7c15))
	s.tickets = map[int64]*TicketRecord{}
	s.bodyQueue = nil
	s.devices = map[string]*DeviceRecord{}
	s.counts = Counts{}
	s.nextDemanda = 0
	s.seq = 0
	s.requests = ring{buf: make([]RequestRecord, max(s.opts.KeepRequests, 0))}
}

// InFlight is how many API requests are being handled now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// Counts returns the totals.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Record returns a copy of everything recorded.
func (s *Server) Record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Record{Counts: s.counts, Tickets: make([]TicketRecord, 0, len(s.tickets)),
		Devices: make([]DeviceRecord, 0, len(s.devices)), Requests: s.requests.list()}
	for _, t := range s.tickets {
		c := *t
		c.Body = slices.Clone(t.Body)
		r.Tickets = append(r.Tickets, c)
	}
	slices.SortFunc(r.Tickets, func(a, b TicketRecord) int { return cmpInt(a.Protocol, b.Protocol) })
	for _, d := range s.devices {
		c := *d
		c.Attributes = slices.Clone(d.Attributes)
		r.Devices = append(r.Devices, c)
	}
	slices.SortFunc(r.Devices, func(a, b DeviceRecord) int { return strings.Compare(a.Nameplate, b.Nameplate) })
	return r
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ServeHTTP serves the API and, under /_sim/, the control endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.control(w, r)
		return
	}
	s.serveAPI(w, r)
}

// result is how the simulator answers one API request.
type result struct {
	status     int
	payload    any
	outcome    string
	reason     string
	effect     bool  // the call changed the simulator's state
	protocol   int64 // the ticket concerned, for lost-answer accounting
	retryAfter bool  // send the Retry-After fault
	allow      string
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)

	rec := RequestRecord{At: s.now(), Method: r.Method, Path: r.URL.EscapedPath()}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	rt := s.route(r)
	rec.Call = rt.call

	s.mu.Lock()
	s.seq++
	rec.Seq = s.seq
	s.counts.Requests++
	s.counts.MaxInFlight = max(s.counts.MaxInFlight, n)
	f := s.faults
	// Four draws for every request, whatever the faults, so that a seed
	// gives the same sequence however the faults are set.
	jitter, errDraw, throttleDraw, loseDraw := s.rng.Float64(), s.rng.Float64(), s.rng.Float64(), s.rng.Float64()
	s.mu.Unlock()
	rec.Body = string(body[:min(len(body), recordBodyMax)])

	if s.opts.OnRequest != nil {
		s.opts.OnRequest(rt.call)
	}
	if d := f.Latency + time.Duration(jitter*float64(f.Jitter)); d > 0 {
		if !s.pause(r.Context(), d) {
			s.finish(rec, result{outcome: "aborted", reason: "client went away or simulator closing"})
			return
		}
	}

	var res result
	switch {
	case err != nil:
		res = result{status: http.StatusBadRequest, outcome: "invalid", reason: "reading body: " + err.Error()}
	case len(body) > maxRequestBody:
		res = result{status: http.StatusRequestEntityTooLarge, outcome: "too_large", reason: "body over 1 MiB"}
	case f.Down:
		res = result{status: http.StatusServiceUnavailable, outcome: "down", reason: "simulated outage", retryAfter: true}
	default:
		if res = s.auth(r); res.status != 0 {
			break
		}
		switch {
		case errDraw < f.ErrorRate:
			st := f.errorStatus()
			res = result{status: st, outcome: "injected_error", reason: "simulated error", retryAfter: st == http.StatusServiceUnavailable}
		case throttleDraw < f.ThrottleRate:
			res = result{status: http.StatusTooManyRequests, outcome: "throttled", reason: "simulated rate limit", retryAfter: true}
		case rt.status != 0:
			res = result{status: rt.status, outcome: rt.outcome, reason: rt.reason, allow: rt.allow}
		default:
			res = s.handle(rt, body)
		}
	}

	if res.effect && loseDraw < f.LoseAnswers {
		res.outcome, res.status = "lost", 0
		s.finish(rec, res)
		dropConnection(w)
		return
	}
	s.finish(rec, res)
	s.write(w, r, res, f)
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 cannot be hijacked: abort the stream instead.
	panic(http.ErrAbortHandler)
}

// finish counts and records one answered request.
func (s *Server) finish(rec RequestRecord, res result) {
	rec.Status, rec.Outcome, rec.Reason = res.status, res.outcome, res.reason
	s.mu.Lock()
	switch res.outcome {
	case "invalid":
		s.counts.Invalid++
	case "unauthorized", "forbidden":
		s.counts.Unauthorized++
	case "not_found", "unknown_instance":
		s.counts.NotFound++
	case "method_not_allowed":
		s.counts.MethodNotAllowed++
	case "down":
		s.counts.Down++
	case "injected_error":
		s.counts.InjectedErrors++
	case "throttled":
		s.counts.Throttled++
	case "lost":
		s.counts.LostAnswers++
		if t := s.tickets[res.protocol]; t != nil && res.protocol != 0 {
			t.LostAnswers++
		}
	}
	s.requests.add(rec)
	s.mu.Unlock()
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "m2m-sim request",
		slog.String("method", rec.Method), slog.String("path", rec.Path), slog.String("call", rec.Call),
		slog.Int("status", rec.Status), slog.String("outcome", rec.Outcome), slog.String("reason", rec.Reason))
}

type errorBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// write sends the answer, trickled when the SlowBody fault is set.
func (s *Server) write(w http.ResponseWriter, r *http.Request, res result, f Faults) {
	payload := res.payload
	if payload == nil {
		payload = errorBody{Status: "error", Message: res.reason}
	}
	b, _ := json.Marshal(payload)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if res.retryAfter && f.RetryAfter != "" {
		h.Set("Retry-After", strings.TrimSpace(f.RetryAfter))
	}
	if res.allow != "" {
		h.Set("Allow", res.allow)
	}
	w.WriteHeader(res.status)
	if f.SlowBody <= 0 {
		_, _ = w.Write(b)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for i := 0; i < len(b); i += 16 {
		if !s.pause(r.Context(), f.SlowBody) {
			return
		}
		if _, err := w.Write(b[i:min(i+16, len(b))]); err != nil {
			return
		}
		_ = rc.Flush()
	}
}

// pause waits d unless the request or the simulator ends first.
func (s *Server) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// auth checks the configured credentials: missing is 401, wrong is 403.
func (s *Server) auth(r *http.Request) result {
	check := func(got, want string, has bool) result {
		if !has || got == "" {
			return result{status: http.StatusUnauthorized, outcome: "unauthorized", reason: "missing credentials"}
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return result{status: http.StatusForbidden, outcome: "forbidden", reason: "wrong credentials"}
		}
		return result{}
	}
	if s.opts.Token != "" {
		v := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if res := check(tok, s.opts.Token, ok); res.status != 0 {
			return res
		}
	}
	if s.opts.APIKey != "" {
		v, ok := r.Header[http.CanonicalHeaderKey(s.opts.APIKeyHeader)]
		if res := check(strings.Join(v, ","), s.opts.APIKey, ok); res.status != 0 {
			return res
		}
	}
	for name, want := range s.opts.RequireHeaders {
		v, ok := r.Header[http.CanonicalHeaderKey(name)]
		if res := check(strings.Join(v, ","), want, ok); res.status != 0 {
			return res
		}
	}
	return result{}
}

// routed is where a request's path and method lead.
type routed struct {
	call      string
	nameplate string
	status    int // non-zero: the route itself fails
	outcome   string
	reason    string
	allow     string
}

func (s *Server) route(r *http.Request) routed {
	raw := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	segs := make([]string, len(raw))
	for i, seg := range raw {
		// A dot segment would be resolved by a real server or proxy: a
		// client that sends one has not escaped a value.
		if seg == "." || seg == ".." {
			return routed{status: http.StatusBadRequest, outcome: "invalid", reason: "dot segment in the path"}
		}
		u, err := url.PathUnescape(seg)
		if err != nil {
			return routed{status: http.StatusBadRequest, outcome: "invalid", reason: "bad escape in the path"}
		}
		segs[i] = u
	}
	for _, rt := range []struct {
		tpl     []string
		methods map[string]string
	}{
		{s.ticketsTpl, map[string]string{http.MethodPost: CallCreate, http.MethodDelete: CallCancel}},
		{s.devicesTpl, map[string]string{s.attrMethod: CallUpdateDevices}},
		{s.deviceTpl, map[string]string{s.attrMethod: CallUpdateDevice}},
	} {
		params, ok := match(rt.tpl, segs)
		if !ok {
			continue
		}
		call, ok := rt.methods[r.Method]
		if !ok {
			allow := make([]string, 0, len(rt.methods))
			for m := range rt.methods {
				allow = append(allow, m)
			}
			slices.Sort(allow)
			return routed{status: http.StatusMethodNotAllowed, outcome: "method_not_allowed",
				reason: "method " + r.Method + " not allowed here", allow: strings.Join(allow, ", ")}
		}
		res := routed{call: call, nameplate: params["nameplate_num"]}
		if id, ok := params["idInstance"]; ok && id != s.opts.InstanceID {
			res.status, res.outcome, res.reason = http.StatusNotFound, "unknown_instance", "unknown instance "+strconv.Quote(id)
		} else if call == CallUpdateDevices && s.opts.ManyUnsupported {
			res.status, res.outcome, res.reason = http.StatusMethodNotAllowed, "method_not_allowed", "many-devices call not supported"
			res.allow = "GET"
		}
		return res
	}
	return routed{status: http.StatusNotFound, outcome: "not_found", reason: "no such path"}
}

// match matches unescaped path segments against a template.
func match(tpl, segs []string) (map[string]string, bool) {
	if len(tpl) != len(segs) {
		return nil, false
	}
	params := map[string]string{}
	for i, t := range tpl {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if segs[i] == "" {
				return nil, false
			}
			params[t[1:len(t)-1]] = segs[i]
			continue
		}
		if t != segs[i] {
			return nil, false
		}
	}
	return params, true
}

func invalid(err error) result {
	st := http.StatusUnprocessableEntity
	var br *badRequest
	if errors.As(err, &br) {
		st = http.StatusBadRequest
	}
	return result{status: st, outcome: "invalid", reason: err.Error()}
}

// handle performs a routed, authorised call.
func (s *Server) handle(rt routed, body []byte) result {
	switch rt.call {
	case CallCreate:
		return s.create(body)
	case CallCancel:
		return s.cancel(body)
	case CallUpdateDevices:
		ups, err := checkMany(body)
		if err != nil {
			return invalid(err)
		}
		s.apply(ups, true)
		return result{status: http.StatusOK, outcome: "updated", effect: true,
			payload: map[string]any{"status": "ok", "updated": len(ups)}}
	case CallUpdateDevice:
		up, err := checkOne(rt.nameplate, body)
		if err != nil {
			return invalid(err)
		}
		s.apply([]deviceUpdate{up}, false)
		return result{status: http.StatusOK, outcome: "updated", effect: true,
			payload: map[string]any{"status": "ok", "updated": 1}}
	}
	return result{status: http.StatusNotFound, outcome: "not_found", reason: "no such call"}
}

// createAnswer is the documented 201 body [doc].
type createAnswer struct {
	IDDemanda    int64  `json:"id_demanda"`
	Operacao     string `json:"operacao"`
	DataRecebido any    `json:"data_recebido"`
	Status       string `json:"status"`
}

// cancelAnswer is the sister API's cancel answer [sister].
type cancelAnswer struct {
	IDProtocolo  int64  `json:"id_protocolo"`
	Operacao     string `json:"operacao"`
	DataRecebido int64  `json:"data_recebido"`
	Status       string `json:"status"`
}

func (s *Server) create(body []byte) result {
	t, err := checkCreate(body)
	if err != nil {
		return invalid(err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.tickets[t.protocol]; old != nil {
		old.Conflicts++
		s.counts.Conflicts++
		return result{status: http.StatusConflict, outcome: "conflict", protocol: t.protocol,
			reason: fmt.Sprintf("id_external_protocol %d already exists", t.protocol)}
	}
	s.nextDemanda++
	s.tickets[t.protocol] = &TicketRecord{Protocol: t.protocol, IDDemanda: s.nextDemanda,
		Nameplate: t.nameplate, Origin: t.origin, CreatedAt: now, Body: slices.Clone(body)}
	s.bodyQueue = append(s.bodyQueue, t.protocol)
	if len(s.bodyQueue) > s.opts.KeepBodies {
		if old := s.tickets[s.bodyQueue[0]]; old != nil {
			old.Body = nil
		}
		s.bodyQueue = slices.Clone(s.bodyQueue[1:])
	}
	s.counts.Created++
	var date any = now.UTC().Format(time.RFC3339)
	if s.opts.NumericDates {
		date = now.UnixMilli()
	}
	return result{status: http.StatusCreated, outcome: "created", effect: true, protocol: t.protocol,
		payload: createAnswer{IDDemanda: s.nextDemanda, Operacao: "cria", DataRecebido: date, Status: "ok"}}
}

func (s *Server) cancel(body []byte) result {
	c, err := checkCancel(body)
	if err != nil {
		return invalid(err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[c.protocol]
	if t == nil || t.Cancelled {
		s.counts.CancelNotFound++
		reason := fmt.Sprintf("ticket %d not found", c.protocol)
		if t != nil {
			t.CancelNotFound++
			reason = fmt.Sprintf("ticket %d already cancelled", c.protocol)
		}
		return result{status: http.StatusNotFound, outcome: "not_found", reason: reason, protocol: c.protocol}
	}
	t.Cancelled, t.CancelledAt, t.Justification = true, now, c.justification
	s.counts.Cancelled++
	return result{status: http.StatusOK, outcome: "cancelled", effect: true, protocol: c.protocol,
		payload: cancelAnswer{IDProtocolo: c.protocol, Operacao: "cancela", DataRecebido: now.UnixMilli(), Status: "ok"}}
}

func (s *Server) apply(ups []deviceUpdate, many bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range ups {
		d := s.devices[u.nameplate]
		if d == nil {
			d = &DeviceRecord{Nameplate: u.nameplate}
			s.devices[u.nameplate] = d
		}
		d.Updates++
		if many {
			d.ManyUpdates++
		} else {
			d.OneUpdates++
		}
		d.Attributes = slices.Clone(u.attributes)
		d.UpdatedAt = now
	}
	s.counts.DevicesUpdated += int64(len(ups))
	if many {
		s.counts.ManyUpdates++
	} else {
		s.counts.OneUpdates++
	}
}

// control serves /_sim/record, /_sim/faults and /_sim/reset. They are not
// subject to auth or faults.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
	fail := func(status int, msg string) { reply(status, errorBody{Status: "error", Message: msg}) }
	switch r.URL.Path {
	case "/_sim/record":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			fail(http.StatusMethodNotAllowed, "use GET")
			return
		}
		reply(http.StatusOK, s.Record())
	case "/_sim/faults":
		switch r.Method {
		case http.MethodGet:
			reply(http.StatusOK, s.Faults())
		case http.MethodPut, http.MethodPatch:
			var f Faults
			if r.Method == http.MethodPatch {
				f = s.Faults()
			}
			b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			if err == nil {
				err = json.Unmarshal(b, &f)
			}
			if err == nil {
				err = s.SetFaults(f)
			}
			if err != nil {
				fail(http.StatusBadRequest, "faults: "+err.Error())
				return
			}
			reply(http.StatusOK, f)
		default:
			w.Header().Set("Allow", "GET, PUT, PATCH")
			fail(http.StatusMethodNotAllowed, "use GET, PUT or PATCH")
		}
	case "/_sim/reset":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			fail(http.StatusMethodNotAllowed, "use POST")
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(http.StatusNotFound, "no such control endpoint; see m2m-sim --help")
	}
}
