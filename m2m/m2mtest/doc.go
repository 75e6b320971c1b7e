// Package m2mtest is a faithful simulator of the cloud's M2M API
// (/work/shared/m2m-api.md), for tests, the demo and benchmarks: an
// http.Handler that serves the four calls, checks every documented create
// field and its JSON type, answers 409 to a repeated id_external_protocol
// and 404 to a cancel of an unknown or closed ticket, checks auth when
// configured, injects faults (down, errors, throttling, latency, lost
// answers, slow bodies) deterministically from a seed, and records what it
// received so that tests can prove "exactly one ticket per fault, every
// clear cancelled". cmd/m2m-sim is its thin binary.
//
// It does not import package m2m on purpose: it is a second, independent
// reading of the API's documentation, so a mistake in the client's bodies
// shows up as a 422 here instead of being mirrored. Where the documentation
// is silent it follows the same [ours] choices as the client (cancel body,
// attribute calls), which live in m2m/unconfirmed.go and in spec.go here.
//
// It must stay in memory, bounded for long runs (counts always, bodies of
// the last N requests and tickets), and must never listen beyond loopback
// unless its caller says so.
package m2mtest
