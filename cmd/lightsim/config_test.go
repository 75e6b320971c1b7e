package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

func TestParseFault(t *testing.T) {
	good := []struct {
		in   string
		want faultSpec
	}{
		{"dark=0.1", faultSpec{Fault: Fault{Kind: kindDark}, Share: 0.1}},
		{"dayburn=1.0", faultSpec{Fault: Fault{Kind: kindDayburn}, Share: 1}},
		{"swell=10%", faultSpec{Fault: Fault{Kind: kindSwell}, Share: 0.1}},
		{"sag=5", faultSpec{Fault: Fault{Kind: kindSag}, Count: 5}},
		{"lowpf=1", faultSpec{Fault: Fault{Kind: kindLowPF}, Count: 1}},
		{"overpower=IP00001", faultSpec{Fault: Fault{Kind: kindOverpower}, List: []string{"IP00001"}}},
		{"cycling=IP00001,IP00007", faultSpec{Fault: Fault{Kind: kindCycling}, List: []string{"IP00001", "IP00007"}}},
		{"silence=.5", faultSpec{Fault: Fault{Kind: kindSilence}, Share: 0.5}},
		{"garbage=2", faultSpec{Fault: Fault{Kind: kindGarbage}, Count: 2}},
		{"alarm:relayFailure=0.2", faultSpec{Fault: Fault{Kind: kindAlarm, Alarm: "relayFailure"}, Share: 0.2}},
	}
	for _, c := range good {
		got, err := parseFault(c.in)
		c.want.raw = c.in
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseFault(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "dark", "dark=", "=0.1", "fog=0.1", "dark=0", "dark=1.5", "dark=0%",
		"dark=101%", "dark=0.0", "alarm:=1", "alarm:bad name=1", "dark=IP 1", "dark=IP1,,IP2", "alarm=1"} {
		if _, err := parseFault(in); !errors.Is(err, ErrBadFault) {
			t.Errorf("parseFault(%q): err %v, want ErrBadFault", in, err)
		}
	}
}

func TestAssignFaults(t *testing.T) {
	fleet := func() []*Device {
		var ds []*Device
		for i := 1; i <= 100; i++ {
			ds = append(ds, newDevice(1, i, fmt.Sprintf("IP%05d", i), uberaba, 1, 0.3, tsRFC3339, false))
		}
		return ds
	}
	ds := fleet()
	specs := []faultSpec{mustFault(t, "dark=0.1"), mustFault(t, "swell=3"), mustFault(t, "alarm:x=IP00005,IP00010")}
	if err := assignFaults(ds, specs, 9, time.Minute); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	var picked []string
	for _, d := range ds {
		for _, f := range d.Faults {
			count[f.Fault.String()]++
			picked = append(picked, d.Nameplate+"/"+f.Fault.String())
			if f.Phase < 0 || f.Phase >= time.Minute {
				t.Errorf("phase %v outside [0, cycle)", f.Phase)
			}
		}
	}
	if count["dark"] != 10 || count["swell"] != 3 || count["alarm:x"] != 2 {
		t.Fatalf("faults given: %v", count)
	}
	if len(ds[4].Faults) == 0 || ds[4].Faults[len(ds[4].Faults)-1].Alarm != "x" {
		t.Fatalf("listed device did not get its alarm")
	}
	// Same seed, same choice; another seed, another choice.
	again := fleet()
	_ = assignFaults(again, specs, 9, time.Minute)
	other := fleet()
	_ = assignFaults(other, specs, 10, time.Minute)
	var picked2, picked3 []string
	for i := range again {
		for _, f := range again[i].Faults {
			picked2 = append(picked2, again[i].Nameplate+"/"+f.Fault.String())
		}
		for _, f := range other[i].Faults {
			picked3 = append(picked3, other[i].Nameplate+"/"+f.Fault.String())
		}
	}
	if !reflect.DeepEqual(picked, picked2) {
		t.Fatal("same seed picked other devices")
	}
	if reflect.DeepEqual(picked, picked3) {
		t.Fatal("another seed picked the same devices")
	}
	// Errors: unknown nameplate, more devices than the fleet.
	if err := assignFaults(fleet(), []faultSpec{mustFault(t, "dark=NOPE")}, 1, 0); !errors.Is(err, ErrBadFault) {
		t.Errorf("unknown nameplate: %v", err)
	}
	if err := assignFaults(fleet(), []faultSpec{mustFault(t, "dark=101")}, 1, 0); !errors.Is(err, ErrBadFault) {
		t.Errorf("101 of 100: %v", err)
	}
}

func TestWhereNightAndDayAllYear(t *testing.T) {
	t.Parallel()
	// Every 97 minutes for a year (97 is prime to 60 and to a day, so the
	// samples sweep all times of day across the seasons).
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for at := start; at.Before(start.AddDate(1, 0, 0)); at = at.Add(97 * time.Minute) {
		night, err := resolveWhere("night", at)
		if err != nil {
			t.Fatal(err)
		}
		if e := agent.SunElevation(at, night.Lat, night.Lon); e >= nightBelow {
			t.Fatalf("night at %s: %s has the sun at %.1f°", at, night.Name, e)
		}
		// An hour later it is still well past twilight there: a demo started
		// now sees night behaviour for its whole run.
		if e := agent.SunElevation(at.Add(time.Hour), night.Lat, night.Lon); e >= agent.NightBelow {
			t.Fatalf("night at %s: %s is no longer night an hour later (%.1f°)", at, night.Name, e)
		}
		day, err := resolveWhere("day", at)
		if err != nil {
			t.Fatal(err)
		}
		if e := agent.SunElevation(at, day.Lat, day.Lon); e <= dayAbove {
			t.Fatalf("day at %s: %s has the sun at %.1f°", at, day.Name, e)
		}
		if e := agent.SunElevation(at.Add(time.Hour), day.Lat, day.Lon); e <= agent.DayAbove {
			t.Fatalf("day at %s: %s is no longer day an hour later (%.1f°)", at, day.Name, e)
		}
	}
}

func TestResolveWhere(t *testing.T) {
	now := time.Now()
	for in, want := range map[string]Place{
		"":                 defaultPlace,
		"uberaba":          defaultPlace,
		"Tokyo":            {"Tokyo", "", 35.6762, 139.6503},
		"-23.5,-46.6":      {Lat: -23.5, Lon: -46.6},
		" 51.5 , -0.1278 ": {Lat: 51.5, Lon: -0.1278},
	} {
		got, err := resolveWhere(in, now)
		if err != nil || got != want {
			t.Errorf("resolveWhere(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"atlantis", "91,0", "0,181", "1;2", "a,b", "1"} {
		if _, err := resolveWhere(in, now); !errors.Is(err, ErrBadWhere) {
			t.Errorf("resolveWhere(%q): err %v, want ErrBadWhere", in, err)
		}
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	spec := fleetSpec{Devices: 25, Pattern: "IP%05d", First: 1, Place: uberaba, SpreadKm: 3,
		LuxShare: 0.3, TSFormat: "mix", Seed: 5, Start: evening}
	f, err := buildFleet(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "devices.csv")
	if err := writeRegistryFile(path, f); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), strings.Join(registryColumns, ",")+"\n") {
		t.Fatalf("header: %q", strings.SplitN(string(data), "\n", 2)[0])
	}
	if !strings.Contains(string(data), ",Uberaba,MG,") {
		t.Errorf("no municipality/state in %q", strings.SplitN(string(data), "\n", 3)[1])
	}
	rows, skipped, err := loadRegistry(path)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("read back: %v, skipped %v", err, skipped)
	}
	spec.Registry = rows
	g, err := buildFleet(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Devices) != len(f.Devices) {
		t.Fatalf("%d devices read back, want %d", len(g.Devices), len(f.Devices))
	}
	for i, d := range f.Devices {
		e := g.Devices[i]
		if e.Nameplate != d.Nameplate || e.NominalPower != d.NominalPower || e.HasLux != d.HasLux || e.TS != d.TS ||
			distanceKm(e.Lat, e.Lon, d.Lat, d.Lon) > 0.001 {
			t.Fatalf("device %d: %+v read back as %+v", i, d, e)
		}
		// The same device: it reports the same values.
		a, b := d.step(f, evening), e.step(g, evening)
		if string(appendTelemetry(nil, &a)) != string(appendTelemetry(nil, &b)) {
			t.Fatalf("device %s reports differently from the registry", d.Nameplate)
		}
	}
}

func TestReadRegistryRows(t *testing.T) {
	csv := "\uFEFFnominal_power,longitude,nameplate_num,latitude,address\n" +
		"100,-47.9,IP01,-19.7,Rua A\n" + // line 2: good, columns reordered
		"80,,IP02,,Rua B\n" + // line 3: good, no position
		",-47.9,IP03,,Rua C\n" + // line 4: half a position
		"x,,IP04,,\n" + // line 5: bad power
		",,bad name,,\n" + // line 6: bad nameplate
		"60,-47.9,IP01,-19.7,\n" + // line 7: duplicate
		",200,IP05,1,\n" + // line 8: longitude out of range
		"150,,IP06,,\"Rua \"\"F\"\"\"\n" // line 9: good, quoted address
	rows, skipped, err := readRegistry(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	want := []RegistryRow{
		{Nameplate: "IP01", Lat: -19.7, Lon: -47.9, HasPosition: true, NominalPower: 100},
		{Nameplate: "IP02", NominalPower: 80},
		{Nameplate: "IP06", NominalPower: 150},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %+v, want %+v", rows, want)
	}
	for i, line := range []string{"line 4:", "line 5:", "line 6:", "line 7:", "line 8:"} {
		if i >= len(skipped) || !strings.HasPrefix(skipped[i], line) {
			t.Errorf("skipped %q, want %s ...", skipped, line)
			break
		}
	}
	for _, bad := range []string{"", "address\nRua A\n", "nameplate_num\n", "nameplate_num\nbad name\n"} {
		if _, _, err := readRegistry(strings.NewReader(bad)); !errors.Is(err, ErrRegistry) {
			t.Errorf("readRegistry(%q): err %v, want ErrRegistry", bad, err)
		}
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Broker != "tcp://127.0.0.1:1883" || cfg.Prefix != "streetlights" || cfg.Pattern != "IP%05d" ||
		cfg.QoS != 1 || !cfg.Status || cfg.Load {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = parseFlags([]string{"--load", "--count", "10", "--fault", "dark=1", "--fault", "swell=0.5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Status || len(cfg.Faults) != 2 {
		t.Errorf("load: status %v, faults %v", cfg.Status, cfg.Faults)
	}
	if cfg, _ := parseFlags([]string{"--load", "--status"}, io.Discard); cfg == nil || !cfg.Status {
		t.Errorf("--load --status: status off")
	}
	for _, args := range [][]string{
		{"--qos", "3"}, {"--devices", "0"}, {"--pattern", "IP"}, {"--pattern", "%d%d"}, {"--interval", "0s"},
		{"--count", "5"}, {"--load", "--fault", "garbage=1"}, {"--load", "--fault", "silence=1"},
		{"--load", "--fault-cycle", "1m"}, {"--inflight", "0"}, {"--inflight", "70000"}, {"--prefix", "a/#"},
		{"--broker", "127.0.0.1:1883"}, {"--broker", "http://x:1"}, {"--broker", "tcp://"},
		{"--ts-format", "iso"}, {"--lux-share", "2"}, {"--write-only"}, {"--password", "a", "--password-file", "b"},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: err %v, want ErrUsage", args, err)
		}
	}
	var help bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, io.Discard, &help); code != exitOK {
		t.Errorf("--help exit %d", code)
	}
	for _, want := range []string{"fault NAMEPLATE KIND on|off", "lightsim: published=N failed=F elapsed=S rate=R msgs/s", "-write-registry"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, args := range [][]string{{"--fault", "fog=1"}, {"--where", "atlantis"}, {"--devices", "3", "--fault", "dark=4"}, {"extra"}} {
		var stderr bytes.Buffer
		if code := run(t.Context(), args, io.Discard, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "lightsim:") {
			t.Errorf("%v: exit %d, stderr %q; want 2 with a message", args, code, stderr.String())
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := redactURL("tcp://bob:s3cret@10.0.0.1:1883"); strings.Contains(got, "s3cret") || !strings.Contains(got, "bob") {
		t.Errorf("redactURL = %q", got)
	}
	var stderr syncBuffer
	_ = run(t.Context(), []string{"--broker", "tcp://bob:s3cret@127.0.0.1:1", "--connect-timeout", "200ms"}, io.Discard, &stderr)
	if strings.Contains(stderr.String(), "s3cret") || !strings.Contains(stderr.String(), "127.0.0.1:1") {
		t.Errorf("stderr shows the password, or not the broker: %q", stderr.String())
	}
}

func TestWriteOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reg.csv")
	var out bytes.Buffer
	// No broker on this port: --write-only must not connect.
	code := run(t.Context(), []string{"--broker", "tcp://127.0.0.1:1", "--devices", "3", "--where", "night",
		"--write-registry", path, "--write-only"}, &out, io.Discard)
	if code != exitOK || !strings.Contains(out.String(), "lightsim: wrote registry file="+path+" devices=3") {
		t.Fatalf("exit %d, out %q", code, out.String())
	}
	rows, _, err := loadRegistry(path)
	if err != nil || len(rows) != 3 || !rows[0].HasPosition {
		t.Fatalf("rows %+v, err %v", rows, err)
	}
	if e := agent.SunElevation(time.Now(), rows[0].Lat, rows[0].Lon); e >= nightBelow+1 {
		t.Errorf("--where night wrote a position where the sun is at %.1f°", e)
	}
}
