// Package store keeps HTTP sessions in Redis for services that must keep their users
// logged in when a Redis node dies. It runs on any go-redis v9 [redis.UniversalClient]: a
// single server, a Sentinel-managed master (NewFailoverClient) or a Redis Cluster.
//
//	st, err := store.New(rdb, store.WithIdleTimeout(30*time.Minute))
//	s, _ := st.NewSession()            // a UUIDv4 from crypto/rand; nothing in Redis yet
//	_ = s.Set("cart", cart)            // encoded now (msgpack by default)
//	err = st.Save(ctx, s)              // one script: only what changed
//	s, err = st.Load(ctx, id)          // one round trip; ErrNotFound if missing or expired
//	err = s.Get("cart", &cart)         // decoded lazily, into the caller's type
//	err = st.Rotate(ctx, s)            // on login: new ID, the old one forwards briefly
//	err = st.Destroy(ctx, s.ID())      // on logout
//
// # Layout
//
// A session is one hash, <prefix>{<tag>}, where the tag is the session ID or, with
// [WithHashedIDs], its HMAC: every key of a session is in one Cluster slot, and every
// script declares its key in KEYS. The hash holds metadata fields (names starting with
// "_": version, created-at, absolute deadline, last touch, user, codec, last save ID) and
// one field per attribute (names starting with "."), so attribute names never reach
// metadata.
//
// # Auto-pipelining
//
// The loads and saves that concurrent requests make are sent together, one pipeline per
// Redis node ([WithAutoPipeline], on by default): a request alone goes at once, and the
// requests that arrive while a pipeline is in flight share the next one. Most of what a
// small command costs is the round trip's system calls and wake-ups, on the app server
// and in Redis; shared, they are paid once per pipeline. Each caller still gets its own
// reply and error, and waits no longer than its context allows. The commands go through
// the client given to New, so its hooks see them (as pipelines).
//
// # Time and expiry
//
// The key's TTL is always min(idle timeout, absolute deadline − now), with now read from
// Redis TIME inside the scripts, so app servers with skewed clocks agree and no key is
// written without a TTL. A load is a plain HGETALL (no script), parsed in place; when the
// last touch is older than the touch interval, a touch script extends the TTL. Read-mostly
// traffic therefore writes at most once per touch interval per session. The touch
// decision is taken on the app server's clock and again, before any write, on Redis's: a
// clock that runs behind Redis's delays touches by as much, so it must stay well under
// idle timeout − touch interval.
//
// # Saves
//
// Save sends only the attributes set or deleted since the load, with a random save ID: a
// save retried after a lost reply is recognised and applied once. Concurrent saves of
// different attributes both apply; with [WithVersionCheck] a save of a session that
// changed since it was loaded fails with [ErrConflict]. A save never recreates a
// destroyed, expired or rotated-away session ([ErrNotFound]). The size limit is checked
// before anything is sent ([SizeError]).
//
// # Rotation
//
// [Store.Rotate] writes the session under a new ID first, then turns the old key into a
// forward pointer for the grace period (the new ID masked with a hash of the old one, so
// a Redis dump reveals no live ID). In a Cluster the two keys are in different slots: if
// the second step fails, the old session is intact and Rotate can be retried.
//
// # A user's sessions
//
// A session that belongs to a user ([Session.SetUser], kept through Rotate) is listed in
// the user's index, <prefix>u:{<hash of the user>}: a sorted set of session tags scored
// by absolute deadline, in a slot of its own. [Store.Sessions] lists the user's live
// sessions, [Store.Revoke] ends one, [Store.RevokeAll] ends all but the named ones ("log
// out everywhere"). No keyspace events are used, so it works the same on a single server,
// Sentinel and Cluster, and no command spans two slots. A load never reads or writes the
// index; a save writes it only when the session changes user (a login), Rotate and
// Destroy when the session has a user.
//
// What the index promises:
//
//   - Every session of a user is in the user's index. A login lists the session first
//     and writes it second, and the write applies only within a pending window (30 s,
//     Redis time) after the listing; a later write is listed again. A save that gives a
//     session a user it does not have in Redis always lists it first.
//   - The index may also hold entries of sessions that are gone: expired by idle
//     timeout, destroyed, rotated away, handed to another user, or left by a login that
//     failed half way. They are never shown: Sessions reads every listed session and
//     drops the entries whose session is gone as it finds them (so Sessions writes).
//     Entries past their absolute deadline are dropped by every read and write of the
//     index, and the index key itself expires with its last deadline, both with a
//     margin of 60 s for the clock difference between two Redis nodes. No cleanup job
//     is needed.
//   - Where a revoke (or a listing) finds a listed session missing, or deletes it, it
//     leaves a tombstone at the session's key for 90 s: a login still between its two
//     steps, or a save retried after a lost reply, cannot create that session afterwards
//     (the login takes a fresh ID and lists it). The tombstone outlives the pending
//     window by the clock difference tolerated between two Redis nodes (60 s).
//   - A rotation of a user's session marks the old session with the new one's tag
//     before writing it, and the mark stays on the forward pointer and on a tombstone: a
//     revoke, or a logout, that reaches the old key blocks the new one too, whether the
//     rotation is still running or done, and a rotation whose old session is gone when
//     it forwards undoes itself.
//   - So no session can outlive a RevokeAll that returned nil: every session the user
//     had when it started was listed, and was deleted, or blocked before it could be
//     written. A login running concurrently may survive it (it is then ordered after
//     the revoke), and is listed. A RevokeAll that could not reach every session returns
//     a [*RevokeError] naming them; calling it again is safe.
//   - These hold as long as Redis keeps what it acknowledged. Across a failover that is
//     what [WithWriteAck] is for: the index write before a login and each node's revoke
//     pipeline then end with WAIT, on the connection that wrote, so neither is lost to a
//     failover once acknowledged.
//
// # Consistency
//
// What a caller can rely on, checked by the history tests (cluster/history: porcupine,
// partitioned per user, under kills, pauses, partitions and manual failovers of a Cluster
// and a Sentinel master, lost replies and short deadlines):
//
//   - One session is linearizable while Redis keeps what it acknowledged: every load,
//     save, rotation, destroy and revoke of it takes effect at one instant between its
//     call and its return, as if they ran one at a time. A save is a delta (the
//     attributes it sets or deletes) and bumps the version by one; with
//     [WithVersionCheck] it applies only if the version is the one loaded. Rotate
//     writes the caller's copy of the session (as loaded, plus its changes) under the
//     new ID at that instant: a save of the old ID that lands between the caller's load
//     and the rotation is not carried over. The old ID then leads to the new session
//     within the grace period; destroying or revoking it ends both.
//   - A call that returns an error other than ErrNotFound or ErrConflict (a timeout, a
//     connection lost, [ErrNotAcknowledged]) may or may not have taken effect. A save
//     retried after a lost reply is applied once.
//   - Sessions and RevokeAll are not atomic across a user's sessions: they read or
//     revoke one session after the other, and each session's part is linearizable.
//     When RevokeAll returns nil, every session the user had when it was called is
//     gone, with any rotation of it; a login running concurrently may survive it. A
//     revoked or destroyed session is never served, written or listed again.
//   - Without WAIT, a write acknowledged by a master that fails before its replica has
//     it is lost in the failover: a save (a later load sees an older version, or no
//     session if its creation was lost), a login's index entry (a live session missing
//     from Sessions), a revoke (the session is served again), a rotation's new session
//     (the old ID leads nowhere). These are the only violations the tests find without
//     WAIT.
//   - [WithWriteAck](n, timeout) ends each save and each revoke with WAIT n on the
//     connection that wrote. On a Cluster, WAIT 1 (one replica per master) makes an
//     acknowledged write survive a master's kill, pause, network partition and a manual
//     CLUSTER FAILOVER: the replica that is promoted is one that had it. On Sentinel,
//     WAIT 1 covers the master's kill and partition; across SENTINEL FAILOVER the old
//     master keeps taking writes while a replica is promoted and then resynchronises,
//     and WAIT 1 may be met by the replica that resynchronises too, so only WAIT on
//     every replica (2 with the default topology) keeps acknowledged saves. A write that
//     WAIT could not confirm returns ErrNotAcknowledged: applied on the master, perhaps
//     lost.
//
// # Errors
//
// Every method that touches the network takes a context and returns typed errors:
// [ErrInvalidID] (nothing sent), [ErrNotFound], [ErrConflict], [*SizeError],
// [*CodecError] (matches [ErrCodecMismatch]), [*CorruptError] (matches [ErrCorrupt]:
// foreign data at the key, WRONGTYPE, malformed metadata), or the context's error
// wrapped. No method panics on bad input or a Redis failure.
package store
