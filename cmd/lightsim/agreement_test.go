package main

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/mqtt"
)

// These tests let the agent's own ingest judge what lightsim sends: every
// valid message must decode, and every garbage message must be rejected
// for the reason it was made for. (The other model tests check the payload
// against the contract's types with encoding/json; this checks it against
// the decoder that will actually read it.)

func TestAgentDecoderAcceptsEveryValidMessage(t *testing.T) {
	f, err := buildFleet(fleetSpec{Devices: 60, Pattern: "IP%05d", First: 1, Place: uberaba, SpreadKm: 3,
		LuxShare: 0.5, TSFormat: "mix", Dimming: true, Seed: 11, Start: evening,
		Faults: []faultSpec{mustFault(t, "dark=5"), mustFault(t, "dayburn=5"), mustFault(t, "swell=5"),
			mustFault(t, "sag=5"), mustFault(t, "lowpf=5"), mustFault(t, "overpower=5"), mustFault(t, "cycling=5"),
			mustFault(t, "alarm:relayFailure=5"), mustFault(t, "alarm:lampFailure=5")}})
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	checked := 0
	for _, at := range []time.Time{evening, afterMid, noon, noon.Add(5 * time.Hour)} {
		for _, d := range f.Devices {
			s := d.step(f, at)
			buf = appendTelemetry(buf[:0], &s)
			np, kind, err := mqtt.ParseTopic("streetlights", telemetryTopic("streetlights", d.Nameplate))
			if err != nil || np != d.Nameplate || kind != mqtt.TopicTelemetry {
				t.Fatalf("topic of %s: %q %v %v", d.Nameplate, np, kind, err)
			}
			var tel agent.Telemetry
			now := at.Add(time.Second) // received a second later
			if err := mqtt.DecodeTelemetry(buf, now, &tel); err != nil {
				t.Fatalf("%s at %s: %s\n  rejected: %v", d.Nameplate, at, buf, err)
			}
			checked++
			want := agent.FieldVoltage | agent.FieldCurrent | agent.FieldPower | agent.FieldPowerFactor |
				agent.FieldEnergy | agent.FieldLampOn | agent.FieldDim | agent.FieldTemperature |
				agent.FieldBurnHours | agent.FieldSwitchCount | agent.FieldPosition | agent.FieldAlarms
			if d.HasLux {
				want |= agent.FieldLux
			}
			if !tel.Has(want) {
				t.Fatalf("%s: fields %b, want at least %b", buf, tel.Fields, want)
			}
			if tel.LampOn != s.LampOn || tel.Dim != float64(s.Dim) || len(tel.Alarms) != len(s.Alarms) {
				t.Fatalf("%s decoded as %+v", buf, tel)
			}
			// The time the agent uses is the message's ts (to its
			// precision), or the receive time when there is none.
			wantAt := now
			switch d.TS {
			case tsRFC3339, tsUnix:
				wantAt = at.Truncate(time.Second)
			case tsUnixMs:
				wantAt = at.Truncate(time.Millisecond)
			}
			if !tel.At.Equal(wantAt) {
				t.Fatalf("%s (%s): At %s, want %s", buf, d.TS, tel.At, wantAt)
			}
		}
	}
	if checked != 240 {
		t.Fatalf("checked %d messages", checked)
	}
}

func TestAgentRejectsEveryGarbageKind(t *testing.T) {
	const maxPayload = 16384 // EDGE_MQTT_MAX_PAYLOAD's default: the subscriber checks it before decoding
	want := map[garbageKind]mqtt.Reason{
		garbageNotJSON:     mqtt.ReasonNotJSON,
		garbageWrongType:   mqtt.ReasonWrongType,
		garbageNotObject:   mqtt.ReasonWrongType,
		garbageNaN:         mqtt.ReasonNonFinite,
		garbageOverflow:    mqtt.ReasonNonFinite,
		garbageOversize:    mqtt.ReasonTooLarge,
		garbageBadTopic:    mqtt.ReasonBadTopic,
		garbageTooLongName: mqtt.ReasonBadTopic,
	}
	f, d := testDevice(t, Fault{Kind: kindGarbage})
	seen := map[garbageKind]bool{}
	for i := range 2 * int(garbageKinds) {
		s := d.step(f, evening.Add(time.Duration(i)*time.Minute))
		topic, payload, kind := d.garbage("streetlights", &s)
		seen[kind] = true
		var got mqtt.Reason
		var rej *mqtt.RejectError
		switch _, _, err := mqtt.ParseTopic("streetlights", topic); {
		case errors.As(err, &rej):
			got = rej.Reason
		case err != nil:
			t.Fatalf("%s: topic error %v is not a RejectError", kind, err)
		case len(payload) > maxPayload:
			got = mqtt.ReasonTooLarge
		default:
			var tel agent.Telemetry
			err := mqtt.DecodeTelemetry(payload, evening, &tel)
			if !errors.As(err, &rej) {
				t.Fatalf("%s: %.100s accepted by the agent's decoder (err %v)", kind, payload, err)
			}
			got = rej.Reason
		}
		if got != want[kind] {
			t.Errorf("%s: rejected as %s, want %s", kind, got, want[kind])
		}
	}
	if len(seen) != int(garbageKinds) {
		t.Errorf("kinds seen %v", seen)
	}
}

// TestAgentDetectsEachFaultAndNothingElse runs a day (noon to noon, one
// report every 5 minutes) of a small fleet, one device per fault kind,
// through the agent's decoder and detector with the contract's default
// settings and the registry lightsim writes. Each faulty device must raise
// exactly its fault, once, and never clear it; the healthy one nothing, not
// even around dusk and dawn. This is what the demo and the chaos test rely
// on.
func TestAgentDetectsEachFaultAndNothingElse(t *testing.T) {
	kinds := []string{"healthy", "dark-off", "dark-dead", "dayburn", "swell", "sag", "lowpf", "overpower",
		"cycling", "alarm:relayFailure", "silence", "garbage"}
	expect := map[string]string{
		"dark-off": agent.FaultLampFailure, "dark-dead": agent.FaultLampFailure,
		"dayburn": agent.FaultLampUnexpectedOn, "swell": agent.FaultSupplyVoltageTooHigh,
		"sag": agent.FaultSupplyVoltageTooLow, "lowpf": agent.FaultPowerFactorTooLow,
		"overpower": agent.FaultLampPowerTooHigh, "cycling": agent.FaultCyclingFailure,
		"alarm:relayFailure": "relayFailure", "silence": agent.FaultCommunicationFailure,
		// Nothing it sends is accepted: to the agent it is a silent device.
		"garbage": agent.FaultCommunicationFailure,
	}
	var specs []faultSpec
	for i, k := range kinds {
		name := k
		switch k {
		case "healthy":
			continue
		case "dark-off", "dark-dead":
			name = "dark"
		}
		specs = append(specs, mustFault(t, fmt.Sprintf("%s=IP%05d", name, i+1)))
	}
	start := noon
	f, err := buildFleet(fleetSpec{Devices: len(kinds), Pattern: "IP%05d", First: 1, Place: uberaba, SpreadKm: 3,
		LuxShare: 0.5, TSFormat: "mix", Dimming: true, Seed: 5, Start: start, Faults: specs})
	if err != nil {
		t.Fatal(err)
	}
	f.Devices[1].darkRelayOn, f.Devices[2].darkRelayOn = false, true
	f.Devices[0].HasLux = true // the healthy one meets the lux rules too

	var csv bytes.Buffer
	if err := writeRegistry(&csv, f); err != nil {
		t.Fatal(err)
	}
	reg, rowErrs, err := agent.ParseRegistry(&csv)
	if err != nil || len(rowErrs) > 0 {
		t.Fatalf("the agent refuses lightsim's registry: %v %v", err, rowErrs)
	}
	det := agent.NewDetector(agent.DetectorConfig{
		ConfirmCount: 3, NominalVoltage: 220, VoltageTolerance: 0.10, LampMinPower: 5, MinPowerFactor: 0.85,
		CyclingSwitches: 6, CyclingWindow: time.Hour, DayLux: 50, CommLossAfter: 15 * time.Minute,
		ReportInterval: 5 * time.Minute,
	}, reg, start)
	var events []agent.Event
	commit := func(evs []agent.Event) error { events = append(events, evs...); return nil }

	var buf []byte
	for at := start; at.Before(start.Add(24 * time.Hour)); at = at.Add(5 * time.Minute) {
		recv := at.Add(time.Second)
		for _, d := range f.Devices {
			s := d.step(f, at)
			topic, payload := telemetryTopic("streetlights", d.Nameplate), []byte(nil)
			switch {
			case s.Silent:
				continue
			case s.Garbage:
				topic, payload, _ = d.garbage("streetlights", &s)
			default:
				buf = appendTelemetry(buf[:0], &s)
				payload = buf
			}
			np, _, err := mqtt.ParseTopic("streetlights", topic)
			if err != nil || len(payload) > 16384 {
				continue // rejected, as garbage should be
			}
			var tel agent.Telemetry
			if err := mqtt.DecodeTelemetry(payload, recv, &tel); err != nil {
				if !s.Garbage {
					t.Fatalf("valid message rejected: %v", err)
				}
				continue
			}
			if s.Garbage {
				t.Fatalf("garbage accepted: %s %.80s", topic, payload)
			}
			tel.Nameplate = np
			if err := det.Observe(&tel, commit); err != nil {
				t.Fatal(err)
			}
		}
		if err := det.Sweep(recv, commit); err != nil {
			t.Fatal(err)
		}
	}

	raised := map[string][]string{}
	for _, ev := range events {
		if ev.Kind == agent.Clear {
			t.Errorf("%s: %s cleared at %s; a fault that always shows must stay raised", ev.Nameplate, ev.Fault, ev.At)
			continue
		}
		raised[ev.Nameplate] = append(raised[ev.Nameplate], ev.Fault)
	}
	for i, k := range kinds {
		np := f.Devices[i].Nameplate
		got := raised[np]
		switch want, faulty := expect[k]; {
		case !faulty && len(got) > 0:
			t.Errorf("%s (%s) raised %v, want nothing", np, k, got)
		case faulty && (len(got) != 1 || got[0] != want):
			t.Errorf("%s (%s) raised %v, want exactly [%s]", np, k, got, want)
		}
	}
}
