// Package gorillastore is a session store for github.com/gorilla/sessions that keeps
// sessions in Redis through a hasession [store.Store]: on any go-redis v9 client (a single
// server, a Sentinel-managed master or a Redis Cluster), with the store's failover retry
// policy, sliding and absolute expiry enforced in Redis, and per-value saves.
//
// # Switching from another gorilla store
//
// One line changes: the store.
//
//	// was: store, err := redisstore.NewRedisStore(ctx, client) (or sessions.NewCookieStore(key))
//	store, err := gorillastore.New(st) // st: a hasession *store.Store on your client
//
// Handlers stay as they are — store.Get(r, name), session.Values, session.Options,
// session.Save(r, w), sessions.Save(r, w), flashes. What differs:
//
//   - Keys of Values must be strings (each value is one attribute named by its key); any
//     other key is an error from Save ([ErrKeyNotString]). Values are encoded with the
//     hasession store's codec (MessagePack by default), not gob: a value the codec cannot
//     encode (a func, a chan) or decode back is an error from Save, and nothing needs
//     gob.Register.
//   - Values come back with generic types unless registered (see below).
//   - Options.MaxAge is the session's absolute lifetime in Redis, counted from its
//     creation, as well as the cookie's: a session saved with MaxAge 60 is gone 60 s
//     after it was created (a "remember me" login sets a longer one). It defaults to the
//     hasession store's lifetime and may not exceed its maximum (store.WithMaxLifetime;
//     by default the lifetime: an error matching store.ErrInvalidExpiry). The idle
//     timeout (sliding) is the store's. A Save with MaxAge ≤ 0 destroys the session and
//     expires the cookie, as with gorilla's FilesystemStore and the Redis stores.
//   - The default options are secure: HttpOnly, Secure, SameSite=Lax, Path "/" (see
//     [DefaultOptions]); set them with [WithOptions].
//   - The cookie carries the session ID as it is, a UUIDv4 with 122 bits from
//     crypto/rand, checked by the store before use (a malformed cookie gets a new
//     session and sends nothing to Redis): there are no securecookie keys to manage.
//
// A typical setup:
//
//	rdb := store.NewFailoverClient(&redis.UniversalOptions{Addrs: addrs}) // or MasterName for Sentinel
//	st, err := store.New(rdb, store.WithIdleTimeout(30*time.Minute), store.WithLifetime(12*time.Hour))
//	if err != nil { … }
//	sessionStore, err := gorillastore.New(st, gorillastore.WithValueType("cart", Cart{}))
//
//	func handler(w http.ResponseWriter, r *http.Request) {
//		session, err := sessionStore.Get(r, "session")
//		if err != nil { … } // Redis down past the retry policy; session is a new one
//		session.Values["user"] = "ada"
//		if err := session.Save(r, w); err != nil { … }
//	}
//
// # Switching from redistore / redisstore
//
// Sessions that github.com/boj/redistore or github.com/rbcervilla/redisstore/v9 wrote
// move into the hasession store the first time a request brings their cookie, so that
// the switch logs nobody out. Point the hasession store at the same Redis and name the
// legacy store's layout:
//
//	// was: redistore.NewRediStore(10, "tcp", addr, "", "", hashKey, blockKey)
//	sessionStore, err := gorillastore.New(st, gorillastore.WithLegacyRedistore(gorillastore.RedistorePrefix, hashKey, blockKey))
//	// was: redisstore.NewRedisStore(ctx, client)
//	sessionStore, err := gorillastore.New(st, gorillastore.WithLegacyRedisstore(gorillastore.RedisstorePrefix))
//
// The prefix is the one the legacy store used (SetKeyPrefix, KeyPrefix); redistore's
// keys are the hash and block keys it was given, in the same order: its cookie is a
// securecookie of the session ID, verified with them (its age is not checked: the legacy
// session's TTL bounds it). redisstore's cookie is the ID itself (IDs of its default key
// generator are taken). A cookie that verifies and names a legacy session — the key
// <prefix><ID>, the gob of Values — makes Get return a session with its values, IsNew
// false, that lives what the legacy session had left (its TTL) and has a new, hasession
// ID, which Save sends in the cookie even when nothing changed; the legacy key is
// deleted. Concurrent requests with the same cookie all get that one session, on any
// number of app servers, and a request with the old cookie still finds it for as long as
// the new session lives (a browser whose handler did not Save keeps the old cookie; a
// logout ends both).
// Give the new cookie the legacy cookie's Path and Domain ([WithOptions]): with others,
// the browser keeps both cookies, and may go on sending the legacy one.
//
// Values are read as the legacy store's GobSerializer wrote them (redistore's
// JSONSerializer with [WithLegacyJSON]): register with gob.Register every type the app
// registered for the legacy store, before the first request. Each value is then stored
// as one attribute and comes back as a load gives it (see below; register types with
// [WithValueType] where they matter, as for any session).
//
// A legacy session that cannot move is left as it is, byte for byte, and the request
// gets a new, empty session and no error (the user logs in again; a later version of the
// app that can read it still finds it): a value that does not decode (an unregistered
// type, garbage), a key of Values that is not a string, a value the hasession codec
// cannot store or load back, a key of another Redis type. It is counted in
// store.Stats().LegacyCorrupt and logged with [WithLogger]. A cookie that does not verify
// or names no legacy ID gets a new session and sends nothing to Redis.
//
// The Redis user of the hasession store needs the legacy keys and their claim keys
// ({<legacy key>}:<prefix>moved, in the legacy key's slot) and the GET and SET commands.
// Remove the option once no legacy key is left (SCAN for <prefix>*; store.Stats().
// LegacyImported stops growing) or once the legacy sessions' lifetime — redistore's and
// redisstore's MaxAge, 30 days by default — has passed since the switch: they have all
// moved or expired by then. Switch every app server at once: a legacy session that an
// app server still on the legacy store writes again after its move does not reach the
// session it moved to.
//
// # What Values hold after a load
//
// Each value is decoded on load. A key registered with [WithValueType] gives back that
// type, as gob would. Any other value is decoded into an interface, with the codec's
// generic types — store typed values under registered keys where the type matters:
//
//	stored                       MessagePack (default)             JSON codec
//	string, bool, []byte         the same                          []byte: base64 string
//	int, int32, uint16, …        int64 (uint64 above MaxInt64)     float64
//	float32, float64             float64                           float64
//	struct, map[string]T         map[string]any                    map[string]any
//	[]T (flashes too)            []any                             []any
//	time.Time                    time.Time (local time zone)       string (RFC 3339)
//	map[int]T                    map[any]any, keys int64           map[string]any
//
// Numbers inside maps and slices are converted the same way. Save decodes each value it
// writes as a load will and refuses one that would not load back — with MessagePack, a
// map whose keys are not strings nested inside another value: register the type of
// such values.
//
// # Saves
//
// Save writes, in one script, only the values that changed since the load (compared
// with reflect.DeepEqual against a copy decoded apart) and deletes the attributes whose
// keys were removed from Values, so an unchanged session sends nothing and concurrent
// requests changing different values do not overwrite each other. A session that was
// destroyed, revoked or expired since it was loaded is never brought back, and its
// values never move to another session: Save returns an error matching
// store.ErrNotFound and sets no cookie, so a request in flight during a logout cannot
// log the user back in.
package gorillastore
