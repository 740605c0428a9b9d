// Package hasessionotel reports a hasession store's operations as OpenTelemetry metrics
// and traces. It implements [store.Observer] with the OpenTelemetry API, in a module of
// its own (as go-redis keeps extra/redisotel), so that the store, and services that use
// it without OpenTelemetry, get no OpenTelemetry module.
//
//	obs, err := hasessionotel.New() // the global MeterProvider and TracerProvider
//	st, err := store.New(rdb, store.WithObserver(obs))
//
// Or with providers of your own: hasessionotel.New(hasessionotel.WithMeterProvider(mp),
// hasessionotel.WithTracerProvider(tp)). The httpsession middleware runs the store with
// the request's context, so with otelhttp (or any middleware that puts the request's
// span in its context) in front of it, every store span is a child of the request's span.
// go-redis's own instrumentation (redisotel.InstrumentTracing on the client) still works
// beside it: its command spans are children of the store's spans.
//
// # Metrics
//
// Every instrument carries db.system.name = "redis". db.operation.name is the store's
// operation: "hasession.load", "hasession.save", "hasession.rotate",
// "hasession.destroy", "hasession.index", "hasession.unindex", "hasession.read_index",
// "hasession.list_sessions", "hasession.revoke", or "hasession.other" (an adapter's
// command through Store.Retry). An operation is one step of the store under its retry
// policy (see [store.Observer]): a Load of a rotated session's old ID is two load
// operations, a login's Save an index and a save operation.
//
//	NAME                            KIND                       UNIT         ATTRIBUTES
//	hasession.operation.duration    Float64Histogram           s            db.operation.name, hasession.outcome
//	hasession.operation.retries     Int64Counter               {retry}      db.operation.name
//	hasession.operation.recoveries  Int64Counter               {operation}  db.operation.name
//	hasession.cluster.reloads       Int64Counter               {reload}     -
//	hasession.write_ack.shortfalls  Int64Counter               {write}      db.operation.name, hasession.ack.accepted
//	hasession.bytes.sent            Int64Counter               By           db.operation.name
//	hasession.touches               Int64ObservableCounter     {load}       hasession.touch
//	hasession.sessions.created      Int64Counter               {session}    -
//	hasession.sessions.destroyed    Int64Counter               {session}    -
//	hasession.sessions.revoked      Int64Counter               {session}    -
//
// What each counts:
//
//   - hasession.operation.duration: from the operation's start to its return, every
//     attempt and backoff included. hasession.outcome is "hit" (a load that found the
//     session), "ok" (any other success, and a load step that found a rotated session's
//     forward pointer), "not_found" (ErrNotFound), "conflict" (ErrConflict: a version
//     check) or "error". Buckets: [DurationBuckets].
//   - hasession.operation.retries: attempts repeated after a failover-type error (see
//     store.Retryable); hasession.operation.recoveries: operations that succeeded after
//     at least one retry. Retries without recoveries are operations that failed (or
//     ended in a conflict or not found).
//   - hasession.cluster.reloads: slot-map reloads the store asked go-redis for after a
//     failed attempt on a Cluster. go-redis's own reloads (on MOVED, every
//     ClusterStateReloadInterval) are not visible to the store and not counted.
//   - hasession.write_ack.shortfalls: writes (store.WithWriteAck) that WAIT confirmed on
//     fewer replicas than asked; hasession.ack.accepted is true where
//     store.AckBestEffort accepted them (they are as durable as a write without WAIT).
//   - hasession.bytes.sent: the size of the save commands' arguments (attribute names,
//     encoded values and metadata); loads, touches and the other commands send a key
//     and a few short arguments and are not counted.
//   - hasession.touches: loads that found a session, by hasession.touch: "sent" (the
//     touch was due and extended the TTL: a write) or "skipped" (not due). An
//     observable counter: a load adds to an atomic counter, read at collection.
//   - hasession.sessions.created: sessions saved for the first time;
//     hasession.sessions.destroyed: sessions deleted by Destroy (a logout; forward
//     pointers and tombstones not counted); hasession.sessions.revoked: live sessions
//     ended by Revoke or RevokeAll, or evicted by a login (store.WithMaxSessions).
//
// # Near-cache metrics
//
// A store with the near-cache (store.WithNearCache) reports it once given to
// [Observer.ObserveNearCache]: its counters ([store.Stats]) are read at each collection,
// summed over the stores observed.
//
//	NAME                              KIND                       UNIT          ATTRIBUTES
//	hasession.near_cache.loads        Int64ObservableCounter     {load}        hasession.near_cache.result
//	hasession.near_cache.entries      Int64ObservableGauge       {session}     -
//	hasession.near_cache.evictions    Int64ObservableCounter     {entry}       hasession.near_cache.cause
//	hasession.near_cache.lease_waits  Int64ObservableCounter     {revocation}  -
//	hasession.near_cache.fallbacks    Int64ObservableCounter     {load}        -
//	hasession.near_cache.connections  Int64ObservableCounter     {event}       hasession.near_cache.event
//
// What each counts:
//
//   - hasession.near_cache.loads: loads served from memory ("hit") or read from Redis
//     ("miss"): the hit ratio is hit / (hit + miss).
//   - hasession.near_cache.evictions: entries dropped, by hasession.near_cache.cause:
//     "invalidation" (Redis said the session changed: a write by any app server),
//     "lease" (wanted while its node's lease had lapsed), "reconnect" (its connection
//     closed or was replaced: a failover, a reconnect), "capacity" (the size limit).
//   - hasession.near_cache.lease_waits: revocations (logouts, revokes, evicting logins)
//     that waited the lease before returning.
//   - hasession.near_cache.fallbacks: misses read through the client because the
//     tracking connection failed or was slow, or the node refused the read.
//   - hasession.near_cache.connections: by hasession.near_cache.event, "opened"
//     (tracking connections dialled), "dial_failed" and "master_changed" (closed because
//     their node was no longer the master).
//
// # Traces
//
// One span per operation, named after db.operation.name ("hasession.load"), of kind
// Client, a child of the context's span, following OpenTelemetry's database semantic
// conventions: db.system.name "redis", db.operation.name, server.address and
// server.port when the store knows the node (a client of one server; not a Cluster or
// Sentinel, where redisotel's command spans carry each command's node), error.type
// (see [ErrorType]) and status Error when the outcome is "error". They also carry
// hasession.outcome, hasession.attempts, hasession.touch (loads), hasession.bytes_sent
// (saves) and hasession.operation.caller_name (Store.Retry's name). The attributes are
// set when the span ends, not at its start (an attribute at the start would cost every
// operation an allocation, sampled or not): a sampler of your own does not see them.
// Each retry is a span event "hasession.retry" (hasession.attempt, error.type), each
// WAIT shortfall of a save a span event "hasession.ack_shortfall". Spans carry no
// session ID, key or user.
//
// # What to alert on
//
//   - rate(hasession.operation.duration{hasession.outcome="error"}) above zero: callers
//     saw errors (a failover longer than their deadline, Redis unreachable).
//   - The p99 of hasession.operation.duration for "hasession.load" and
//     "hasession.save": every request pays it; during a failover it rises to the
//     promotion time.
//   - rate(hasession.operation.retries) above zero for longer than a failover takes
//     (tens of seconds), with hasession.operation.recoveries not following: a node is
//     down and no replica took over.
//   - rate(hasession.write_ack.shortfalls) for long: a master without a connected
//     replica; with hasession.ack.accepted="false" its saves fail.
//   - A fall of rate(hasession.operation.duration{hasession.outcome="hit"}) against
//     "not_found" on loads: users are being logged out.
//
// # Cost
//
// The attribute sets are built once, by New: recording allocates nothing per call
// beyond what the SDK does (two allocations per operation with metrics on and the span
// not sampled: the SDK's non-recording span and its context). The repository's
// tests/otel has BenchmarkLoad with this observer (metrics on, traces sampled at 1% of
// root spans), with metrics alone, and without it, side by side: a load cost 5 to 9%
// more with it (two runs on a 2-core machine with Redis on the same cores).
package hasessionotel
