package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/agent"
)

// Handler receives the decoded messages. It may be called from several
// goroutines at once (paho's ordering is off). Returning nil acknowledges
// the message to the broker; an error leaves it unacknowledged, so the
// broker redelivers it on the next connection of the session: return nil
// only once the message's effect is durable.
type Handler interface {
	HandleTelemetry(ctx context.Context, t *agent.Telemetry) error
	HandleStatus(ctx context.Context, s agent.StatusReport) error
}

// ErrAlreadyRun is returned by a second call of Run: a paho client is
// never reused after Disconnect, so neither is a Subscriber.
var ErrAlreadyRun = errors.New("mqtt: Subscriber already ran; make a new one")

var errStopping = errors.New("shutting down")

// Log attribute keys.
const (
	logKeyComponent = "component"
	logKeyBroker    = "broker"
	logKeyClientID  = "client_id"
	logKeyTopic     = "topic"
	logKeyReason    = "reason"
	logKeyDetail    = "detail"
	logKeyErr       = "err"
	logKeyInFlight  = "in_flight"
)

// Timeouts of the connection and shutdown steps.
const (
	firstRetryLimit = 5 * time.Second // cap of the first connection's retry interval
	cancelGrace     = 2 * time.Second // handlers' time to notice their cancelled context
	onConnectWait   = 5 * time.Second // for on-connect work to stop at shutdown
	offlineTimeout  = 2 * time.Second // the retained "offline" publish
	disconnectWait  = 1000            // ms paho waits for the DISCONNECT to go out
)

// The gateway's own status payloads, retained on its status topic.
const (
	statusOnline  = "online"
	statusOffline = "offline"
)

const (
	tooLargeDetail = "%d bytes, limit %d"
	overloadDetail = "QoS 0 message with %d already in flight"
)

// Subscriber consumes the controllers' topics with one paho client. Make
// it with New, run it once with Run.
type Subscriber struct {
	set     *settings
	h       Handler
	log     *slog.Logger
	baseLog *slog.Logger // for paho's lines
	now     func() time.Time

	ran      atomic.Bool
	finished atomic.Bool   // Run returned: late paho callbacks do nothing
	stopping chan struct{} // closed when Run's shutdown begins
	hctx     context.Context

	intake tracker // messages in the handler
	bg     tracker // on-connect work (subscribe, "online")

	subscribed    atomic.Bool
	everConnected atomic.Bool
	received      atomic.Int64
	handled       atomic.Int64
	handlerErrors atomic.Int64
	reconnects    atomic.Int64
	rejected      [len(reasons)]atomic.Int64

	mu             sync.Mutex
	client         paho.Client
	connectedSince time.Time
	lastErr        string
	lastErrAt      time.Time
	lastLogged     string // last connect failure logged at warn, to log a streak once
}

// New validates cfg, applies its defaults and builds the TLS
// configuration (reading the CA and certificate files). It does no network
// I/O.
func New(cfg Config, h Handler) (*Subscriber, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	set, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	return &Subscriber{
		set:      set,
		h:        h,
		baseLog:  set.Logger,
		log:      set.Logger.With(slog.String(logKeyComponent, "mqtt")),
		now:      set.Now,
		stopping: make(chan struct{}),
	}, nil
}

// Run connects (retrying forever: paho's connect retry, then its
// auto-reconnect with backoff capped at MaxReconnectInterval) and consumes
// until ctx is done. Then it stops taking messages (those arriving stay
// unacknowledged, for the next session), waits up to DrainTimeout for the
// handlers in flight (then cancels their context), publishes the gateway's
// retained "offline", and disconnects. It returns nil after a shutdown
// caused by ctx, and ErrAlreadyRun on a second call.
func (s *Subscriber) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	// Handlers get a context that outlives ctx by the drain: cancelling ctx
	// must not fail the messages being made durable right now.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	s.hctx = hctx
	pahoSink.Store(s.baseLog)
	defer pahoSink.CompareAndSwap(s.baseLog, nil)

	client := paho.NewClient(s.options())
	s.mu.Lock()
	s.client = client
	s.mu.Unlock()

	s.log.Info("mqtt connecting", slog.String(logKeyBroker, s.set.brokerURL.Redacted()), slog.String(logKeyClientID, s.set.ClientID))
	tok := client.Connect()
	select {
	case <-ctx.Done():
	case <-tok.Done():
		// With connect retry on, paho gives up only when told to; an error
		// here is not one to retry.
		if err := tok.Error(); err != nil {
			s.setLastError(err)
			s.shutdown(client, hcancel)
			return fmt.Errorf("mqtt connect: %w", err)
		}
		<-ctx.Done()
	}
	s.shutdown(client, hcancel)
	return nil
}

func (s *Subscriber) options() *paho.ClientOptions {
	set := s.set
	o := paho.NewClientOptions()
	o.AddBroker(set.brokerURL.String())
	o.SetClientID(set.ClientID)
	o.SetUsername(set.Username)
	o.SetPassword(set.Password)
	o.SetProtocolVersion(4) // MQTT 3.1.1
	// The broker keeps the session: subscriptions and QoS 1 messages
	// published while the agent is down.
	o.SetCleanSession(false)
	// A handler that blocks (group commit) must not stall the client's
	// reader, or pings stop and the connection drops.
	o.SetOrderMatters(false)
	o.SetAutoAckDisabled(true) // acked by process, after the handler
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(min(firstRetryLimit, set.MaxReconnectInterval))
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(set.MaxReconnectInterval)
	o.SetKeepAlive(set.KeepAlive)
	o.SetConnectTimeout(set.ConnectTimeout)
	if set.tls != nil {
		o.SetTLSConfig(set.tls)
	}
	o.SetWill(set.gatewayTopic, statusOffline, 1, true)
	// Before Connect: a persistent session's queued messages can arrive
	// before Subscribe returns, and paho never acks a message it has no
	// handler for.
	o.SetDefaultPublishHandler(s.onMessage)
	o.SetOnConnectHandler(s.onConnect)
	o.SetConnectionLostHandler(s.onConnectionLost)
	o.SetConnectionNotificationHandler(s.onNotification)
	return o
}

// onMessage is paho's handler for every message, called in a goroutine of
// its own per message.
func (s *Subscriber) onMessage(_ paho.Client, m paho.Message) {
	// QoS 0 has neither ack nor redelivery, and nothing upstream bounds
	// it: past MaxInFlight it is dropped, which is what QoS 0 allows.
	// QoS 1 is bounded by the broker's inflight window.
	limit := 0
	if m.Qos() == 0 {
		limit = s.set.MaxInFlight
	}
	ok, full := s.intake.enter(limit)
	if !ok {
		if full {
			s.received.Add(1)
			s.rejectMsg(m.Topic(), reject(ReasonOverload, fmt.Sprintf(overloadDetail, s.set.MaxInFlight)))
		}
		// Otherwise Run is shutting down: not acked, so the broker
		// redelivers it to the next session.
		return
	}
	defer s.intake.leave()
	s.received.Add(1)
	if s.process(m) {
		m.Ack()
	}
}

// process decodes and hands on one message; it reports whether to ack it.
func (s *Subscriber) process(m paho.Message) bool {
	now := s.now()
	topic, payload := m.Topic(), m.Payload()
	nameplate, kind, err := ParseTopic(s.set.TopicPrefix, topic)
	if err != nil {
		return s.rejectMsg(topic, err)
	}
	if len(payload) > s.set.MaxPayload {
		return s.rejectMsg(topic, reject(ReasonTooLarge, fmt.Sprintf(tooLargeDetail, len(payload), s.set.MaxPayload)))
	}
	switch kind {
	case TopicTelemetry:
		// The broker replays a retained message on every subscription: an
		// old reading, not a new one (a live message never has the flag).
		if m.Retained() {
			return s.rejectMsg(topic, reject(ReasonRetained, "retained telemetry is an old reading"))
		}
		t := &agent.Telemetry{Nameplate: nameplate}
		if err := DecodeTelemetry(payload, now, t); err != nil {
			return s.rejectMsg(topic, err)
		}
		err = s.h.HandleTelemetry(s.hctx, t)
	case TopicStatus:
		online, err2 := DecodeStatus(payload)
		if err2 != nil {
			return s.rejectMsg(topic, err2)
		}
		err = s.h.HandleStatus(s.hctx, agent.StatusReport{Nameplate: nameplate, Online: online, Received: now})
	}
	if err != nil {
		s.handlerErrors.Add(1)
		s.setLastError(fmt.Errorf("handler: %w", err))
		s.log.Warn("mqtt handler failed; message left unacknowledged for redelivery",
			slog.String(logKeyTopic, topic), slog.Any(logKeyErr, err))
		return false
	}
	s.handled.Add(1)
	return true
}

// rejectMsg counts and logs a rejected message; it returns true: a
// rejected message is acked, or the broker would resend it forever.
func (s *Subscriber) rejectMsg(topic string, err error) bool {
	var re *RejectError
	if !errors.As(err, &re) {
		re = reject(ReasonNotJSON, err.Error()) // not reached: decoders return *RejectError
	}
	if i := re.Reason.index(); i >= 0 {
		s.rejected[i].Add(1)
	}
	s.log.Debug("mqtt message rejected", slog.String(logKeyReason, string(re.Reason)),
		slog.String(logKeyTopic, topic), slog.String(logKeyDetail, re.Detail))
	return true
}

// onConnect runs in a goroutine of paho's after each (re)connection.
func (s *Subscriber) onConnect(c paho.Client) {
	if !s.bg.enterOK() {
		return
	}
	defer s.bg.leave()
	// Not subscribed on this connection until the broker says so, whatever
	// a late handler of the previous connection stored.
	s.subscribed.Store(false)
	if s.everConnected.Swap(true) {
		s.reconnects.Add(1)
	}
	s.mu.Lock()
	s.connectedSince = s.now()
	s.lastLogged = ""
	s.mu.Unlock()
	s.log.Info("mqtt connected", slog.String(logKeyBroker, s.set.brokerURL.Redacted()))

	// Subscribing again on a kept session is harmless and covers a session
	// the broker lost (restart without persistence, expiry).
	tok := c.SubscribeMultiple(map[string]byte{s.set.telemetryFilter: 1, s.set.statusFilter: 1}, nil)
	if err := s.wait(tok); err != nil {
		s.subscribeFailed(err)
		return
	}
	for filter, code := range tok.(*paho.SubscribeToken).Result() {
		if code == 0x80 {
			s.subscribeFailed(fmt.Errorf("broker refused the subscription to %s (check its ACL)", filter))
			return
		}
	}
	s.subscribed.Store(true)
	s.log.Info("mqtt subscribed", slog.String(logKeyTopic, s.set.telemetryFilter), slog.String("status_topic", s.set.statusFilter))

	// QoS 0 on purpose: paho keeps an unacknowledged QoS 1 publish in its
	// store and, on a reconnection, resends it while the previous
	// connection's writer may still hold it (a data race inside paho 1.5.1,
	// seen under -race). Nothing is lost: every connection publishes this
	// again, and a retained QoS 0 publish written to an open connection
	// reaches the broker.
	if err := s.wait(c.Publish(s.set.gatewayTopic, 0, true, statusOnline)); err != nil && !errors.Is(err, errStopping) {
		s.log.Warn("mqtt: publishing the gateway's online status failed", slog.String(logKeyTopic, s.set.gatewayTopic), slog.Any(logKeyErr, err))
	}
}

func (s *Subscriber) subscribeFailed(err error) {
	if errors.Is(err, errStopping) {
		return
	}
	err = fmt.Errorf("subscribe: %w", err)
	s.setLastError(err)
	s.log.Error("mqtt subscribe failed: no messages will arrive on this connection", slog.Any(logKeyErr, err))
}

// wait waits for a paho token, at most ConnectTimeout, and no longer than
// until shutdown begins.
func (s *Subscriber) wait(t paho.Token) error {
	timer := time.NewTimer(s.set.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-s.stopping:
		return errStopping
	case <-timer.C:
		return fmt.Errorf("no answer from the broker within %v", s.set.ConnectTimeout)
	}
}

func (s *Subscriber) onConnectionLost(_ paho.Client, err error) {
	s.subscribed.Store(false)
	if s.finished.Load() {
		return
	}
	if err == nil {
		err = errors.New("connection lost")
	}
	s.setLastError(fmt.Errorf("connection lost: %w", err))
	s.log.Warn("mqtt connection lost; reconnecting", slog.Any(logKeyErr, err))
}

// onNotification reports failed connection attempts, which paho otherwise
// retries silently. A streak of the same failure is logged once at warn.
func (s *Subscriber) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	if s.finished.Load() {
		return
	}
	var err error
	switch n := n.(type) {
	case paho.ConnectionNotificationFailed:
		err = n.Reason
	case paho.ConnectionNotificationBrokerFailed:
		err = n.Reason
	default:
		return
	}
	if err == nil {
		return
	}
	s.setLastError(fmt.Errorf("connect: %w", err))
	s.mu.Lock()
	repeat := s.lastLogged == err.Error()
	s.lastLogged = err.Error()
	s.mu.Unlock()
	level := slog.LevelWarn
	if repeat {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "mqtt connect failed; retrying",
		slog.String(logKeyBroker, s.set.brokerURL.Redacted()), slog.Any(logKeyErr, err))
}

// shutdown stops intake, drains the handlers, says "offline" and
// disconnects.
func (s *Subscriber) shutdown(client paho.Client, hcancel context.CancelFunc) {
	close(s.stopping)
	idle := s.intake.close()
	drain := time.NewTimer(s.set.DrainTimeout)
	select {
	case <-idle:
		drain.Stop()
	case <-drain.C:
		s.log.Warn("mqtt shutdown: handlers still busy after the drain timeout; cancelling them",
			slog.Int(logKeyInFlight, s.intake.inFlight()), slog.Duration("drain_timeout", s.set.DrainTimeout))
		hcancel()
		select {
		case <-idle:
		case <-time.After(cancelGrace):
			s.log.Warn("mqtt shutdown: handlers ignore their cancelled context; disconnecting without them (their messages stay unacknowledged)",
				slog.Int(logKeyInFlight, s.intake.inFlight()))
		}
	}
	// On-connect work sees s.stopping and ends; wait so that its "online"
	// cannot overtake the "offline" below.
	select {
	case <-s.bg.close():
	case <-time.After(onConnectWait):
		s.log.Warn("mqtt shutdown: on-connect work did not stop; disconnecting")
	}
	if client.IsConnectionOpen() {
		// QoS 0, as "online" above; the DISCONNECT that follows on the same
		// connection is processed after it.
		tok := client.Publish(s.set.gatewayTopic, 0, true, statusOffline)
		if !tok.WaitTimeout(offlineTimeout) || tok.Error() != nil {
			s.log.Warn("mqtt: publishing the gateway's offline status failed", slog.Any(logKeyErr, tok.Error()))
		}
	}
	s.subscribed.Store(false)
	s.finished.Store(true)
	client.Disconnect(disconnectWait)
	s.log.Info("mqtt disconnected")
}

// Connected reports whether the client is connected and its subscriptions
// are confirmed on this connection: messages flow.
func (s *Subscriber) Connected() bool {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	return c != nil && c.IsConnectionOpen() && s.subscribed.Load()
}

// Stats is a snapshot of the Subscriber's connection and counters.
type Stats struct {
	// Connected: the connection is up. Subscribed: and the subscriptions
	// were confirmed on it (Connected() is both).
	Connected, Subscribed bool
	// ConnectedSince is when the current connection came up; zero when
	// not connected.
	ConnectedSince time.Time
	// Reconnects counts connections made after the first one.
	Reconnects int64
	// Received counts messages taken in (handled, rejected or failed);
	// messages refused during shutdown are not counted.
	Received int64
	// Handled counts messages the handler took (and that were acked).
	Handled int64
	// Rejected counts rejected messages by reason; every reason is
	// present, zero included. RejectedTotal is their sum.
	Rejected      map[Reason]int64
	RejectedTotal int64
	// HandlerErrors counts messages left unacknowledged because the
	// handler failed.
	HandlerErrors int64
	// LastError is the latest connection, subscription or handler error
	// ("" when none yet), and LastErrorAt when it happened.
	LastError   string
	LastErrorAt time.Time
}

// Stats returns a copy of the current state.
func (s *Subscriber) Stats() Stats {
	st := Stats{
		Subscribed:    s.subscribed.Load(),
		Reconnects:    s.reconnects.Load(),
		Received:      s.received.Load(),
		Handled:       s.handled.Load(),
		HandlerErrors: s.handlerErrors.Load(),
		Rejected:      make(map[Reason]int64, len(reasons)),
	}
	for i, r := range reasons {
		n := s.rejected[i].Load()
		st.Rejected[r] = n
		st.RejectedTotal += n
	}
	s.mu.Lock()
	c := s.client
	st.ConnectedSince = s.connectedSince
	st.LastError, st.LastErrorAt = s.lastErr, s.lastErrAt
	s.mu.Unlock()
	st.Connected = c != nil && c.IsConnectionOpen()
	if !st.Connected {
		st.Subscribed = false
		st.ConnectedSince = time.Time{}
	}
	return st
}

func (s *Subscriber) setLastError(err error) {
	now := s.now()
	s.mu.Lock()
	s.lastErr, s.lastErrAt = err.Error(), now
	s.mu.Unlock()
}

// tracker counts work in flight and, once closed, admits no more and
// signals when the last one leaves. Unlike sync.WaitGroup it allows an
// enter racing with the close: that enter is simply refused.
type tracker struct {
	mu     sync.Mutex
	closed bool
	n      int
	idle   chan struct{}
}

// enter admits one unit of work unless the tracker is closed (ok false)
// or, with limit > 0, limit units are in already (full true).
func (t *tracker) enter(limit int) (ok, full bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false, false
	}
	if limit > 0 && t.n >= limit {
		return false, true
	}
	t.n++
	return true, false
}

func (t *tracker) enterOK() bool {
	ok, _ := t.enter(0)
	return ok
}

func (t *tracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.closed && t.n == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// close refuses further work and returns a channel closed once none is in
// flight. Call it once.
func (t *tracker) close() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	ch := make(chan struct{})
	if t.n == 0 {
		close(ch)
	} else {
		t.idle = ch
	}
	return ch
}

func (t *tracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}
