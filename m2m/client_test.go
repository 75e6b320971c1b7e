package m2m

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/m2m/m2mtest"
)

// newClient builds a client for base with test defaults (a fast rate so
// that tests not about the rate do not wait for it).
func newClient(t *testing.T, base string, cfg Config) *Client {
	t.Helper()
	cfg.BaseURL = base
	if cfg.InstanceID == "" {
		cfg.InstanceID = m2mtest.DefaultInstanceID
	}
	if cfg.Rate == 0 {
		cfg.Rate = 10000
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func makeCreate(t *testing.T, protocol int64, nameplate string) []byte {
	t.Helper()
	tk := docTicket()
	tk.Protocol, tk.Nameplate = protocol, nameplate
	tk.Description = fmt.Sprintf("Falha de lâmpada no ponto %s", nameplate)
	b, err := EncodeCreate(tk, docDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiErr asserts err is an *Error and returns it.
func apiErr(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *m2m.Error", err, err)
	}
	var ae agent.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v does not implement agent.APIError", err)
	}
	return e
}

func TestDefaultsMatchSimulator(t *testing.T) {
	for _, p := range [][2]string{
		{DefaultTicketsPath, m2mtest.DefaultTicketsPath},
		{DefaultDevicesPath, m2mtest.DefaultDevicesPath},
		{DefaultDevicePath, m2mtest.DefaultDevicePath},
		{DefaultAttributesMethod, m2mtest.DefaultAttributesMethod},
		{DefaultAPIKeyHeader, m2mtest.DefaultAPIKeyHeader},
	} {
		if p[0] != p[1] {
			t.Errorf("client default %q, simulator default %q", p[0], p[1])
		}
	}
}

func TestCreateAndConflict(t *testing.T) {
	for _, numeric := range []bool{false, true} {
		sim := m2mtest.StartT(t, m2mtest.Options{NumericDates: numeric})
		c := newClient(t, sim.URL(), Config{})
		ctx := context.Background()
		body := makeCreate(t, 41, "IP05")

		res, err := c.CreateTicket(ctx, body)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if res.IDDemanda != 1 || !strings.Contains(res.Body, `"operacao":"cria"`) {
			t.Errorf("numeric=%v: result %+v", numeric, res)
		}
		rec := sim.Record()
		tr, ok := rec.Ticket(41)
		if !ok || tr.Nameplate != "IP05" || !bytes.Equal(tr.Body, body) {
			t.Fatalf("simulator record %+v, want the body sent", tr)
		}

		// The same protocol again: it exists there.
		_, err = c.CreateTicket(ctx, body)
		e := apiErr(t, err)
		if e.Outcome() != agent.OutcomeExists || e.StatusCode() != 409 || e.MaybeDelivered() ||
			!strings.Contains(e.ResponseBody(), "already exists") || e.Call != CallCreate {
			t.Errorf("second create: %v (outcome %v, status %d, maybe %v, body %q)",
				e, e.Outcome(), e.StatusCode(), e.MaybeDelivered(), e.ResponseBody())
		}
		if n := sim.Counts(); n.Created != 1 || n.Conflicts != 1 {
			t.Errorf("simulator counts %+v", n)
		}
	}
}

func TestCreateRejectedFieldsArePermanent(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{})
	c := newClient(t, sim.URL(), Config{})
	ctx := context.Background()

	// A body without age_majority_checkbox: the simulator answers 422.
	var m map[string]any
	_ = json.Unmarshal(makeCreate(t, 5, "A1"), &m)
	delete(m, "age_majority_checkbox")
	b, _ := json.Marshal(m)
	_, err := c.CreateTicket(ctx, b)
	e := apiErr(t, err)
	if e.Outcome() != agent.OutcomePermanent || e.StatusCode() != 422 ||
		!strings.Contains(e.ResponseBody(), "age_majority_checkbox") || !errors.Is(err, ErrStatus) {
		t.Errorf("422: %v / %q", e, e.ResponseBody())
	}

	// Not JSON at all: refused before sending.
	_, err = c.CreateTicket(ctx, []byte("{oops"))
	e = apiErr(t, err)
	if e.Outcome() != agent.OutcomePermanent || !errors.Is(err, ErrInvalidInput) || e.MaybeDelivered() {
		t.Errorf("invalid body: %v", e)
	}
	if n := sim.Counts().Requests; n != 1 {
		t.Errorf("simulator saw %d requests, want 1 (the invalid body must not be sent)", n)
	}

	// An unknown instance is 404 on create: permanent, not "gone".
	other := newClient(t, sim.URL(), Config{InstanceID: "70"})
	_, err = other.CreateTicket(ctx, makeCreate(t, 6, "A1"))
	if e := apiErr(t, err); e.Outcome() != agent.OutcomePermanent || e.StatusCode() != 404 {
		t.Errorf("unknown instance: %v", e)
	}
}

func TestCancel(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{})
	c := newClient(t, sim.URL(), Config{Origin: "tg"})
	ctx := context.Background()
	if _, err := c.CreateTicket(ctx, makeCreate(t, 10, "IP05")); err != nil {
		t.Fatal(err)
	}
	if err := c.CancelTicket(ctx, 10, "Falha normalizada: lâmpada acesa"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	tr, _ := sim.Record().Ticket(10)
	if !tr.Cancelled || tr.Justification != "Falha normalizada: lâmpada acesa" {
		t.Errorf("simulator record %+v", tr)
	}
	// Again, and a protocol never created: not open there, which is done.
	for _, p := range []int64{10, 999} {
		err := c.CancelTicket(ctx, p, "again")
		if e := apiErr(t, err); e.Outcome() != agent.OutcomeGone || e.StatusCode() != 404 || e.Call != CallCancel {
			t.Errorf("cancel %d: %v", p, e)
		}
	}
	if err := c.CancelTicket(ctx, 0, "x"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("cancel of protocol 0: %v", err)
	}
}

// TestOutcomes classifies every kind of answer of every call, over real HTTP.
func TestOutcomes(t *testing.T) {
	var status atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := int(status.Load())
		if st >= 300 && st < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"status":"x","code":%d}`, st)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, Config{})
	ctx := context.Background()
	calls := map[string]func() error{
		CallCreate: func() error { _, err := c.CreateTicket(ctx, makeCreate(t, 1, "A")); return err },
		CallCancel: func() error { return c.CancelTicket(ctx, 1, "j") },
		CallUpdateDevices: func() error {
			return c.UpdateDevices(ctx, []agent.DeviceAttributes{{Nameplate: "A"}})
		},
		CallUpdateDevice: func() error { return c.UpdateDevice(ctx, agent.DeviceAttributes{Nameplate: "A"}) },
	}
	for _, tc := range []struct {
		status int
		want   map[string]agent.Outcome // by call; "" for all
		maybe  bool
	}{
		{200, map[string]agent.Outcome{"": agent.OutcomeOK}, false},
		{201, map[string]agent.Outcome{"": agent.OutcomeOK}, false},
		{204, map[string]agent.Outcome{"": agent.OutcomeOK}, false},
		{301, map[string]agent.Outcome{"": agent.OutcomePermanent}, false},
		{307, map[string]agent.Outcome{"": agent.OutcomePermanent}, false},
		{400, map[string]agent.Outcome{"": agent.OutcomePermanent}, false},
		{401, map[string]agent.Outcome{"": agent.OutcomePermanent}, false},
		{403, map[string]agent.Outcome{"": agent.OutcomePermanent}, false},
		{404, map[string]agent.Outcome{"": agent.OutcomePermanent, CallCancel: agent.OutcomeGone}, false},
		{409, map[string]agent.Outcome{"": agent.OutcomePermanent, CallCreate: agent.OutcomeExists}, false},
		{422, map[string]agent.Outcome{"": agent.OutcomePermanent}, false},
		{408, map[string]agent.Outcome{"": agent.OutcomeRetryable}, false},
		{425, map[string]agent.Outcome{"": agent.OutcomeRetryable}, false},
		{429, map[string]agent.Outcome{"": agent.OutcomeRetryable}, false},
		{500, map[string]agent.Outcome{"": agent.OutcomeRetryable}, true},
		{501, map[string]agent.Outcome{"": agent.OutcomeRetryable}, false},
		{502, map[string]agent.Outcome{"": agent.OutcomeRetryable}, true},
		{503, map[string]agent.Outcome{"": agent.OutcomeRetryable}, false},
		{504, map[string]agent.Outcome{"": agent.OutcomeRetryable}, true},
	} {
		status.Store(int64(tc.status))
		for call, fn := range calls {
			want, ok := tc.want[call]
			if !ok {
				want = tc.want[""]
			}
			err := fn()
			if want == agent.OutcomeOK {
				if err != nil {
					t.Errorf("%s %d: %v, want success", call, tc.status, err)
				}
				continue
			}
			e := apiErr(t, err)
			if e.Outcome() != want || e.StatusCode() != tc.status || e.MaybeDelivered() != tc.maybe ||
				e.ResponseBody() != fmt.Sprintf(`{"status":"x","code":%d}`, tc.status) {
				t.Errorf("%s %d: outcome %v maybe %v status %d body %q; want %v maybe %v",
					call, tc.status, e.Outcome(), e.MaybeDelivered(), e.StatusCode(), e.ResponseBody(), want, tc.maybe)
			}
			if e.Retryable() != (want == agent.OutcomeRetryable) || e.Permanent() != (want == agent.OutcomePermanent) {
				t.Errorf("%s %d: Retryable %v Permanent %v", call, tc.status, e.Retryable(), e.Permanent())
			}
		}
	}
}

func TestCreate2xxWithUnreadableBodyIsSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("<html>created</html>"))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, Config{})
	res, err := c.CreateTicket(context.Background(), makeCreate(t, 3, "A"))
	if err != nil || res.IDDemanda != 0 || res.Body != "<html>created</html>" {
		t.Errorf("got %+v, %v; want success with IDDemanda 0 and the body kept", res, err)
	}
}

func TestAuthModes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		sim  m2mtest.Options
		good Config
		none *Config // missing credentials: 401
		bad  *Config // wrong credentials: 403
	}{
		{name: "none"},
		{name: "bearer", sim: m2mtest.Options{Token: "t0k"},
			good: Config{Token: "t0k"}, none: &Config{}, bad: &Config{Token: "nope"}},
		{name: "api key", sim: m2mtest.Options{APIKey: "k3y", APIKeyHeader: "X-Api-Key"},
			good: Config{APIKey: "k3y", APIKeyHeader: "x-api-key"},
			none: &Config{APIKey: "k3y"}, // in the default header "apikey"
			bad:  &Config{APIKey: "k3y-", APIKeyHeader: "X-API-KEY"}},
		{name: "extra headers", sim: m2mtest.Options{RequireHeaders: map[string]string{"x-id-instance": "69", "X-Vendor-Uuid": "v-1"}},
			good: Config{Headers: []Header{{"X-Id-Instance", "69"}, {"x-vendor-uuid", "v-1"}}},
			none: &Config{Headers: []Header{{"X-Id-Instance", "69"}}},
			bad:  &Config{Headers: []Header{{"X-Id-Instance", "69"}, {"x-vendor-uuid", "v-2"}}}},
		{name: "all", sim: m2mtest.Options{Token: "t", APIKey: "k", RequireHeaders: map[string]string{"X-A": "b"}},
			good: Config{Token: "t", APIKey: "k", Headers: []Header{{"X-A", "b"}}},
			none: &Config{Token: "t", Headers: []Header{{"X-A", "b"}}},
			bad:  &Config{Token: "t", APIKey: "wrong", Headers: []Header{{"X-A", "b"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := m2mtest.StartT(t, tc.sim)
			if _, err := newClient(t, sim.URL(), tc.good).CreateTicket(ctx, makeCreate(t, 1, "A")); err != nil {
				t.Fatalf("good credentials: %v", err)
			}
			if tc.none != nil {
				_, err := newClient(t, sim.URL(), *tc.none).CreateTicket(ctx, makeCreate(t, 2, "A"))
				if e := apiErr(t, err); e.StatusCode() != 401 || e.Outcome() != agent.OutcomePermanent {
					t.Errorf("missing credentials: %v", e)
				}
			}
			if tc.bad != nil {
				_, err := newClient(t, sim.URL(), *tc.bad).CreateTicket(ctx, makeCreate(t, 3, "A"))
				if e := apiErr(t, err); e.StatusCode() != 403 || e.Outcome() != agent.OutcomePermanent {
					t.Errorf("wrong credentials: %v", e)
				}
			}
			if n := sim.Counts().Created; n != 1 {
				t.Errorf("%d tickets created, want 1", n)
			}
		})
	}
}

func TestCustomCA(t *testing.T) {
	sim := m2mtest.New(m2mtest.Options{})
	srv := httptest.NewUnstartedServer(sim)
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the untrusted handshake below is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := LoadCAFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := newClient(t, srv.URL, Config{RootCAs: pool}).CreateTicket(ctx, makeCreate(t, 1, "A")); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	// Without it the server is not trusted: retryable (the operator can fix
	// the CA file; the ticket must not be failed), and never delivered.
	_, err = newClient(t, srv.URL, Config{}).CreateTicket(ctx, makeCreate(t, 2, "A"))
	e := apiErr(t, err)
	var cv *tls.CertificateVerificationError
	if e.Outcome() != agent.OutcomeRetryable || e.MaybeDelivered() || !errors.As(err, &cv) {
		t.Errorf("untrusted server: %v (maybe %v)", e, e.MaybeDelivered())
	}
	if n := sim.Counts().Created; n != 1 {
		t.Errorf("%d created, want 1", n)
	}

	notPEM := filepath.Join(t.TempDir(), "x.pem")
	_ = os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if _, err := LoadCAFile(notPEM); !errors.Is(err, ErrConfig) {
		t.Errorf("non-PEM CA file: %v", err)
	}
	if _, err := LoadCAFile(filepath.Join(t.TempDir(), "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestPathEscapingAndPrefix(t *testing.T) {
	sim := m2mtest.New(m2mtest.Options{InstanceID: "6/9 é"})
	t.Cleanup(sim.Close)
	// The base URL's path prefix is kept: the API lives under /staging.
	srv := httptest.NewServer(http.StripPrefix("/staging", sim))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/staging/", Config{InstanceID: "6/9 é"})
	ctx := context.Background()
	names := []string{"../x", "a b", "é/ç", "..", ".", "x?y#z", "%2F", "a/../../tickets", "IP05"}
	for _, n := range names {
		if err := c.UpdateDevice(ctx, agent.DeviceAttributes{Nameplate: n, Online: true}); err != nil {
			t.Errorf("update %q: %v", n, err)
		}
	}
	rec := sim.Record()
	for _, n := range names {
		d, ok := rec.Device(n)
		if !ok || d.OneUpdates != 1 {
			t.Errorf("device %q not updated through its own path: %+v", n, d)
		}
	}
	if len(rec.Devices) != len(names) {
		t.Errorf("%d devices recorded, want %d", len(rec.Devices), len(names))
	}
	for _, r := range rec.Requests {
		if !strings.HasPrefix(r.Path, "/vendors/m2m/clients/6%2F9%20%C3%A9/devices/") || r.Status != 200 {
			t.Errorf("request %s %s → %d %s", r.Method, r.Path, r.Status, r.Reason)
		}
	}
	if _, err := c.CreateTicket(ctx, makeCreate(t, 1, "A")); err != nil {
		t.Errorf("create under a prefix: %v", err)
	}
	if err := c.UpdateDevice(ctx, agent.DeviceAttributes{}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty nameplate: %v", err)
	}
}

func TestLostAnswerThen409(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{Faults: m2mtest.Faults{LoseAnswers: 1}})
	c := newClient(t, sim.URL(), Config{})
	ctx := context.Background()
	body := makeCreate(t, 77, "IP05")
	_, err := c.CreateTicket(ctx, body)
	e := apiErr(t, err)
	if e.Outcome() != agent.OutcomeRetryable || !e.MaybeDelivered() || e.StatusCode() != 0 {
		t.Fatalf("lost answer: %v (maybe %v)", e, e.MaybeDelivered())
	}
	_, err = c.CreateTicket(ctx, body)
	if e := apiErr(t, err); e.Outcome() != agent.OutcomeExists {
		t.Fatalf("retry after a lost answer: %v, want exists", e)
	}
	tr, _ := sim.Record().Ticket(77)
	if n := sim.Counts(); n.Created != 1 || n.LostAnswers != 1 || tr.LostAnswers != 1 || tr.Conflicts != 1 {
		t.Errorf("counts %+v, ticket %+v", n, tr)
	}
}

func TestTimeoutAfterWritingMayHaveBeenDelivered(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{Faults: m2mtest.Faults{Latency: 10 * time.Second}})
	// The timeout leaves ample time to write the request even on a loaded
	// machine; the simulator then holds the answer far longer.
	c := newClient(t, sim.URL(), Config{Timeout: time.Second})
	_, err := c.CreateTicket(context.Background(), makeCreate(t, 1, "A"))
	e := apiErr(t, err)
	if e.Outcome() != agent.OutcomeRetryable || !e.MaybeDelivered() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v (maybe %v)", e, e.MaybeDelivered())
	}
}

func TestDialRefusedWasNotDelivered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr, Config{})
	_, err = c.CreateTicket(context.Background(), makeCreate(t, 1, "A"))
	e := apiErr(t, err)
	if e.Outcome() != agent.OutcomeRetryable || e.MaybeDelivered() || e.StatusCode() != 0 {
		t.Errorf("refused: %v (maybe %v)", e, e.MaybeDelivered())
	}
}

func TestRetryAfter(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{Faults: m2mtest.Faults{Down: true, RetryAfter: "7"}})
	c := newClient(t, sim.URL(), Config{})
	ctx := context.Background()
	_, err := c.CreateTicket(ctx, makeCreate(t, 1, "A"))
	if e := apiErr(t, err); e.StatusCode() != 503 || e.RetryAfter() != 7*time.Second || e.Outcome() != agent.OutcomeRetryable {
		t.Errorf("503: %v, retry after %v", e, e.RetryAfter())
	}
	// An HTTP-date, read against the client's clock, on a 429.
	now := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	if err := sim.SetFaults(m2mtest.Faults{ThrottleRate: 1, RetryAfter: now.Add(95 * time.Second).Format(http.TimeFormat)}); err != nil {
		t.Fatal(err)
	}
	err = c.CancelTicket(ctx, 1, "x")
	if e := apiErr(t, err); e.StatusCode() != 429 || e.RetryAfter() != 95*time.Second {
		t.Errorf("429: %v, retry after %v", e, e.RetryAfter())
	}
}

// TestConcurrencyLimit holds requests in the simulator and counts how many
// are in flight: never more than Concurrency, and exactly that many while
// more are waiting.
func TestConcurrencyLimit(t *testing.T) {
	const limit, calls = 3, 10
	release := make(chan struct{})
	sim := m2mtest.StartT(t, m2mtest.Options{OnRequest: func(string) { <-release }})
	c := newClient(t, sim.URL(), Config{Concurrency: limit})
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			_, err := c.CreateTicket(context.Background(), makeCreate(t, int64(i+1), "A"))
			errs <- err
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for sim.InFlight() < limit {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests in flight", sim.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Give a broken limiter the chance to let a fourth one through.
	time.Sleep(100 * time.Millisecond)
	if n := sim.InFlight(); n != limit {
		t.Errorf("%d in flight while %d calls wait, want %d", n, calls, limit)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := sim.Counts(); n.MaxInFlight != limit || n.Created != calls {
		t.Errorf("max in flight %d, created %d; want %d, %d", n.MaxInFlight, n.Created, limit, calls)
	}
}

// fakeClock is a clock whose sleeps advance it instantly.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (f *fakeClock) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	f.sleeps = append(f.sleeps, d)
	return ctx.Err()
}
func (f *fakeClock) advance(d time.Duration) { f.mu.Lock(); f.t = f.t.Add(d); f.mu.Unlock() }

func TestRateLimitOnFakeClock(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{})
	c := newClient(t, sim.URL(), Config{Rate: 5})
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.now, c.sleep = clk.now, clk.sleep
	start := clk.now()
	const n = 20
	for i := range n {
		if err := c.UpdateDevice(context.Background(), agent.DeviceAttributes{Nameplate: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A bucket of one at 5/s: the first goes at once, each next one 200 ms
	// after the previous, whatever the wall clock did.
	if got, want := clk.now().Sub(start), (n-1)*200*time.Millisecond; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("%d requests took %v on the fake clock, want %v", n, got, want)
	}
	if len(clk.sleeps) != n-1 {
		t.Errorf("%d waits, want %d", len(clk.sleeps), n-1)
	}
	for _, d := range clk.sleeps {
		if d > 200*time.Millisecond+time.Millisecond {
			t.Errorf("a wait of %v, more than one token's worth", d)
		}
	}
	if got := sim.Counts().OneUpdates; got != n {
		t.Errorf("simulator saw %d, want %d", got, n)
	}
	// After a long quiet spell there is no saved-up burst: one at once, then
	// the rate again.
	clk.advance(time.Hour)
	clk.sleeps = nil
	for i := range 3 {
		_ = c.UpdateDevice(context.Background(), agent.DeviceAttributes{Nameplate: fmt.Sprint(i)})
	}
	if len(clk.sleeps) != 2 {
		t.Errorf("after an hour idle: %d waits for 3 requests, want 2", len(clk.sleeps))
	}
}

// TestRateLimitRealClock checks the real limiter from below only: N
// requests at rate R cannot finish before (N-1)/R, however slow the machine.
func TestRateLimitRealClock(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{})
	c := newClient(t, sim.URL(), Config{Rate: 40, Concurrency: 8})
	const n = 12
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _ = c.UpdateDevice(context.Background(), agent.DeviceAttributes{Nameplate: fmt.Sprint(i)}) })
	}
	wg.Wait()
	if el, min := time.Since(start), time.Duration(n-1)*time.Second/40; el < min {
		t.Errorf("%d requests in %v at 40/s: faster than the rate allows (%v)", n, el, min)
	}
	if got := sim.Counts().OneUpdates; got != n {
		t.Errorf("simulator saw %d, want %d", got, n)
	}
}

func TestWaitingHonoursContext(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{})
	// One request per 1000 s: the second call must give up with its context.
	c := newClient(t, sim.URL(), Config{Rate: 0.001})
	ctx := context.Background()
	if err := c.UpdateDevice(ctx, agent.DeviceAttributes{Nameplate: "a"}); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := c.UpdateDevice(tctx, agent.DeviceAttributes{Nameplate: "b"})
	if e := apiErr(t, err); e.Outcome() != agent.OutcomeRetryable || e.MaybeDelivered() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("rate wait: %v", e)
	}
	// A slot wait: the only slot is held by a request the simulator holds.
	release := make(chan struct{})
	held := m2mtest.StartT(t, m2mtest.Options{OnRequest: func(string) { <-release }})
	c2 := newClient(t, held.URL(), Config{Concurrency: 1})
	done := make(chan error)
	go func() { done <- c2.UpdateDevice(ctx, agent.DeviceAttributes{Nameplate: "a"}) }()
	for held.InFlight() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	cctx, cancel2 := context.WithCancel(ctx)
	cancel2()
	err = c2.UpdateDevice(cctx, agent.DeviceAttributes{Nameplate: "b"})
	if e := apiErr(t, err); !errors.Is(err, context.Canceled) || e.MaybeDelivered() {
		t.Errorf("slot wait: %v", e)
	}
	close(release)
	if err := <-done; err != nil {
		t.Error(err)
	}
	if n := sim.Counts().Requests + held.Counts().Requests; n != 2 {
		t.Errorf("%d requests reached the simulators, want 2", n)
	}
}

func devicesN(n int) []agent.DeviceAttributes {
	out := make([]agent.DeviceAttributes, n)
	for i := range out {
		out[i] = agent.DeviceAttributes{Nameplate: fmt.Sprintf("LP-%04d", i), Online: i%2 == 0,
			LastSeen: time.Date(2026, 12, 4, 21, 10, 0, 0, time.FixedZone("BRT", -3*3600)),
			Reading:  agent.Reading{Fields: agent.FieldVoltage | agent.FieldLampOn, Voltage: 221.5, LampOn: true}}
	}
	return out
}

func TestUpdateAttributesChunksAndBody(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{})
	c := newClient(t, sim.URL(), Config{})
	devs := devicesN(250)
	devs[7].ActiveFaults = []string{agent.FaultLampFailure, "relayFailure"}
	devs[7].Reading = agent.Reading{Fields: agent.FieldPower | agent.FieldDim | agent.FieldLux, Power: 0, Dim: 100, Lux: 3}
	if err := c.UpdateAttributes(context.Background(), devs); err != nil {
		t.Fatal(err)
	}
	n := sim.Counts()
	if n.ManyUpdates != 3 || n.DevicesUpdated != 250 || n.OneUpdates != 0 {
		t.Errorf("counts %+v; want 3 many calls (100+100+50)", n)
	}
	rec := sim.Record()
	d, _ := rec.Device("LP-0007")
	var got map[string]any
	if err := json.Unmarshal(d.Attributes, &got); err != nil {
		t.Fatal(err)
	}
	// Only measurements ever reported: power (even 0) and dim; lux is not
	// an attribute; voltage was not reported.
	want := map[string]any{"power": 0.0, "dim": 100.0, "online": false, "last_seen": "2026-12-05T00:10:00Z",
		"active_faults": []any{"lampFailure", "relayFailure"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("attributes of LP-0007:\n got %v\nwant %v", got, want)
	}
	d, _ = rec.Device("LP-0000")
	got = nil
	_ = json.Unmarshal(d.Attributes, &got)
	want = map[string]any{"voltage": 221.5, "lamp_on": true, "online": true, "last_seen": "2026-12-05T00:10:00Z",
		"active_faults": []any{}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("attributes of LP-0000:\n got %v\nwant %v", got, want)
	}
	if err := c.UpdateDevices(context.Background(), devicesN(101)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("101 devices in one call: %v", err)
	}
}

func TestUpdateAttributesFallback(t *testing.T) {
	ctx := context.Background()
	t.Run("405 remembered, re-probed after an hour", func(t *testing.T) {
		sim := m2mtest.StartT(t, m2mtest.Options{ManyUnsupported: true})
		c := newClient(t, sim.URL(), Config{Concurrency: 4})
		clk := &fakeClock{t: time.Now()}
		c.now = clk.now
		if err := c.UpdateAttributes(ctx, devicesN(150)); err != nil {
			t.Fatal(err)
		}
		n := sim.Counts()
		if n.MethodNotAllowed != 1 || n.OneUpdates != 150 || n.ManyUpdates != 0 {
			t.Errorf("first run: %+v; want one 405 then 150 one-device calls", n)
		}
		if err := c.UpdateAttributes(ctx, devicesN(10)); err != nil {
			t.Fatal(err)
		}
		if n := sim.Counts(); n.MethodNotAllowed != 1 || n.OneUpdates != 160 {
			t.Errorf("second run: %+v; want no new many call", n)
		}
		clk.advance(manyReprobe)
		if err := c.UpdateAttributes(ctx, devicesN(10)); err != nil {
			t.Fatal(err)
		}
		if n := sim.Counts(); n.MethodNotAllowed != 2 || n.OneUpdates != 170 {
			t.Errorf("after an hour: %+v; want the many call tried again", n)
		}
	})
	t.Run("404", func(t *testing.T) {
		sim := m2mtest.StartT(t, m2mtest.Options{})
		c := newClient(t, sim.URL(), Config{DevicesPath: "/vendors/m2m/clients/{idInstance}/no-such-call"})
		if err := c.UpdateAttributes(ctx, devicesN(3)); err != nil {
			t.Fatal(err)
		}
		if n := sim.Counts(); n.NotFound != 1 || n.OneUpdates != 3 {
			t.Errorf("counts %+v", n)
		}
	})
}

func TestUpdateAttributesPartialAndRetryableFailures(t *testing.T) {
	ctx := context.Background()
	sim := m2mtest.StartT(t, m2mtest.Options{})
	c := newClient(t, sim.URL(), Config{})
	devs := devicesN(5)
	devs[1].Nameplate = ""
	devs[3].Reading.Voltage = math.Inf(1)
	err := c.UpdateAttributes(ctx, devs)
	e := apiErr(t, err)
	if e.Outcome() != agent.OutcomePermanent || !slices.Equal(e.Devices, []string{"", "LP-0003"}) ||
		!errors.Is(err, ErrInvalidInput) || e.Call != CallUpdateAttributes {
		t.Errorf("partial: %v, devices %q", e, e.Devices)
	}
	if n := sim.Counts().DevicesUpdated; n != 3 {
		t.Errorf("%d devices applied, want the 3 valid ones", n)
	}

	// The API is down: one call, then stop; every device reported unapplied.
	_ = sim.SetFaults(m2mtest.Faults{Down: true, RetryAfter: "30"})
	before := sim.Counts().Requests
	err = c.UpdateAttributes(ctx, devicesN(250))
	e = apiErr(t, err)
	if e.Outcome() != agent.OutcomeRetryable || len(e.Devices) != 250 || e.RetryAfter() != 30*time.Second || e.StatusCode() != 503 {
		t.Errorf("down: %v, %d devices, retry after %v", e, len(e.Devices), e.RetryAfter())
	}
	if n := sim.Counts().Requests - before; n != 1 {
		t.Errorf("%d requests while down, want 1", n)
	}
	if err := c.UpdateAttributes(ctx, nil); err != nil {
		t.Errorf("nothing to send: %v", err)
	}
}

func TestResponseBodyIsSizeLimited(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(bytes.Repeat([]byte("x"), 4<<20))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, Config{})
	_, err := c.CreateTicket(context.Background(), makeCreate(t, 1, "A"))
	if e := apiErr(t, err); len(e.ResponseBody()) != MaxResponseBody || len(e.Error()) > 1000 {
		t.Errorf("kept %d bytes of the body, error of %d bytes", len(e.ResponseBody()), len(e.Error()))
	}
}

func TestSlowBody(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{Faults: m2mtest.Faults{SlowBody: 5 * time.Millisecond}})
	c := newClient(t, sim.URL(), Config{Timeout: 10 * time.Second})
	res, err := c.CreateTicket(context.Background(), makeCreate(t, 1, "A"))
	if err != nil || res.IDDemanda != 1 {
		t.Fatalf("trickled answer: %+v, %v", res, err)
	}
	if testing.Short() {
		return
	}
	// A body slower than the timeout: the 201 status was seen, so the
	// ticket counts as created, without its id_demanda.
	// The status and headers go out at once; the first body piece after 5 s.
	_ = sim.SetFaults(m2mtest.Faults{SlowBody: 5 * time.Second})
	c = newClient(t, sim.URL(), Config{Timeout: 2 * time.Second})
	res, err = c.CreateTicket(context.Background(), makeCreate(t, 2, "A"))
	if err != nil || res.IDDemanda != 0 {
		t.Errorf("body cut by the timeout: %+v, %v; want success with IDDemanda 0", res, err)
	}
	if n := sim.Counts().Created; n != 2 {
		t.Errorf("%d created", n)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	const token, key, hdr, pass = "tok-SECRET-1", "key-SECRET-2", "hdr-SECRET-3", "pw-SECRET-4"
	sim := m2mtest.New(m2mtest.Options{Token: token, APIKey: key, RequireHeaders: map[string]string{"X-Tenant": hdr}})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := strings.Replace(srv.URL, "http://", "http://user:"+pass+"@", 1)
	c := newClient(t, base, Config{Token: token, APIKey: key, Headers: []Header{{"X-Tenant", hdr}}, Logger: log})
	ctx := context.Background()
	var errs []error
	_, err := c.CreateTicket(ctx, makeCreate(t, 1, "A"))
	errs = append(errs, err)
	errs = append(errs, c.CancelTicket(ctx, 1, "j"), c.UpdateAttributes(ctx, devicesN(2)))
	_, err = c.CreateTicket(ctx, makeCreate(t, 1, "A")) // 409
	errs = append(errs, err)
	bad := newClient(t, base, Config{Token: "x" + token, APIKey: key, Headers: []Header{{"X-Tenant", hdr}}, Logger: log})
	_, err = bad.CreateTicket(ctx, makeCreate(t, 2, "A")) // 403
	errs = append(errs, err)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, e := range errs {
		if e != nil {
			out += "\n" + e.Error()
		}
	}
	out += "\n" + fmt.Sprint(slog.AnyValue(Config{Token: token, APIKey: key, Headers: []Header{{"X-Tenant", hdr}}}).Resolve())
	for _, s := range []string{token, key, hdr, pass} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q appears in the logs or errors", s)
		}
	}
	for _, s := range []string{`"msg":"m2m request"`, `"msg":"m2m answer"`, "[REDACTED]", `"status":403`, `"call":"update_devices"`} {
		if !strings.Contains(out, s) {
			t.Errorf("debug log lacks %s:\n%s", s, out)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestObserve(t *testing.T) {
	sim := m2mtest.StartT(t, m2mtest.Options{})
	var mu sync.Mutex
	var seen []string
	c := newClient(t, sim.URL(), Config{Observe: func(call string, o agent.Outcome, status int, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d < 0 {
			t.Errorf("negative duration %v", d)
		}
		seen = append(seen, fmt.Sprintf("%s:%s:%d", call, o, status))
	}})
	ctx := context.Background()
	_, _ = c.CreateTicket(ctx, makeCreate(t, 1, "A"))
	_, _ = c.CreateTicket(ctx, makeCreate(t, 1, "A"))
	_ = c.CancelTicket(ctx, 2, "x")
	_, _ = c.CreateTicket(ctx, []byte("not json")) // refused locally: not a request
	want := []string{"create:ok:201", "create:exists:409", "cancel:gone:404"}
	if !slices.Equal(seen, want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}

func TestNewValidates(t *testing.T) {
	good := Config{BaseURL: "https://iot.example/staging", InstanceID: "69"}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != DefaultTimeout || c.concurrency != DefaultConcurrency || float64(c.limiter.Limit()) != DefaultRate ||
		c.attrMethod != "PATCH" || c.origin != "tg" || c.base != "https://iot.example/staging" ||
		c.ticketsPath != "/vendors/m2m/clients/69/tickets" || c.devicePath != "/vendors/m2m/clients/69/devices/{nameplate_num}" {
		t.Errorf("defaults not applied: %+v", c)
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no base":        {func(c *Config) { c.BaseURL = "" }, "BaseURL"},
		"ftp":            {func(c *Config) { c.BaseURL = "ftp://x" }, "scheme"},
		"no host":        {func(c *Config) { c.BaseURL = "https:///x" }, "no host"},
		"query":          {func(c *Config) { c.BaseURL = "https://x/?a=1" }, "query"},
		"no instance":    {func(c *Config) { c.InstanceID = " " }, "InstanceID"},
		"bad path":       {func(c *Config) { c.TicketsPath = "tickets" }, "TicketsPath"},
		"unknown var":    {func(c *Config) { c.DevicesPath = "/d/{id}" }, "unknown placeholder"},
		"no nameplate":   {func(c *Config) { c.DevicePath = "/d/{idInstance}" }, "needs {nameplate_num}"},
		"nameplate many": {func(c *Config) { c.DevicesPath = "/d/{nameplate_num}" }, "not allowed"},
		"method":         {func(c *Config) { c.AttributesMethod = "GET" }, "AttributesMethod"},
		"header name":    {func(c *Config) { c.Headers = []Header{{"bad name", "v"}} }, "header name"},
		"header value":   {func(c *Config) { c.Headers = []Header{{"X-A", "v\r\nX-B: w"}} }, "control characters"},
		"token":          {func(c *Config) { c.Token = "a\nb" }, "Token"},
		"key header":     {func(c *Config) { c.APIKeyHeader = "a:b" }, "APIKeyHeader"},
		"timeout":        {func(c *Config) { c.Timeout = -1 }, "Timeout"},
		"concurrency":    {func(c *Config) { c.Concurrency = -1 }, "Concurrency"},
		"rate":           {func(c *Config) { c.Rate = math.NaN() }, "Rate"},
		"rate inf":       {func(c *Config) { c.Rate = math.Inf(1) }, "Rate"},
		"transport+CA":   {func(c *Config) { c.Transport = http.DefaultTransport; c.RootCAs = x509Pool() }, "RootCAs"},
	} {
		cfg := good
		tc.mod(&cfg)
		_, err := New(cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig mentioning %q", name, err, tc.want)
		}
	}
	// Every problem at once, one per line.
	_, err = New(Config{Timeout: -1, Concurrency: -1})
	if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
		t.Errorf("%d problems reported, want 4: %v", n, err)
	}
}

func x509Pool() *x509.CertPool { return x509.NewCertPool() }
