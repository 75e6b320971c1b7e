// Package httpapi is the agent's local status surface for field technicians
// and monitoring (CONTRACT §8): the technicians' page (embedded HTML, CSS and
// JavaScript, Brazilian Portuguese with an English switch), the JSON API
// (/api/status, /api/devices, /api/tickets and the retry calls), /healthz,
// /readyz and the Prometheus /metrics endpoint. The same handlers are served
// on TCP (EDGE_HTTP_ADDR, behind EDGE_HTTP_TOKEN when one is configured) and
// on the control socket (EDGE_CONTROL_SOCKET, protected by its file
// permissions) that the CLI talks to.
//
// It owns: the HTTP servers and their limits (timeouts, header and body
// sizes), authentication and the off-loopback refusal, the JSON shapes of the
// API (Snapshot, Device, Ticket: the field names are part of the contract and
// documented in docs/readme-status.md), the health assessment that turns a
// snapshot into problems in words, and the metrics registry.
//
// It must not: import store, mqtt or m2m (it declares the small Source
// interface it needs, and cmd/edge-agent binds the concrete parts to it);
// change any state except through Source's retry calls (POST only); load
// anything from the network (no CDN, no external font: a gateway is often
// offline); log a token or an Authorization header.
package httpapi
