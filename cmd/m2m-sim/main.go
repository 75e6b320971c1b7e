package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/m2m/m2mtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const endpoints = `
API (paths configurable; {idInstance} must be the --instance value):
  POST   /vendors/m2m/clients/{idInstance}/tickets        create a ticket: 201, 409 (protocol exists),
                                                          422 (a documented field missing or of the wrong type), 400
  DELETE /vendors/m2m/clients/{idInstance}/tickets        cancel {cod_external_ticket_origin, id_external_protocol,
                                                          justification}: 200, 404 (unknown or already cancelled)
  PATCH  /vendors/m2m/clients/{idInstance}/devices        attributes of many devices: {"devices":[{nameplate_num, attributes}]}
  PATCH  /vendors/m2m/clients/{idInstance}/devices/{nameplate_num}   attributes of one device: {"attributes":{...}}
  With --token / --api-key / --require-header set: 401 when missing, 403 when wrong.

Control (no auth, no faults):
  GET        /_sim/record   everything received: counts, tickets, devices, the last --keep-requests requests
  GET        /_sim/faults   the injected faults
  PUT|PATCH  /_sim/faults   replace | merge faults, e.g. {"down":true,"retry_after":"30","latency":"200ms",
                            "error_rate":0.1,"error_status":503,"throttle_rate":0,"lose_answers":0.05,"slow_body":"50ms","jitter":"0s"}
  POST       /_sim/reset    forget tickets, devices, counts and requests (faults stay)
`

// headerFlags collects repeated --require-header name:value flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return fmt.Sprint(map[string]string(h)) }
func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New("want name:value")
	}
	h[strings.TrimSpace(name)] = strings.TrimSpace(value)
	return nil
}

// run is the whole program; it returns the exit code: 0 after a clean
// stop, 1 when it cannot serve, 2 for bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("m2m-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts     m2mtest.Options
		faults   m2mtest.Faults
		required = headerFlags{}
		seed     uint64
	)
	addr := fs.String("addr", "127.0.0.1:0", "listen address; port 0 picks a free one")
	addrFile := fs.String("addr-file", "", "write the base URL (http://host:port) to this file once listening, for scripts")
	public := fs.Bool("public", false, "allow a non-loopback --addr (the simulator has no real security)")
	logLevel := fs.String("log-level", "info", "debug logs every request; info, warn, error")
	fs.StringVar(&opts.InstanceID, "instance", m2mtest.DefaultInstanceID, "the idInstance served; others get 404")
	fs.StringVar(&opts.Token, "token", "", "require Authorization: Bearer `TOKEN`")
	fs.StringVar(&opts.APIKey, "api-key", "", "require this API `KEY` in --api-key-header")
	fs.StringVar(&opts.APIKeyHeader, "api-key-header", m2mtest.DefaultAPIKeyHeader, "header of the API key")
	fs.Var(required, "require-header", "require a header, `name:value` (repeatable)")
	fs.StringVar(&opts.TicketsPath, "tickets-path", m2mtest.DefaultTicketsPath, "create (POST) and cancel (DELETE) path")
	fs.StringVar(&opts.DevicesPath, "devices-path", m2mtest.DefaultDevicesPath, "many-devices attributes path")
	fs.StringVar(&opts.DevicePath, "device-path", m2mtest.DefaultDevicePath, "one-device attributes path")
	fs.StringVar(&opts.AttributesMethod, "attributes-method", m2mtest.DefaultAttributesMethod, "method of the attribute calls")
	fs.BoolVar(&opts.ManyUnsupported, "many-unsupported", false, "answer 405 to the many-devices call (exercises the client's fallback)")
	fs.BoolVar(&opts.NumericDates, "numeric-dates", false, "data_recebido of a create as epoch milliseconds instead of a string")
	fs.IntVar(&opts.KeepRequests, "keep-requests", 1000, "recent requests kept in the record (bodies up to 4 KiB)")
	fs.IntVar(&opts.KeepBodies, "keep-bodies", 10000, "recent tickets whose create body is kept")
	fs.Uint64Var(&seed, "seed", 1, "seed of the fault draws: same seed, same requests, same answers")
	fs.BoolVar(&faults.Down, "down", false, "answer 503 to every API call")
	fs.Float64Var(&faults.ErrorRate, "error-rate", 0, "share (0..1) of calls answered --error-status")
	fs.IntVar(&faults.ErrorStatus, "error-status", 500, "status of the injected errors (500..599)")
	fs.Float64Var(&faults.ThrottleRate, "throttle-rate", 0, "share (0..1) of calls answered 429")
	fs.DurationVar(&faults.Latency, "latency", 0, "delay before every answer")
	fs.DurationVar(&faults.Jitter, "jitter", 0, "extra random delay, uniform in [0, jitter)")
	fs.StringVar(&faults.RetryAfter, "retry-after", "", "Retry-After sent with 503 and 429: seconds or an HTTP-date")
	fs.Float64Var(&faults.LoseAnswers, "lose-answers", 0, "share (0..1) of calls that take effect but whose answer is lost (connection closed)")
	fs.DurationVar(&faults.SlowBody, "slow-body", 0, "pause before each 16-byte piece of every answer body")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: m2m-sim [flags]\n\nA faithful simulator of the M2M ticket and device API, for tests and the demo.\n"+
			"Prints \"m2m-sim listening on URL\" first; stops cleanly on SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), endpoints)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "m2m-sim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "m2m-sim: --log-level: %v\n", err)
		return 2
	}
	if err := faults.Validate(); err != nil {
		fmt.Fprintf(stderr, "m2m-sim: %v\n", err)
		return 2
	}
	if err := checkLoopback(*addr, *public); err != nil {
		fmt.Fprintf(stderr, "m2m-sim: --addr: %v\n", err)
		return 2
	}
	for _, p := range []string{opts.TicketsPath, opts.DevicesPath, opts.DevicePath} {
		if !strings.HasPrefix(p, "/") {
			fmt.Fprintf(stderr, "m2m-sim: path %q must start with /\n", p)
			return 2
		}
	}
	if len(required) > 0 {
		opts.RequireHeaders = required
	}
	opts.Faults, opts.Seed = faults, seed
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts.Logger = log

	sim := m2mtest.New(opts)
	url, err := sim.Start(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "m2m-sim: %v\n", err)
		return 1
	}
	defer sim.Close()
	fmt.Fprintf(stdout, "m2m-sim listening on %s\n", url)
	if *addrFile != "" {
		if err := writeFileAtomic(*addrFile, url+"\n"); err != nil {
			fmt.Fprintf(stderr, "m2m-sim: --addr-file: %v\n", err)
			return 1
		}
	}
	log.Info("m2m-sim ready", "instance", opts.InstanceID, "auth", opts.Token != "" || opts.APIKey != "" || len(required) > 0,
		"faults", faults)
	<-ctx.Done()
	log.Info("m2m-sim stopping")
	start := time.Now()
	sim.Close()
	log.Info("m2m-sim stopped", "took", time.Since(start).Round(time.Millisecond))
	return 0
}

// checkLoopback refuses to listen beyond loopback unless asked to.
func checkLoopback(addr string, public bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if public {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address (use --public to allow it)", addr)
}

// writeFileAtomic writes a file that a script polling for it never sees
// half-written.
func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".m2m-sim-addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
