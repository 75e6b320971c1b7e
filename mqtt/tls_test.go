package mqtt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

// tlsBroker is a private mosquitto with a TLS listener that requires a
// client certificate and a username/password.
type tlsBroker struct {
	url                       string
	caFile, certFile, keyFile string // the CA, and a client certificate it signed
	user, password            string
}

func startTLSBroker(t *testing.T) *tlsBroker {
	t.Helper()
	bin, err := mqtttest.Binary()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skipf("skipping: mosquitto_passwd not found (it comes with mosquitto: %s)", mqtttest.InstallHint)
	}
	dir := t.TempDir()
	caKey, caCert := newCert(t, "test CA", nil, nil, true, 0)
	srvKey, srvCert := newCert(t, "127.0.0.1", caKey, caCert, false, x509.ExtKeyUsageServerAuth)
	cliKey, cliCert := newCert(t, "edge-agent", caKey, caCert, false, x509.ExtKeyUsageClientAuth)
	tb := &tlsBroker{
		caFile: writePEM(t, dir, "ca.pem", "CERTIFICATE", caCert.Raw),
		user:   "agent", password: "correct horse",
	}
	srvCertFile := writePEM(t, dir, "server.pem", "CERTIFICATE", srvCert.Raw)
	srvKeyFile := writePEM(t, dir, "server-key.pem", "EC PRIVATE KEY", marshalKey(t, srvKey))
	tb.certFile = writePEM(t, dir, "client.pem", "CERTIFICATE", cliCert.Raw)
	tb.keyFile = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", marshalKey(t, cliKey))
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-c", "-b", pwFile, tb.user, tb.password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root\n" // see mqtttest: else it cannot read the 0700 directory
	}
	conf := fmt.Sprintf(`listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
allow_anonymous false
password_file %s
persistence false
log_dest file %s
%s`, port, tb.caFile, srvCertFile, srvKeyFile, pwFile, filepath.Join(dir, "mosquitto.log"), user)
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Logf("TLS mosquitto log:\n%s", log)
		}
	})
	// Ready when a full handshake with the client certificate succeeds:
	// that is this broker (it has our CA), not another listener.
	clientTLS, err := buildTLS("127.0.0.1", tb.caFile, tb.certFile, tb.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, "the TLS broker", func() bool {
		select {
		case <-exited:
			t.Fatal("TLS mosquitto exited at start")
		default:
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, clientTLS)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	tb.url = "ssl://" + addr
	return tb
}

func newCert(t *testing.T, cn string, parentKey *ecdsa.PrivateKey, parent *x509.Certificate, isCA bool, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if isCA {
		// No extended key usage on the CA: OpenSSL (mosquitto) would then
		// demand that it list clientAuth too.
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		if ip := net.ParseIP(cn); ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	// World-readable: mosquitto reads them, possibly as another user.
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSubscriberTLSAndAuth: with the CA, a client certificate and the
// right password, messages flow; a wrong password, a missing certificate
// or an unknown CA each keep it disconnected with the reason in
// LastError, and the password is never logged.
func TestSubscriberTLSAndAuth(t *testing.T) {
	t.Parallel()
	tb := startTLSBroker(t)
	good := func(t *testing.T, id string) (Config, *logBuffer) {
		cfg := testConfig(t, tb.url, id)
		lg, buf := testLogger(t)
		cfg.Logger = lg
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = tb.caFile, tb.certFile, tb.keyFile
		cfg.Username, cfg.Password = tb.user, tb.password
		return cfg, buf
	}

	t.Run("accepted", func(t *testing.T) {
		cfg, _ := good(t, "tls-ok")
		rec := &recorder{}
		sub := start(t, cfg, rec)
		sub.waitConnected(t)

		pubTLS, err := buildTLS("127.0.0.1", tb.caFile, tb.certFile, tb.keyFile)
		if err != nil {
			t.Fatal(err)
		}
		o := paho.NewClientOptions().AddBroker(tb.url).SetClientID("tls-pub").SetTLSConfig(pubTLS).
			SetUsername(tb.user).SetPassword(tb.password)
		pub := paho.NewClient(o)
		if tok := pub.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("TLS publisher: %v", tok.Error())
		}
		defer pub.Disconnect(100)
		if tok := pub.Publish("streetlights/LP-TLS/telemetry", 1, false, `{"voltage":220}`); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		waitFor(t, "the message over TLS", func() bool { return len(rec.telemetry()) == 1 })
	})

	failures := []struct {
		name   string
		mutate func(*Config)
		want   []string // one of them in LastError
	}{
		{"wrong password", func(c *Config) { c.Password = "wrong horse" }, []string{"not Authorized"}},
		// With TLS 1.3 the client's handshake ends before the server checks
		// the certificate: the refusal shows as an alert or a reset.
		{"no client certificate", func(c *Config) { c.CertFile, c.KeyFile = "", "" }, []string{"certificate", "reset", "EOF"}},
		{"unknown CA", func(c *Config) { c.CAFile = "" }, []string{"certificate signed by unknown authority"}},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			cfg, buf := good(t, "tls-"+strings.ReplaceAll(f.name, " ", "-"))
			f.mutate(&cfg)
			sub := start(t, cfg, &recorder{})
			waitFor(t, "the failure to be reported", func() bool { return sub.Stats().LastError != "" })
			st := sub.Stats()
			if st.Connected || sub.Connected() || !slices.ContainsFunc(f.want, func(w string) bool { return strings.Contains(st.LastError, w) }) {
				t.Errorf("stats %+v; want disconnected, LastError mentioning %q", st, f.want)
			}
			sub.stop(t)
			if strings.Contains(buf.String(), tb.password) || strings.Contains(buf.String(), "wrong horse") {
				t.Error("the log shows a password")
			}
		})
	}
}
