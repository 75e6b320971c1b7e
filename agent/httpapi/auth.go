package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// guard is what stands before the API on TCP. With a token: every request
// must carry it. Without one (loopback only): the Host header must name
// loopback, so that a web page elsewhere cannot reach the API through DNS
// rebinding (a name of its own that it re-points at 127.0.0.1).
func (s *Server) guard(h http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !loopbackHost(r.Host) {
				writeError(w, http.StatusForbidden, codeForbidden,
					"this status API is served on loopback only; use a loopback address (127.0.0.1, [::1], localhost) as the host")
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokenOK(r, want) {
			// Basic lets a browser ask the technician for the token (any
			// user name, the token as password) and send it on every
			// request of the page, fetches included.
			w.Header().Add("WWW-Authenticate", `Basic realm="edge-agent", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="edge-agent"`)
			writeError(w, http.StatusUnauthorized, codeUnauthorized,
				"EDGE_HTTP_TOKEN required: send Authorization: Bearer <token>, or basic auth with the token as password")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// tokenOK compares the presented token with the configured one in constant
// time; hashing both first makes the comparison independent of their lengths
// too.
func tokenOK(r *http.Request, want [32]byte) bool {
	var got string
	auth := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		got = strings.TrimSpace(rest)
	} else if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	} else {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], want[:]) == 1
}

// loopbackHost reports whether a Host header names loopback.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
