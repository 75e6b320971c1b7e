package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	// paho logs through package variables: set once here, before any
	// client exists (run, which the tests call, never touches them).
	plog := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "paho")
	paho.ERROR = pahoLogger{plog, slog.LevelError}
	paho.CRITICAL = pahoLogger{plog, slog.LevelError}
	paho.WARN = pahoLogger{plog, slog.LevelDebug} // mostly noise ("memorystore wiped"); failures come through ERROR

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// run is the whole program, for main and the tests: it returns the exit
// status. It stops at ctx's end (a signal), --duration or --count.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "lightsim: %v\n", err)
		return exitUsage
	}
	level := slog.LevelInfo
	switch {
	case cfg.Verbose:
		level = slog.LevelDebug
	case cfg.Quiet:
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	out := &lineWriter{w: stdout}

	now := time.Now()
	place, err := resolveWhere(cfg.Where, now)
	if err != nil {
		fmt.Fprintf(stderr, "lightsim: %v\n", err)
		return exitUsage
	}
	spec := fleetSpec{
		Devices: cfg.Devices, Pattern: cfg.Pattern, First: cfg.First, Place: place,
		SpreadKm: cfg.SpreadKm, LuxShare: cfg.LuxShare, TSFormat: cfg.TSFormat,
		Faults: cfg.Faults, Cycle: cfg.FaultCycle, Dimming: cfg.Dimming, Seed: cfg.Seed, Start: now,
	}
	if cfg.Registry != "" {
		rows, skipped, err := loadRegistry(cfg.Registry)
		for _, s := range skipped {
			log.Warn("registry row skipped", "file", cfg.Registry, "row", s)
		}
		if err != nil {
			fmt.Fprintf(stderr, "lightsim: %s: %v\n", cfg.Registry, err)
			return exitUsage
		}
		spec.Registry = rows
	}
	fleet, err := buildFleet(spec)
	if err != nil {
		fmt.Fprintf(stderr, "lightsim: %v\n", err)
		return exitUsage
	}
	if cfg.WriteRegistry != "" {
		if err := writeRegistryFile(cfg.WriteRegistry, fleet); err != nil {
			fmt.Fprintf(stderr, "lightsim: %v\n", err)
			return exitFailure
		}
		if !cfg.Quiet || cfg.WriteOnly {
			out.printf("lightsim: wrote registry file=%s devices=%d where=%q", cfg.WriteRegistry, len(fleet.Devices), place.Label())
		}
		if cfg.WriteOnly {
			return exitOK
		}
	}
	password, err := cfg.password()
	if err != nil {
		fmt.Fprintf(stderr, "lightsim: %v\n", err)
		return exitUsage
	}
	clientID := cfg.ClientID
	if clientID == "" {
		host, _ := os.Hostname()
		clientID = fmt.Sprintf("lightsim-%s-%d", host, os.Getpid())
	}

	pub := newPublisher(publisherConfig{
		Broker: cfg.Broker, ClientID: clientID, Username: cfg.Username, Password: password,
		QoS: byte(cfg.QoS), Inflight: cfg.Inflight, ConnectTimeout: cfg.ConnectTimeout, Coalesce: cfg.Coalesce, Logger: log,
	})
	if err := pub.connect(ctx); err != nil {
		fmt.Fprintf(stderr, "lightsim: %v\n", err)
		return exitFailure
	}

	mode := "fleet"
	if cfg.Load {
		mode = "load"
	}
	if !cfg.Quiet {
		sun := sunAt(now, place)
		out.printf("lightsim: start mode=%s devices=%d where=%q sun=%.1f light=%s interval=%s faulty=%d faults=%q broker=%s prefix=%s qos=%d seed=%d",
			mode, len(fleet.Devices), place.Label(), sun, dayPhase(sun), cfg.Interval, fleet.FaultyDevices(),
			faultSummary(fleet), redactURL(cfg.Broker), cfg.Prefix, cfg.QoS, cfg.Seed)
	}

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	began := time.Now()
	var handed int64
	if cfg.Load {
		lr := &loadRun{fleet: fleet, pub: pub, prefix: cfg.Prefix, rate: cfg.Rate, count: cfg.Count, now: time.Now}
		handed = lr.run(runCtx)
	} else {
		fr := &fleetRun{fleet: fleet, pub: pub, out: out, prefix: cfg.Prefix, interval: cfg.Interval,
			report: cfg.Report, status: cfg.Status, offline: cfg.StatusOffline, logFaults: cfg.LogFaults,
			quiet: cfg.Quiet, now: time.Now}
		fr.run(runCtx)
	}
	pub.close(cfg.Drain)
	elapsed := time.Since(began)

	published := pub.ok(classTelemetry) + pub.ok(classGarbage)
	failed := pub.failed(classTelemetry) + pub.failed(classGarbage)
	if !cfg.Load && !cfg.Quiet {
		printReport(out, pub, fleet, elapsed, fleet.ActiveFaults(time.Now()))
	}
	out.printf("lightsim: published=%d failed=%d elapsed=%.3f rate=%.1f msgs/s",
		published, failed, elapsed.Seconds(), float64(published)/max(elapsed.Seconds(), 1e-9))
	if cfg.Load && (failed > 0 || (cfg.Count > 0 && published < cfg.Count)) {
		log.Warn("load incomplete", "asked", cfg.Count, "handed", handed, "published", published, "failed", failed)
		return exitFailure
	}
	return exitOK
}

// redactURL hides a password given in the broker URL, for lines and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable broker URL)"
	}
	return u.Redacted()
}

// faultSummary is "dark=3 swell=1": how many devices got each fault.
func faultSummary(f *Fleet) string {
	n := map[string]int{}
	for _, d := range f.Devices {
		for _, df := range d.Faults {
			n[df.Fault.String()]++
		}
	}
	parts := make([]string, 0, len(n))
	for k, v := range n {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// pahoLogger sends paho's log lines to slog.
type pahoLogger struct {
	log   *slog.Logger
	level slog.Level
}

// pahoMuted silences paho's logs once lightsim disconnects on purpose:
// paho then reports the broker closing the socket after DISCONNECT as
// errors ("error triggered EOF"), which would end every clean run with two
// alarming lines. It is process-wide because paho's loggers are.
var pahoMuted atomic.Bool

func (l pahoLogger) Println(v ...any) {
	if !pahoMuted.Load() {
		l.log.Log(context.Background(), l.level, strings.TrimSpace(fmt.Sprintln(v...)))
	}
}

func (l pahoLogger) Printf(format string, v ...any) {
	if !pahoMuted.Load() {
		l.log.Log(context.Background(), l.level, fmt.Sprintf(format, v...))
	}
}
