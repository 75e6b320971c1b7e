// Package store is the agent's durable memory across power cuts: one bbolt
// file holding the tickets and their state machine, the protocol sequence,
// and one coalesced attribute record per device.
//
// It owns:
//   - tickets, keyed by id_external_protocol, with indexes that keep the hot
//     paths cheap: the queue (pending and cancel_pending, protocol → next
//     attempt), the open ticket of each (device, fault), tickets by state and
//     by device, the finished tickets ordered by when they finished (for
//     oldest-first pruning), and a counter per state;
//   - the protocol sequence, whose high-water mark lives in the database (in
//     the same transaction as the ticket it numbers) and in a small sidecar
//     file beside it (<path>.seq), so that a number is never reused, not even
//     after a crash, a restore of an older file, or a corrupt file moved aside;
//   - group commit: one writer goroutine turns the writes of concurrent
//     callers into one transaction (one pair of fsyncs) and answers each
//     caller only after that transaction is durable;
//   - the ticket record's on-disk layout (record.go: hand-written binary,
//     the create body verbatim; schema 1's JSON records still read), and
//     the attribute record's (attrrecord.go: about 40 bytes a device, exact
//     numbers; the JSON records of schemas 1–2 still read);
//   - the size cap (bbolt MaxSize), pruning, the corrupt-file handling at
//     Open and the lock that keeps a second process out.
//
// Every write method returns only after its transaction is committed
// (durable: bbolt fdatasyncs before it returns). Its context bounds the wait
// to be taken by the writer; once taken, the call waits for the commit, so
// that an answer is never "cancelled" for a write that then lands. On any
// error, nothing of that call was written. Close commits what the writer has
// taken and answers ErrClosed to callers still waiting.
//
// It must not: drop a pending or cancel_pending ticket for any reason; talk
// to the network; decide what a ticket says (the create body is built by the
// EncodeCreate function it is given); log a ticket's body or any secret; use
// bbolt's NoSync. It imports agent for the domain types and implements
// agent.TicketStore and agent.AttributeStore exactly.
package store
