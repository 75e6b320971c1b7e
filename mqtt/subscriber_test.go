package mqtt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

func TestSubscriberDeliversDecodedMessages(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	rec := &recorder{}
	sub := start(t, testConfig(t, b.URL, "deliver"), rec)
	sub.waitConnected(t)

	p := newPublisher(t, b.URL)
	p.publish("streetlights/LP-0001/telemetry", 1, false, contractPayload)
	p.publish("streetlights/LP-0002/telemetry", 1, false, `{"voltage":230,"lamp_on":false}`)
	p.publish("streetlights/LP-0001/status", 1, false, "offline")
	p.publish("streetlights/LP-0002/status", 1, false, `{"online": true}`)
	waitFor(t, "2 telemetry and 2 status messages", func() bool {
		return len(rec.telemetry()) == 2 && len(rec.statuses()) == 2
	})

	byName := map[string]agent.Telemetry{}
	for _, tel := range rec.telemetry() {
		byName[tel.Nameplate] = tel
	}
	one, two := byName["LP-0001"], byName["LP-0002"]
	if one.Voltage != 221.4 || !one.Has(agent.FieldTime) || len(one.Alarms) != 1 || one.Alarms[0] != "relayFailure" {
		t.Errorf("LP-0001 decoded wrong: %+v", one)
	}
	if two.Voltage != 230 || !two.Has(agent.FieldLampOn) || two.LampOn || two.Has(agent.FieldTime) || two.Received.IsZero() {
		t.Errorf("LP-0002 decoded wrong: %+v", two)
	}
	online := map[string]bool{}
	for _, s := range rec.statuses() {
		online[s.Nameplate] = s.Online
		if s.Received.IsZero() {
			t.Errorf("status without a receive time: %+v", s)
		}
	}
	if online["LP-0001"] || !online["LP-0002"] {
		t.Errorf("statuses wrong: %+v", rec.statuses())
	}
	// The handler returns before Handled is counted: wait for the count.
	waitFor(t, "4 messages counted as handled", func() bool { return sub.Stats().Handled >= 4 })
	st := sub.Stats()
	if !st.Connected || !st.Subscribed || st.ConnectedSince.IsZero() || st.Received != 4 || st.Handled != 4 || st.RejectedTotal != 0 {
		t.Errorf("stats wrong: %+v", st)
	}
}

// TestSubscriberPersistentSession: QoS 1 messages published while the
// agent is down are kept by the broker for its session and all arrive when
// a new Subscriber with the same client id connects; those the first one
// handled (and acked) are not delivered again.
func TestSubscriberPersistentSession(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	p := newPublisher(t, b.URL)

	first := &recorder{}
	sub1 := start(t, testConfig(t, b.URL, "session"), first)
	sub1.waitConnected(t)
	for i := range 5 {
		p.telemetry("LP-1", i)
	}
	waitFor(t, "the first 5 messages", func() bool { return len(first.telemetry()) == 5 })
	sub1.stop(t)

	const offline = 50
	for i := range offline {
		p.telemetry("LP-1", 100+i)
	}

	second := &recorder{}
	sub2 := start(t, testConfig(t, b.URL, "session"), second)
	waitFor(t, "the messages published while down", func() bool { return len(second.telemetry()) >= offline })
	for i := range offline {
		if n := second.count("LP-1", float64(100+i)); n != 1 {
			t.Errorf("message %d arrived %d times, want 1", 100+i, n)
		}
	}
	for i := range 5 {
		if n := second.count("LP-1", float64(i)); n != 0 {
			t.Errorf("message %d, acked by the first subscriber, arrived again", i)
		}
	}
	sub2.waitConnected(t)
}

// TestSubscriberSurvivesBrokerRestart: the client reconnects by itself,
// counts the reconnection, and gets what was published meanwhile.
func TestSubscriberSurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	rec := &recorder{}
	sub := start(t, testConfig(t, b.URL, "restart"), rec)
	sub.waitConnected(t)
	p := newPublisher(t, b.URL)
	for i := range 10 {
		p.telemetry("LP-1", i)
	}
	waitFor(t, "10 messages before the restart", func() bool { return len(rec.telemetry()) == 10 })

	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	// Published at once: the broker's restored session queues them until
	// the subscriber is back.
	p2 := newPublisher(t, b.URL)
	for i := 10; i < 20; i++ {
		p2.telemetry("LP-1", i)
	}
	waitFor(t, "20 messages after the restart", func() bool { return len(rec.telemetry()) >= 20 })
	waitFor(t, "the reconnection to be counted", func() bool { return sub.Stats().Reconnects >= 1 })
	sub.waitConnected(t)
	for i := range 20 {
		if rec.count("LP-1", float64(i)) == 0 {
			t.Errorf("message %d lost", i)
		}
	}
	// The loss, or a refused attempt while the broker was down after it.
	if st := sub.Stats(); !strings.Contains(st.LastError, "connection lost") && !strings.Contains(st.LastError, "connect: ") || st.LastErrorAt.IsZero() {
		t.Errorf("LastError = %q at %v, want the connection loss", st.LastError, st.LastErrorAt)
	}
}

// TestSubscriberGarbageFlood mixes every kind of bad message with good
// ones: none of the good ones is lost, each bad one is counted under its
// reason, and nothing stops the flow.
func TestSubscriberGarbageFlood(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	p := newPublisher(t, b.URL)
	// A retained reading, replayed by the broker at subscription.
	p.publish("streetlights/LP-RET/telemetry", 1, true, `{"voltage":220}`)

	rec := &recorder{}
	cfg := testConfig(t, b.URL, "flood")
	cfg.MaxPayload = 1024
	sub := start(t, cfg, rec)
	sub.waitConnected(t)

	huge := `{"x":"` + strings.Repeat("a", 2000) + `"}`
	garbage := []struct {
		topic, payload string
		reason         Reason
	}{
		{"streetlights/bad name/telemetry", `{"dim":1}`, ReasonBadTopic},
		{"streetlights/" + strings.Repeat("n", 65) + "/telemetry", `{"dim":1}`, ReasonBadTopic},
		{"streetlights/ção/status", "online", ReasonBadTopic},
		{"streetlights/LP-X/telemetry", huge, ReasonTooLarge},
		{"streetlights/LP-X/telemetry", `{"dim":1`, ReasonNotJSON},
		{"streetlights/LP-X/telemetry", `hello`, ReasonNotJSON},
		{"streetlights/LP-X/telemetry", ``, ReasonNotJSON},
		{"streetlights/LP-X/telemetry", `{"dim":1}x`, ReasonNotJSON},
		{"streetlights/LP-X/telemetry", `{"voltage":"221"}`, ReasonWrongType},
		{"streetlights/LP-X/telemetry", `[1,2]`, ReasonWrongType},
		{"streetlights/LP-X/telemetry", `{"voltage":NaN}`, ReasonNonFinite},
		{"streetlights/LP-X/telemetry", `{"power":1e999}`, ReasonNonFinite},
		{"streetlights/LP-X/telemetry", `{"dim":150}`, ReasonBadValue},
		{"streetlights/LP-X/telemetry", `{"ts":"yesterday"}`, ReasonBadTime},
		{"streetlights/LP-X/status", `maybe`, ReasonBadStatus},
	}
	const rounds, perGarbage = 4, 2
	want := map[Reason]int64{ReasonRetained: 1}
	seq := 0
	for round := range rounds {
		for _, g := range garbage {
			p.publish(g.topic, byte(round%2), false, g.payload) // half of it at QoS 0
			want[g.reason]++
			for range perGarbage {
				p.telemetry(fmt.Sprintf("LP-%d", seq%7), seq)
				seq++
			}
		}
	}
	var total int64
	for _, n := range want {
		total += n
	}
	total += int64(seq)
	// Received counts a message as it comes in, Handled and Rejected once
	// it is settled: wait until all of them are settled, not just seen.
	waitFor(t, "every message to be settled", func() bool {
		st := sub.Stats()
		return st.Received >= total && st.Handled+st.RejectedTotal+st.HandlerErrors >= total
	})

	st := sub.Stats()
	for _, r := range Reasons() {
		if st.Rejected[r] != want[r] {
			t.Errorf("rejected[%s] = %d, want %d", r, st.Rejected[r], want[r])
		}
	}
	if st.Received != total || st.Handled != int64(seq) || st.RejectedTotal != total-int64(seq) {
		t.Errorf("stats %+v; want received %d, handled %d", st, total, seq)
	}
	for i := range seq {
		if n := rec.count(fmt.Sprintf("LP-%d", i%7), float64(i)); n != 1 {
			t.Errorf("good message %d arrived %d times", i, n)
		}
	}
}

// TestSubscriberHandlerErrorRedelivers: a message whose handler failed is
// not acked; the broker delivers it again after a reconnection, and once
// handled it is acked for good.
func TestSubscriberHandlerErrorRedelivers(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	var mu sync.Mutex
	failed := false
	rec := &recorder{fail: func(tel *agent.Telemetry) error {
		mu.Lock()
		defer mu.Unlock()
		if tel.Energy == 7 && !failed {
			failed = true
			return errors.New("store closed")
		}
		return nil
	}}
	sub := start(t, testConfig(t, b.URL, "redeliver"), rec)
	sub.waitConnected(t)
	p := newPublisher(t, b.URL)
	p.telemetry("LP-1", 7)
	waitFor(t, "the handler error", func() bool { return sub.Stats().HandlerErrors == 1 })
	if st := sub.Stats(); st.Handled != 0 || !strings.Contains(st.LastError, "store closed") {
		t.Errorf("after a handler error: %+v", st)
	}

	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery", func() bool { return rec.count("LP-1", 7) == 1 })

	// Handled now, so acked. A clean stop makes sure the broker has read
	// that PUBACK (it reads the DISCONNECT after it); a new session then
	// must not bring the message back.
	sub.stop(t)
	next := &recorder{}
	start(t, testConfig(t, b.URL, "redeliver"), next)
	newPublisher(t, b.URL).telemetry("LP-1", 8)
	waitFor(t, "the marker message", func() bool { return next.count("LP-1", 8) == 1 })
	if n := rec.calls.Load(); n != 2 || next.calls.Load() != 1 {
		t.Errorf("handler calls: %d then %d; want 2 (failed, redelivered) then 1 (the marker)", n, next.calls.Load())
	}
}

// TestSubscriberShutdown: Run waits for a handler in flight and acks its
// message; a message arriving during the drain is left for the next
// session.
func TestSubscriberShutdown(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	rec := &recorder{block: make(chan struct{})}
	sub := start(t, testConfig(t, b.URL, "drain"), rec)
	sub.waitConnected(t)
	p := newPublisher(t, b.URL)
	p.telemetry("LP-1", 1)
	waitFor(t, "the handler to start", func() bool { return rec.calls.Load() == 1 })

	sub.cancel()
	waitFor(t, "intake to close", func() bool {
		sub.intake.mu.Lock()
		defer sub.intake.mu.Unlock()
		return sub.intake.closed
	})
	p.telemetry("LP-1", 2) // arrives while intake is closed
	select {
	case err := <-sub.done:
		t.Fatalf("Run returned (%v) with a handler in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(rec.block)
	sub.stop(t)
	if rec.count("LP-1", 1) != 1 || rec.count("LP-1", 2) != 0 {
		t.Fatalf("handled %+v; want message 1 only", rec.telemetry())
	}
	if sub.Connected() {
		t.Error("Connected after Run returned")
	}

	next := &recorder{}
	start(t, testConfig(t, b.URL, "drain"), next)
	newPublisher(t, b.URL).telemetry("LP-1", 3)
	waitFor(t, "message 2 and the marker", func() bool { return next.count("LP-1", 2) == 1 && next.count("LP-1", 3) == 1 })
	if next.count("LP-1", 1) != 0 {
		t.Error("message 1 was handled and acked, but arrived again")
	}
}

// TestSubscriberDrainTimeout: a handler that outlives the drain gets its
// context cancelled; its message stays unacked and comes back.
func TestSubscriberDrainTimeout(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	rec := &recorder{block: make(chan struct{})} // never closed: only ctx ends it
	cfg := testConfig(t, b.URL, "drain-timeout")
	cfg.DrainTimeout = 100 * time.Millisecond
	sub := start(t, cfg, rec)
	sub.waitConnected(t)
	newPublisher(t, b.URL).telemetry("LP-1", 1)
	waitFor(t, "the handler to start", func() bool { return rec.calls.Load() == 1 })
	sub.stop(t)
	if st := sub.Stats(); st.HandlerErrors != 1 || st.Handled != 0 {
		t.Errorf("stats after the drain timeout: %+v", st)
	}

	next := &recorder{}
	start(t, testConfig(t, b.URL, "drain-timeout"), next)
	waitFor(t, "the redelivery", func() bool { return next.count("LP-1", 1) == 1 })
}

// TestSubscriberQoS0Overload: QoS 0 messages beyond MaxInFlight are
// dropped and counted; QoS 1 messages never are.
func TestSubscriberQoS0Overload(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	rec := &recorder{block: make(chan struct{})}
	cfg := testConfig(t, b.URL, "overload")
	cfg.MaxInFlight = 2
	sub := start(t, cfg, rec)
	sub.waitConnected(t)
	p := newPublisher(t, b.URL)
	for i := range 5 {
		p.publish("streetlights/LP-1/telemetry", 0, false, fmt.Sprintf(`{"energy":%d}`, i))
	}
	waitFor(t, "3 overload rejections", func() bool { return sub.Stats().Rejected[ReasonOverload] == 3 })
	p.telemetry("LP-1", 100) // QoS 1: admitted although 2 are in flight
	waitFor(t, "the QoS 1 message in the handler", func() bool { return rec.calls.Load() == 3 })
	close(rec.block)
	waitFor(t, "3 handled", func() bool { return sub.Stats().Handled == 3 })
	if rec.count("LP-1", 100) != 1 {
		t.Error("the QoS 1 message was not handled")
	}
}

// TestGatewayStatus: the gateway's own status is "online" (retained) while
// connected; the broker publishes the will "offline" when the connection
// dies without a goodbye; a clean shutdown leaves "offline" retained.
func TestGatewayStatus(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	px := startProxy(t, b.URL)
	const topic = "streetlights/_gateways/gw-test/status"
	w := watch(t, b.URL, topic)
	rec := &recorder{}
	sub := start(t, testConfig(t, px.URL(), "gateway"), rec)
	sub.waitConnected(t)
	waitFor(t, "online", func() bool { return w.last() == "online" })

	n := len(w.all())
	px.hold() // the broker must see the old connection die before a new one
	px.cut()  // the link dies: no DISCONNECT reaches the broker
	waitFor(t, "the will (offline)", func() bool { return slices.Contains(w.all()[n:], "offline") })
	px.release()
	// Look at the whole sequence since the cut, not at the latest message.
	waitFor(t, "the will (offline), then online again", func() bool {
		after := w.all()[n:]
		i := slices.Index(after, "offline")
		return i >= 0 && slices.Contains(after[i:], "online") && sub.Connected()
	})
	if sub.Stats().Reconnects < 1 {
		t.Errorf("reconnection not counted: %+v", sub.Stats())
	}

	sub.stop(t)
	waitFor(t, "offline at shutdown", func() bool { return w.last() == "offline" })
	// Retained: a newcomer learns it too.
	late := watch(t, b.URL, topic)
	waitFor(t, "the retained offline", func() bool { return late.last() == "offline" })
	// The gateway topic is not a device topic: the subscriber never saw it.
	if len(rec.statuses()) != 0 || sub.Stats().RejectedTotal != 0 {
		t.Errorf("the gateway's own status reached the handler: %+v, %+v", rec.statuses(), sub.Stats())
	}
	t.Logf("gateway status sequence: %v", w.all())
}

func TestSubscriberUnreachableBroker(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "tcp://127.0.0.1:1", "unreachable") // nothing listens on port 1
	cfg.MaxReconnectInterval = 50 * time.Millisecond
	sub := start(t, cfg, &recorder{})
	waitFor(t, "the connect failure to be reported", func() bool { return sub.Stats().LastError != "" })
	if st := sub.Stats(); st.Connected || sub.Connected() || !strings.Contains(st.LastError, "connect") {
		t.Errorf("stats while unreachable: %+v", st)
	}
	sub.stop(t)
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	b := mqtttest.StartT(t)
	sub := start(t, testConfig(t, b.URL, "twice"), &recorder{})
	sub.waitConnected(t)
	sub.stop(t)
	if err := sub.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Run = %v, want ErrAlreadyRun", err)
	}
}
