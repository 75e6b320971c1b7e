package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/agent"
)

// waitTimeout bounds every wait of the integration tests. It is not a
// performance assertion: it only keeps a broken test from hanging, and is
// generous because the test machine is shared.
const waitTimeout = 30 * time.Second

// recorder is a Handler that keeps what it is given. fail, when set,
// decides a telemetry message's fate; block, when set, is waited on (or
// the handler's context) before returning.
type recorder struct {
	mu     sync.Mutex
	tele   []agent.Telemetry
	status []agent.StatusReport
	calls  atomic.Int64 // HandleTelemetry calls, failed ones included

	fail  func(*agent.Telemetry) error
	block chan struct{}
}

func (r *recorder) HandleTelemetry(ctx context.Context, t *agent.Telemetry) error {
	r.calls.Add(1)
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.fail != nil {
		if err := r.fail(t); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.tele = append(r.tele, *t)
	r.mu.Unlock()
	return nil
}

func (r *recorder) HandleStatus(_ context.Context, s agent.StatusReport) error {
	r.mu.Lock()
	r.status = append(r.status, s)
	r.mu.Unlock()
	return nil
}

func (r *recorder) telemetry() []agent.Telemetry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]agent.Telemetry(nil), r.tele...)
}

func (r *recorder) statuses() []agent.StatusReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]agent.StatusReport(nil), r.status...)
}

// count returns how many telemetry messages carried energy == seq (the
// tests number their messages in the energy field).
func (r *recorder) count(nameplate string, seq float64) int {
	n := 0
	for _, t := range r.telemetry() {
		if t.Nameplate == nameplate && t.Energy == seq {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuffer collects a test's log lines and prints them if the test fails.
// Writing to t after the test ended would panic, and paho may log late.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("subscriber log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// testConfig is a Config for a private broker, with short reconnect and
// drain intervals so that the tests do not idle.
func testConfig(t *testing.T, brokerURL, clientID string) Config {
	lg, _ := testLogger(t)
	return Config{
		Broker:               brokerURL,
		ClientID:             clientID,
		GatewayID:            "gw-test",
		MaxReconnectInterval: 300 * time.Millisecond,
		ConnectTimeout:       5 * time.Second,
		KeepAlive:            5 * time.Second,
		DrainTimeout:         5 * time.Second,
		Logger:               lg,
	}
}

// running is a Subscriber started in the background.
type running struct {
	*Subscriber
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config, h Handler) *running {
	t.Helper()
	s, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Subscriber: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and checks that it returns nil in time. Safe to call
// twice.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
	}
}

func (r *running) waitConnected(t *testing.T) {
	t.Helper()
	waitFor(t, "the subscriber to connect and subscribe", r.Connected)
}

// publisher is a plain paho client for the tests' controllers.
type publisher struct {
	t *testing.T
	c paho.Client
}

var pubSeq atomic.Int64

func newPublisher(t *testing.T, url string) *publisher {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("test-pub-%d", pubSeq.Add(1))).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{t: t, c: c}
}

func (p *publisher) publish(topic string, qos byte, retained bool, payload string) {
	p.t.Helper()
	tok := p.c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		p.t.Fatalf("publish to %s: %v", topic, tok.Error())
	}
}

// telemetry publishes a valid reading numbered seq (in its energy field).
func (p *publisher) telemetry(nameplate string, seq int) {
	p.t.Helper()
	p.publish("streetlights/"+nameplate+"/telemetry", 1, false,
		fmt.Sprintf(`{"voltage":221.5,"power":88,"lamp_on":true,"energy":%d}`, seq))
}

// watcher subscribes to one topic and keeps the payloads it gets.
type watcher struct {
	mu   sync.Mutex
	msgs []string
}

func watch(t *testing.T, url, topic string) *watcher {
	t.Helper()
	w := &watcher{}
	p := newPublisher(t, url)
	tok := p.c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		w.mu.Lock()
		w.msgs = append(w.msgs, string(m.Payload()))
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("watch %s: %v", topic, tok.Error())
	}
	return w
}

func (w *watcher) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.msgs) == 0 {
		return ""
	}
	return w.msgs[len(w.msgs)-1]
}

func (w *watcher) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// proxy forwards TCP connections to a broker and can cut them all at once,
// as a dropped mobile link or a crashed agent would: the broker sees the
// connection die without a DISCONNECT.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	// gate, while open (closed channel or nil), lets accepted connections
	// through to the broker; hold replaces it with an open one.
	gate chan struct{}
	wg   sync.WaitGroup
}

func startProxy(t *testing.T, brokerURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: strings.TrimPrefix(brokerURL, "tcp://")}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.release()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		gate := p.gate
		p.mu.Unlock()
		if gate != nil {
			<-gate
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src) // ends with an error when cut: that is the point
	_ = dst.Close()
	_ = src.Close()
}

// hold keeps new connections from reaching the broker until release: a
// client that reconnects at once would otherwise take its old session over
// before the broker noticed the cut, and the broker sends no will then.
func (p *proxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

// release lets held and new connections through again.
func (p *proxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
