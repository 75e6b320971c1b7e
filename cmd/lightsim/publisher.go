package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// msgClass sorts published messages for the counters.
type msgClass uint8

const (
	classTelemetry msgClass = iota // valid telemetry
	classGarbage                   // deliberately invalid telemetry-topic messages
	classStatus                    // online/offline on the status topic
	numClasses
)

// counts is what happened to the messages of one class.
type counts struct {
	ok     atomic.Int64 // acknowledged by the broker (QoS 1/2) or written (QoS 0)
	failed atomic.Int64 // the client gave up on them, or they were still unacknowledged at the end
}

// publisherConfig is the connection and the window.
type publisherConfig struct {
	Broker, ClientID   string
	Username, Password string
	QoS                byte
	Inflight           int           // publishes awaiting their acknowledgement at once
	ConnectTimeout     time.Duration // how long to wait for the first connection
	Coalesce           bool          // batch socket writes and reads (tcp:// and mqtt:// only; see conn.go)
	Logger             *slog.Logger
}

// publisher is one paho client publishing with a window of unacknowledged
// messages: publish hands the message to paho and returns; a drainer
// goroutine (owned by the publisher, waited for by close) collects the
// acknowledgements in order and counts them. With the window full, publish
// blocks: that is the back-pressure that keeps memory bounded while the
// broker is away.
type publisher struct {
	cfg    publisherConfig
	client paho.Client
	counts [numClasses]counts

	window  chan pendingMsg
	abort   chan struct{} // closed when the drain time is up
	drained sync.WaitGroup
}

type pendingMsg struct {
	tok   paho.Token
	class msgClass
}

// ErrConnect is returned when the broker cannot be reached in time.
var ErrConnect = errors.New("connect to broker")

// newPublisher builds the client; it does no I/O.
func newPublisher(cfg publisherConfig) *publisher {
	if cfg.Inflight <= 0 {
		cfg.Inflight = 1
	}
	log := cfg.Logger.With("broker", redactURL(cfg.Broker))
	opts := paho.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		// A publisher with no subscriptions: nothing to keep in a session.
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(30 * time.Second).
		SetOrderMatters(false).
		SetOnConnectHandler(func(paho.Client) { log.Info("connected") }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { log.Warn("connection lost; reconnecting", "err", err) }).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) { log.Info("reconnecting") })
	if cfg.Coalesce && coalescable(cfg.Broker) {
		opts.SetCustomOpenConnectionFn(coalescingDialer)
	}
	return &publisher{
		cfg:    cfg,
		client: paho.NewClient(opts),
		window: make(chan pendingMsg, cfg.Inflight),
		abort:  make(chan struct{}),
	}
}

// connect connects (paho retries in the background) and waits for the first
// connection up to ConnectTimeout or ctx. It starts the drainer.
func (p *publisher) connect(ctx context.Context) error {
	tok := p.client.Connect()
	timer := time.NewTimer(p.cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			p.client.Disconnect(0)
			return fmt.Errorf("%w %s: %w", ErrConnect, redactURL(p.cfg.Broker), err)
		}
	case <-timer.C:
		p.client.Disconnect(0)
		return fmt.Errorf("%w %s: not connected within %s", ErrConnect, redactURL(p.cfg.Broker), p.cfg.ConnectTimeout)
	case <-ctx.Done():
		p.client.Disconnect(0)
		return fmt.Errorf("%w %s: %w", ErrConnect, redactURL(p.cfg.Broker), ctx.Err())
	}
	p.drained.Add(1)
	go p.drain()
	return nil
}

// publish hands one message to paho, waiting for room in the window. It
// returns ctx's error if ctx ends while waiting (the message is not sent).
func (p *publisher) publish(ctx context.Context, topic string, payload []byte, retained bool, class msgClass) error {
	// The window holds the messages paho has and has not finished: with it
	// full, the send below waits, so paho never holds more than Inflight+1
	// (its message ids, 65535, and memory would otherwise run out).
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	tok := p.client.Publish(topic, p.cfg.QoS, retained, payload)
	select {
	case p.window <- pendingMsg{tok: tok, class: class}:
		return nil
	case <-ctx.Done():
		// Already handed to paho: still count it, off the window.
		p.settle(pendingMsg{tok: tok, class: class}, time.Second)
		return ctx.Err()
	}
}

func (p *publisher) drain() {
	defer p.drained.Done()
	for m := range p.window {
		select {
		case <-m.tok.Done():
			p.record(m)
		case <-p.abort:
			p.counts[m.class].failed.Add(1)
		}
	}
}

func (p *publisher) settle(m pendingMsg, wait time.Duration) {
	if m.tok.WaitTimeout(wait) {
		p.record(m)
	} else {
		p.counts[m.class].failed.Add(1)
	}
}

func (p *publisher) record(m pendingMsg) {
	if err := m.tok.Error(); err != nil {
		p.counts[m.class].failed.Add(1)
		p.cfg.Logger.Debug("publish failed", "err", err)
		return
	}
	p.counts[m.class].ok.Add(1)
}

// close waits up to drainTimeout for the messages in the window to be
// acknowledged (counting the rest as failed), then disconnects. The caller
// must not publish any more.
func (p *publisher) close(drainTimeout time.Duration) {
	close(p.window)
	done := make(chan struct{})
	go func() { p.drained.Wait(); close(done) }()
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		close(p.abort)
		<-done
	}
	pahoMuted.Store(true)
	p.client.Disconnect(250)
}

// pending is the number of messages awaiting acknowledgement.
func (p *publisher) pending() int { return len(p.window) }

func (p *publisher) ok(c msgClass) int64     { return p.counts[c].ok.Load() }
func (p *publisher) failed(c msgClass) int64 { return p.counts[c].failed.Load() }
