package main

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The systemd side of the daemon's life (sd_notify(3)): READY once the store is
// open, STOPPING on shutdown, a one-line STATUS for `systemctl status`, and the
// watchdog. Every call is a no-op when the process does not run under systemd
// (NOTIFY_SOCKET / WATCHDOG_USEC unset), so the same binary runs in a terminal,
// a container or a test without special cases.
//
// The environment is never unset (unsetEnvironment=false): the watchdog needs
// NOTIFY_SOCKET for every ping, and mutating the process environment would race
// with code that reads it.

// Log attribute keys of this file.
const (
	sdKeyErr      = "err"
	sdKeyInterval = "interval"
	sdKeyTimeout  = "timeout"
)

// maxStatusLen bounds a STATUS= line: systemctl shows one line, and a bounded
// datagram can never fail for size.
const maxStatusLen = 200

// notifyReady tells systemd (Type=notify) that start-up is done. The daemon
// calls it once the store is open, not when the broker or the cloud answer:
// edge links drop, and a gateway must not sit in "activating" because of them.
func notifyReady(logger *slog.Logger) {
	sent, err := daemon.SdNotify(false, daemon.SdNotifyReady)
	switch {
	case err != nil:
		// Under Type=notify systemd will time the start out and restart us;
		// say why in the journal.
		logger.Error("systemd: cannot send READY=1", sdKeyErr, err)
	case sent:
		logger.Debug("systemd: READY=1 sent")
	}
}

// notifyStopping tells systemd the daemon is shutting down, so that
// `systemctl status` says "deactivating" instead of a stalled "active". An
// error is ignored: the process is exiting and has nobody left to tell.
func notifyStopping() {
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
}

// notifyStatus sets the one-line status systemd shows in `systemctl status`.
// Newlines would end the STATUS= assignment and start another (a status text
// taken from an error could otherwise send READY=1 or WATCHDOG=1), so they are
// flattened; the text is cut to maxStatusLen bytes on a rune boundary. Errors
// are ignored: the status is informational.
func notifyStatus(s string) {
	_, _ = daemon.SdNotify(false, "STATUS="+statusLine(s))
}

func statusLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if len(s) <= maxStatusLen {
		return s
	}
	cut := maxStatusLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// runWatchdog feeds the systemd watchdog (WatchdogSec= in the unit) at half of
// its timeout, but only while progress() reports that the main loops are
// turning: a daemon whose goroutines are deadlocked but whose ticker still
// fires must be restarted, which is the point of a watchdog. It returns at
// once when the watchdog is not enabled for this process (not under systemd,
// no WatchdogSec=, or WATCHDOG_PID names another process), else when ctx is
// done. The caller owns the goroutine it runs in and waits for it.
//
// progress is called once per interval from this goroutine; it should answer
// "did every main loop turn since the last call?" and must not block.
func runWatchdog(ctx context.Context, logger *slog.Logger, progress func() bool) {
	timeout, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		// systemd set WATCHDOG_USEC but we cannot read it: it will kill us
		// after the timeout. Say so loudly; there is nothing better to do.
		logger.Error("systemd watchdog: cannot read its settings; not feeding it", sdKeyErr, err)
		return
	}
	if timeout <= 0 {
		return
	}
	interval := timeout / 2
	logger.Debug("systemd watchdog enabled", sdKeyTimeout, timeout, sdKeyInterval, interval)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	watchdogLoop(ctx, logger, ticker.C, progress, func() error {
		_, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		return err
	})
}

// watchdogLoop is runWatchdog's loop with its clock and its sender injected,
// so that tests drive it tick by tick. It logs transitions only (stalled,
// turning again, ping failing, ping working again), never once per tick.
func watchdogLoop(ctx context.Context, logger *slog.Logger, tick <-chan time.Time, progress func() bool, ping func() error) {
	stalled, failing := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		// A tick received is handled in full, even if ctx ended meanwhile:
		// one more WATCHDOG=1 while stopping is harmless, and the test can
		// then know that every tick it sent was handled.
		if !progress() {
			if !stalled {
				logger.Error("main loops stalled: not feeding the systemd watchdog (systemd restarts the agent if this lasts WatchdogSec)")
				stalled = true
			}
			continue
		}
		if stalled {
			logger.Warn("main loops turning again: feeding the systemd watchdog")
			stalled = false
		}
		if err := ping(); err != nil {
			if !failing {
				logger.Error("systemd watchdog: cannot send WATCHDOG=1", sdKeyErr, err)
				failing = true
			}
			continue
		}
		if failing {
			logger.Warn("systemd watchdog: WATCHDOG=1 sent again")
			failing = false
		}
	}
}
