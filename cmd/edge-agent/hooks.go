package main

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edge-agent/edge-agent/agent"
)

// daemonMetrics carries the hooks the parts call as things happen (an API
// answer, a fault raised or cleared). The metrics registry fills them in;
// until then they do nothing.
type daemonMetrics struct {
	api   func(call string, outcome agent.Outcome, status int, d time.Duration)
	event func(ev agent.Event)
}

func newDaemonMetrics() *daemonMetrics { return &daemonMetrics{} }

func (m *daemonMetrics) observeAPI(call string, outcome agent.Outcome, status int, d time.Duration) {
	if m.api != nil {
		m.api(call, outcome, status, d)
	}
}

func (m *daemonMetrics) observeEvent(ev agent.Event) {
	if m.event != nil {
		m.event(ev)
	}
}

// startStatus starts the status page, JSON API and control socket. Not
// built yet (issue 6): the daemon runs without them.
func (d *agentDaemon) startStatus(ctx context.Context, g *errgroup.Group) error {
	d.log.Warn("status page and control socket are not built yet")
	return nil
}
