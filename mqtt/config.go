package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrInvalidConfig wraps every problem New finds in a Config.
var ErrInvalidConfig = errors.New("invalid MQTT configuration")

// Defaults for the zero values of Config.
const (
	DefaultTopicPrefix          = "streetlights"
	DefaultMaxPayload           = 16384
	DefaultMaxReconnectInterval = 30 * time.Second
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultDrainTimeout         = 10 * time.Second
	DefaultMaxInFlight          = 256
)

// Config configures a Subscriber. Zero values take the defaults above;
// Broker, ClientID and GatewayID are required.
type Config struct {
	// Broker is a paho URL: tcp://, ssl://, ws:// or wss:// (tls:// and
	// mqtts:// also work; mqtt:// is tcp://). Without a port, tcp:// uses
	// 1883 and ssl:// 8883.
	Broker string
	// ClientID is stable: the broker keeps this client's session (and its
	// queued messages) under it.
	ClientID string
	// Username and Password authenticate; a password needs a username.
	Username, Password string
	// CAFile adds a CA to the system roots; CertFile and KeyFile are the
	// client certificate and its key (both or neither). TLS schemes only.
	CAFile, CertFile, KeyFile string
	// TopicPrefix is the first level(s) of every topic (CONTRACT §3).
	TopicPrefix string
	// MaxPayload is the largest payload accepted, in bytes.
	MaxPayload int
	// GatewayID names this gateway in its own status topic,
	// {prefix}/_gateways/{GatewayID}/status.
	GatewayID string
	// MaxReconnectInterval caps paho's reconnect backoff. The first
	// connection is retried every 5s, or every MaxReconnectInterval if
	// that is shorter.
	MaxReconnectInterval time.Duration
	// KeepAlive is the MQTT keep-alive (whole seconds); ConnectTimeout
	// bounds one connection attempt.
	KeepAlive, ConnectTimeout time.Duration
	// DrainTimeout bounds how long Run's shutdown waits for handlers in
	// flight before it cancels their context.
	DrainTimeout time.Duration
	// MaxInFlight is how many messages may be in the handler at once before
	// QoS 0 messages are dropped (ReasonOverload). QoS 1 messages are never
	// dropped: the broker's max_inflight_messages bounds them.
	MaxInFlight int
	Logger      *slog.Logger
	Now         func() time.Time
}

// settings is a validated Config with its defaults applied and its TLS
// configuration built.
type settings struct {
	Config
	brokerURL       *url.URL
	tls             *tls.Config // nil for plain tcp:// and ws://
	telemetryFilter string
	statusFilter    string
	gatewayTopic    string
}

// schemes paho dials, and whether they are TLS.
var schemes = map[string]bool{"tcp": false, "mqtt": false, "ws": false, "ssl": true, "tls": true, "mqtts": true, "wss": true}

// validate checks c, applies defaults and loads the TLS files. It reads
// local files only; it does no network I/O.
func (c Config) validate() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...))
	}

	if s.TopicPrefix == "" {
		s.TopicPrefix = DefaultTopicPrefix
	}
	if s.MaxPayload == 0 {
		s.MaxPayload = DefaultMaxPayload
	}
	if s.MaxReconnectInterval == 0 {
		s.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if s.KeepAlive == 0 {
		s.KeepAlive = DefaultKeepAlive
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = DefaultDrainTimeout
	}
	if s.MaxInFlight == 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}

	isTLS := false
	if s.Broker == "" {
		bad("broker: empty")
	} else if u, err := url.Parse(s.Broker); err != nil {
		// url's error quotes the URL, which may hold a password.
		bad("broker: not a URL (want scheme://host:port, e.g. tcp://127.0.0.1:1883)")
	} else if tlsScheme, ok := schemes[u.Scheme]; !ok {
		bad("broker: scheme %q is not one of tcp, ssl, tls, mqtts, ws, wss", u.Scheme)
	} else if u.Hostname() == "" {
		bad("broker: no host in %s", u.Redacted())
	} else {
		isTLS = tlsScheme
		if u.Port() == "" && (u.Scheme == "tcp" || u.Scheme == "mqtt") {
			u.Host = net.JoinHostPort(u.Hostname(), "1883")
		} else if u.Port() == "" && !strings.HasPrefix(u.Scheme, "w") {
			u.Host = net.JoinHostPort(u.Hostname(), "8883")
		}
		s.brokerURL = u
	}
	if s.ClientID == "" {
		bad("client id: empty (a persistent session needs a stable one)")
	} else if len(s.ClientID) > 65535 {
		bad("client id: longer than 65535 bytes")
	}
	if s.Password != "" && s.Username == "" {
		bad("password given without a username (MQTT 3.1.1 does not allow it)")
	}
	if err := checkTopicLevels(s.TopicPrefix); err != nil {
		bad("topic prefix %q: %v", s.TopicPrefix, err)
	}
	if s.GatewayID == "" {
		bad("gateway id: empty")
	} else if strings.ContainsAny(s.GatewayID, "/+#\x00") {
		bad("gateway id %q: must not contain / + # or NUL", s.GatewayID)
	}
	if s.MaxPayload < 0 {
		bad("max payload: %d is negative", s.MaxPayload)
	}
	if s.MaxInFlight < 0 {
		bad("max in flight: %d is negative", s.MaxInFlight)
	}
	if s.KeepAlive < time.Second {
		bad("keep-alive: %v is under 1s", s.KeepAlive)
	}
	for name, d := range map[string]time.Duration{"max reconnect interval": s.MaxReconnectInterval, "connect timeout": s.ConnectTimeout, "drain timeout": s.DrainTimeout} {
		if d < 0 {
			bad("%s: %v is negative", name, d)
		}
	}

	if (s.CertFile == "") != (s.KeyFile == "") {
		bad("TLS: a client certificate needs both the cert file and the key file")
	}
	if s.brokerURL != nil && !isTLS && (s.CAFile != "" || s.CertFile != "" || s.KeyFile != "") {
		bad("TLS files given but the broker scheme %q is not TLS (use ssl:// or wss://)", s.brokerURL.Scheme)
	}
	if isTLS && len(errs) == 0 {
		tc, err := buildTLS(s.brokerURL.Hostname(), s.CAFile, s.CertFile, s.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
		}
		s.tls = tc
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	s.telemetryFilter = s.TopicPrefix + "/+/telemetry"
	s.statusFilter = s.TopicPrefix + "/+/status"
	// Four levels under the prefix: it can never match the devices'
	// {prefix}/+/status subscription.
	s.gatewayTopic = s.TopicPrefix + "/_gateways/" + s.GatewayID + "/status"
	return s, nil
}

// checkTopicLevels accepts a topic prefix of one or more non-empty levels
// without wildcards.
func checkTopicLevels(p string) error {
	if strings.ContainsAny(p, "+#\x00") {
		return errors.New("must not contain + # or NUL")
	}
	for level := range strings.SplitSeq(p, "/") {
		if level == "" {
			return errors.New("has an empty level")
		}
	}
	return nil
}

func buildTLS(host, caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
