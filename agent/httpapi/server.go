package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Config tunes the servers. Zero values take the defaults below.
type Config struct {
	// Token is EDGE_HTTP_TOKEN. When set, every request on TCP must carry
	// it (Authorization: Bearer <token>, or basic auth with it as the
	// password). Without it, TCP is served only on loopback. The control
	// socket never asks for it: its file permissions guard it.
	Token string
	// Server limits: a slow or hostile client cannot hold a connection or
	// memory for long.
	ReadHeaderTimeout time.Duration // default 5s
	ReadTimeout       time.Duration // default 15s
	WriteTimeout      time.Duration // default 60s (a large fleet's device list)
	IdleTimeout       time.Duration // default 120s
	MaxHeaderBytes    int           // default 16 KiB
	MaxBodyBytes      int64         // default 4 KiB: no endpoint takes a body
	// ShutdownTimeout bounds the graceful shutdown when ctx ends (default
	// 5s); connections still open then are closed.
	ShutdownTimeout time.Duration
	// SocketMode is the control socket's permission bits (default 0660:
	// the daemon's user and group).
	SocketMode fs.FileMode
}

// Defaults of Config.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultMaxBodyBytes      = 4 << 10
	DefaultShutdownTimeout   = 5 * time.Second
	DefaultSocketMode        = fs.FileMode(0o660)
	// socketDirMode is used when the socket's directory must be created.
	socketDirMode = fs.FileMode(0o750)
	// maxSocketPath is the longest Unix socket path (sun_path less its NUL).
	maxSocketPath = 107
)

// Log attribute keys.
const (
	logAddr   = "addr"
	logPath   = "path"
	logErr    = "err"
	logMethod = "method"
	logStatus = "status"
	logDur    = "duration"
	logRemote = "remote"
)

// Server serves the status page, the JSON API, the probes and the metrics.
// New builds it without I/O; ServeTCP and ServeUnix each run one listener
// until their context ends. Both may run at once, with the same handlers.
type Server struct {
	cfg     Config
	src     Source
	metrics *Metrics
	log     *slog.Logger
	api     http.Handler // the handlers, as served on the control socket
	tcp     http.Handler // api behind the token / host checks
}

// New builds the server. m may be nil (a private Metrics is made); logger may
// be nil (nothing is logged).
func New(cfg Config, src Source, m *Metrics, logger *slog.Logger) *Server {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = DefaultSocketMode
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics()
	}
	m.bind(src)
	s := &Server{cfg: cfg, src: src, metrics: m, log: logger.With("component", "httpapi")}
	s.api = s.common(s.routes())
	s.tcp = s.guard(s.api)
	return s
}

// Handler returns the handler as served on TCP: with the token check when
// a token is configured, else with the loopback host check.
func (s *Server) Handler() http.Handler { return s.tcp }

// ServeTCP listens on addr (EDGE_HTTP_ADDR) and serves until ctx ends, then
// shuts down gracefully and returns nil. It refuses (ErrNoToken) to listen on
// anything but loopback without a token, checking both the address asked for
// and the one actually bound.
func (s *Server) ServeTCP(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("http listen %q: %w: %v", addr, ErrInvalid, err)
	}
	if s.cfg.Token == "" {
		if ip := net.ParseIP(host); host == "" || ip != nil && !ip.IsLoopback() {
			return fmt.Errorf("http listen %s: %w", addr, ErrNoToken)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the TCP handler on ln until ctx ends (see ServeTCP), and
// closes ln. It refuses a listener bound beyond loopback without a token.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.Token == "" && !loopbackAddr(ln.Addr()) {
		_ = ln.Close()
		return fmt.Errorf("http serve %s: %w", ln.Addr(), ErrNoToken)
	}
	s.log.Info("status page and API listening", logAddr, "http://"+ln.Addr().String()+"/", "token_required", s.cfg.Token != "")
	return s.serve(ctx, ln, s.tcp, "http "+ln.Addr().String())
}

func loopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// ServeUnix serves the same API on the control socket at path until ctx
// ends. The socket is created with SocketMode (0660) before anyone can
// connect to it: it is bound in a private directory, chmod-ed, then renamed
// into place. The directory is created (0750) if missing. An existing socket
// is replaced only when nothing answers on it (a stale one left by a crash);
// a live one is ErrSocketInUse, and anything that is not a socket is left
// alone. On return the socket file is removed if it is still ours.
func (s *Server) ServeUnix(ctx context.Context, path string) error {
	if path == "" {
		return fmt.Errorf("control socket: %w: empty path", ErrInvalid)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, socketDirMode); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	if err := checkStaleSocket(path); err != nil {
		return err
	}
	ln, mine, err := listenUnixPrivate(ctx, path, s.cfg.SocketMode)
	if err != nil {
		return err
	}
	defer func() {
		// Remove the file only if it is still the socket we made: a newer
		// daemon may have replaced it meanwhile.
		if fi, err := os.Lstat(path); err == nil && os.SameFile(fi, mine) {
			_ = os.Remove(path)
		}
	}()
	s.log.Info("control socket listening", logPath, path)
	return s.serve(ctx, ln, s.api, "control socket "+path)
}

// checkStaleSocket makes sure path is free to take: absent, or a socket no
// process answers on.
func checkStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: %w: it exists and is not a socket; not touching it", path, ErrInvalid)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = conn.Close()
		return fmt.Errorf("control socket %s: %w (is another edge-agent running?)", path, ErrSocketInUse)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil // stale: replaced by the rename below
	}
	return fmt.Errorf("control socket %s: cannot tell whether it is in use: %w", path, err)
}

// listenUnixPrivate binds the socket in a fresh 0700 directory beside path,
// sets its mode, and renames it to path: no other user can connect to it in
// between, whatever the umask.
func listenUnixPrivate(ctx context.Context, path string, mode fs.FileMode) (net.Listener, fs.FileInfo, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".s")
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	tmpSock := filepath.Join(tmp, "s")
	if len(tmpSock) > maxSocketPath {
		return nil, nil, fmt.Errorf("control socket %s: %w: its directory's path is too long to bind the socket in a private directory beside it (%d bytes, at most %d): use a shorter EDGE_CONTROL_SOCKET",
			path, ErrInvalid, len(tmpSock), maxSocketPath)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmpSock)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket listen: %w", err)
	}
	// The listener must not unlink tmpSock on Close: the file has moved.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, fs.FileInfo, error) {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmpSock, mode); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpSock, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, fi, nil
}

// serve runs one http.Server on ln until ctx ends, then shuts it down
// gracefully. The Serve goroutine is waited for before returning.
func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler, what string) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests in flight when ctx ends finish within the shutdown
		// grace instead of being cancelled mid-answer.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s: %w", what, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		s.log.Warn("shutdown grace over; closing the remaining connections", "listener", what, logErr, err)
		_ = srv.Close()
	}
	<-errc // http.ErrServerClosed once Shutdown has begun
	return nil
}
