// Command lightsim simulates a fleet of streetlight controllers publishing
// to an MQTT broker, as the edge agent expects them (CONTRACT §3): telemetry
// JSON on {prefix}/{nameplate}/telemetry and online/offline on
// {prefix}/{nameplate}/status, all through one client connection.
//
// It owns the device model (values from the time of day at each device's
// position and from the faults injected into it: fleet.go, model.go,
// faults.go), their encoding (payload.go, including deliberately invalid
// payloads), where the fleet stands (where.go, registry.go), and the two
// ways of publishing: the fleet mode, each device at its interval, faults
// raising and clearing over time (sim.go), and the load mode, valid telemetry
// as fast as asked (load.go), both through one windowed publisher
// (publisher.go).
//
// Its flags and its stdout lines are an interface: the demo, the end-to-end
// and chaos tests and the ingest benchmark script against them (see usage in
// flags.go and docs/readme-lightsim.md). Change them only compatibly.
//
// It must not decide faults the way the agent does, nor compute the sun
// itself: day and night come from agent.SunElevation, the same function the
// agent uses, so that what the simulator means and what the agent sees agree.
// It never imports the agent's ingest (mqtt) or store packages.
package main
