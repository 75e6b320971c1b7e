package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "s3cret-token-0123456789"

// serveOn runs s.Serve on ln in a goroutine; the returned stop cancels it
// and returns Serve's result.
func serveOn(t *testing.T, s *Server, ln net.Listener) (stop func() error) {
	t.Helper()
	return runUntilStopped(t, "Serve", func(ctx context.Context) error { return s.Serve(ctx, ln) })
}

// runUntilStopped runs serve in a goroutine; the returned stop (also run at
// cleanup) cancels its context and returns its result, or an error if it
// does not return within 10 s.
func runUntilStopped(t *testing.T, what string, serve func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New(what + " did not return within 10s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAuthOnLoopback(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	t.Run("no token", func(t *testing.T) {
		s, _ := newTestServer(t, src, Config{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		stop := serveOn(t, s, ln)
		base := "http://" + ln.Addr().String()
		for _, p := range []string{"/api/status", "/", "/metrics", "/healthz"} {
			if code, _, body := get(t, http.DefaultClient, base+p); code != 200 {
				t.Errorf("%s: %d %s", p, code, body)
			}
		}
		// DNS rebinding: a foreign host name pointed at 127.0.0.1.
		code, _, body := get(t, http.DefaultClient, base+"/api/status", "Host", "attacker.example:8080")
		if code != 403 || !strings.Contains(body, "loopback") {
			t.Errorf("foreign Host: %d %s, want 403", code, body)
		}
		for _, host := range []string{"localhost:8080", "[::1]:8080", "127.0.0.2"} {
			if code, _, _ := get(t, http.DefaultClient, base+"/api/status", "Host", host); code != 200 {
				t.Errorf("Host %s: %d", host, code)
			}
		}
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Run("token", func(t *testing.T) {
		s, _ := newTestServer(t, src, Config{Token: testToken})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serveOn(t, s, ln)
		checkTokenRequired(t, "http://"+ln.Addr().String())
	})
}

func checkTokenRequired(t *testing.T, base string) {
	t.Helper()
	for _, p := range []string{"/api/status", "/", "/metrics", "/healthz", "/api/devices", "/nope"} {
		code, hdr, body := get(t, http.DefaultClient, base+p)
		if code != 401 {
			t.Errorf("%s without token: %d, want 401", p, code)
		}
		if !strings.Contains(strings.Join(hdr.Values("WWW-Authenticate"), " "), "Basic") {
			t.Errorf("%s: WWW-Authenticate %q: a browser must be able to ask for the token", p, hdr.Values("WWW-Authenticate"))
		}
		if strings.Contains(body, "gw-test") {
			t.Errorf("%s: the 401 leaks status data", p)
		}
	}
	for name, hdr := range map[string][]string{
		"bearer":            {"Authorization", "Bearer " + testToken},
		"bearer lower-case": {"Authorization", "bearer " + testToken},
		"basic":             {"Authorization", "Basic " + basic("tech", testToken)},
		"basic no user":     {"Authorization", "Basic " + basic("", testToken)},
	} {
		code, _, body := get(t, http.DefaultClient, base+"/api/status", hdr...)
		if code != 200 || !strings.Contains(body, `"gateway_id":"gw-test"`) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	for name, hdr := range map[string][]string{
		"wrong bearer":     {"Authorization", "Bearer " + testToken + "x"},
		"prefix of token":  {"Authorization", "Bearer " + testToken[:10]},
		"empty bearer":     {"Authorization", "Bearer "},
		"token as user":    {"Authorization", "Basic " + basic(testToken, "")},
		"wrong basic":      {"Authorization", "Basic " + basic("tech", "guess")},
		"token, no scheme": {"Authorization", testToken},
	} {
		if code, _, _ := get(t, http.DefaultClient, base+"/api/status", hdr...); code != 401 {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
}

func basic(user, pw string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pw)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// TestOffLoopback: all interfaces (0.0.0.0) is not loopback. Without a token
// the server refuses to start; with one it serves, token required.
func TestOffLoopback(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	s, _ := newTestServer(t, src, Config{})
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.10:8080"} {
		err := s.ServeTCP(context.Background(), addr)
		if !errors.Is(err, ErrNoToken) {
			t.Errorf("ServeTCP(%q) without token: %v, want ErrNoToken", addr, err)
		}
	}
	// The bound address is checked too (a host name may resolve anywhere).
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := s.Serve(context.Background(), ln); !errors.Is(err, ErrNoToken) {
		t.Fatalf("Serve on %s without token: %v, want ErrNoToken", ln.Addr(), err)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		_ = c.Close()
		t.Error("the refused listener was left open")
	}

	st, _ := newTestServer(t, src, Config{Token: testToken})
	ln, err = net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, st, ln)
	checkTokenRequired(t, fmt.Sprintf("http://127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port))
	// With a token, any Host is fine: the token is the guard.
	code, _, _ := get(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/api/status", ln.Addr().(*net.TCPAddr).Port),
		"Host", "gateway.example:8080", "Authorization", "Bearer "+testToken)
	if code != 200 {
		t.Errorf("token and a real host name: %d", code)
	}
}

// TestServeTCPShutdown: ServeTCP returns nil once its context ends, after a
// request in flight has had its answer.
func TestServeTCPShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	src := &fakeSource{snap: healthySnapshot()}
	src.status = func(context.Context) Snapshot {
		entered <- struct{}{}
		<-release
		return healthySnapshot()
	}
	s, _ := newTestServer(t, src, Config{ShutdownTimeout: 5 * time.Second})
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeTCP(ctx, addr) }()
	waitDial(t, "tcp", addr)

	type answer struct {
		code int
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/api/status")
		if err != nil {
			got <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		got <- answer{code: resp.StatusCode, body: string(b)}
	}()
	<-entered
	cancel()
	time.Sleep(50 * time.Millisecond) // let Shutdown begin
	close(release)
	a := <-got
	if a.err != nil || a.code != 200 || !strings.Contains(a.body, "gw-test") {
		t.Errorf("request in flight at shutdown: %+v", a)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeTCP did not return")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Error("still listening after ServeTCP returned")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func waitDial(t *testing.T, network, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// sockDir returns a short directory: a Unix socket path is limited to 107
// bytes, and t.TempDir() paths can be long.
func sockDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ea")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func serveUnix(t *testing.T, s *Server, path string) (stop func() error) {
	t.Helper()
	return runUntilStopped(t, "ServeUnix", func(ctx context.Context) error { return s.ServeUnix(ctx, path) })
}

func TestServeUnix(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	// A token is configured, but the socket relies on file permissions.
	s, _ := newTestServer(t, src, Config{Token: testToken})
	dir := filepath.Join(sockDir(t), "run", "edge-agent")
	path := filepath.Join(dir, "control.sock")
	stop := serveUnix(t, s, path)
	waitDial(t, "unix", path)

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&0o027 != 0 {
		t.Errorf("created directory mode %v: others must have no access, group no write", di.Mode().Perm())
	}
	// The socket answers from the moment it is renamed into place, a moment
	// before its private bind directory is removed: give that a little time.
	var entries []fs.DirEntry
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		entries, _ = os.ReadDir(dir)
		if len(entries) == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only the socket (the private bind directory must be gone)", entries)
	}
	c := unixClient(path)
	code, _, body := get(t, c, "http://edge-agent/api/status")
	if code != 200 || !strings.Contains(body, `"gateway_id":"gw-test"`) {
		t.Errorf("status over the socket without token: %d %s", code, body)
	}
	code, _, _ = get(t, c, "http://edge-agent/api/nope")
	if code != 404 {
		t.Errorf("unknown path over the socket: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("ServeUnix: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind after shutdown: %v", err)
	}
}

func TestServeUnixStaleAndLive(t *testing.T) {
	src := &fakeSource{snap: healthySnapshot()}
	s, _ := newTestServer(t, src, Config{})
	dir := sockDir(t)
	path := filepath.Join(dir, "control.sock")

	// A stale socket, as a crashed daemon leaves it: a socket file nobody
	// listens on.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not there: %v", err)
	}
	stop := serveUnix(t, s, path)
	waitDial(t, "unix", path)
	if code, _, _ := get(t, unixClient(path), "http://edge-agent/healthz"); code != 200 {
		t.Errorf("after replacing the stale socket: %d", code)
	}

	// A live one is not taken over.
	s2, _ := newTestServer(t, src, Config{})
	err = s2.ServeUnix(context.Background(), path)
	if !errors.Is(err, ErrSocketInUse) {
		t.Errorf("second server on a live socket: %v, want ErrSocketInUse", err)
	}
	if code, _, _ := get(t, unixClient(path), "http://edge-agent/healthz"); code != 200 {
		t.Errorf("the live server stopped answering after the refused takeover: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Not a socket: left alone.
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = s2.ServeUnix(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file at the socket path: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("a regular file at the socket path was changed")
	}
}

func TestServeUnixPathTooLong(t *testing.T) {
	s, _ := newTestServer(t, &fakeSource{snap: healthySnapshot()}, Config{})
	dir := filepath.Join(sockDir(t), strings.Repeat("d", 90))
	err := s.ServeUnix(context.Background(), filepath.Join(dir, "c"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "too long") {
		t.Errorf("a socket path too long: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
