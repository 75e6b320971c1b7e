package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/m2m"
	"github.com/edge-agent/edge-agent/store"
)

// storeFile is the store's file name inside EDGE_DATA_DIR (the agent's
// storeFileName; a rename there breaks the seeded runs loudly, not
// silently: the agent would open an empty store and the counts checked
// below would be wrong).
const storeFile = "edge-agent.db"

// agentTicketDefaults are the agent's EDGE_TICKET_* defaults (CONTRACT §2),
// so that the create bodies seeded here are the ones it would have built.
var agentTicketDefaults = m2m.TicketDefaults{Origin: "tg", OriginTypeID: 107, ServiceCode: "m2m", WorksiteID: 1, Reporter: "edge-agent"}

var uberaba = func() *time.Location {
	if loc, err := time.LoadLocation("America/Sao_Paulo"); err == nil {
		return loc
	}
	return time.FixedZone("-03", -3*3600)
}()

// draft is a lampFailure ticket as the pipeline makes one: the registry's
// site, the detector's Portuguese description.
func draft(i int, at time.Time) agent.TicketDraft {
	np := fmt.Sprintf("IP%06d", i)
	lat, lon := -19.7472+float64(i%100)*1e-4, -47.9381+float64(i/100%100)*1e-4
	site := agent.Site{Address: "Avenida Leopoldino de Oliveira", AddressNumber: 100 + i%900, Neighborhood: "Centro",
		Municipality: "Uberaba", State: "MG", ZipCode: "38010-000", ReferencePoint: "em frente à praça",
		Latitude: fmt.Sprintf("%.4f", lat), Longitude: fmt.Sprintf("%.4f", lon)}
	ev := agent.Event{Kind: agent.Raise, Nameplate: np, Fault: agent.FaultLampFailure, At: at, Since: at.Add(-10 * time.Minute),
		Reading: agent.Reading{Fields: agent.FieldVoltage | agent.FieldPower | agent.FieldLampOn, Voltage: 221.4, Power: 0.3},
		Lat:     lat, Lon: lon, HasPosition: true}
	info := agent.DeviceInfo{Nameplate: np, Site: site, Latitude: lat, Longitude: lon, HasPosition: true, NominalPower: 100}
	return agent.TicketDraft{Nameplate: np, Fault: ev.Fault, RaisedAt: ev.At, Since: ev.Since, Reading: ev.Reading, Site: site,
		Description: agent.DescribeFault(ev, info, "gw-bench", uberaba)}
}

// seedStore writes tickets into a fresh store at dataDir/edge-agent.db, as
// the agent would have: pending ones (raised), and finished ones (raised
// then cleared before they were sent: suppressed). It returns the file's
// size.
func seedStore(ctx context.Context, dataDir string, pending, finished int) (int64, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return 0, err
	}
	path := filepath.Join(dataDir, storeFile)
	st, err := store.Open(store.Options{Path: path,
		EncodeCreate: func(t *agent.Ticket) ([]byte, error) { return m2m.EncodeCreate(t, agentTicketDefaults) }})
	if err != nil {
		return 0, fmt.Errorf("seed: %w", err)
	}
	// Recent: the agent's retention (720 h) must not prune them.
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	const chunk = 1000
	for i := 0; i < finished; i += chunk {
		var cs []agent.TicketChange
		for j := i; j < min(i+chunk, finished); j++ {
			d := draft(j, at)
			cs = append(cs, agent.TicketChange{Kind: agent.Raise, Draft: d},
				agent.TicketChange{Kind: agent.Clear, Nameplate: d.Nameplate, Fault: d.Fault, ClearedAt: at.Add(time.Minute),
					Cancel: true, Justification: agent.CancelJustification(d.Fault, at.Add(time.Minute), uberaba)})
		}
		if _, err := st.ApplyChanges(ctx, cs); err != nil {
			st.Close()
			return 0, fmt.Errorf("seed finished tickets: %w", err)
		}
	}
	for i := 0; i < pending; i += chunk {
		var cs []agent.TicketChange
		for j := i; j < min(i+chunk, pending); j++ {
			cs = append(cs, agent.TicketChange{Kind: agent.Raise, Draft: draft(finished+j, at)})
		}
		if _, err := st.ApplyChanges(ctx, cs); err != nil {
			st.Close()
			return 0, fmt.Errorf("seed pending tickets: %w", err)
		}
	}
	counts, err := st.Counts()
	if err != nil {
		st.Close()
		return 0, err
	}
	if counts[agent.StatePending] != pending || counts[agent.StateSuppressed] != finished {
		st.Close()
		return 0, fmt.Errorf("seed: the store counts %v, want %d pending and %d suppressed", counts, pending, finished)
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
