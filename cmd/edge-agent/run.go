package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/m2m"
	"github.com/edge-agent/edge-agent/mqtt"
	"github.com/edge-agent/edge-agent/store"
)

// The concrete parts satisfy the agent's ports.
var (
	_ agent.TicketStore    = (*store.Store)(nil)
	_ agent.AttributeStore = (*store.Store)(nil)
	_ agent.TicketAPI      = (*m2m.Client)(nil)
	_ agent.AttributeAPI   = (*m2m.Client)(nil)
	_ mqtt.Handler         = (*agent.Pipeline)(nil)
)

// storeFileName is the bbolt file in EDGE_DATA_DIR.
const storeFileName = "edge-agent.db"

// shutdownLimit is how long a clean stop may take (CONTRACT: within 10 s;
// systemd's TimeoutStopSec is longer, as a backstop).
const shutdownLimit = 9 * time.Second

// agentDaemon is the running agent: every part, wired. Its fields are what the
// status adapter reads.
type agentDaemon struct {
	cfg     *Config
	log     *slog.Logger
	started time.Time

	store    *store.Store
	client   *m2m.Client
	detector *agent.Detector
	syncer   *agent.Syncer
	pipeline *agent.Pipeline
	sub      *mqtt.Subscriber
	metrics  *daemonMetrics
	status   *statusSource

	// registryErrors are the bad rows of the last registry load, for the
	// status page.
	registryErrors []agent.RowError
}

// cmdRun runs the daemon until SIGTERM/SIGINT. A second signal forces the
// exit; the store is crash-safe, so that loses nothing durable.
func cmdRun(args, env []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "edge-agent run: takes no arguments (configuration comes from EDGE_* variables; see edge-agent config)\n")
		return 2
	}
	cfg, warnings, err := loadConfig(env)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitCodeFor(err)
	}
	log := newLogger(cfg, stderr)
	for _, w := range warnings {
		log.Warn("configuration: " + w)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	d, err := startDaemon(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()

	stopping := false
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("stopped on error", "err", err)
				return 1
			}
			log.Info("stopped")
			return 0
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				d.reloadRegistry()
			case !stopping:
				stopping = true
				log.Info("stopping", "signal", sig.String())
				notifyStopping()
				stop()
				time.AfterFunc(shutdownLimit, func() {
					log.Error("clean stop took too long; exiting (the store is crash-safe)")
					os.Exit(1)
				})
			default:
				log.Warn("second signal: exiting now (the store is crash-safe)")
				return 1
			}
		}
	}
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("gateway", cfg.GatewayID)
}

// startDaemon opens the store and builds every part. READY is signalled
// once the store is open: neither the broker nor the cloud is awaited,
// because edge links drop and the agent's job is to work without them.
func startDaemon(ctx context.Context, cfg *Config, log *slog.Logger) (*agentDaemon, error) {
	d := &agentDaemon{cfg: cfg, log: log, started: time.Now()}
	log.Info("starting", "version", version, "commit", commit, "built", buildDateOrUnknown(), "data_dir", cfg.DataDir)

	reg, rowErrs, err := loadRegistry(cfg, log)
	if err != nil {
		return nil, err
	}
	d.registryErrors = rowErrs
	d.metrics = newDaemonMetrics()

	var rootCAs *x509.CertPool
	if cfg.M2MCAFile != "" {
		pool, err := m2m.LoadCAFile(cfg.M2MCAFile)
		if err != nil {
			return nil, fmt.Errorf("EDGE_M2M_CA_FILE: %w", err)
		}
		rootCAs = pool
	}
	headers := make([]m2m.Header, 0, len(cfg.M2MHeaders))
	for _, h := range cfg.M2MHeaders {
		headers = append(headers, m2m.Header{Name: h.Name, Value: h.Value.Reveal()})
	}
	d.client, err = m2m.New(m2m.Config{
		BaseURL: cfg.M2MBaseURL, InstanceID: cfg.M2MInstanceID,
		Token: cfg.M2MToken.Reveal(), APIKey: cfg.M2MAPIKey.Reveal(), APIKeyHeader: cfg.M2MAPIKeyHeader,
		Headers: headers, RootCAs: rootCAs, Timeout: cfg.M2MTimeout,
		Concurrency: cfg.M2MConcurrency, Rate: cfg.M2MRate,
		TicketsPath: cfg.M2MTicketsPath, DevicesPath: cfg.M2MDevicesPath, DevicePath: cfg.M2MDevicePath,
		AttributesMethod: cfg.M2MAttributesMethod, Origin: cfg.TicketOrigin,
		Logger: log.With("part", "m2m"), Observe: d.metrics.observeAPI,
	})
	if err != nil {
		return nil, fmt.Errorf("m2m client: %w", err)
	}

	defaults := m2m.TicketDefaults{
		Origin: cfg.TicketOrigin, OriginTypeID: cfg.TicketOriginTypeID, ServiceCode: cfg.TicketServiceCode,
		WorksiteID: cfg.TicketWorksiteID, Reporter: cfg.TicketReporter,
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("EDGE_DATA_DIR: %w", err)
	}
	d.store, err = store.Open(store.Options{
		Path:         filepath.Join(cfg.DataDir, storeFileName),
		ProtocolBase: cfg.ProtocolBase,
		MaxBytes:     int64(cfg.StoreMaxBytes()),
		Retention:    cfg.TicketRetention,
		EncodeCreate: func(t *agent.Ticket) ([]byte, error) { return m2m.EncodeCreate(t, defaults) },
		Logger:       log.With("part", "store"),
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	notifyReady(log)

	d.detector = agent.NewDetector(agent.DetectorConfig{
		ConfirmCount: cfg.ConfirmCount, NominalVoltage: cfg.NominalVoltage, VoltageTolerance: cfg.VoltageTolerance,
		LampMinPower: cfg.LampMinPower, MinPowerFactor: cfg.MinPowerFactor,
		CyclingSwitches: cfg.CyclingSwitches, CyclingWindow: cfg.CyclingWindow, DayLux: cfg.DayLux,
		CommLossAfter: cfg.CommLossAfter, ReportInterval: cfg.ReportInterval,
		Latitude: cfg.Latitude, Longitude: cfg.Longitude, HasPosition: cfg.HasPosition,
		BuildTime: parseBuildDate(buildDate), RequireClockSync: cfg.RequireClockSync, ClockSynced: clockSynced,
	}, reg, d.started)
	for _, w := range (agent.DetectorConfig{ConfirmCount: cfg.ConfirmCount, CommLossAfter: cfg.CommLossAfter,
		ReportInterval: cfg.ReportInterval, CyclingSwitches: cfg.CyclingSwitches, CyclingWindow: cfg.CyclingWindow,
		NominalVoltage: cfg.NominalVoltage}).Warnings() {
		log.Warn("configuration: " + w)
	}
	open, err := d.store.OpenFaults()
	if err != nil {
		d.store.Close()
		return nil, fmt.Errorf("read open tickets: %w", err)
	}
	d.detector.Restore(open)

	backoff := m2m.Backoff{Min: cfg.M2MRetryMin, Max: cfg.M2MRetryMax}
	d.syncer = agent.NewSyncer(agent.SyncerConfig{
		Concurrency: cfg.M2MConcurrency,
		Backoff:     func(attempt int) time.Duration { return backoff.Delay(attempt, rand.Float64) },
		Logger:      log.With("part", "sync"),
	}, d.store, d.client)
	d.pipeline = agent.NewPipeline(agent.PipelineConfig{
		GatewayID:          cfg.GatewayID,
		CancelOnClear:      cfg.CancelOnClear,
		DefaultSite:        agent.Site{State: cfg.TicketState, Municipality: cfg.TicketMunicipality},
		SweepInterval:      sweepInterval(cfg.CommLossAfter),
		AttributesInterval: cfg.AttributesInterval,
		OnEvent:            d.metrics.observeEvent,
		Logger:             log.With("part", "pipeline"),
	}, d.detector, d.store, d.store, d.client, d.syncer)
	d.sub, err = mqtt.New(mqtt.Config{
		Broker: cfg.MQTTBrokerURL(), ClientID: cfg.MQTTClientID,
		Username: cfg.MQTTUsername, Password: cfg.MQTTPassword.Reveal(),
		CAFile: cfg.MQTTCAFile, CertFile: cfg.MQTTCertFile, KeyFile: cfg.MQTTKeyFile,
		TopicPrefix: cfg.MQTTTopicPrefix, MaxPayload: cfg.MQTTMaxPayload, GatewayID: cfg.GatewayID,
		Logger: log.With("part", "mqtt"),
	}, d.pipeline)
	if err != nil {
		d.store.Close()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	counts, _ := d.store.Counts()
	log.Info("ready", "open_faults", len(open), "pending", counts[agent.StatePending],
		"cancel_pending", counts[agent.StateCancelPending], "failed", counts[agent.StateFailed],
		"devices_in_registry", registryLen(reg))
	return d, nil
}

// run runs every loop until ctx ends, then stops them in order: intake
// first (the broker keeps what is not acknowledged), then the syncer (its
// requests in flight get a grace period), then the store is closed.
func (d *agentDaemon) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	// Intake and the loops that feed on it.
	g.Go(func() error { return d.sub.Run(gctx) })
	g.Go(func() error { return d.pipeline.RunSweeper(gctx) })
	g.Go(func() error { return d.pipeline.RunAttributes(gctx) })
	g.Go(func() error { return d.syncer.Run(gctx) })
	g.Go(func() error { d.maintain(gctx); return nil })
	g.Go(func() error { runWatchdog(gctx, d.log, d.progressing); return nil })
	if err := d.startStatus(gctx, g); err != nil {
		d.store.Close()
		return err
	}
	err := g.Wait()
	if cerr := d.store.Close(); cerr != nil {
		d.log.Error("closing the store", "err", cerr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// maintain prunes finished tickets past their retention, at start and
// hourly.
func (d *agentDaemon) maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := d.store.Prune(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("pruning finished tickets failed", "err", err)
		} else if n > 0 {
			d.log.Info("pruned finished tickets past retention", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// progressing reports whether the main loops are turning, for the systemd
// watchdog: the syncer turns at least every few seconds, the sweeper every
// sweep interval.
func (d *agentDaemon) progressing() bool {
	now := time.Now()
	sweep, _ := d.pipeline.Beats()
	limit := 2*sweepInterval(d.cfg.CommLossAfter) + 30*time.Second
	return now.Sub(d.syncer.Beat()) < time.Minute && now.Sub(sweep) < limit
}

// reloadRegistry reads EDGE_DEVICES_FILE again (SIGHUP), keeping every
// device's state; a file that cannot be read keeps the old registry.
func (d *agentDaemon) reloadRegistry() {
	if d.cfg.DevicesFile == "" {
		d.log.Info("SIGHUP: no EDGE_DEVICES_FILE to reload")
		return
	}
	reg, rowErrs, err := loadRegistry(d.cfg, d.log)
	if err != nil {
		d.log.Error("SIGHUP: registry reload failed; keeping the previous one", "err", err)
		return
	}
	d.detector.SetRegistry(reg)
	if d.status != nil {
		d.status.SetRegistry(d.cfg.DevicesFile, rowErrs)
	}
	d.log.Info("SIGHUP: registry reloaded", "devices", registryLen(reg))
}

// loadRegistry reads EDGE_DEVICES_FILE (none: no registry), logging its bad
// rows, which it also returns for the status page.
func loadRegistry(cfg *Config, log *slog.Logger) (*agent.Registry, []agent.RowError, error) {
	if cfg.DevicesFile == "" {
		return nil, nil, nil
	}
	reg, rowErrs, err := agent.LoadRegistry(cfg.DevicesFile)
	if err != nil {
		return nil, nil, fmt.Errorf("EDGE_DEVICES_FILE: %w", err)
	}
	for i, re := range rowErrs {
		if i == 50 {
			log.Warn("device registry: more bad rows not shown", "bad_rows", len(rowErrs))
			break
		}
		log.Warn("device registry: "+re.Error(), "file", cfg.DevicesFile)
	}
	return reg, rowErrs, nil
}

func registryLen(r *agent.Registry) int {
	if r == nil {
		return 0
	}
	return r.Len()
}

// sweepInterval looks for silent devices often enough that a silence is
// noticed within a tenth of EDGE_COMM_LOSS_AFTER, but not more than every
// second nor less than every 30 s.
func sweepInterval(commLoss time.Duration) time.Duration {
	return max(time.Second, min(commLoss/10, 30*time.Second))
}

// parseBuildDate reads the stamped build date; unknown (a dev build) gives
// the zero time, which trusts any clock.
func parseBuildDate(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// clockSynced asks the kernel whether NTP has synchronised the clock
// (adjtimex: TIME_ERROR means not synchronised).
func clockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	return err == nil && state != unix.TIME_ERROR
}
