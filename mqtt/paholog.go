package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// pahoSink is the logger of the running Subscriber, where paho's own log
// lines go. paho's loggers are package variables read by its goroutines
// without synchronisation, so they are assigned once, in init, before any
// client exists; only this pointer changes afterwards. With several
// Subscribers running at once (tests), the latest one's logger receives
// paho's lines: they do not say which client they are about anyway.
var pahoSink atomic.Pointer[slog.Logger]

func init() {
	// paho reports a routine connection loss at ERROR and bookkeeping
	// ("memorystore del: message 1 not found" on every subscription) at
	// WARN; the Subscriber logs the connection state itself at the right
	// levels. So: CRITICAL is an error, ERROR a warning, WARN debug. DEBUG
	// stays off: it logs every packet.
	paho.CRITICAL = pahoLogger{level: slog.LevelError}
	paho.ERROR = pahoLogger{level: slog.LevelWarn}
	paho.WARN = pahoLogger{level: slog.LevelDebug}
}

type pahoLogger struct{ level slog.Level }

func (l pahoLogger) Println(v ...any) {
	if lg := l.sink(); lg != nil {
		l.log(lg, strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
	}
}

func (l pahoLogger) Printf(format string, v ...any) {
	if lg := l.sink(); lg != nil {
		l.log(lg, fmt.Sprintf(format, v...))
	}
}

// sink returns the logger to write to, nil when nobody listens at this
// level (then the line is not even formatted).
func (l pahoLogger) sink() *slog.Logger {
	lg := pahoSink.Load()
	if lg == nil || !lg.Enabled(context.Background(), l.level) {
		return nil
	}
	return lg
}

func (l pahoLogger) log(lg *slog.Logger, msg string) {
	lg.Log(context.Background(), l.level, "paho: "+msg, slog.String(logKeyComponent, "paho"))
}
