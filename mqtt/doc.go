// Package mqtt is the agent's ingest: it owns the paho MQTT client that
// consumes the controllers' topics (CONTRACT §3), the mapping of a topic to
// a device nameplate, and the decoding and validation of telemetry and
// status payloads into agent.Telemetry and agent.StatusReport.
//
// What it guarantees: a message is acknowledged to the broker only after
// the Handler returned nil (the pipeline made its effect durable) or after
// it was rejected as malformed (so the broker does not resend it forever).
// Everything else — a handler error, a message that arrives while Run is
// shutting down — stays unacknowledged and the broker redelivers it on the
// next connection of the same persistent session.
//
// What it must not do: decide faults, touch the store or the cloud, or keep
// device state; those belong to agent and its collaborators. It never logs
// a password, and it never reuses a paho client after Disconnect (a
// Subscriber runs once).
//
// paho's loggers (paho.ERROR, WARN, CRITICAL) are package variables of
// paho; this package points them, once at init, at an adapter that forwards
// to the logger of the Subscriber that is running. Assigning them later
// would race with paho's own goroutines.
//
// The decoder (DecodeTelemetry) is the hot path: a hand-written scanner for
// one flat JSON object that validates the whole payload as strictly as
// encoding/json (it is fuzzed against it) and allocates nothing for a
// typical message.
package mqtt
