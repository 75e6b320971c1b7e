package main

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/agent/httpapi"
)

// daemonMetrics is the Prometheus registry the parts report into as things
// happen (an API answer, a fault raised or cleared). It is made before the
// parts, so their hooks are set once and never race.
type daemonMetrics struct{ *httpapi.Metrics }

func newDaemonMetrics() *daemonMetrics { return &daemonMetrics{httpapi.NewMetrics()} }

func (m *daemonMetrics) observeAPI(call string, o agent.Outcome, status int, d time.Duration) {
	m.ObserveAPI(call, o, status, d)
}

func (m *daemonMetrics) observeEvent(ev agent.Event) { m.ObserveEvent(ev) }

// startStatus serves the status page, JSON API and metrics on
// EDGE_HTTP_ADDR and the same API on the control socket, in g.
func (d *agentDaemon) startStatus(ctx context.Context, g *errgroup.Group) error {
	d.status = d.serveStatus(ctx, g, d.metrics.Metrics)
	d.status.SetRegistry(d.cfg.DevicesFile, d.registryErrors)
	return nil
}
