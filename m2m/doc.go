// Package m2m is the HTTP client of the cloud's M2M API (Exati IoT Hub,
// /work/shared/m2m-api.md): it builds the documented request bodies
// (EncodeCreate), sends the four calls (create and cancel a ticket, update
// the attributes of many devices or of one), and classifies every answer
// into one typed *Error carrying an agent.Outcome, so that callers never
// parse status codes or strings. It applies the per-request timeout, a
// token-bucket rate limit and a concurrency limit inside every call, reads
// answers with a size limit, and logs requests and answers at debug level
// with secrets redacted. Backoff computes retry delays; it does not retry.
//
// Package m2m owns no state beyond the HTTP connections and one remembered
// fact (whether the many-devices call is supported). It must not retry a
// ticket call by itself (the agent's syncer decides, with the store's
// record of attempts), must not touch the store, and must not log a secret.
//
// Everything the public documentation does not state (the cancel body, the
// attribute calls and bodies, the default device paths) is a decision of
// this project and lives in unconfirmed.go alone, so that the real contract
// can be dropped in there.
package m2m
