package m2m

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/edge-agent/edge-agent/agent"
)

// Defaults of Config (CONTRACT §2).
const (
	DefaultTimeout     = 15 * time.Second
	DefaultConcurrency = 4
	DefaultRate        = 10.0
)

// MaxResponseBody is how much of an answer is read and kept; the rest (up
// to another MiB, so the connection can be reused) is discarded.
const MaxResponseBody = 64 << 10

const (
	maxDiscard = 1 << 20
	// logBodyMax bounds the request and answer bodies in debug logs.
	logBodyMax = 2048
	// manyReprobe is how long the one-device fallback is remembered before
	// the many-devices call is tried again (the 404 may have come from a
	// proxy being reconfigured).
	manyReprobe = time.Hour
	userAgent   = "edge-agent-m2m"
)

// Header is one extra static request header.
type Header struct{ Name, Value string }

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	BaseURL, InstanceID string
	Token               string // Authorization: Bearer <token> when non-empty
	APIKey              string // sent in APIKeyHeader when non-empty
	APIKeyHeader        string // default "apikey"
	Headers             []Header
	RootCAs             *x509.CertPool // nil = system roots; see LoadCAFile
	Timeout             time.Duration  // per request (default 15s)
	Concurrency         int            // requests in flight at once (default 4)
	Rate                float64        // requests per second, token bucket of one (default 10)
	// Path templates: {idInstance} in all, {nameplate_num} in DevicePath.
	TicketsPath, DevicesPath, DevicePath string
	AttributesMethod                     string // default PATCH
	Origin                               string // cod_external_ticket_origin, for the cancel body (default "tg")
	// Transport replaces the tuned default; RootCAs cannot be combined with it.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Observe is called after every request that was sent (or failed in the
	// transport) with its call name, outcome, status (0 for none) and
	// duration. It may be nil; it must not block.
	Observe func(call string, outcome agent.Outcome, status int, d time.Duration)
}

// LogValue prints the configuration with its secrets redacted.
func (cfg Config) LogValue() slog.Value {
	hs := make([]string, 0, len(cfg.Headers))
	for _, h := range cfg.Headers {
		hs = append(hs, h.Name+":"+redacted)
	}
	return slog.GroupValue(
		slog.String("base_url", redactURL(cfg.BaseURL)),
		slog.String("instance_id", cfg.InstanceID),
		slog.Bool("token", cfg.Token != ""),
		slog.Bool("api_key", cfg.APIKey != ""),
		slog.String("api_key_header", cfg.APIKeyHeader),
		slog.Any("headers", hs),
		slog.Duration("timeout", cfg.Timeout),
		slog.Int("concurrency", cfg.Concurrency),
		slog.Float64("rate", cfg.Rate),
	)
}

const redacted = "[REDACTED]"

// Client is the M2M API client. It is safe for concurrent use.
type Client struct {
	base        string // scheme://host/prefix, no trailing slash
	ticketsPath string // escaped, instance substituted
	devicesPath string
	devicePath  string // still holds {nameplate_num}
	attrMethod  string
	origin      string
	headers     http.Header
	secret      map[string]bool // canonical header names whose values are never logged
	timeout     time.Duration
	concurrency int
	sem         chan struct{}
	limiter     *rate.Limiter
	http        *http.Client
	log         *slog.Logger
	observe     func(string, agent.Outcome, int, time.Duration)

	// now and sleep are the clock; tests replace them.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	// manyOffAt is when the many-devices call was found unsupported (Unix
	// nanoseconds), 0 while it is believed supported.
	manyOffAt atomic.Int64
}

var (
	_ agent.TicketAPI    = (*Client)(nil)
	_ agent.AttributeAPI = (*Client)(nil)
)

// New validates cfg and builds a Client. It does no I/O. Every problem
// found is reported, each wrapping ErrConfig.
func New(cfg Config) (*Client, error) {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	c := &Client{
		secret: map[string]bool{"Authorization": true, "Proxy-Authorization": true},
		now:    time.Now,
		sleep:  sleepCtx,
	}

	base, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	switch {
	case cfg.BaseURL == "":
		bad("BaseURL is required")
	case err != nil:
		bad("BaseURL: %v", err)
	case base.Scheme != "http" && base.Scheme != "https":
		bad("BaseURL %q: scheme must be http or https", redactURL(cfg.BaseURL))
	case base.Host == "":
		bad("BaseURL %q: no host", redactURL(cfg.BaseURL))
	case base.RawQuery != "" || base.Fragment != "":
		bad("BaseURL %q: must not have a query or a fragment", redactURL(cfg.BaseURL))
	default:
		c.base = strings.TrimRight(base.Scheme+"://"+hostWithUser(base)+base.EscapedPath(), "/")
	}

	if strings.TrimSpace(cfg.InstanceID) == "" {
		bad("InstanceID is required")
	}
	instance := escapeSegment(cfg.InstanceID)
	tpl := func(name, v, def string, needNameplate bool) string {
		if v == "" {
			v = def
		}
		p, err := substitutePath(v, instance, needNameplate)
		if err != nil {
			bad("%s %q: %v", name, v, err)
		}
		return p
	}
	c.ticketsPath = tpl("TicketsPath", cfg.TicketsPath, DefaultTicketsPath, false)
	c.devicesPath = tpl("DevicesPath", cfg.DevicesPath, DefaultDevicesPath, false)
	c.devicePath = tpl("DevicePath", cfg.DevicePath, DefaultDevicePath, true)

	c.attrMethod = strings.ToUpper(strings.TrimSpace(cfg.AttributesMethod))
	switch c.attrMethod {
	case "":
		c.attrMethod = DefaultAttributesMethod
	case http.MethodPatch, http.MethodPut, http.MethodPost:
	default:
		bad("AttributesMethod %q: must be PATCH, PUT or POST", cfg.AttributesMethod)
	}
	c.origin = cfg.Origin
	if c.origin == "" {
		c.origin = DefaultOrigin
	}

	c.headers = http.Header{}
	c.headers.Set("User-Agent", userAgent)
	for _, h := range cfg.Headers {
		if !validHeaderName(h.Name) {
			bad("header name %q is not a valid HTTP token", h.Name)
			continue
		}
		if !validHeaderValue(h.Value) {
			bad("header %s: value has control characters", h.Name)
			continue
		}
		c.headers.Add(h.Name, h.Value)
		c.secret[http.CanonicalHeaderKey(h.Name)] = true
	}
	if cfg.Token != "" {
		if !validHeaderValue(cfg.Token) {
			bad("Token has control characters")
		}
		c.headers.Set("Authorization", "Bearer "+cfg.Token)
	}
	keyHeader := cfg.APIKeyHeader
	if keyHeader == "" {
		keyHeader = DefaultAPIKeyHeader
	}
	if !validHeaderName(keyHeader) {
		bad("APIKeyHeader %q is not a valid HTTP token", keyHeader)
	} else {
		c.secret[http.CanonicalHeaderKey(keyHeader)] = true
		if cfg.APIKey != "" {
			if !validHeaderValue(cfg.APIKey) {
				bad("APIKey has control characters")
			}
			c.headers.Set(keyHeader, cfg.APIKey)
		}
	}

	c.timeout = cfg.Timeout
	switch {
	case c.timeout < 0:
		bad("Timeout %v is negative", cfg.Timeout)
	case c.timeout == 0:
		c.timeout = DefaultTimeout
	}
	c.concurrency = cfg.Concurrency
	switch {
	case c.concurrency < 0:
		bad("Concurrency %d is negative", cfg.Concurrency)
	case c.concurrency == 0:
		c.concurrency = DefaultConcurrency
	}
	r := cfg.Rate
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0) || r < 0:
		bad("Rate %v must be a positive number", cfg.Rate)
	case r == 0:
		r = DefaultRate
	}

	if cfg.Transport != nil && cfg.RootCAs != nil {
		bad("RootCAs cannot be applied to an injected Transport")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	c.sem = make(chan struct{}, c.concurrency)
	// A bucket of one token: requests leave at most Rate per second, evenly,
	// even after a long outage (no burst of saved-up tokens).
	c.limiter = rate.NewLimiter(rate.Limit(r), 1)
	rt := cfg.Transport
	if rt == nil {
		rt = newTransport(cfg.RootCAs, c.concurrency)
	}
	c.http = &http.Client{
		Transport: rt,
		// Redirects are answers, not followed: a 301/302 would turn a POST
		// into a GET, and any redirect means the base URL is wrong.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.log = cfg.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.observe = cfg.Observe
	return c, nil
}

// newTransport is a transport tuned for a gateway: bounded dial and TLS
// handshake, keep-alives sized to the concurrency, proxies from the
// environment (HTTPS_PROXY, NO_PROXY), TLS 1.2 at least.
func newTransport(roots *x509.CertPool, conns int) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// CreateTicket sends a create with body (EncodeCreate's output, kept on the
// ticket so that every retry sends the same bytes). A 2xx is success: the
// ticket exists there. Its id_demanda is parsed when readable; a 2xx whose
// body cannot be read or parsed still succeeds, with IDDemanda 0 and the
// body as received, because the status alone says the ticket was created.
// Other answers are an *Error: 409 is agent.OutcomeExists.
func (c *Client) CreateTicket(ctx context.Context, body []byte) (agent.CreateResult, error) {
	if !json.Valid(body) {
		return agent.CreateResult{}, c.refuse(CallCreate, fmt.Errorf("%w: create body is not JSON", ErrInvalidInput))
	}
	a, err := c.send(ctx, CallCreate, http.MethodPost, c.base+c.ticketsPath, body)
	if err != nil {
		return agent.CreateResult{}, err
	}
	res := agent.CreateResult{Body: string(a.body)}
	cr, perr := parseCreateResponse(a.body)
	if perr != nil || a.readErr != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "m2m create answer unreadable; the ticket counts as created",
			slog.Int("status", a.status), slog.Any("parse_error", perr), slog.Any("read_error", a.readErr))
		return res, nil
	}
	res.IDDemanda = cr.IDDemanda
	return res, nil
}

// CancelTicket cancels the ticket of protocol with a justification. 404 is
// agent.OutcomeGone: not (or no longer) open there.
func (c *Client) CancelTicket(ctx context.Context, protocol int64, justification string) error {
	if protocol < 1 {
		return c.refuse(CallCancel, fmt.Errorf("%w: id_external_protocol %d is not positive", ErrInvalidInput, protocol))
	}
	body, err := encodeCancel(text(c.origin), protocol, text(justification))
	if err != nil {
		return c.refuse(CallCancel, fmt.Errorf("%w: %v", ErrInvalidInput, err))
	}
	_, err = c.send(ctx, CallCancel, cancelMethod, c.base+c.ticketsPath, body)
	return err
}

// UpdateDevices sends one many-devices call for attrs (at most
// MaxDevicesPerCall). On failure the *Error lists every device as not
// applied.
func (c *Client) UpdateDevices(ctx context.Context, attrs []agent.DeviceAttributes) error {
	if len(attrs) == 0 {
		return nil
	}
	names := nameplates(attrs)
	if len(attrs) > MaxDevicesPerCall {
		e := c.refuse(CallUpdateDevices, fmt.Errorf("%w: %d devices in one call, at most %d", ErrInvalidInput, len(attrs), MaxDevicesPerCall))
		e.Devices = names
		return e
	}
	entries := make([]deviceEntry, len(attrs))
	for i := range attrs {
		m, err := checkDevice(&attrs[i])
		if err != nil {
			e := c.refuse(CallUpdateDevices, err)
			e.Devices = names
			return e
		}
		entries[i] = deviceEntry{Nameplate: attrs[i].Nameplate, Attributes: m}
	}
	body, err := encodeDevices(entries)
	if err == nil {
		_, err = c.send(ctx, CallUpdateDevices, c.attrMethod, c.base+c.devicesPath, body)
	} else {
		err = c.refuse(CallUpdateDevices, fmt.Errorf("%w: %v", ErrInvalidInput, err))
	}
	if e, ok := err.(*Error); ok {
		e.Devices = names
	}
	return err
}

// UpdateDevice sends one one-device call.
func (c *Client) UpdateDevice(ctx context.Context, a agent.DeviceAttributes) error {
	m, err := checkDevice(&a)
	var body []byte
	if err == nil {
		body, err = encodeDevice(m)
	}
	if err != nil {
		if !errors.Is(err, ErrInvalidInput) {
			err = fmt.Errorf("%w: %v", ErrInvalidInput, err)
		}
		e := c.refuse(CallUpdateDevice, err)
		e.Devices = []string{a.Nameplate}
		return e
	}
	target := c.base + strings.Replace(c.devicePath, "{nameplate_num}", escapeSegment(a.Nameplate), 1)
	_, err = c.send(ctx, CallUpdateDevice, c.attrMethod, target, body)
	if e, ok := err.(*Error); ok {
		e.Devices = []string{a.Nameplate}
	}
	return err
}

// UpdateAttributes applies attrs through the many-devices call in chunks of
// MaxDevicesPerCall. When that call answers 404 or 405 it falls back to
// one-device calls (Concurrency at a time) and remembers that for an hour.
// Devices the client refuses (no nameplate, a non-finite measurement) fail
// alone; a retryable failure stops the run (the API is unwell: sending the
// rest now would only add load). It returns nil only when every device was
// applied; otherwise an *Error whose Devices lists those that were not,
// retryable if any failure was.
func (c *Client) UpdateAttributes(ctx context.Context, attrs []agent.DeviceAttributes) error {
	if len(attrs) == 0 {
		return nil
	}
	var fs failures
	valid := make([]agent.DeviceAttributes, 0, len(attrs))
	for i := range attrs {
		if _, err := checkDevice(&attrs[i]); err != nil {
			fs.add(c.refuse(CallUpdateDevice, err), attrs[i].Nameplate)
			continue
		}
		valid = append(valid, attrs[i])
	}
	for start := 0; start < len(valid); start += MaxDevicesPerCall {
		chunk := valid[start:min(start+MaxDevicesPerCall, len(valid))]
		stop := false
		if c.manyAvailable() {
			err := c.UpdateDevices(ctx, chunk)
			var e *Error
			switch {
			case err == nil:
				c.manyOffAt.Store(0)
				continue
			case !errors.As(err, &e):
				// UpdateDevices returns only *Error; be safe anyway.
				e = &Error{Call: CallUpdateDevices, outcome: agent.OutcomeRetryable, err: err}
				fallthrough
			case !fallbackStatus(e.status):
				fs.add(e, nameplates(chunk)...)
				stop = e.Retryable()
			default:
				c.manyOffAt.Store(c.now().UnixNano())
				c.log.LogAttrs(ctx, slog.LevelInfo, "m2m many-devices call not supported; using one-device calls",
					slog.Int("status", e.status), slog.Duration("recheck_after", manyReprobe))
				stop = c.updateEach(ctx, chunk, &fs)
			}
		} else {
			stop = c.updateEach(ctx, chunk, &fs)
		}
		if stop {
			fs.add(nil, nameplates(valid[start+len(chunk):])...)
			break
		}
	}
	return fs.err(len(attrs))
}

// updateEach sends one-device calls for devs, Concurrency at a time. It
// stops launching calls after a retryable failure and reports it.
func (c *Client) updateEach(ctx context.Context, devs []agent.DeviceAttributes, fs *failures) (stopped bool) {
	var stop atomic.Bool
	var g errgroup.Group
	g.SetLimit(c.concurrency)
	for i := range devs {
		a := devs[i]
		g.Go(func() error {
			if stop.Load() {
				fs.add(nil, a.Nameplate)
				return nil
			}
			if err := c.UpdateDevice(ctx, a); err != nil {
				var e *Error
				if !errors.As(err, &e) {
					e = &Error{Call: CallUpdateDevice, outcome: agent.OutcomeRetryable, err: err}
				}
				fs.add(e, a.Nameplate)
				if e.Retryable() {
					stop.Store(true)
				}
			}
			return nil
		})
	}
	_ = g.Wait() // the functions never return an error
	return stop.Load()
}

// failures gathers what UpdateAttributes could not apply.
type failures struct {
	mu      sync.Mutex
	devices []string
	errs    []error
	first   [2]*Error // first retryable, first other
	after   time.Duration
}

const maxJoinedErrors = 10

func (f *failures) add(e *Error, devices ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices = append(f.devices, devices...)
	if e == nil {
		return
	}
	if len(f.errs) < maxJoinedErrors {
		f.errs = append(f.errs, e)
	}
	i := 1
	if e.Retryable() {
		i = 0
	}
	if f.first[i] == nil {
		f.first[i] = e
	}
	f.after = max(f.after, e.retryAfter)
}

func (f *failures) err(total int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.devices) == 0 {
		return nil
	}
	rep := f.first[0]
	if rep == nil {
		rep = f.first[1]
	}
	e := &Error{Call: CallUpdateAttributes, Devices: f.devices, retryAfter: f.after,
		outcome: agent.OutcomeRetryable}
	if rep != nil {
		e.outcome, e.status, e.body = rep.outcome, rep.status, rep.body
	}
	e.err = fmt.Errorf("%d of %d devices not applied: %w", len(f.devices), total, errors.Join(f.errs...))
	return e
}

func (c *Client) manyAvailable() bool {
	at := c.manyOffAt.Load()
	return at == 0 || c.now().Sub(time.Unix(0, at)) >= manyReprobe
}

// checkDevice validates one device's attributes and builds its object.
func checkDevice(a *agent.DeviceAttributes) (map[string]any, error) {
	if strings.TrimSpace(a.Nameplate) == "" {
		return nil, fmt.Errorf("%w: device without a nameplate", ErrInvalidInput)
	}
	return attributes(a)
}

func nameplates(attrs []agent.DeviceAttributes) []string {
	out := make([]string, len(attrs))
	for i := range attrs {
		out[i] = attrs[i].Nameplate
	}
	return out
}

// refuse is the error of a request the client will not send.
func (c *Client) refuse(call string, err error) *Error {
	return &Error{Call: call, outcome: agent.OutcomePermanent, err: err}
}

// answer is a 2xx.
type answer struct {
	status  int
	body    []byte
	readErr error // the body could not be read to its end (kept: the status decides)
}

// send makes one request under the concurrency and rate limits and the
// per-request timeout, and classifies the result: a 2xx is an answer,
// anything else an *Error.
func (c *Client) send(ctx context.Context, call, method, target string, body []byte) (*answer, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, &Error{Call: call, outcome: agent.OutcomeRetryable, err: fmt.Errorf("waiting for a request slot: %w", err)}
	}
	defer func() { <-c.sem }()
	if err := c.waitRate(ctx); err != nil {
		return nil, &Error{Call: call, outcome: agent.OutcomeRetryable, err: fmt.Errorf("waiting for the rate limit: %w", err)}
	}

	start := c.now()
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// wrote is set once the whole request went out: from then on a failure
	// leaves the request's effect unknown.
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(rctx, trace), method, target, bytes.NewReader(body))
	if err != nil {
		return nil, c.refuse(call, fmt.Errorf("%w: %v", ErrInvalidInput, err))
	}
	req.Header = c.headers.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	debug := c.log.Enabled(ctx, slog.LevelDebug)
	if debug {
		c.log.LogAttrs(ctx, slog.LevelDebug, "m2m request", slog.String("call", call),
			slog.String("method", method), slog.String("url", redactURL(target)),
			slog.Any("headers", c.redactHeaders(req.Header)), slog.String("body", snippet(string(body), logBodyMax)))
	}

	resp, err := c.http.Do(req)
	if err != nil {
		d := c.now().Sub(start)
		e := &Error{Call: call, outcome: agent.OutcomeRetryable, maybeDelivered: wrote.Load(), err: err}
		c.done(ctx, debug, call, e, 0, d, nil)
		return nil, e
	}
	a := &answer{status: resp.StatusCode}
	a.body, a.readErr = readLimited(resp.Body)
	d := c.now().Sub(start)
	outcome := classify(call, resp.StatusCode)
	if outcome == agent.OutcomeOK {
		c.done(ctx, debug, call, nil, resp.StatusCode, d, a)
		return a, nil
	}
	ra, _ := ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	e := &Error{Call: call, outcome: outcome, status: resp.StatusCode, body: string(a.body),
		retryAfter: ra, maybeDelivered: answerMaybeDelivered(resp.StatusCode),
		err: fmt.Errorf("%w: %s %s: %s", ErrStatus, method, redactURL(target), resp.Status)}
	c.done(ctx, debug, call, e, resp.StatusCode, d, a)
	return nil, e
}

// done reports one request to the Observe hook and the debug log.
func (c *Client) done(ctx context.Context, debug bool, call string, e *Error, status int, d time.Duration, a *answer) {
	outcome := agent.OutcomeOK
	if e != nil {
		outcome = e.outcome
	}
	if c.observe != nil {
		c.observe(call, outcome, status, d)
	}
	if !debug {
		return
	}
	attrs := []slog.Attr{slog.String("call", call), slog.String("outcome", outcome.String()), slog.Int("status", status), slog.Duration("duration", d)}
	if e != nil {
		attrs = append(attrs, slog.Bool("maybe_delivered", e.maybeDelivered))
		if e.err != nil {
			attrs = append(attrs, slog.String("error", e.err.Error()))
		}
		if e.retryAfter > 0 {
			attrs = append(attrs, slog.Duration("retry_after", e.retryAfter))
		}
	}
	if a != nil {
		attrs = append(attrs, slog.String("body", snippet(string(a.body), logBodyMax)))
		if a.readErr != nil {
			attrs = append(attrs, slog.String("read_error", a.readErr.Error()))
		}
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "m2m answer", attrs...)
}

// readLimited reads at most MaxResponseBody bytes, discards (a bounded
// amount of) the rest so the connection can be reused, and closes the body.
func readLimited(rc io.ReadCloser) ([]byte, error) {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxResponseBody+1))
	if len(b) > MaxResponseBody {
		b = b[:MaxResponseBody]
		_, _ = io.CopyN(io.Discard, rc, maxDiscard)
	}
	return b, err
}

func (c *Client) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitRate takes one token from the bucket, waiting for it on the client's
// clock, and gives it back if the wait is abandoned.
func (c *Client) waitRate(ctx context.Context) error {
	now := c.now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("rate limiter refused a reservation")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if err := c.sleep(ctx, d); err != nil {
		r.CancelAt(c.now())
		return err
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) redactHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if c.secret[k] {
			out[k] = redacted
		} else {
			out[k] = strings.Join(v, ", ")
		}
	}
	return out
}

// redactURL hides a password in a URL's user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func hostWithUser(u *url.URL) string {
	if u.User == nil {
		return u.Host
	}
	return u.User.String() + "@" + u.Host
}

// escapeSegment escapes one path segment so that no value can change the
// path: "/" and "?" and "%" are escaped by url.PathEscape, and the dot
// segments "." and "..", which servers and proxies resolve, are
// percent-encoded too.
func escapeSegment(s string) string {
	e := url.PathEscape(s)
	if e == "." || e == ".." {
		e = strings.ReplaceAll(e, ".", "%2E")
	}
	return e
}

// substitutePath checks a path template and puts the escaped instance in.
func substitutePath(tpl, instance string, needNameplate bool) (string, error) {
	if !strings.HasPrefix(tpl, "/") {
		return "", errors.New("must start with /")
	}
	if strings.ContainsAny(tpl, "?#") {
		return "", errors.New("must not have a query or a fragment")
	}
	rest := tpl
	sawNameplate := false
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", errors.New("unclosed {")
		}
		switch name := rest[i+1 : i+j]; name {
		case "idInstance":
		case "nameplate_num":
			if !needNameplate || sawNameplate {
				return "", errors.New("{nameplate_num} not allowed here")
			}
			sawNameplate = true
		default:
			return "", fmt.Errorf("unknown placeholder {%s}", name)
		}
		rest = rest[i+j+1:]
	}
	if needNameplate && !sawNameplate {
		return "", errors.New("needs {nameplate_num}")
	}
	return strings.ReplaceAll(tpl, "{idInstance}", instance), nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0 {
			continue
		}
		return false
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}
