package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Limits of the query parameters.
const (
	DefaultTicketLimit = 100
	MaxTicketLimit     = 10000
	maxQueryLen        = 64
	// sourceTimeout bounds one call into the Source from a request.
	sourceTimeout = 10 * time.Second
)

// Error codes of ErrorBody.Code.
const (
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeBadRequest       = "bad_request"
	codeConflict         = "conflict"
	codeUnavailable      = "unavailable"
	codeInternal         = "internal"
	codeUnauthorized     = "unauthorized"
	codeTooLarge         = "request_too_large"
	codeForbidden        = "forbidden"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	get := func(h http.HandlerFunc) http.Handler { return allow(h, http.MethodGet, http.MethodHead) }
	post := func(h http.HandlerFunc) http.Handler { return allow(h, http.MethodPost) }

	mux.Handle("/{$}", get(s.page))
	mux.Handle("/static/{file}", get(s.static))
	mux.Handle("/api/status", get(s.status))
	mux.Handle("/api/devices", get(s.devices))
	mux.Handle("/api/devices/{nameplate}", get(s.device))
	mux.Handle("/api/tickets", get(s.tickets))
	mux.Handle("/api/tickets/{id}", get(s.ticket))
	mux.Handle("/api/tickets/{id}/retry", post(s.retry))
	mux.Handle("/api/tickets/retry-failed", post(s.retryFailed))
	mux.Handle("/healthz", get(s.healthz))
	mux.Handle("/readyz", get(s.readyz))
	mux.Handle("/metrics", get(s.metrics.handler().ServeHTTP))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such page: "+r.URL.Path)
	}))
	return mux
}

// allow answers 405, with the Allow header, to any other method.
func allow(h http.Handler, methods ...string) http.Handler {
	list := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", list)
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed,
			fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, list))
	})
}

// common wraps every request on both listeners: security headers, the body
// bound, cross-origin protection for POST, and a debug access log.
func (s *Server) common(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, codeForbidden, "cross-origin request refused")
	}))
	h = cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("http request", logMethod, r.Method, logPath, r.URL.Path, logStatus, rec.status,
				logDur, time.Since(start), logRemote, r.RemoteAddr)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, "encoding the answer: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg, Code: errCode})
}

// sourceError answers an error from the Source with the status its sentinel
// names.
func (s *Server) sourceError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, codeConflict, err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
	default:
		s.log.Error("status API request failed", logMethod, r.Method, logPath, r.URL.Path, logErr, err)
		writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
	}
}

func srcCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), sourceTimeout)
}

// Snapshot returns the Source's status, assessed. The CLI and the metrics
// see the same thing as the page.
func (s *Server) snapshot(ctx context.Context) Snapshot {
	snap := s.src.Status(ctx)
	if snap.Source == "" {
		snap.Source = SourceDaemon
	}
	snap.Assess()
	return snap
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := srcCtx(r)
	defer cancel()
	writeJSON(w, http.StatusOK, s.snapshot(ctx))
}

// parseBool reads a flag parameter: absent or "" is false; 1/true/yes and
// 0/false/no are accepted.
func parseBool(q string, name string) (bool, error) {
	switch strings.ToLower(q) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	}
	return false, fmt.Errorf("%s: want 1 or 0, got %q", name, q)
}

// parseCount reads a non-negative integer parameter; absent gives def.
func parseCount(q, name string, def, maxV int) (int, error) {
	if q == "" {
		return def, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 0 || n > maxV {
		return 0, fmt.Errorf("%s: want a whole number from 0 to %d, got %q", name, maxV, q)
	}
	return n, nil
}

func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	faulty, err := parseBool(qv.Get("faulty"), "faulty")
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	q := strings.TrimSpace(qv.Get("q"))
	if len(q) > maxQueryLen {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("q: at most %d characters", maxQueryLen))
		return
	}
	// limit 0 (or absent) lists every match.
	limit, err := parseCount(qv.Get("limit"), "limit", 0, 1<<30)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	offset, err := parseCount(qv.Get("offset"), "offset", 0, 1<<30)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	ctx, cancel := srcCtx(r)
	defer cancel()
	views, err := s.src.Devices(ctx)
	if err != nil {
		s.sourceError(w, r, err)
		return
	}
	out := DeviceList{Offset: offset, Devices: []Device{}}
	lq := strings.ToLower(q)
	for i := range views {
		v := &views[i]
		if faulty && len(v.Faults) == 0 {
			continue
		}
		if lq != "" && !strings.Contains(strings.ToLower(v.Nameplate), lq) {
			continue
		}
		out.Total++
		if out.Total <= offset || limit > 0 && len(out.Devices) >= limit {
			continue
		}
		out.Devices = append(out.Devices, DeviceOf(*v, false))
	}
	out.Count = len(out.Devices)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("nameplate")
	if !agent.ValidNameplate(name) {
		writeError(w, http.StatusBadRequest, codeBadRequest,
			fmt.Sprintf("invalid nameplate %q: 1 to 64 of A-Z a-z 0-9 . _ -", truncate(name, 80)))
		return
	}
	ctx, cancel := srcCtx(r)
	defer cancel()
	v, err := s.src.Device(ctx, name)
	if err != nil {
		s.sourceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DeviceOf(v, true))
}

func (s *Server) tickets(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	state := agent.TicketState(qv.Get("state"))
	if state != "" && !state.Valid() {
		names := make([]string, len(agent.TicketStates))
		for i, st := range agent.TicketStates {
			names[i] = string(st)
		}
		writeError(w, http.StatusBadRequest, codeBadRequest,
			fmt.Sprintf("unknown state %q: want one of %s", truncate(string(state), 40), strings.Join(names, ", ")))
		return
	}
	name := qv.Get("nameplate")
	if name != "" && !agent.ValidNameplate(name) {
		writeError(w, http.StatusBadRequest, codeBadRequest,
			fmt.Sprintf("invalid nameplate %q: 1 to 64 of A-Z a-z 0-9 . _ -", truncate(name, 80)))
		return
	}
	limit, err := parseCount(qv.Get("limit"), "limit", DefaultTicketLimit, MaxTicketLimit)
	if err == nil && limit == 0 {
		err = fmt.Errorf("limit: want a whole number from 1 to %d", MaxTicketLimit)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	ctx, cancel := srcCtx(r)
	defer cancel()
	ts, err := s.src.Tickets(ctx, TicketQuery{State: state, Nameplate: name, Limit: limit})
	if err != nil {
		s.sourceError(w, r, err)
		return
	}
	out := TicketList{State: string(state), Nameplate: name, Limit: limit, Tickets: make([]Ticket, 0, len(ts))}
	for _, t := range ts {
		out.Tickets = append(out.Tickets, TicketOf(t))
	}
	out.Count = len(out.Tickets)
	writeJSON(w, http.StatusOK, out)
}

func parseProtocol(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest,
			fmt.Sprintf("invalid ticket id %q: want its id_external_protocol, a positive whole number", truncate(raw, 40)))
		return 0, false
	}
	return id, true
}

func (s *Server) ticket(w http.ResponseWriter, r *http.Request) {
	id, ok := parseProtocol(w, r)
	if !ok {
		return
	}
	ctx, cancel := srcCtx(r)
	defer cancel()
	t, err := s.src.Ticket(ctx, id)
	if err != nil {
		s.sourceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TicketOf(t))
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	id, ok := parseProtocol(w, r)
	if !ok {
		return
	}
	ctx, cancel := srcCtx(r)
	defer cancel()
	t, err := s.src.Retry(ctx, id)
	if err != nil {
		s.sourceError(w, r, err)
		return
	}
	res := RetryResult{Ticket: TicketOf(t)}
	if t.Protocol != id {
		res.RenumberedFrom = id
	}
	s.log.Info("ticket retried on request", "protocol", id, "state", t.State, "new_protocol", t.Protocol)
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) retryFailed(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := srcCtx(r)
	defer cancel()
	n, err := s.src.RetryFailed(ctx)
	if err != nil {
		s.sourceError(w, r, err)
		return
	}
	s.log.Info("failed tickets retried on request", "count", n)
	writeJSON(w, http.StatusOK, RetryFailedResult{Retried: n})
}

func (s *Server) probe(w http.ResponseWriter, r *http.Request, check func(context.Context) error) {
	ctx, cancel := srcCtx(r)
	defer cancel()
	if err := check(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, ProbeResult{Status: "fail", Reason: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ProbeResult{Status: "ok"})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) { s.probe(w, r, s.src.Healthy) }
func (s *Server) readyz(w http.ResponseWriter, r *http.Request)  { s.probe(w, r, s.src.Ready) }
