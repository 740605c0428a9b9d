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
//	err = st.Rotate(ctx, s)            // on login: new ID; the old one leads nowhere
//	err = st.Destroy(ctx, s.ID())      // on logout
//
// # Layout
//
// A session is one hash, <prefix>{<tag>}, where the tag is the session ID or, with
// [WithHashedIDs], its HMAC: every key of a session is in one Cluster slot, and every
// script declares its key in KEYS. The hash holds metadata fields (names starting with
// "_": version, created-at, absolute deadline, last touch, user, codec, last save ID, and
// the session's own idle timeout and cookie persistence where it has them) and one field
// per attribute (names starting with "."), so attribute names never reach metadata.
// FORMAT.md, at the repository's root, specifies every key and field (format version 1).
// A newer writer may add reserved fields, "_" and an uppercase letter, which this package
// ignores and keeps; any other unknown field is corrupt ([ErrCorrupt]). A key whose
// format version field, "_F", names a newer format is refused whole with a
// [*FormatError]: nothing is read from it or written to it.
//
// # Auto-pipelining
//
// The loads and saves that concurrent requests make are sent together, one pipeline per
// Redis node ([WithAutoPipeline], on by default): a request alone goes at once, from its
// own goroutine, and the requests that arrive while it or a pipeline is in flight share
// the next pipeline. Most of what a small command costs is the round trip's system calls
// and wake-ups, on the app server and in Redis; shared, they are paid once per pipeline.
// Each caller still gets its own reply and error; a pipelined one waits no longer than its
// context allows, and one sent alone waits as without auto-pipelining (its context's
// deadline is kept; a cancellation is seen when the reply or the client's timeout comes).
// The commands go through the client given to New, so its hooks see them (as pipelines,
// or as themselves when sent alone). The goroutines that send the pipelines end after 2 s
// with nothing to send, or at once when the store is closed ([Store.Close], which leaves
// the client open).
//
// # Time and expiry
//
// The key's TTL is always min(idle timeout, absolute deadline − now), with now read from
// Redis TIME inside the scripts, so app servers with skewed clocks agree and no key is
// written without a TTL. A load is a plain HGETALL (no script), parsed in place; when the
// last touch is older than the touch interval, a touch script extends the TTL and returns
// the whole session from the same atomic step, and that is the session the load returns
// (so a save, rotation or destroy between the two round trips is never hidden by the
// first read). Read-mostly traffic therefore writes at most once per touch interval per
// session. The touch
// decision is taken on the app server's clock and again, before any write, on Redis's: a
// clock that runs behind Redis's delays touches by as much, so it must stay well under
// idle timeout − touch interval.
//
// # A session's own expiry ("remember me")
//
// The idle timeout and the lifetime are the store's unless a session has its own:
// [Session.SetIdleTimeout] and [Session.SetLifetime] give it one, and
// [Session.SetPersistent] records whether its cookie should outlive the browser session
// (httpsession and gorillastore follow it). They are saved with the session (in its hash:
// "_i", the idle timeout in ms; the deadline, "_a", becomes created-at + lifetime,
// computed in the save script on Redis's clock; "_p", the persistence), so every app
// server sees them, the scripts enforce them — the TTL is min(own idle timeout, deadline −
// now) on every save and touch — and Rotate carries them to the new ID. A session given
// a shorter idle timeout than the store's is touched at the touch interval scaled down by
// the same ratio. A session that sets nothing stores nothing new and expires as before.
//
//	st, err := store.New(rdb, store.WithMaxLifetime(30*24*time.Hour), store.WithMaxIdleTimeout(7*24*time.Hour))
//	s.SetPersistent(true)                 // on a "remember me" login
//	err = s.SetLifetime(30 * 24 * time.Hour)
//	err = s.SetIdleTimeout(7 * 24 * time.Hour)
//	err = st.Rotate(ctx, s)                // saves them too, under the new ID
//
// Each must be at least 1 s and at most the store's maximum, [WithMaxIdleTimeout] and
// [WithMaxLifetime] (by default the store's idle timeout and lifetime: without them a
// session may only shorten its own); otherwise the setter returns an [*ExpiryError]
// (matching [ErrInvalidExpiry]) and the session is unchanged. A lifetime is counted
// from the session's creation: one shorter than its age ends the session at its next
// save. A user's index entry follows a longer lifetime (it is listed again before the
// save that moves the deadline). Sessions saved with these fields are refused as
// corrupt by earlier versions of this package: deploy it to every app server before
// calling the setters.
//
// # Saves
//
// Save sends only the attributes set or deleted since the load, with a random save ID
// that every attempt of one Save call carries. Concurrent saves of different attributes
// both apply; with [WithVersionCheck] a save of a session that changed since it was
// loaded fails with [ErrConflict]. A save never recreates a destroyed, expired or
// rotated-away session ([ErrNotFound]). The size limit is checked before anything is sent
// ([SizeError]). Metadata found damaged (a version, created-at, deadline or last touch
// that is not an integer, a missing codec) is a [*CorruptError], and nothing is written.
//
// Retry window. A save retried after a lost reply is recognised and applied once, also
// when other saves of the session landed in between: the session remembers the saves
// applied in the last 300 s (Redis time), at most the last 16, each with the answer it
// got (in its save-ID field, about 35 bytes a save). A busy session keeps more: a save
// that leaves those 16 while younger than 60 s moves to the session's save history (a
// hash beside it, in its slot, at most 1024 saves, gone 60 s after the last one moved
// there), which a retry also reads, so a retry across a failover is recognised after
// hundreds of saves. A retry within that window gets the answer of its first attempt —
// its version, never an [ErrConflict] of its own making. The default [RetryPolicy] stops
// retrying well within 300 s (about 125 s at most); a save retried later than that, or
// after more saves than the window keeps, is applied as a new save (checked against a
// version: [ErrOutcomeUnknown]). A retry is any write of the save's command after its
// first, the store's own and those go-redis makes by itself within one call after a lost
// reply (a client's MaxRetries, a ClusterClient's MaxRedirects): the store counts the
// writes with an argument go-redis encodes each time it writes the command. A write
// go-redis repeats after an error reply that ran nothing (MOVED, ASK, TRYAGAIN,
// READONLY, LOADING: a failover or a resharding) counts too, so a save then answered
// "conflict" or "not found" returns the cautious [ErrOutcomeUnknown] ([Store.Update]
// starts again on the former).
//
// Write acknowledgement. With [WithWriteAck], a save whose WAIT confirms fewer replicas
// than asked returns an [*AckError] (matching [ErrNotAcknowledged]): it did apply on the
// master, and the Session says so (no longer new, its changes applied, its version and
// deadline those of the save), so saving it again is an update. Rotate likewise completes
// and returns the *AckError.
//
// # Atomic updates
//
// Of concurrent saves of the same attribute the last one wins, so two read-modify-writes
// of a counter that both read 1 both write 2. [Store.Update] makes a read-modify-write
// atomic: it loads the session, runs the caller's function and saves with a version
// check whatever [WithVersionCheck] says, starting again on [ErrConflict] up to
// [UpdateAttempts] times.
//
// # Rotation
//
// [Store.Rotate] reads the session as Redis holds it (what other requests saved since
// this one loaded it included), adds this request's unsaved changes, and writes that
// under a new ID first; then it turns the old key into a forward pointer for the grace
// period (the new ID masked with a hash of the old one, so a Redis dump reveals no live
// ID). The second step applies only if the old session's version is still the one
// copied; a save that landed in between makes Rotate drop the copy and make it again, so
// no save is lost. In a Cluster the two keys are in different slots: if the second step
// fails, the old session is intact and Rotate can be retried.
//
// Of concurrent rotations of one session exactly one wins: the one whose forward step
// comes first. Another request that loaded the same session and rotates it (at the same
// time, or later within the grace period) finds the old key forwarded by someone else,
// drops its copy and gets [ErrRotated] (which matches [ErrNotFound]: the ID it loaded is
// no session any more). Nothing is orphaned, and the user stays logged in: the old ID
// forwards to the winner's session, the Session the loser holds keeps its old ID and
// its unsaved changes, and the request can load the old ID again and redo them there.
// A rotation is never rotated again through its old ID. A rotation's forward step
// retried after a lost reply recognises its own pointer (the token of its own new ID)
// and succeeds.
//
// Destroying a rotated session's old ID within the grace period follows the forward
// pointers to the live end of the chain (A→B→C: Destroy(A) ends C) and blocks a rotation
// still in flight; the tombstone a user-changing rotation leaves is never followed.
// A key it deletes that held a rotation mark (a user's session) becomes a tombstone that
// keeps the mark, so a Destroy retried after a lost reply follows the chain again. Like
// Load, Destroy follows at most four keys: of a longer chain the session past them stays
// alive, and the last pointer's tombstone keeps no mark, so that a revoke or a logout of
// an ID the Destroy ended (which leads nowhere) ends nothing.
//
// A rotation that changes who the session belongs to — the user stored before differs
// from the user after, a login ("" to "alice") or a switch ("alice" to "bob") — leaves
// no forward pointer: the old key becomes a tombstone for 90 s (or the grace period, if
// longer), against session fixation. Whoever holds the old ID (a cookie an attacker
// planted before the login) finds nothing: Load returns [ErrNotFound], Save of it
// [ErrNotFound], and Destroy of it ends nothing. A revoke of the old user that reaches
// the tombstone follows it to the new session only while that session is still the old
// user's. A rotation that keeps the user (a privilege change, a periodic renewal)
// forwards, so in-flight requests with the old cookie still land; with a grace period of
// 0 every rotation leaves a tombstone.
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
//   - Beside the index, in its slot, <index key>:l holds each entry's login time and
//     pending window (a hash of tag → "<login ms>:<window end ms>", the index node's
//     clock, logins made strictly increasing; field "#" holds the last login's time): a
//     rotation keeps its session's login time. [WithMaxSessions] orders and
//     counts logins with it; entries leave it with theirs.
//   - So no session can outlive a RevokeAll that returned nil: every session the user
//     had when it started was listed, and was deleted, or blocked before it could be
//     written. A login running concurrently may survive it (it is then ordered after
//     the revoke), and is listed. A RevokeAll that could not reach every session returns
//     a [*RevokeError] naming them; calling it again is safe.
//   - These hold as long as Redis keeps what it acknowledged. Across a failover that is
//     what [WithWriteAck] is for: the index write before a login and each node's revoke
//     pipeline then end with WAIT, on the connection that wrote, so neither is lost to a
//     failover once acknowledged. Under [WithWriteAckPolicy]([AckBestEffort]) an index
//     write that WAIT could not confirm is accepted and counted instead: it has no more
//     than a write without WAIT has.
//
// # Events
//
// [WithEvents] sets a function the store tells what happens to sessions, for audit logs,
// "new sign-in" mails and freeing per-session resources: an [Event] of each
// [EventKind], naming the session by its Ref (as [Store.Ref] and [Store.Sessions] give
// it; never its ID, which is a credential), with its user and the time.
//
//	st, err := store.New(rdb, store.WithEvents(func(e store.Event) {
//		audit.Info("session", "event", e.Kind.String(), "ref", e.Ref, "user", e.User)
//	}))
//
// Who emits what, once Redis acknowledged it:
//
//   - Save (or Update) of a new session: EventCreated; with a user, EventUserBound too.
//   - Save (or Update) that gives a session a user it did not have: EventUserBound.
//   - Rotate: EventRotated (Ref the new ID's, OldRef the old one's, User the user after);
//     a rotation that changes the user (a login: SetUser, then Rotate) EventUserBound
//     too. Rotate of a session never saved only changes its ID and emits nothing: its
//     first save is EventCreated.
//   - Destroy, DestroySession (logout): EventDestroyed for the session it deleted (the
//     live end of a chain of rotations, and the new session of a rotation in flight it
//     ended), none for a session already gone.
//   - Revoke, RevokeAll: EventRevoked for each session deleted; so does a login under
//     WithMaxSessions and EvictOldest for each session it evicts.
//   - Sessions, RevokeAll, Revoke: EventExpired for each listed session found expired
//     (below).
//
// Over HTTP (package httpsession) a new session's first response emits EventCreated, a
// login (SetUser, Rotate) EventRotated and EventUserBound, a logout EventDestroyed,
// RevokeOthers EventRevoked for each other session.
//
// Delivery never fails or delays a request beyond one non-blocking channel send. Events
// wait in a queue of [EventQueueSize] (1024) and a goroutine of the store's own calls
// the function with one after the other, in the order they were emitted. An event that
// finds the queue full (the function is slower than events come) is dropped, counted
// (Stats().EventsDropped) and logged, at most once every 10 s. A panic in the function
// is recovered, counted (Stats().EventHandlerPanics) and logged in the same way, and the
// next event is delivered as usual. Delivery is at most once: an event is emitted when
// the reply of the step that did it arrived (a Save's script, each key of a Destroy,
// each session of a revoke); a step whose reply was lost — the call returns an error
// other than an [*AckError], its outcome unknown — emits nothing, also when Redis
// applied it, and a later retry finds nothing left to report. An *AckError of a Save,
// Rotate or Destroy (applied on the master, not confirmed by replicas) emits as success
// does; a revoke whose WAIT fell short reports that session failed ([*RevokeError]) and
// emits nothing for it. [Store.Close] stops delivery: the events queued before it are
// delivered, then the goroutine ends (Close does not wait for it); events emitted later
// are dropped and counted. Without WithEvents nothing is built or sent.
//
// Expiry. Redis deletes an expired key silently, and the store uses no keyspace
// notifications (a Cluster delivers them per node, and they are lost whenever no
// subscriber is connected), so an expiry is seen only where the store looks: a session
// bound to a user stays listed in the user's index until its absolute deadline, and
// Sessions, RevokeAll and Revoke read the entries they meet. One whose key is missing
// altogether — no session, no tombstone, no forward pointer: what expiry by idle timeout
// or by lifetime leaves — is reported EventExpired and dropped from the index. The
// script that finds the key missing leaves a tombstone there (90 s) in the same atomic
// step, so of app servers listing the same user at once exactly one reports it; it is
// reported again only if that store could not drop the entry (an error it logs) and
// nothing else did before the tombstone expired. A Revoke by ID reports the session only
// if the ID was listed (its ZREM removed the entry). Hence:
//
//   - Only sessions with a user are reported; an anonymous session's expiry is never
//     seen.
//   - The delay is from the expiry to the next Sessions, RevokeAll or Revoke of that
//     user, which the application decides; the store starts no job of its own.
//   - An entry is dropped without an event once its session's absolute deadline has
//     passed by 60 s (the clock margin), by any read of the index, by the user's next
//     login, or when the index key itself expires with its last entry. An expiry is
//     reported only if the user's index is read between the expiry and the session's
//     absolute deadline + 60 s. Resources that must be freed whatever happens need a
//     lifetime of their own as well (no shorter than the store's [Store.Lifetime]).
//   - A missing key is not always an expiry: EventExpired may also name a session a
//     login listed but never wrote (its Save failed, or was still between its two steps
//     when a listing ran: the login then takes another ID, which is reported as created
//     as usual), a session whose logout, revoke or rotation could not drop its index
//     entry (an error the store logged) once the tombstone (90 s) or forward pointer
//     (the grace period) it left has expired, or a logged-out session that a listing met
//     in the one round trip between the Destroy's delete and its index update (which is
//     then reported destroyed and expired). EventExpired says: this session ended
//     without this store seeing a logout or revoke of it.
//
// # Near-cache
//
// With [WithNearCache] a store keeps the sessions it loaded in the app server's memory:
// a Load of a cached session sends nothing. Redis invalidates the entries (CLIENT
// TRACKING on a connection of the store's own per master), and an entry is served only
// under a lease that replies on that connection renew. Revocations wait the lease before
// they return, so logout stays strict; a load may return a session up to a lease older
// than another app server's last save ([NearCache] says exactly what holds).
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
//     writes the session as Redis holds it at that instant (a save that landed after
//     the caller's load included), plus the caller's unsaved changes, under the new ID,
//     one version up. The old ID then leads to the new session within the grace period
//     (or nowhere, when the rotation changed the user); destroying or revoking it ends
//     the session it leads to (destroying it ends the live end of a chain of rotations,
//     A→B→C, too). Rotate of an ID that is no session (rotated away, destroyed,
//     revoked, expired) returns ErrNotFound ([ErrRotated] when another rotation won): of
//     concurrent rotations of one session exactly one succeeds.
//   - A call that returns an error other than ErrNotFound or ErrConflict (a timeout, a
//     connection lost, [ErrNotAcknowledged]) may or may not have taken effect. A save
//     retried after a lost reply is applied once, and answered as applied also when the
//     session ended between the attempts (revoked, destroyed, rotated: the save took
//     effect before that) — while the key keeps what shows it (a tombstone lives 90 s, a
//     rotation's forward pointer the grace period); a retry that finds the key gone
//     returns [ErrOutcomeUnknown], as does a rotation's forward step (ErrNotFound would
//     say it did not apply). A Destroy cut short has ended the session at every ID of a
//     rotation chain or at none (the session first, the old IDs' pointers after it);
//     calling it again finishes it.
//   - Sessions and RevokeAll are not atomic across a user's sessions: they read or
//     revoke one session after the other, and each session's part is linearizable.
//     When RevokeAll returns nil, every session the user had when it was called is
//     gone, with any rotation of it; a login running concurrently with the call (begun
//     before or during it) may survive it or not: RevokeAll reads the user's index when
//     it gets to it, after its retries. A
//     revoked or destroyed session is never served, written or listed again.
//   - Without WAIT, a write acknowledged by a master that fails before its replica has
//     it is lost in the failover: a save (a later load sees an older version, or no
//     session if its creation was lost), a login's index entry (a live session missing
//     from Sessions), a revoke or a logout (the session is served again), a rotation's
//     new session (the old ID leads nowhere). What the callers do next builds on the
//     state the failover left (a rotation or a version-checked save of a session whose
//     revoke or last save was lost applies). Without WAIT the tests accept what follows
//     from such losses, and no error the store should not have returned.
//   - [WithWriteAck](n, timeout) ends each save, logout and revoke, and both writes of
//     a rotation (the new session, the old key's pointer), with WAIT n on the
//     connection that wrote. On a Cluster, WAIT 1 (one replica per master) makes an
//     acknowledged write survive a master's kill, pause, network partition and a manual
//     CLUSTER FAILOVER: the replica that is promoted is one that had it. On Sentinel,
//     WAIT 1 covers the master's kill and partition; across SENTINEL FAILOVER the old
//     master keeps taking writes while a replica is promoted and then resynchronises,
//     and WAIT 1 may be met by the replica that resynchronises too, so only WAIT on
//     every replica (2 with the default topology) keeps acknowledged saves; the history
//     tests check each of these faults and allow no acknowledged write lost. WAIT is best
//     effort (Redis does not make a write synchronous). A write that WAIT could not
//     confirm returns ErrNotAcknowledged: applied on the master, perhaps lost — and
//     loads on the master may see it before a failover loses it (Redis reads do not
//     wait for replicas), as they may see any write whose call ended in an error.
//   - With [WithNearCache], a load is linearizable as if it had been called a lease (and
//     its margin) earlier: it may miss a save another app server made within that time.
//     Revocations and destroys keep the rule above: they return only after the lease,
//     and no app server serves the session after that. The history tests check this
//     with the cache on, as the rest, under the same faults.
//
// # Migrating from another store
//
// A session that another Redis session store wrote (the legacy session) is moved into the
// store's format the first time a request meets it — read, converted, saved as a new
// hasession session with the lifetime it had left, and deleted — exactly once however
// many requests meet it at the same time. The gorilla adapter uses [Store.Adopt] for
// redistore's and redisstore's layouts (the scs adapter moves goredisstore's sessions
// itself: scs keeps its token and its bytes); [WithLegacyHash] moves, in Load, the
// sessions of one Redis hash of session IDs, a common pattern of Python applications.
//
// Exactly once, without a cross-slot command: the request that moves a session writes
// the new session first, then claims the legacy one in a script on the legacy key's slot
// — the claim key, {<tag of the legacy key's slot>}:<prefix>moved:<legacy key and field>,
// holds the new session's ID (masked as in a forward pointer; with hashed IDs the name is
// hashed too, see FORMAT.md) and
// the legacy session is deleted in the same step, but only if it still holds what the
// request read. A request that finds the claim loads the session it names; one that
// loses the claim destroys the session it wrote, which nobody was given. The claim lasts
// as long as the new session can: a request with the old cookie (one in flight, or the
// first after a bulk import) lands in the new session, whose ID the response carries.
// That grants the old cookie nothing it did not have — the legacy store honoured it as
// long — and a logout ends both: the claim then leads to a session that is gone.
//
// # Errors
//
// Every method that touches the network takes a context and returns typed errors:
// [ErrInvalidID] (nothing sent), [ErrNotFound], [ErrConflict] (also for a new session
// whose key exists: an earlier Save of it that returned an error may have applied),
// [*SizeError], [*CodecError] (matches [ErrCodecMismatch]), [*CorruptError] (matches
// [ErrCorrupt]: foreign data at the key, WRONGTYPE, malformed metadata, also from Destroy,
// which leaves such data untouched), [*FormatError] (matches [ErrFormatVersion]: a key
// written in a newer format, left untouched by every operation), [*AckError] (matches
// [ErrNotAcknowledged]: applied, not confirmed), [ErrDestroyed], [ErrWrongStore],
// [ErrClosed] (after [Store.Close]), [*PermissionError] (matches [ErrPermission]),
// [ErrOutcomeUnknown] (a Save or Rotate retried after a lost reply whose outcome the
// retry cannot tell), or the
// context's error wrapped: once the caller's context has ended, every error matches it
// (errors.Is(err, ctx.Err())), whatever else it wraps. Errors quote at most [MaxQuoted] bytes of data read from Redis.
// [Session.Set] refuses a value the codec could not read back (nested deeper than
// [codec.MaxDepth], or containing itself: [codec.ErrTooDeep]). [Session.SetIdleTimeout]
// and [Session.SetLifetime] refuse a value out of range with an [*ExpiryError] (matches
// [ErrInvalidExpiry]), changing nothing. No method panics on bad input or a Redis
// failure.
//
// # Redis user
//
// The store needs its own keys (prefix*) and the commands of [ACLCommands]; [ACLSetUser]
// writes the ACL SETUSER line of such a user. A command Redis refuses for lack of
// permission returns a [*PermissionError] (matches [ErrPermission]) naming the command, at
// once: it is not retried. While it migrates sessions of another store, it also needs
// [ACLMigrationCommands] and key patterns for the legacy keys and their claims.
package store
