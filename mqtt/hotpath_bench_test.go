package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// The hot path of the agent: one telemetry message from a controller that
// changes nothing (the steady state of a healthy fleet), from the topic to
// the detector's verdict. BENCHMARKS.md's target is ≤ 2 µs/op and
// ≤ 3 allocs/op; cmd/internal/benchrun runs it natively and, for the ARM
// ratio, under qemu-aarch64-static:
//
//	go test -run '^$' -bench '^BenchmarkHotPath$' -benchmem ./mqtt/
//
// Two levels, both on 10,000 devices taken round-robin (so the detector's
// maps and device states are as cold as in a real fleet, not one device
// hot in cache):
//
//   - core: ParseTopic + DecodeTelemetry + Detector.Observe, the three
//     functions and nothing else;
//   - subscriber: the Subscriber's own per-message code (intake tracking,
//     size and retained checks, the Telemetry it hands on, the ack) with
//     the real agent.Pipeline behind it — everything the agent does for a
//     message after paho has read it off the socket.
//
// The messages carry the contract's full payload, ts included as lightsim
// sends it (RFC 3339), at night in Uberaba with the lamp lit: no rule
// fires. The store behind the pipeline fails the benchmark if it is ever
// asked to persist anything.

const hotDevices = 10_000

// hotNight is local midnight in Uberaba (UTC-3): deep night, lamps lit.
var hotNight = time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)

// hotFleet is the benchmark's fleet: topics and payloads of one report
// round, with the ts of every payload at a fixed offset, rewritten in place
// for each round.
type hotFleet struct {
	topics   []string
	payloads [][]byte
	tsAt     []int // offset of the ts value's first digit in each payload
	round    int
}

const hotTSLayout = "2006-01-02T15:04:05Z"

func newHotFleet(b *testing.B) (*hotFleet, *agent.Registry) {
	b.Helper()
	var csv strings.Builder
	csv.WriteString("nameplate_num,latitude,longitude,nominal_power,address,municipality,state_abbreviation\n")
	f := &hotFleet{}
	for i := range hotDevices {
		np := fmt.Sprintf("IP%05d", i)
		lat, lon := -19.7472+float64(i%100)*1e-4, -47.9381+float64(i/100%100)*1e-4
		fmt.Fprintf(&csv, "%s,%.4f,%.4f,100,Rua %d,Uberaba,MG\n", np, lat, lon, i)
		head := `{"ts":"`
		p := fmt.Sprintf(`%s%s","voltage":%.1f,"current":0.42,"power":%.1f,"power_factor":0.96,"energy":%.1f,`+
			`"lamp_on":true,"dim":100,"lux":2.1,"temperature":38.5,"burn_hours":%d,"switch_count":%d,"lat":%.4f,"lon":%.4f}`,
			head, hotNight.Format(hotTSLayout), 218+float64(i%7), 85+float64(i%9), 1000+float64(i), 10000+i, 5000+i%300, lat, lon)
		f.topics = append(f.topics, "streetlights/"+np+"/telemetry")
		f.payloads = append(f.payloads, []byte(p))
		f.tsAt = append(f.tsAt, len(head))
	}
	reg, rowErrs, err := agent.ParseRegistry(strings.NewReader(csv.String()))
	if err != nil || len(rowErrs) > 0 {
		b.Fatal(err, rowErrs)
	}
	return f, reg
}

// nextRound moves every payload's ts one second on: each device reports
// once per round, in order, as a fleet does.
func (f *hotFleet) nextRound() {
	f.round++
	ts := hotNight.Add(time.Duration(f.round) * time.Second)
	for i, p := range f.payloads {
		ts.AppendFormat(p[f.tsAt[i]:f.tsAt[i]], hotTSLayout)
	}
}

// now is the gateway clock for the current round: just after its messages
// were measured.
func (f *hotFleet) now() time.Time {
	return hotNight.Add(time.Duration(f.round)*time.Second + 300*time.Millisecond)
}

// contractDetector is a detector with the contract's default thresholds
// (CONTRACT §2), started an hour before the benchmark's night.
func contractDetector(reg *agent.Registry) *agent.Detector {
	return agent.NewDetector(agent.DetectorConfig{
		ConfirmCount: 3, NominalVoltage: 220, VoltageTolerance: 0.10, LampMinPower: 5, MinPowerFactor: 0.85,
		CyclingSwitches: 6, CyclingWindow: time.Hour, DayLux: 50,
		CommLossAfter: 15 * time.Minute, ReportInterval: 5 * time.Minute,
	}, reg, hotNight.Add(-time.Hour))
}

var errHotPathPersisted = errors.New("hot path benchmark: a message changed a fault (the steady state must not touch the store)")

// noStore is a TicketStore for a fleet in which nothing changes.
type noStore struct{ agent.TicketStore }

func (noStore) ApplyChanges(context.Context, []agent.TicketChange) ([]agent.ChangeResult, error) {
	return nil, errHotPathPersisted
}

// hotMsg is one delivered message, as paho hands it to the handler.
type hotMsg struct {
	topic   string
	payload []byte
	acked   int
}

func (m *hotMsg) Duplicate() bool   { return false }
func (m *hotMsg) Qos() byte         { return 1 }
func (m *hotMsg) Retained() bool    { return false }
func (m *hotMsg) Topic() string     { return m.topic }
func (m *hotMsg) MessageID() uint16 { return 1 }
func (m *hotMsg) Payload() []byte   { return m.payload }
func (m *hotMsg) Ack()              { m.acked++ }

func BenchmarkHotPath(b *testing.B) {
	b.Run("core", func(b *testing.B) {
		f, reg := newHotFleet(b)
		det := contractDetector(reg)
		commit := func([]agent.Event) error { return errHotPathPersisted }
		var t agent.Telemetry
		step := func(i int) {
			np, kind, err := ParseTopic(DefaultTopicPrefix, f.topics[i])
			if err != nil || kind != TopicTelemetry {
				b.Fatal(kind, err)
			}
			t = agent.Telemetry{Nameplate: np}
			if err := DecodeTelemetry(f.payloads[i], f.now(), &t); err != nil {
				b.Fatal(err)
			}
			if err := det.Observe(&t, commit); err != nil {
				b.Fatal(err)
			}
		}
		// Every device heard from once, histories allocated: the fleet's
		// steady state, not its first minute.
		for i := range hotDevices {
			step(i)
		}
		f.nextRound()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			step(i)
			if i++; i == hotDevices {
				b.StopTimer()
				f.nextRound()
				b.StartTimer()
				i = 0
			}
		}
		b.StopTimer()
		if c := det.Counts(f.now()); c.Faulty != 0 || c.Known != hotDevices {
			b.Fatalf("after the run: %+v, want %d devices known and none faulty", c, hotDevices)
		}
	})

	b.Run("subscriber", func(b *testing.B) {
		f, reg := newHotFleet(b)
		det := contractDetector(reg)
		pipe := agent.NewPipeline(agent.PipelineConfig{GatewayID: "gw-bench", Now: f.now}, det, noStore{}, nil, nil, nil)
		s, err := New(Config{Broker: "tcp://127.0.0.1:1", ClientID: "bench", GatewayID: "gw-bench", Now: f.now}, pipe)
		if err != nil {
			b.Fatal(err)
		}
		s.hctx = context.Background() // as Run sets it
		msgs := make([]hotMsg, hotDevices)
		for i := range msgs {
			msgs[i] = hotMsg{topic: f.topics[i], payload: f.payloads[i]}
			s.onMessage(nil, &msgs[i])
		}
		f.nextRound()
		b.ReportAllocs()
		i, n := 0, 0
		for b.Loop() {
			s.onMessage(nil, &msgs[i])
			n++
			if i++; i == hotDevices {
				b.StopTimer()
				f.nextRound()
				b.StartTimer()
				i = 0
			}
		}
		b.StopTimer()
		st := s.Stats()
		if st.Handled != int64(n+hotDevices) || st.RejectedTotal != 0 || st.HandlerErrors != 0 {
			b.Fatalf("handled %d, rejected %d, handler errors %d (last: %s), want %d handled",
				st.Handled, st.RejectedTotal, st.HandlerErrors, st.LastError, n+hotDevices)
		}
		acked := 0
		for i := range msgs {
			acked += msgs[i].acked
		}
		if acked != n+hotDevices {
			b.Fatalf("%d acks for %d messages", acked, n+hotDevices)
		}
		if c := det.Counts(f.now()); c.Faulty != 0 || c.Known != hotDevices {
			b.Fatalf("after the run: %+v, want %d devices known and none faulty", c, hotDevices)
		}
	})
}
