package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// config is the parsed command line.
type config struct {
	Broker       string
	Prefix       string
	ClientID     string
	Username     string
	Password     string
	PasswordFile string

	Devices       int
	Pattern       string
	First         int
	Registry      string
	WriteRegistry string
	WriteOnly     bool
	Where         string
	SpreadKm      float64
	LuxShare      float64
	TSFormat      string
	Dimming       bool

	Interval      time.Duration
	Faults        faultFlags
	FaultCycle    time.Duration
	LogFaults     bool
	Status        bool
	StatusOffline bool

	Load     bool
	Rate     float64
	Count    int64
	QoS      int
	Inflight int
	Coalesce bool

	Duration       time.Duration
	Report         time.Duration
	Drain          time.Duration
	ConnectTimeout time.Duration
	Seed           uint64
	Quiet          bool
	Verbose        bool

	statusSet bool // --status given explicitly
}

const usageHead = `lightsim: a fleet of streetlight controllers publishing to an MQTT broker.

Usage:
  lightsim [flags]                       fleet mode: each device reports every --interval
  lightsim --load [--rate R] [--count C]  load mode: valid telemetry as fast as asked

Every device publishes telemetry JSON (CONTRACT §3) at QoS --qos on
{prefix}/{nameplate}/telemetry and, with --status, "online" (retained) on
{prefix}/{nameplate}/status, all through one MQTT connection. Values follow
the sun at each device's position (agent.SunElevation, as the agent sees
it): the photocell lights the lamp when the sun is below -3 degrees; with
--dimming the lamp runs at 50 % from local solar midnight until sunrise.

Fault kinds for --fault KIND=SHARE|LIST (repeatable):
  dark          lamp dark when it should be lit (half the devices: lamp_on false;
                the other half: relay on, lamp dead, ~0.3 W)
  dayburn       lamp lit by day
  swell, sag    supply voltage +20 % / -20 %
  lowpf         power factor 0.6 while lit
  overpower     power 1.5 x nominal while lit
  cycling       lamp_on toggles on every report (use a short --interval)
  silence       stops publishing; with --status-offline publishes "offline"
                (retained) on its status topic, and "online" when it resumes
  alarm:NAME    reports NAME in "alarms"
  garbage       publishes invalid messages instead of telemetry, rotating through:
                truncated JSON, wrong types, a JSON array, NaN/Infinity literals,
                1e999, a 32 KiB payload, a nameplate with a space, a 65-char nameplate
SHARE is a fraction with a point (0.1, 1.0), a percentage (10%) or a count (5);
anything else is a comma-separated list of nameplates. Devices are picked
deterministically from --seed.

Output (stdout; scripts parse these lines, one per line):
  lightsim: start mode=fleet|load devices=N where="PLACE (LAT,LON)" sun=DEG light=night|day|twilight faulty=K ...
  fault NAMEPLATE KIND on|off TIME        (--log-faults) printed just before the first message that
                                         shows the change; TIME is that message's time, RFC 3339 UTC
                                         with milliseconds (2026-12-04T21:10:00.250Z). KIND as in --fault.
                                         At start every fault showing gets an "on" line.
  lightsim: report elapsed=D published=N garbage=G status=S failed=F pending=P faults_active=A
                                         fleet mode, every --report and once at the end
  lightsim: published=N failed=F elapsed=S rate=R msgs/s
                                         at the end, both modes. published/failed count the
                                         telemetry-topic messages acknowledged by the broker (QoS 1, 2)
                                         or written (QoS 0) / given up on, garbage included (garbage=G
                                         of them), status messages not (status=S); elapsed is seconds
                                         from the connection to the last acknowledgement.
  lightsim: wrote registry file=PATH devices=N where="PLACE (LAT,LON)"   (--write-registry)
Logs (connection events, errors) go to stderr.
Exit status: 0 done; 1 the broker could not be reached, or (load mode) a message failed;
2 bad usage.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("lightsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Broker, "broker", "tcp://127.0.0.1:1883", "broker `URL` (tcp://, ssl://, ws://, wss://)")
	fs.StringVar(&c.Prefix, "prefix", "streetlights", "topic `prefix` (EDGE_MQTT_TOPIC_PREFIX)")
	fs.StringVar(&c.ClientID, "client-id", "", "MQTT client `id` (default lightsim-<host>-<pid>)")
	fs.StringVar(&c.Username, "username", "", "MQTT user `name`")
	fs.StringVar(&c.Password, "password", "", "MQTT `password` (visible in ps: prefer --password-file)")
	fs.StringVar(&c.PasswordFile, "password-file", "", "read the MQTT password from `file` (trailing newline dropped)")

	fs.IntVar(&c.Devices, "devices", 10, "number of devices, named by --pattern")
	fs.StringVar(&c.Pattern, "pattern", "IP%05d", "nameplate `pattern`, a Go format with one integer verb")
	fs.IntVar(&c.First, "first", 1, "`number` of the first device in --pattern")
	fs.StringVar(&c.Registry, "registry", "", "take the fleet from a CONTRACT §5 registry CSV `file`: its nameplates, positions, nominal powers (overrides --devices)")
	fs.StringVar(&c.WriteRegistry, "write-registry", "", "write the fleet as a registry CSV `file` (invented addresses) for EDGE_DEVICES_FILE")
	fs.BoolVar(&c.WriteOnly, "write-only", false, "with --write-registry: write the file and exit without connecting")
	fs.StringVar(&c.Where, "where", "uberaba", "where the fleet stands: night|day (a real city where the sun is now below -12 / above +20 degrees), a city of the built-in table, or `LAT,LON`; registry positions win")
	fs.Float64Var(&c.SpreadKm, "spread", 3, "devices are spread within this `radius` in km of --where")
	fs.Float64Var(&c.LuxShare, "lux-share", 0.3, "`fraction` of devices with a light sensor (they report lux)")
	fs.StringVar(&c.TSFormat, "ts-format", "rfc3339", "ts field: rfc3339|unix|unixms|none, or mix (each device one of them)")
	fs.BoolVar(&c.Dimming, "dimming", true, "dim to 50% from local solar midnight until sunrise")

	fs.DurationVar(&c.Interval, "interval", time.Minute, "fleet mode: each device reports once per `interval`, devices spread evenly over it")
	fs.Var(&c.Faults, "fault", "inject a fault: `KIND=SHARE|LIST` (repeatable; kinds above)")
	fs.DurationVar(&c.FaultCycle, "fault-cycle", 0, "faulty devices alternate faulty/healthy every `duration`, each with its own phase (0: always faulty)")
	fs.BoolVar(&c.LogFaults, "log-faults", false, "print a 'fault' line to stdout for each fault that starts or stops showing")
	fs.BoolVar(&c.Status, "status", true, "publish \"online\" (retained) on each device's status topic at start (with --load the default is false)")
	fs.BoolVar(&c.StatusOffline, "status-offline", false, "silence devices publish \"offline\" (retained) when they go quiet")

	fs.BoolVar(&c.Load, "load", false, "load mode: valid telemetry round-robin over the fleet, as fast as --rate")
	fs.Float64Var(&c.Rate, "rate", 0, "load mode: `msgs/s` (0: as fast as possible)")
	fs.Int64Var(&c.Count, "count", 0, "load mode: stop after this many `messages` (0: until --duration or a signal)")
	fs.IntVar(&c.QoS, "qos", 1, "MQTT QoS of telemetry: 0, 1 or 2")
	fs.IntVar(&c.Inflight, "inflight", 1000, "publishes awaiting the broker's acknowledgement at once (the window, 1-60000)")

	fs.BoolVar(&c.Coalesce, "coalesce", true, "tcp:// and mqtt:// brokers: batch many packets per socket write and read (false: one write per message, as paho does)")

	fs.DurationVar(&c.Duration, "duration", 0, "stop after this `duration` (0: until SIGINT/SIGTERM or --count)")
	fs.DurationVar(&c.Report, "report", 30*time.Second, "fleet mode: print a report line every `interval` (0: never)")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "at the end, wait up to this `duration` for unacknowledged messages")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 30*time.Second, "give up when the broker is not reachable within this `duration` at start")
	fs.Uint64Var(&c.Seed, "seed", 1, "random `seed`: same seed, same fleet, same faulty devices, same values")
	fs.BoolVar(&c.Quiet, "quiet", false, "no start and report lines, and only warnings on stderr (fault lines and the summary stay)")
	fs.BoolVar(&c.Verbose, "verbose", false, "debug logs on stderr")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "status" {
			c.statusSet = true
		}
	})
	if c.Load && !c.statusSet {
		c.Status = false
	}
	return c, c.validate()
}

// brokerSchemes are the URL schemes paho dials.
var brokerSchemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

// ErrUsage is wrapped by flag validation errors (exit status 2).
var ErrUsage = errors.New("usage")

func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u, err := url.Parse(c.Broker); err != nil || u.Host == "" || !slices.Contains(brokerSchemes, u.Scheme) {
		bad("--broker %q: want SCHEME://HOST:PORT with SCHEME one of %s", redactURL(c.Broker), strings.Join(brokerSchemes, ", "))
	}
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, "+#") {
		bad("--prefix %q: must be non-empty, without + or #", c.Prefix)
	}
	if c.Registry == "" {
		if c.Devices < 1 {
			bad("--devices %d: want at least 1", c.Devices)
		}
		if strings.Count(c.Pattern, "%")-2*strings.Count(c.Pattern, "%%") != 1 {
			bad("--pattern %q: want exactly one integer verb such as %%05d", c.Pattern)
		}
	}
	if c.WriteOnly && c.WriteRegistry == "" {
		bad("--write-only needs --write-registry")
	}
	if c.SpreadKm < 0 || c.SpreadKm > 500 {
		bad("--spread %g: want 0-500 km", c.SpreadKm)
	}
	if !(c.LuxShare >= 0 && c.LuxShare <= 1) {
		bad("--lux-share %g: want 0-1", c.LuxShare)
	}
	if _, _, err := parseTSFormat(c.TSFormat); err != nil {
		bad("%v", err)
	}
	if !c.Load && c.Interval <= 0 {
		bad("--interval must be positive")
	}
	if c.FaultCycle < 0 {
		bad("--fault-cycle must not be negative")
	}
	if c.Rate < 0 {
		bad("--rate must not be negative")
	}
	if c.Count < 0 {
		bad("--count must not be negative")
	}
	if (c.Rate > 0 || c.Count > 0) && !c.Load {
		bad("--rate and --count are for --load")
	}
	if c.Load {
		for _, f := range c.Faults {
			if k := f.Fault.Kind; k == kindSilence || k == kindGarbage {
				bad("--fault %s: the load mode publishes valid telemetry only (use the fleet mode)", f.raw)
			}
		}
		if c.FaultCycle > 0 {
			bad("--fault-cycle is for the fleet mode")
		}
	}
	if c.QoS < 0 || c.QoS > 2 {
		bad("--qos %d: want 0, 1 or 2", c.QoS)
	}
	if c.Inflight < 1 || c.Inflight > 60000 {
		// paho has 65535 message ids for the messages in flight.
		bad("--inflight %d: want 1-60000", c.Inflight)
	}
	if c.Duration < 0 || c.Report < 0 || c.Drain < 0 || c.ConnectTimeout <= 0 {
		bad("--duration, --report and --drain must not be negative, --connect-timeout must be positive")
	}
	if c.Password != "" && c.PasswordFile != "" {
		bad("--password and --password-file both given")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrUsage, errors.Join(errs...))
	}
	return nil
}

// password returns the password, read from --password-file if given.
func (c *config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
