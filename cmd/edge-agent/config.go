package main

// Configuration: every EDGE_* variable of CONTRACT §2, read from an
// environment given as a slice (os.Environ() in main, a literal in tests),
// checked as a whole so that an operator sees every problem at once.
//
// Config is a valid envconfig specification (empty prefix, the full name in
// each tag, so no unprefixed fallback such as a stray DATA_DIR can be read),
// and a test proves envconfig.Process fills it exactly as loadConfig does.
// loadConfig does not call envconfig.Process itself because Process reads
// only the process environment; loadConfig must read the slice it is given
// (no global state, tests in parallel). Beyond envconfig it reads secrets
// from *_FILE variables and systemd credentials, derives the defaults that
// come from the environment, and validates.

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Config is the agent's whole configuration. Tags: envconfig (the variable),
// default (used when the variable is unset), required, cred (the systemd
// credential name of a secret, which also enables its *_FILE variant),
// group (starts a group in `edge-agent config`).
type Config struct {
	GatewayID     string `envconfig:"EDGE_GATEWAY_ID" group:"General"`
	DataDir       string `envconfig:"EDGE_DATA_DIR"`
	ControlSocket string `envconfig:"EDGE_CONTROL_SOCKET"`
	HTTPAddr      string `envconfig:"EDGE_HTTP_ADDR" default:"127.0.0.1:8080"`
	HTTPToken     Secret `envconfig:"EDGE_HTTP_TOKEN" cred:"http-token"`
	LogLevel      string `envconfig:"EDGE_LOG_LEVEL" default:"info"`
	LogFormat     string `envconfig:"EDGE_LOG_FORMAT" default:"text"`

	MQTTBroker      string `envconfig:"EDGE_MQTT_BROKER" default:"tcp://127.0.0.1:1883" group:"MQTT"`
	MQTTClientID    string `envconfig:"EDGE_MQTT_CLIENT_ID"`
	MQTTUsername    string `envconfig:"EDGE_MQTT_USERNAME"`
	MQTTPassword    Secret `envconfig:"EDGE_MQTT_PASSWORD" cred:"mqtt-password"`
	MQTTCAFile      string `envconfig:"EDGE_MQTT_CA_FILE"`
	MQTTCertFile    string `envconfig:"EDGE_MQTT_CERT_FILE"`
	MQTTKeyFile     string `envconfig:"EDGE_MQTT_KEY_FILE"`
	MQTTTopicPrefix string `envconfig:"EDGE_MQTT_TOPIC_PREFIX" default:"streetlights"`
	MQTTMaxPayload  int    `envconfig:"EDGE_MQTT_MAX_PAYLOAD" default:"16384"`

	M2MBaseURL          string        `envconfig:"EDGE_M2M_BASE_URL" required:"true" group:"M2M API"`
	M2MInstanceID       string        `envconfig:"EDGE_M2M_INSTANCE_ID" required:"true"`
	M2MToken            Secret        `envconfig:"EDGE_M2M_TOKEN" cred:"m2m-token"`
	M2MAPIKey           Secret        `envconfig:"EDGE_M2M_API_KEY" cred:"m2m-api-key"`
	M2MAPIKeyHeader     string        `envconfig:"EDGE_M2M_API_KEY_HEADER" default:"apikey"`
	M2MHeaders          []Header      `envconfig:"EDGE_M2M_HEADERS"`
	M2MCAFile           string        `envconfig:"EDGE_M2M_CA_FILE"`
	M2MTimeout          time.Duration `envconfig:"EDGE_M2M_TIMEOUT" default:"15s"`
	M2MConcurrency      int           `envconfig:"EDGE_M2M_CONCURRENCY" default:"4"`
	M2MRate             float64       `envconfig:"EDGE_M2M_RATE" default:"10"`
	M2MRetryMin         time.Duration `envconfig:"EDGE_M2M_RETRY_MIN" default:"1s"`
	M2MRetryMax         time.Duration `envconfig:"EDGE_M2M_RETRY_MAX" default:"5m"`
	M2MTicketsPath      string        `envconfig:"EDGE_M2M_TICKETS_PATH" default:"/vendors/m2m/clients/{idInstance}/tickets"`
	M2MDevicesPath      string        `envconfig:"EDGE_M2M_DEVICES_PATH" default:"/vendors/m2m/clients/{idInstance}/devices"`
	M2MDevicePath       string        `envconfig:"EDGE_M2M_DEVICE_PATH" default:"/vendors/m2m/clients/{idInstance}/devices/{nameplate_num}"`
	M2MAttributesMethod string        `envconfig:"EDGE_M2M_ATTRIBUTES_METHOD" default:"PATCH"`
	AttributesInterval  time.Duration `envconfig:"EDGE_ATTRIBUTES_INTERVAL" default:"60s"`

	TicketOrigin       string `envconfig:"EDGE_TICKET_ORIGIN" default:"tg" group:"Tickets"`
	TicketOriginTypeID int    `envconfig:"EDGE_TICKET_ORIGIN_TYPE_ID" default:"107"`
	TicketServiceCode  string `envconfig:"EDGE_TICKET_SERVICE_CODE" default:"m2m"`
	TicketWorksiteID   int    `envconfig:"EDGE_TICKET_WORKSITE_ID" default:"1"`
	TicketReporter     string `envconfig:"EDGE_TICKET_REPORTER" default:"edge-agent"`
	TicketState        string `envconfig:"EDGE_TICKET_STATE"`
	TicketMunicipality string `envconfig:"EDGE_TICKET_MUNICIPALITY"`
	ProtocolBase       int64  `envconfig:"EDGE_PROTOCOL_BASE" default:"0"`
	CancelOnClear      bool   `envconfig:"EDGE_CANCEL_ON_CLEAR" default:"true"`

	DevicesFile string  `envconfig:"EDGE_DEVICES_FILE" group:"Devices and fault detection"`
	Latitude    float64 `envconfig:"EDGE_LATITUDE"`
	Longitude   float64 `envconfig:"EDGE_LONGITUDE"`
	// HasPosition is true when EDGE_LATITUDE and EDGE_LONGITUDE are both set
	// (0,0 is a real place in the Atlantic, so zero cannot mean "none").
	HasPosition      bool          `ignored:"true"`
	ReportInterval   time.Duration `envconfig:"EDGE_REPORT_INTERVAL" default:"5m"`
	CommLossAfter    time.Duration `envconfig:"EDGE_COMM_LOSS_AFTER" default:"15m"`
	ConfirmCount     int           `envconfig:"EDGE_CONFIRM_COUNT" default:"3"`
	NominalVoltage   float64       `envconfig:"EDGE_NOMINAL_VOLTAGE" default:"220"`
	VoltageTolerance float64       `envconfig:"EDGE_VOLTAGE_TOLERANCE" default:"0.10"`
	LampMinPower     float64       `envconfig:"EDGE_LAMP_MIN_POWER" default:"5"`
	MinPowerFactor   float64       `envconfig:"EDGE_MIN_POWER_FACTOR" default:"0.85"`
	CyclingSwitches  int           `envconfig:"EDGE_CYCLING_SWITCHES" default:"6"`
	CyclingWindow    time.Duration `envconfig:"EDGE_CYCLING_WINDOW" default:"1h"`
	DayLux           float64       `envconfig:"EDGE_DAY_LUX" default:"50"`
	RequireClockSync bool          `envconfig:"EDGE_REQUIRE_CLOCK_SYNC" default:"false"`

	StoreMaxMB      int           `envconfig:"EDGE_STORE_MAX_MB" default:"256" group:"Store"`
	TicketRetention time.Duration `envconfig:"EDGE_TICKET_RETENTION" default:"720h"`
}

// Header is one extra static header of EDGE_M2M_HEADERS. Its value is a
// Secret: such headers often carry keys.
type Header struct {
	Name  string
	Value Secret
}

// Set parses one "name:value" item; it lets envconfig fill a []Header.
// Its errors never contain the value.
func (h *Header) Set(item string) error {
	name, value, ok := strings.Cut(item, ":")
	if !ok {
		return errHeaderNoColon
	}
	name = strings.TrimSpace(name)
	if !validHeaderName(name) {
		return errHeaderName
	}
	*h = Header{Name: name, Value: NewSecret(strings.TrimSpace(value))}
	return nil
}

// errInvalidConfig is matched (errors.Is) by every error loadConfig returns.
var errInvalidConfig = errors.New("invalid configuration")

var (
	errHeaderNoColon = errors.New("is not name:value (values cannot contain commas)")
	errHeaderName    = errors.New("has an invalid header name (letters, digits and !#$%&'*+-.^_`|~ only)")
)

// configError holds every problem found, one line each, each starting with
// the variable's name. No line contains a secret.
type configError struct {
	problems []string
}

func (e *configError) Error() string        { return strings.Join(e.problems, "\n") }
func (e *configError) Is(target error) bool { return target == errInvalidConfig }

// Problems returns the problems, one per variable and reason.
func (e *configError) Problems() []string { return slices.Clone(e.problems) }

// exitCodeFor maps an error of start-up to the process exit code of
// CONTRACT §1: 0 for none, 2 for bad configuration, 1 for anything else.
func exitCodeFor(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errInvalidConfig):
		return 2
	default:
		return 1
	}
}

// Defaults that do not come from a tag.
const (
	defaultDataDir       = "/var/lib/edge-agent"
	defaultControlSocket = "/run/edge-agent/control.sock"
	clientIDPrefix       = "edge-agent-"
)

// Limits. A secret file larger than this is surely the wrong file (and
// reading /dev/zero by mistake must not hang).
const (
	maxSecretFile = 64 << 10
	maxCAFile     = 4 << 20
	// A Unix socket path is limited by sun_path (108 bytes with the NUL).
	maxSocketPath = 107
	// bbolt's map limit on 32-bit platforms is 0x7FFFFFFF bytes: 2047 MiB
	// is the largest whole number of MiB under it (2048 MiB overflows int).
	maxStoreMB32 = 2047
	// A store of more than 1 TiB on a gateway is a typo, and MB×MiB must fit.
	maxStoreMB64 = 1 << 20
	// id_external_protocol travels as a JSON number; above 2^53 it would not
	// survive a reader that decodes numbers as float64.
	maxProtocolBase = 1<<53 - 1
)

// varSource says where a variable's value came from, for `edge-agent config`.
type varSource struct {
	Name    string
	Group   string
	Default bool   // not set by the operator
	From    string // "", or how it was derived/read: "host name", "EDGE_X_FILE", "credential x"
	Value   string // as printed: secrets redacted
}

// loaded is everything load learns: the configuration, where each value came
// from, warnings and problems.
type loaded struct {
	cfg      *Config
	vars     []varSource
	warnings []string
	problems []problem
}

type problem struct {
	order int // field order, so that problems follow the contract's order
	text  string
}

// sysDeps are the few things of the host the loader asks, injectable.
type sysDeps struct {
	hostname func() (string, error)
}

func osDeps() sysDeps { return sysDeps{hostname: os.Hostname} }

// loadConfig reads the configuration from env ("NAME=value" entries; the
// first of duplicates wins, as with os.Getenv), validates it and returns it
// with warnings (unknown EDGE_* variables and other doubtful settings). The
// error, if any, is a *configError listing every problem; exitCodeFor gives 2
// for it. It reads no files except secret files and the existence checks of
// the paths it is given, and it creates nothing.
func loadConfig(env []string) (*Config, []string, error) {
	l := load(env, osDeps())
	if err := l.err(); err != nil {
		return nil, l.warnings, err
	}
	return l.cfg, l.warnings, nil
}

func (l *loaded) err() error {
	if len(l.problems) == 0 {
		return nil
	}
	slices.SortStableFunc(l.problems, func(a, b problem) int { return cmp.Compare(a.order, b.order) })
	lines := make([]string, len(l.problems))
	for i, p := range l.problems {
		lines[i] = p.text
	}
	return &configError{problems: lines}
}

// field describes one variable of Config, from its tags.
type field struct {
	index    int
	name     string
	def      string
	hasDef   bool
	required bool
	cred     string
	group    string
}

// configFields lists the variables in declaration (= contract) order.
func configFields() []field {
	t := reflect.TypeFor[Config]()
	var out []field
	group := ""
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		if g := sf.Tag.Get("group"); g != "" {
			group = g
		}
		def, hasDef := sf.Tag.Lookup("default")
		out = append(out, field{
			index: i, name: name, def: def, hasDef: hasDef,
			required: sf.Tag.Get("required") == "true",
			cred:     sf.Tag.Get("cred"), group: group,
		})
	}
	return out
}

// knownVariables returns every variable name the agent reads, including the
// *_FILE variants of secrets, in contract order.
func knownVariables() []string {
	var names []string
	for _, f := range configFields() {
		names = append(names, f.name)
		if f.cred != "" {
			names = append(names, f.name+"_FILE")
		}
	}
	return names
}

// loader carries the state of one load.
type loader struct {
	env   map[string]string
	deps  sysDeps
	out   *loaded
	order map[string]int
	set   map[string]bool // set by the operator (non-empty, or empty with a default)
}

func load(envList []string, deps sysDeps) *loaded {
	l := &loader{
		env:   make(map[string]string, len(envList)),
		deps:  deps,
		out:   &loaded{cfg: &Config{}},
		order: map[string]int{},
		set:   map[string]bool{},
	}
	fields := configFields()
	for i, f := range fields {
		l.order[f.name] = i
		if f.cred != "" {
			l.order[f.name+"_FILE"] = i
		}
	}
	l.readEnv(envList)
	v := reflect.ValueOf(l.out.cfg).Elem()
	for _, f := range fields {
		src := varSource{Name: f.name, Group: f.group}
		fv := v.Field(f.index)
		if f.cred != "" {
			l.loadSecret(f, fv.Addr().Interface().(*Secret), &src)
		} else {
			l.loadPlain(f, fv, &src)
		}
		l.out.vars = append(l.out.vars, src)
	}
	l.deriveDefaults()
	l.validate()
	// Values are printed after normalisation and derivation.
	for i, f := range fields {
		src := &l.out.vars[i]
		if src.Default && !f.hasDef && src.From == "" {
			continue // unset and no default: shown empty, not as a zero value
		}
		src.Value = formatValue(v.Field(f.index))
	}
	return l.out
}

// readEnv builds the lookup map and warns about unknown and repeated EDGE_*
// names. Values of unknown variables are never shown: a misspelt secret is
// still a secret.
func (l *loader) readEnv(envList []string) {
	known := knownVariables()
	isKnown := make(map[string]bool, len(known))
	for _, n := range known {
		isKnown[n] = true
	}
	var unknown, repeated []string
	for _, kv := range envList {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, dup := l.env[k]; dup {
			if isKnown[k] {
				repeated = append(repeated, k)
			}
			continue
		}
		l.env[k] = v
		if !isKnown[k] && len(k) >= 5 && strings.EqualFold(k[:5], "EDGE_") {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		msg := k + ": unknown variable, ignored"
		if s := closestName(k, known); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		l.out.warnings = append(l.out.warnings, msg)
	}
	slices.Sort(repeated)
	for _, k := range slices.Compact(repeated) {
		l.out.warnings = append(l.out.warnings, k+": set more than once; the first value is used")
	}
}

// lookup returns a variable and whether it counts as set. An empty value
// counts as unset when there is no default (it is the zero value anyway, and
// env files often carry "NAME=" placeholders); with a default, an empty value
// is a value (EDGE_HTTP_ADDR= disables the listener), as with envconfig.
func (l *loader) lookup(f field) (string, bool) {
	raw, ok := l.env[f.name]
	if !ok || (raw == "" && !f.hasDef) {
		return "", false
	}
	return raw, true
}

func (l *loader) problem(name, format string, args ...any) {
	l.out.problems = append(l.out.problems, problem{order: l.order[name], text: name + ": " + fmt.Sprintf(format, args...)})
}

// bad records a problem with the offending (non-secret) value quoted, unless
// the variable already has one: a value that did not parse is left at zero,
// and "must be from 1 to 64 (got "0")" after "not a whole number" would only
// confuse.
func (l *loader) bad(name, value, format string, args ...any) {
	if l.hasProblem(name) {
		return
	}
	l.problem(name, "%s (got %q)", fmt.Sprintf(format, args...), value)
}

func (l *loader) warn(name, format string, args ...any) {
	l.out.warnings = append(l.out.warnings, name+": "+fmt.Sprintf(format, args...))
}

var durationType = reflect.TypeFor[time.Duration]()

func (l *loader) loadPlain(f field, fv reflect.Value, src *varSource) {
	raw, set := l.lookup(f)
	if f.required && strings.TrimSpace(raw) == "" {
		l.problem(f.name, "required, and not set")
		return
	}
	if !set {
		src.Default = true
		if !f.hasDef {
			return
		}
		raw = f.def
	}
	l.set[f.name] = set
	value := strings.TrimSpace(raw)
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(value)
		if err != nil {
			l.bad(f.name, value, "not a duration: write it like 90s, 15m or 1h30m")
			return
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(value)
	case fv.Kind() == reflect.Int || fv.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(value, 10, fv.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				l.bad(f.name, value, "out of range")
			} else {
				l.bad(f.name, value, "not a whole number")
			}
			return
		}
		fv.SetInt(n)
	case fv.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			l.bad(f.name, value, "not a finite number")
			return
		}
		fv.SetFloat(x)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			l.bad(f.name, value, "not a boolean: use true or false")
			return
		}
		fv.SetBool(b)
	case fv.Type() == reflect.TypeFor[[]Header]():
		// Header values are secrets: no problem line shows any of raw.
		hs, errs := parseHeaders(raw)
		for _, e := range errs {
			l.problem(f.name, "%v", e)
		}
		fv.Set(reflect.ValueOf(hs))
	default:
		// A field type added to Config without a parser is a bug caught by
		// the tests (every variable is parsed there).
		panic(fmt.Sprintf("config: no parser for %s (%s)", f.name, fv.Type()))
	}
}

// parseHeaders parses "name:value,name:value". Errors name the item by its
// position and never include any part of a value.
func parseHeaders(raw string) ([]Header, []error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var (
		hs   []Header
		errs []error
	)
	seen := map[string]bool{}
	for i, item := range strings.Split(raw, ",") {
		if strings.TrimSpace(item) == "" {
			continue // "a:b," or "a:b,,c:d": a stray comma loses nothing
		}
		var h Header
		if err := h.Set(item); err != nil {
			errs = append(errs, fmt.Errorf("item %d %w", i+1, err))
			continue
		}
		canon := strings.ToLower(h.Name)
		if seen[canon] {
			errs = append(errs, fmt.Errorf("header %s given twice", h.Name))
			continue
		}
		seen[canon] = true
		if hasControl(h.Value.Reveal()) {
			errs = append(errs, fmt.Errorf("header %s: the value contains a control character", h.Name))
			continue
		}
		hs = append(hs, h)
	}
	return hs, errs
}

// loadSecret resolves a secret: the variable, or its *_FILE variant, or the
// systemd credential $CREDENTIALS_DIRECTORY/<cred> when neither is set.
func (l *loader) loadSecret(f field, dst *Secret, src *varSource) {
	fileVar := f.name + "_FILE"
	val, set := l.lookup(f)
	path, fileSet := l.lookup(field{name: fileVar})
	path = strings.TrimSpace(path)
	switch {
	case set && fileSet:
		l.problem(f.name, "set both directly and as %s; keep one", fileVar)
	case fileSet:
		s, err := readSecretFile(path)
		if err != nil {
			l.bad(fileVar, path, "%v", err)
			return
		}
		*dst, src.From = NewSecret(s), fileVar
		l.set[f.name] = true
	case set:
		*dst = NewSecret(val)
		l.set[f.name] = true
	default:
		src.Default = true
		dir := strings.TrimSpace(l.env["CREDENTIALS_DIRECTORY"])
		if dir == "" {
			return
		}
		p := filepath.Join(dir, f.cred)
		// Missing, or an empty regular file, means "not set": systemd
		// refuses to start a unit whose LoadCredential= file is missing,
		// so the package installs every credential file, empty.
		if st, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) || (err == nil && st.Mode().IsRegular() && st.Size() == 0) {
			return
		}
		s, err := readSecretFile(p)
		if err != nil {
			l.problem(f.name, "systemd credential %s: %v", f.cred, err)
			return
		}
		*dst, src.From, src.Default = NewSecret(s), "credential "+f.cred, false
		l.set[f.name] = true
	}
}

// readSecretFile reads a secret, without one trailing newline (editors add
// one). Errors name the path, never the content.
func readSecretFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	// Opening a FIFO would block; a device could be endless.
	if !st.Mode().IsRegular() {
		return "", errors.New("not a regular file")
	}
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("larger than %d KiB: not a secret file", maxSecretFile>>10)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", errors.New("the file is empty")
	}
	return s, nil
}

// unwrapPath drops the *fs.PathError wrapper, whose path the problem line
// already shows.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// firstEntry returns the first entry of a colon-separated list, as systemd
// passes several directories in $STATE_DIRECTORY and $RUNTIME_DIRECTORY.
func firstEntry(list string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(list), ":")
	return strings.TrimSpace(first)
}

func (l *loader) src(name string) *varSource {
	for i := range l.out.vars {
		if l.out.vars[i].Name == name {
			return &l.out.vars[i]
		}
	}
	panic("config: unknown variable " + name)
}

// deriveDefaults fills the defaults that come from the environment.
func (l *loader) deriveDefaults() {
	c := l.out.cfg
	if c.GatewayID == "" {
		h, err := l.deps.hostname()
		if err != nil {
			l.problem("EDGE_GATEWAY_ID", "not set, and the host name cannot be read (%v): set it", err)
		}
		c.GatewayID = h
		l.src("EDGE_GATEWAY_ID").From = "host name"
	}
	if c.DataDir == "" {
		if d := firstEntry(l.env["STATE_DIRECTORY"]); d != "" {
			c.DataDir = d
			l.src("EDGE_DATA_DIR").From = "$STATE_DIRECTORY"
		} else {
			c.DataDir = defaultDataDir
		}
	}
	if c.ControlSocket == "" {
		if d := firstEntry(l.env["RUNTIME_DIRECTORY"]); d != "" {
			c.ControlSocket = filepath.Join(d, "control.sock")
			l.src("EDGE_CONTROL_SOCKET").From = "$RUNTIME_DIRECTORY"
		} else {
			c.ControlSocket = defaultControlSocket
		}
	}
	if c.MQTTClientID == "" {
		c.MQTTClientID = clientIDPrefix + c.GatewayID
		l.src("EDGE_MQTT_CLIENT_ID").From = "gateway id"
	}
	c.HasPosition = l.set["EDGE_LATITUDE"] && l.set["EDGE_LONGITUDE"]
}

// validate checks the values as a whole and normalises a few (letter case,
// a trailing slash).
func (l *loader) validate() {
	c := l.out.cfg
	l.validateGeneral(c)
	l.validateMQTT(c)
	l.validateM2M(c)
	l.validateTickets(c)
	l.validateDetection(c)
	l.validateStore(c)
}

func (l *loader) validateGeneral(c *Config) {
	if !validGatewayID(c.GatewayID) {
		if l.set["EDGE_GATEWAY_ID"] {
			l.bad("EDGE_GATEWAY_ID", c.GatewayID, "must be 1 to 64 of A-Z a-z 0-9 . _ - (it goes into the MQTT client id and topics)")
		} else if c.GatewayID != "" {
			l.bad("EDGE_GATEWAY_ID", c.GatewayID, "the host name is not a valid gateway id (1 to 64 of A-Z a-z 0-9 . _ -): set EDGE_GATEWAY_ID")
		}
	}
	l.checkDataDir(c.DataDir)
	switch {
	case len(c.ControlSocket) > maxSocketPath:
		l.bad("EDGE_CONTROL_SOCKET", c.ControlSocket, "longer than %d bytes, the limit of a Unix socket path", maxSocketPath)
	default:
		if st, err := os.Stat(c.ControlSocket); err == nil && st.IsDir() {
			l.bad("EDGE_CONTROL_SOCKET", c.ControlSocket, "is a directory; name the socket file")
		}
	}
	if c.HTTPAddr != "" {
		host, port, err := net.SplitHostPort(c.HTTPAddr)
		if err != nil {
			l.bad("EDGE_HTTP_ADDR", c.HTTPAddr, "not host:port (leave it empty to disable the HTTP listener)")
		} else if !validPort(port) {
			l.bad("EDGE_HTTP_ADDR", c.HTTPAddr, "the port must be a number from 1 to 65535")
		} else if !c.HTTPOnLoopback() && !c.HTTPToken.IsSet() && !l.secretFailed("EDGE_HTTP_TOKEN") {
			what := "host " + strconv.Quote(host)
			if host == "" || isUnspecifiedIP(host) {
				what = "all interfaces"
			}
			l.problem("EDGE_HTTP_TOKEN", "required because EDGE_HTTP_ADDR (%q) listens on %s, not only on loopback (127.0.0.1, ::1, localhost)", c.HTTPAddr, what)
		}
	}
	if c.HTTPToken.IsSet() {
		if hasControl(c.HTTPToken.Reveal()) {
			l.problem("EDGE_HTTP_TOKEN", "contains a line break or another control character")
		} else if c.HTTPToken.Len() < 16 {
			l.warn("EDGE_HTTP_TOKEN", "shorter than 16 characters: easy to guess")
		}
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		l.bad("EDGE_LOG_LEVEL", c.LogLevel, "must be debug, info, warn or error")
	}
	c.LogFormat = strings.ToLower(c.LogFormat)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		l.bad("EDGE_LOG_FORMAT", c.LogFormat, "must be text or json")
	}
}

// checkDataDir: the directory exists, or its nearest existing parent is a
// directory this process may create entries in. Nothing is created here.
func (l *loader) checkDataDir(dir string) {
	const name = "EDGE_DATA_DIR"
	p := filepath.Clean(dir)
	for {
		st, err := os.Stat(p)
		switch {
		case err == nil && p == filepath.Clean(dir):
			if !st.IsDir() {
				l.bad(name, dir, "exists and is not a directory")
			}
			return
		case err == nil && !st.IsDir():
			l.bad(name, dir, "cannot be created: %s is not a directory", p)
			return
		case err == nil:
			if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
				l.bad(name, dir, "does not exist and cannot be created: %s is not writable (%v)", p, err)
			}
			return
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR):
			l.bad(name, dir, "cannot be checked: %v", unwrapPath(err))
			return
		}
		parent := filepath.Dir(p)
		if parent == p {
			return
		}
		p = parent
	}
}

// Broker URL schemes and their default ports (CONTRACT §2).
var brokerSchemes = map[string]string{
	"tcp": "1883", "mqtt": "1883",
	"ssl": "8883", "tls": "8883", "mqtts": "8883",
	"ws": "80", "wss": "443",
}

// pahoScheme maps the contract's schemes onto the ones paho dials.
var pahoScheme = map[string]string{
	"tcp": "tcp", "mqtt": "tcp",
	"ssl": "ssl", "tls": "ssl", "mqtts": "ssl",
	"ws": "ws", "wss": "wss",
}

func (l *loader) validateMQTT(c *Config) {
	const name = "EDGE_MQTT_BROKER"
	u, err := url.Parse(c.MQTTBroker)
	brokerOK, tlsScheme := false, false
	switch {
	case err != nil || u.Opaque != "":
		l.bad(name, c.MQTTBroker, "not a URL like tcp://host:1883")
	case brokerSchemes[u.Scheme] == "":
		l.bad(name, redactURL(u), "the scheme must be one of tcp, mqtt, ssl, tls, mqtts, ws, wss")
	case u.User != nil:
		l.bad(name, redactURL(u), "no credentials in the URL: use EDGE_MQTT_USERNAME and EDGE_MQTT_PASSWORD")
	case u.Hostname() == "":
		l.bad(name, c.MQTTBroker, "has no host")
	case u.Port() != "" && !validPort(u.Port()):
		l.bad(name, c.MQTTBroker, "the port must be a number from 1 to 65535")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		l.bad(name, c.MQTTBroker, "must not have a query or fragment")
	case u.Scheme != "ws" && u.Scheme != "wss" && u.Path != "" && u.Path != "/":
		l.bad(name, c.MQTTBroker, "only ws:// and wss:// URLs may have a path")
	default:
		brokerOK = true
		tlsScheme = pahoScheme[u.Scheme] == "ssl" || u.Scheme == "wss"
	}
	// A client id derived from a valid gateway id is valid; from an invalid
	// one, the gateway id's problem says it all.
	if l.set["EDGE_MQTT_CLIENT_ID"] && (c.MQTTClientID == "" || len(c.MQTTClientID) > 65535 || !utf8.ValidString(c.MQTTClientID) ||
		strings.ContainsFunc(c.MQTTClientID, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) })) {
		l.bad("EDGE_MQTT_CLIENT_ID", c.MQTTClientID, "must be non-empty UTF-8 without spaces or control characters")
	}
	if c.MQTTPassword.IsSet() && c.MQTTUsername == "" {
		// MQTT 3.1.1 §3.1.2.9: no password without a user name.
		l.problem("EDGE_MQTT_PASSWORD", "set without EDGE_MQTT_USERNAME (MQTT sends no password without a user name)")
	}
	for _, p := range []struct{ name, path string }{
		{"EDGE_MQTT_CA_FILE", c.MQTTCAFile}, {"EDGE_MQTT_CERT_FILE", c.MQTTCertFile}, {"EDGE_MQTT_KEY_FILE", c.MQTTKeyFile},
	} {
		if p.path != "" && brokerOK && !tlsScheme {
			l.warn(p.name, "ignored: EDGE_MQTT_BROKER does not use TLS (use ssl://, tls://, mqtts:// or wss://)")
		}
	}
	l.checkCAFile("EDGE_MQTT_CA_FILE", c.MQTTCAFile)
	certOK := l.checkReadable("EDGE_MQTT_CERT_FILE", c.MQTTCertFile)
	keyOK := l.checkReadable("EDGE_MQTT_KEY_FILE", c.MQTTKeyFile)
	switch {
	case c.MQTTCertFile != "" && c.MQTTKeyFile == "":
		l.problem("EDGE_MQTT_KEY_FILE", "required with EDGE_MQTT_CERT_FILE (a client certificate needs its key)")
	case c.MQTTCertFile == "" && c.MQTTKeyFile != "":
		l.problem("EDGE_MQTT_CERT_FILE", "required with EDGE_MQTT_KEY_FILE (a client key needs its certificate)")
	case c.MQTTCertFile != "" && certOK && keyOK:
		if _, err := tls.LoadX509KeyPair(c.MQTTCertFile, c.MQTTKeyFile); err != nil {
			l.problem("EDGE_MQTT_CERT_FILE", "does not load with EDGE_MQTT_KEY_FILE as a certificate and key pair: %v", err)
		}
	}
	l.checkTopicPrefix(c.MQTTTopicPrefix)
	if c.MQTTMaxPayload < 256 || c.MQTTMaxPayload > 1<<20 {
		l.bad("EDGE_MQTT_MAX_PAYLOAD", strconv.Itoa(c.MQTTMaxPayload), "must be from 256 to 1048576 bytes")
	}
}

func (l *loader) checkTopicPrefix(p string) {
	const name = "EDGE_MQTT_TOPIC_PREFIX"
	switch {
	case p == "":
		l.bad(name, p, "must not be empty")
	case !utf8.ValidString(p) || strings.ContainsAny(p, "+#\x00"):
		l.bad(name, p, "must not contain the wildcards + or #")
	case strings.HasPrefix(p, "$"):
		l.bad(name, p, "must not start with $ (reserved for the broker's own topics)")
	case slices.Contains(strings.Split(p, "/"), ""):
		l.bad(name, p, "must not start or end with / nor contain an empty level (//)")
	}
}

// checkReadable: an optional file that must exist, be a regular file and be
// readable by this process.
func (l *loader) checkReadable(name, path string) bool {
	if path == "" {
		return false
	}
	st, err := os.Stat(path)
	if err != nil {
		l.bad(name, path, "cannot read: %v", unwrapPath(err))
		return false
	}
	if !st.Mode().IsRegular() {
		l.bad(name, path, "not a regular file")
		return false
	}
	fh, err := os.Open(path)
	if err != nil {
		l.bad(name, path, "cannot read: %v", unwrapPath(err))
		return false
	}
	_ = fh.Close()
	return true
}

// checkCAFile: readable and holding at least one PEM certificate.
func (l *loader) checkCAFile(name, path string) bool {
	if !l.checkReadable(name, path) {
		return false
	}
	fh, err := os.Open(path)
	if err != nil {
		l.bad(name, path, "cannot read: %v", unwrapPath(err))
		return false
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxCAFile))
	if err != nil {
		l.bad(name, path, "cannot read: %v", unwrapPath(err))
		return false
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		l.bad(name, path, "holds no PEM certificate")
		return false
	}
	return true
}

func (l *loader) validateM2M(c *Config) {
	l.checkBaseURL(c)
	// Empty: reported as required by loadPlain.
	if strings.ContainsFunc(c.M2MInstanceID, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("/?#%", r)
	}) {
		l.bad("EDGE_M2M_INSTANCE_ID", c.M2MInstanceID, "must not contain spaces, control characters or / ? # %%")
	}
	for _, s := range []struct {
		name string
		v    Secret
	}{{"EDGE_M2M_TOKEN", c.M2MToken}, {"EDGE_M2M_API_KEY", c.M2MAPIKey}} {
		if hasControl(s.v.Reveal()) {
			l.problem(s.name, "contains a line break or another control character (it is sent in a header)")
		}
	}
	if !validHeaderName(c.M2MAPIKeyHeader) {
		l.bad("EDGE_M2M_API_KEY_HEADER", c.M2MAPIKeyHeader, "not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)")
	} else if c.M2MAPIKey.IsSet() && c.M2MToken.IsSet() && strings.EqualFold(c.M2MAPIKeyHeader, "Authorization") {
		l.bad("EDGE_M2M_API_KEY_HEADER", c.M2MAPIKeyHeader, "would overwrite the Authorization header of EDGE_M2M_TOKEN")
	}
	for _, h := range c.M2MHeaders {
		switch {
		case slices.ContainsFunc([]string{"Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection"},
			func(r string) bool { return strings.EqualFold(r, h.Name) }):
			l.problem("EDGE_M2M_HEADERS", "header %s is set by the client itself and cannot be configured", h.Name)
		case c.M2MToken.IsSet() && strings.EqualFold(h.Name, "Authorization"):
			l.problem("EDGE_M2M_HEADERS", "header %s conflicts with EDGE_M2M_TOKEN", h.Name)
		case c.M2MAPIKey.IsSet() && strings.EqualFold(h.Name, c.M2MAPIKeyHeader):
			l.problem("EDGE_M2M_HEADERS", "header %s conflicts with EDGE_M2M_API_KEY (sent in EDGE_M2M_API_KEY_HEADER)", h.Name)
		}
	}
	l.checkCAFile("EDGE_M2M_CA_FILE", c.M2MCAFile)
	l.positiveDuration("EDGE_M2M_TIMEOUT", c.M2MTimeout)
	if c.M2MConcurrency < 1 || c.M2MConcurrency > 64 {
		l.bad("EDGE_M2M_CONCURRENCY", strconv.Itoa(c.M2MConcurrency), "must be from 1 to 64")
	}
	if !(c.M2MRate > 0) {
		l.bad("EDGE_M2M_RATE", fmtFloat(c.M2MRate), "must be more than 0 (requests per second)")
	}
	minOK := l.positiveDuration("EDGE_M2M_RETRY_MIN", c.M2MRetryMin)
	maxOK := l.positiveDuration("EDGE_M2M_RETRY_MAX", c.M2MRetryMax)
	if minOK && maxOK && c.M2MRetryMin > c.M2MRetryMax {
		l.bad("EDGE_M2M_RETRY_MIN", fmtDuration(c.M2MRetryMin), "must not exceed EDGE_M2M_RETRY_MAX (%s)", fmtDuration(c.M2MRetryMax))
	}
	l.checkAPIPath("EDGE_M2M_TICKETS_PATH", c.M2MTicketsPath, false)
	l.checkAPIPath("EDGE_M2M_DEVICES_PATH", c.M2MDevicesPath, false)
	l.checkAPIPath("EDGE_M2M_DEVICE_PATH", c.M2MDevicePath, true)
	c.M2MAttributesMethod = strings.ToUpper(c.M2MAttributesMethod)
	if !slices.Contains([]string{"PATCH", "PUT", "POST"}, c.M2MAttributesMethod) {
		l.bad("EDGE_M2M_ATTRIBUTES_METHOD", c.M2MAttributesMethod, "must be PATCH, PUT or POST")
	}
	if c.AttributesInterval < 0 {
		l.bad("EDGE_ATTRIBUTES_INTERVAL", fmtDuration(c.AttributesInterval), "must not be negative (0 disables attribute sync)")
	}
}

func (l *loader) checkBaseURL(c *Config) {
	const name = "EDGE_M2M_BASE_URL"
	if c.M2MBaseURL == "" {
		return // reported as required by loadPlain
	}
	u, err := url.Parse(c.M2MBaseURL)
	switch {
	case err != nil || u.Opaque != "":
		l.bad(name, c.M2MBaseURL, "not a URL like https://host/path")
	case u.User != nil:
		l.bad(name, redactURL(u), "no credentials in the URL: use EDGE_M2M_TOKEN or EDGE_M2M_API_KEY")
	case u.Scheme != "http" && u.Scheme != "https":
		l.bad(name, c.M2MBaseURL, "the scheme must be http or https")
	case u.Hostname() == "":
		l.bad(name, c.M2MBaseURL, "has no host")
	case u.Port() != "" && !validPort(u.Port()):
		l.bad(name, c.M2MBaseURL, "the port must be a number from 1 to 65535")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		l.bad(name, c.M2MBaseURL, "must not have a query or fragment (the paths are appended to it)")
	default:
		// The paths start with "/": a trailing slash would make "//".
		c.M2MBaseURL = strings.TrimRight(c.M2MBaseURL, "/")
		if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && (c.M2MToken.IsSet() || c.M2MAPIKey.IsSet() || len(c.M2MHeaders) > 0) {
			l.warn(name, "plain http to a remote host: the API credentials travel unencrypted")
		}
	}
}

// checkAPIPath: starts with "/", holds {idInstance} (and {nameplate_num}
// when wanted), and no other placeholder, query or fragment.
func (l *loader) checkAPIPath(name, p string, device bool) {
	allowed := []string{"{idInstance}"}
	if device {
		allowed = append(allowed, "{nameplate_num}")
	}
	rest := p
	for _, a := range allowed {
		rest = strings.ReplaceAll(rest, a, "")
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		l.bad(name, p, "must start with /")
	case !strings.Contains(p, "{idInstance}"):
		l.bad(name, p, "must contain {idInstance}")
	case device && !strings.Contains(p, "{nameplate_num}"):
		l.bad(name, p, "must contain {nameplate_num}")
	case strings.ContainsAny(rest, "{}"):
		l.bad(name, p, "unknown placeholder: only %s", strings.Join(allowed, " and "))
	case strings.ContainsAny(p, "?#") || strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		l.bad(name, p, "must not contain ? # spaces or control characters")
	}
}

func (l *loader) validateTickets(c *Config) {
	if strings.TrimSpace(c.TicketOrigin) == "" {
		l.bad("EDGE_TICKET_ORIGIN", c.TicketOrigin, "must not be empty (cod_external_ticket_origin)")
	}
	if c.TicketOriginTypeID < 0 {
		l.bad("EDGE_TICKET_ORIGIN_TYPE_ID", strconv.Itoa(c.TicketOriginTypeID), "must not be negative")
	}
	if strings.TrimSpace(c.TicketServiceCode) == "" {
		l.bad("EDGE_TICKET_SERVICE_CODE", c.TicketServiceCode, "must not be empty (service_code)")
	}
	if c.TicketWorksiteID < 0 {
		l.bad("EDGE_TICKET_WORKSITE_ID", strconv.Itoa(c.TicketWorksiteID), "must not be negative")
	}
	if c.TicketState != "" {
		c.TicketState = strings.ToUpper(c.TicketState)
		if len(c.TicketState) != 2 || strings.ContainsFunc(c.TicketState, func(r rune) bool { return r < 'A' || r > 'Z' }) {
			l.bad("EDGE_TICKET_STATE", c.TicketState, "must be a two-letter state abbreviation such as MG")
		}
	}
	if c.ProtocolBase < 0 || c.ProtocolBase > maxProtocolBase {
		l.bad("EDGE_PROTOCOL_BASE", strconv.FormatInt(c.ProtocolBase, 10), "must be from 0 to %d", int64(maxProtocolBase))
	}
}

func (l *loader) validateDetection(c *Config) {
	l.checkReadable("EDGE_DEVICES_FILE", c.DevicesFile)
	latSet, lonSet := l.set["EDGE_LATITUDE"], l.set["EDGE_LONGITUDE"]
	if latSet && (c.Latitude < -90 || c.Latitude > 90) {
		l.bad("EDGE_LATITUDE", fmtFloat(c.Latitude), "must be from -90 to 90 degrees")
	}
	if lonSet && (c.Longitude < -180 || c.Longitude > 180) {
		l.bad("EDGE_LONGITUDE", fmtFloat(c.Longitude), "must be from -180 to 180 degrees")
	}
	if latSet != lonSet {
		missing, given := "EDGE_LONGITUDE", "EDGE_LATITUDE"
		if !latSet {
			missing, given = given, missing
		}
		l.problem(missing, "required with %s: give both coordinates or neither", given)
	}
	reportOK := l.positiveDuration("EDGE_REPORT_INTERVAL", c.ReportInterval)
	lossOK := l.positiveDuration("EDGE_COMM_LOSS_AFTER", c.CommLossAfter)
	if reportOK && lossOK && c.CommLossAfter <= c.ReportInterval {
		l.warn("EDGE_COMM_LOSS_AFTER", "%s is not longer than EDGE_REPORT_INTERVAL (%s): every device will be reported silent between two reports",
			fmtDuration(c.CommLossAfter), fmtDuration(c.ReportInterval))
	}
	if c.ConfirmCount < 1 || c.ConfirmCount > 100 {
		l.bad("EDGE_CONFIRM_COUNT", strconv.Itoa(c.ConfirmCount), "must be from 1 to 100")
	}
	if c.NominalVoltage < 50 || c.NominalVoltage > 1000 {
		l.bad("EDGE_NOMINAL_VOLTAGE", fmtFloat(c.NominalVoltage), "must be from 50 to 1000 volts")
	}
	if !(c.VoltageTolerance > 0 && c.VoltageTolerance < 1) {
		l.bad("EDGE_VOLTAGE_TOLERANCE", fmtFloat(c.VoltageTolerance), "must be more than 0 and less than 1 (0.10 = ±10 %%)")
	}
	if c.LampMinPower < 0 {
		l.bad("EDGE_LAMP_MIN_POWER", fmtFloat(c.LampMinPower), "must not be negative")
	}
	if !(c.MinPowerFactor > 0 && c.MinPowerFactor <= 1) {
		l.bad("EDGE_MIN_POWER_FACTOR", fmtFloat(c.MinPowerFactor), "must be more than 0 and at most 1")
	}
	if c.CyclingSwitches < 2 {
		l.bad("EDGE_CYCLING_SWITCHES", strconv.Itoa(c.CyclingSwitches), "must be at least 2")
	}
	l.positiveDuration("EDGE_CYCLING_WINDOW", c.CyclingWindow)
	if !(c.DayLux > 0) {
		l.bad("EDGE_DAY_LUX", fmtFloat(c.DayLux), "must be more than 0")
	}
}

func (l *loader) validateStore(c *Config) {
	limit := maxStoreMB64
	if strconv.IntSize == 32 {
		limit = maxStoreMB32
	}
	if c.StoreMaxMB < 1 || c.StoreMaxMB > limit {
		why := ""
		if strconv.IntSize == 32 {
			why = " on this 32-bit system (the store's map limit)"
		}
		l.bad("EDGE_STORE_MAX_MB", strconv.Itoa(c.StoreMaxMB), "must be from 1 to %d%s", limit, why)
	}
	l.positiveDuration("EDGE_TICKET_RETENTION", c.TicketRetention)
}

// positiveDuration checks d > 0.
func (l *loader) positiveDuration(name string, d time.Duration) bool {
	if d > 0 {
		return true
	}
	l.bad(name, fmtDuration(d), "must be more than 0")
	return false
}

// secretFailed: the secret already has a problem (set both ways, unreadable
// file); saying it is also missing would be noise.
func (l *loader) secretFailed(name string) bool {
	return l.hasProblem(name) || l.hasProblem(name+"_FILE")
}

func (l *loader) hasProblem(name string) bool {
	return slices.ContainsFunc(l.out.problems, func(p problem) bool { return strings.HasPrefix(p.text, name+":") })
}

// MQTTBrokerURL returns EDGE_MQTT_BROKER as paho dials it: mqtt:// becomes
// tcp://, mqtts:// and tls:// become ssl://, ws:// and wss:// stay, and the
// scheme's default port is added when none is given (paho needs one).
func (c *Config) MQTTBrokerURL() string {
	u, err := url.Parse(c.MQTTBroker)
	if err != nil || pahoScheme[u.Scheme] == "" {
		return c.MQTTBroker
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), brokerSchemes[u.Scheme])
	}
	u.Scheme = pahoScheme[u.Scheme]
	return u.String()
}

// HTTPOnLoopback reports whether the HTTP listener is enabled and bound to a
// loopback address only (127.0.0.0/8, ::1, localhost). An empty host or
// 0.0.0.0/:: means all interfaces, which is not loopback.
func (c *Config) HTTPOnLoopback() bool {
	if c.HTTPAddr == "" {
		return false
	}
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	return err == nil && isLoopbackHost(host)
}

// SlogLevel returns EDGE_LOG_LEVEL as a slog level.
func (c *Config) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return lv
}

// StoreMaxBytes returns EDGE_STORE_MAX_MB in bytes, for bbolt's MaxSize.
func (c *Config) StoreMaxBytes() int { return c.StoreMaxMB << 20 }

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isUnspecifiedIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func validGatewayID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// validHeaderName: an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// redactURL shows a URL without the password of its user info.
func redactURL(u *url.URL) string { return u.Redacted() }

// closestName suggests the known name nearest to a misspelt one, if any is
// near enough to be the likely intent.
func closestName(name string, known []string) string {
	up := strings.ToUpper(name)
	best, bestD := "", 4 // at most 3 edits
	for _, k := range known {
		if d := editDistance(up, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost 1.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// formatValue prints a field as `edge-agent config` shows it: the form an
// operator would write, secrets redacted.
func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case Secret:
		return x.String()
	case []Header:
		parts := make([]string, len(x))
		for i, h := range x {
			parts[i] = h.Name + ":" + h.Value.String()
		}
		return strings.Join(parts, ",")
	case time.Duration:
		return fmtDuration(x)
	case float64:
		return fmtFloat(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	}
	panic(fmt.Sprintf("config: cannot print %s", v.Type()))
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// fmtDuration prints 1h0m0s as 1h and 1m30s as 1m30s: shorter, and still
// what time.ParseDuration reads back.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
