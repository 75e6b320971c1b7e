package mqtt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Config{Broker: "tcp://127.0.0.1:1883", ClientID: "agent", GatewayID: "gw"}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no broker", func(c *Config) { c.Broker = "" }, "broker: empty"},
		{"not a URL", func(c *Config) { c.Broker = "tcp://a b:1:2" }, "broker: not a URL"},
		{"bad scheme", func(c *Config) { c.Broker = "http://x:1883" }, `scheme "http"`},
		{"no scheme", func(c *Config) { c.Broker = "127.0.0.1:1883" }, "want scheme://host:port"},
		{"host as scheme", func(c *Config) { c.Broker = "localhost:1883" }, `scheme "localhost"`},
		{"no host", func(c *Config) { c.Broker = "tcp://:1883" }, "no host"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client id: empty"},
		{"password without user", func(c *Config) { c.Password = "s3cret" }, "password given without a username"},
		{"prefix with wildcard", func(c *Config) { c.TopicPrefix = "lights/+" }, "topic prefix"},
		{"prefix with empty level", func(c *Config) { c.TopicPrefix = "lights/" }, "empty level"},
		{"no gateway id", func(c *Config) { c.GatewayID = "" }, "gateway id: empty"},
		{"gateway id with slash", func(c *Config) { c.GatewayID = "a/b" }, "gateway id"},
		{"negative payload", func(c *Config) { c.MaxPayload = -1 }, "max payload"},
		{"negative in flight", func(c *Config) { c.MaxInFlight = -1 }, "max in flight"},
		{"short keep-alive", func(c *Config) { c.KeepAlive = 500 * time.Millisecond }, "keep-alive"},
		{"negative timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, "connect timeout"},
		{"TLS files on tcp", func(c *Config) { c.CAFile = notPEM }, "not TLS"},
		{"cert without key", func(c *Config) { c.Broker = "ssl://h:8883"; c.CertFile = notPEM }, "both the cert file and the key file"},
		{"missing CA file", func(c *Config) { c.Broker = "ssl://h:8883"; c.CAFile = filepath.Join(dir, "none.pem") }, "TLS CA file"},
		{"CA file without PEM", func(c *Config) { c.Broker = "ssl://h:8883"; c.CAFile = notPEM }, "no PEM certificate"},
		{"bad key pair", func(c *Config) { c.Broker = "ssl://h:8883"; c.CertFile, c.KeyFile = notPEM, notPEM }, "TLS client certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.mutate(&cfg)
			s, err := New(cfg, &recorder{})
			if err == nil || s != nil {
				t.Fatalf("New accepted %+v", cfg)
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want ErrInvalidConfig mentioning %q", err, c.want)
			}
		})
	}

	if _, err := New(ok, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil handler: err = %v", err)
	}
	// Every problem at once, one per line, and never the password.
	_, err := New(Config{Broker: "tcp://user:hunter2@:1883", Password: "hunter2"}, &recorder{})
	msg := err.Error()
	for _, want := range []string{"no host", "client id", "gateway id", "password given without"} {
		if !strings.Contains(msg, want) {
			t.Errorf("joined error misses %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("an error shows the password:\n%s", msg)
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := New(Config{Broker: "tcp://broker.example", ClientID: "agent", GatewayID: "gw-1"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	set := s.set
	if set.brokerURL.String() != "tcp://broker.example:1883" || set.tls != nil {
		t.Errorf("broker = %s, tls %v", set.brokerURL, set.tls)
	}
	if set.TopicPrefix != "streetlights" || set.MaxPayload != 16384 || set.MaxReconnectInterval != 30*time.Second ||
		set.KeepAlive != 30*time.Second || set.ConnectTimeout != 10*time.Second || set.DrainTimeout != 10*time.Second ||
		set.MaxInFlight != 256 || set.Logger == nil || set.Now == nil {
		t.Errorf("defaults not applied: %+v", set.Config)
	}
	if set.telemetryFilter != "streetlights/+/telemetry" || set.statusFilter != "streetlights/+/status" ||
		set.gatewayTopic != "streetlights/_gateways/gw-1/status" {
		t.Errorf("topics: %q %q %q", set.telemetryFilter, set.statusFilter, set.gatewayTopic)
	}
	for in, want := range map[string]string{
		"ssl://h":            "ssl://h:8883",
		"mqtts://h":          "mqtts://h:8883",
		"mqtt://h":           "mqtt://h:1883",
		"tcp://[::1]":        "tcp://[::1]:1883",
		"wss://h/mqtt":       "wss://h/mqtt",
		"ws://h:9001/mqtt":   "ws://h:9001/mqtt",
		"ssl://h:1234":       "ssl://h:1234",
		"tcp://u:p@h":        "tcp://u:p@h:1883",
		"tls://broker.local": "tls://broker.local:8883",
	} {
		s, err := New(Config{Broker: in, ClientID: "a", GatewayID: "g"}, &recorder{})
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := s.set.brokerURL.String(); got != want {
			t.Errorf("broker %s → %s, want %s", in, got, want)
		}
		if isTLS := s.set.tls != nil; isTLS != schemes[s.set.brokerURL.Scheme] {
			t.Errorf("%s: TLS config %v", in, isTLS)
		}
	}
}
