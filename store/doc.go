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
// # Errors
//
// Every method that touches the network takes a context and returns typed errors:
// [ErrInvalidID] (nothing sent), [ErrNotFound], [ErrConflict], [*SizeError],
// [*CodecError] (matches [ErrCodecMismatch]), [*CorruptError] (matches [ErrCorrupt]:
// foreign data at the key, WRONGTYPE, malformed metadata), or the context's error
// wrapped. No method panics on bad input or a Redis failure.
package store
