// Package agent is the domain of the edge agent: what a streetlight
// controller reports (Telemetry, StatusReport), the faults decided from it
// (the Detector and its rules, the sun clock, the device Registry), the
// tickets those faults become (Ticket and its state machine), the device
// attributes synced to the cloud, and the loops that move tickets to the
// M2M API (the Syncer) and serve the status snapshot.
//
// Package agent must not import store, mqtt or m2m: it declares the small
// interfaces it needs of them, and cmd/edge-agent wires the concrete types
// in. Those packages import agent for its types. The detector is pure logic:
// it is given the time and returns events; it never does I/O.
package agent
