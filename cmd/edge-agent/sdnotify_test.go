package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// notifySocket plays systemd's side of sd_notify: a unixgram socket in a temp
// dir, named by NOTIFY_SOCKET for the duration of the test.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &notifySocket{t: t, conn: conn}
}

// next returns the next datagram. The deadline only stops a broken test from
// hanging; it is not a timing assertion.
func (s *notifySocket) next() string {
	s.t.Helper()
	buf := make([]byte, 4096)
	if err := s.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		s.t.Fatal(err)
	}
	n, err := s.conn.Read(buf)
	if err != nil {
		s.t.Fatalf("no sd_notify message: %v", err)
	}
	return string(buf[:n])
}

// pending returns a datagram already queued on the socket, or "" if none.
func (s *notifySocket) pending() string {
	s.t.Helper()
	buf := make([]byte, 4096)
	if err := s.conn.SetReadDeadline(time.Now()); err != nil {
		s.t.Fatal(err)
	}
	n, err := s.conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		s.t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func bufLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// lockedBuffer lets the watchdog goroutine log while the test reads the log.
type lockedBuffer struct {
	ch chan struct{}
	b  bytes.Buffer
}

func newLockedBuffer() *lockedBuffer {
	l := &lockedBuffer{ch: make(chan struct{}, 1)}
	l.ch <- struct{}{}
	return l
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	<-l.ch
	defer func() { l.ch <- struct{}{} }()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	<-l.ch
	defer func() { l.ch <- struct{}{} }()
	return l.b.String()
}

func unsetSystemdEnv(t *testing.T) {
	t.Helper()
	// t.Setenv restores the old values; the empty value is "unset" to go-systemd.
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		t.Setenv(k, "")
	}
}

func TestNotifyMessages(t *testing.T) {
	unsetSystemdEnv(t)
	sock := listenNotify(t)
	logger, logs := bufLogger()

	notifyReady(logger)
	if got := sock.next(); got != "READY=1" {
		t.Errorf("notifyReady sent %q, want READY=1", got)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("notifyReady logged an error on success: %s", logs)
	}

	notifyStatus("connecting to broker")
	if got := sock.next(); got != "STATUS=connecting to broker" {
		t.Errorf("notifyStatus sent %q", got)
	}

	// A newline would start a second assignment: a status taken from an error
	// text must never be able to send READY=1 or WATCHDOG=1.
	notifyStatus("broker down\nWATCHDOG=1\r\nREADY=1")
	if got := sock.next(); got != "STATUS=broker down WATCHDOG=1  READY=1" {
		t.Errorf("notifyStatus with newlines sent %q", got)
	}

	notifyStopping()
	if got := sock.next(); got != "STOPPING=1" {
		t.Errorf("notifyStopping sent %q, want STOPPING=1", got)
	}
}

func TestStatusLine(t *testing.T) {
	long := strings.Repeat("é", maxStatusLen) // 2 bytes each: the cut falls inside a rune
	tests := []struct {
		name, in string
		check    func(string) bool
	}{
		{"short kept", "ok", func(s string) bool { return s == "ok" }},
		{"NUL flattened", "a\x00b", func(s string) bool { return s == "a b" }},
		{"long cut on a rune boundary", long, func(s string) bool {
			return len(s) <= maxStatusLen && len(s) >= maxStatusLen-1 && utf8.ValidString(s)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusLine(tt.in); !tt.check(got) {
				t.Errorf("statusLine(%q) = %q", tt.in, got)
			}
		})
	}
}

func TestNotifyOutsideSystemdIsNoop(t *testing.T) {
	unsetSystemdEnv(t)
	logger, logs := bufLogger()
	notifyReady(logger)
	notifyStatus("x")
	notifyStopping()

	done := make(chan struct{})
	go func() {
		defer close(done)
		runWatchdog(context.Background(), logger, func() bool {
			t.Error("progress called without a watchdog")
			return true
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runWatchdog did not return without WATCHDOG_USEC: it must be a no-op outside systemd")
	}
	if logs.Len() != 0 {
		t.Errorf("outside systemd nothing should be logged, got: %s", logs)
	}
}

func TestNotifyReadyLogsUnreachableSocket(t *testing.T) {
	unsetSystemdEnv(t)
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "missing.sock"))
	logger, logs := bufLogger()
	notifyReady(logger)
	if !strings.Contains(logs.String(), "cannot send READY=1") {
		t.Errorf("an unreachable NOTIFY_SOCKET must be logged, got: %q", logs)
	}
}

func TestRunWatchdogNotOurs(t *testing.T) {
	tests := []struct {
		name, usec, pid string
		wantLog         string
	}{
		{"another process's watchdog", "20000", strconv.Itoa(os.Getpid() + 1), ""},
		{"bad WATCHDOG_USEC", "soon", "", "cannot read its settings"},
		{"zero WATCHDOG_USEC", "0", "", "cannot read its settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetSystemdEnv(t)
			sock := listenNotify(t)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			logger, logs := bufLogger()
			done := make(chan struct{})
			go func() {
				defer close(done)
				runWatchdog(context.Background(), logger, func() bool { return true })
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("runWatchdog kept running for a watchdog that is not ours")
			}
			if msg := sock.pending(); msg != "" {
				t.Errorf("sent %q, want nothing", msg)
			}
			if tt.wantLog == "" && logs.Len() != 0 {
				t.Errorf("unexpected log: %s", logs)
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q does not contain %q", logs, tt.wantLog)
			}
		})
	}
}

// TestWatchdogLoopFeedsOnlyOnProgress drives the loop tick by tick. The tick
// channel is unbuffered, so once the send of tick n+1 returns, tick n has been
// handled completely: the counts below are exact, no sleeping involved.
func TestWatchdogLoopFeedsOnlyOnProgress(t *testing.T) {
	logger, logs := bufLogger()
	script := []bool{true, true, false, false, false, true, true}
	var calls, pings int
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchdogLoop(ctx, logger, tick, func() bool {
			p := script[calls]
			calls++
			return p
		}, func() error {
			pings++
			return nil
		})
	}()
	for range script {
		tick <- time.Time{}
	}
	cancel()
	<-done // the loop wrote calls and pings; reading them after done is race-free

	if calls != len(script) {
		t.Errorf("progress called %d times for %d ticks", calls, len(script))
	}
	if pings != 4 {
		t.Errorf("sent %d WATCHDOG=1 for script %v, want 4 (one per tick with progress)", pings, script)
	}
	out := logs.String()
	if n := strings.Count(out, "main loops stalled"); n != 1 {
		t.Errorf("stall logged %d times, want once per stall:\n%s", n, out)
	}
	if n := strings.Count(out, "turning again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, out)
	}
}

func TestWatchdogLoopPingErrorsLoggedOnce(t *testing.T) {
	logger, logs := bufLogger()
	results := []error{errors.New("refused"), errors.New("refused"), nil, nil}
	var i int
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchdogLoop(ctx, logger, tick, func() bool { return true }, func() error {
			err := results[i]
			i++
			return err
		})
	}()
	for range results {
		tick <- time.Time{}
	}
	cancel()
	<-done
	out := logs.String()
	if n := strings.Count(out, "cannot send WATCHDOG=1"); n != 1 {
		t.Errorf("ping failure logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "WATCHDOG=1 sent again"); n != 1 {
		t.Errorf("ping recovery logged %d times, want once:\n%s", n, out)
	}
}

// TestRunWatchdogEndToEnd runs the real thing against a fake systemd socket:
// WATCHDOG=1 arrives while progress reports true, and none while it reports
// false.
func TestRunWatchdogEndToEnd(t *testing.T) {
	unsetSystemdEnv(t)
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "20000") // 20 ms: pings every 10 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	var turning atomic.Bool
	var calls atomic.Int64
	turning.Store(true)
	logger := slog.New(slog.NewTextHandler(newLockedBuffer(), nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runWatchdog(ctx, logger, func() bool {
			calls.Add(1)
			return turning.Load()
		})
	}()
	defer func() {
		cancel()
		<-done
	}()

	if got := sock.next(); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1", got)
	}

	// Stall: after the flip, wait until progress has been asked three more
	// times, then drain. At most one ping can have been decided before the
	// flip was seen; after that, none.
	turning.Store(false)
	base := calls.Load()
	for calls.Load() < base+1 {
		time.Sleep(time.Millisecond)
	}
	for sock.pending() != "" { // pings decided before the flip
	}
	base = calls.Load()
	for calls.Load() < base+3 {
		time.Sleep(time.Millisecond)
	}
	if msg := sock.pending(); msg != "" {
		t.Errorf("sent %q while the main loops were stalled", msg)
	}

	turning.Store(true)
	if got := sock.next(); got != "WATCHDOG=1" {
		t.Errorf("after recovery got %q, want WATCHDOG=1", got)
	}
}
