// Package httpsession is net/http middleware on [store.Store]: the session's ID in a
// cookie, the session in the request's context, saved if it changed before the first
// byte of the response. It works with any http.Handler (http.ServeMux and everything
// built on it).
//
//	st, err := store.New(rdb)
//	sm, err := httpsession.New(st)                 // cookie "hasession": HttpOnly, Secure, SameSite=Lax
//	http.ListenAndServe(addr, sm.Handler(mux))
//
//	func cart(w http.ResponseWriter, r *http.Request) {
//		s := httpsession.FromContext(r.Context())
//		var items []string
//		_ = s.Get("cart", &items)                 // store.ErrNoAttribute if none
//		_ = s.Set("cart", append(items, "book"))  // saved before the response's first byte
//	}
//
//	func login(w http.ResponseWriter, r *http.Request) {
//		s := httpsession.FromContext(r.Context())
//		_ = s.SetUser("alice")                             // ErrCommitted only after the response started
//		if err := s.Rotate(r.Context()); err != nil { … } // new ID now, new cookie in the response
//	}
//
//	func logout(w http.ResponseWriter, r *http.Request) {
//		err := httpsession.FromContext(r.Context()).Destroy(r.Context()) // gone from Redis, cookie expired
//	}
//
// # What it costs
//
// A visitor without a cookie gets a new session that costs nothing: no Redis call, and
// no cookie unless something is stored in it. A malformed cookie is treated the same and
// never reaches Redis. A request with a valid cookie costs one load (one round trip; the
// store extends the session's TTL at most once per touch interval), and one save only if
// the session changed. A request may carry several cookies of the session's name (one
// set for a parent domain or another path beside the current one): the first that names
// a live session wins, so a stale or malformed one does not log the user out; malformed
// ones cost nothing, and at most three well-formed ones are loaded.
//
// # Cookies
//
// The cookie is HttpOnly, Secure, SameSite=Lax and Path=/ by default, and persistent: its
// Max-Age and Expires follow the session's expiry ([store.Session.ExpiresAt]), so it is
// re-sent with every response that carries a stored session, keeping the browser's copy in
// step with the sliding expiry. [WithPersistentCookie](false) makes it a session cookie,
// sent only when the session is first saved or changes ID. Responses carry Vary: Cookie,
// and Cache-Control: no-cache="Set-Cookie" when they set the cookie. A Secure cookie set
// in answer to a plain-HTTP request for a host other than localhost (a LAN address in
// development, a proxy that does not say X-Forwarded-Proto: https) is dropped by the
// browser, and every request of that visitor then starts a new session: the Manager logs
// a warning about it once, through [WithLogger]'s logger.
//
// A session may choose its cookie for itself, whatever the Manager's default
// ([Session.SetPersistent], stored with the session, so every app server and every later
// response follows it). A "remember me" login asks for a persistent cookie and a longer
// expiry of its own, within the store's maximum (store.WithMaxLifetime,
// store.WithMaxIdleTimeout); the cookie's Max-Age follows the session's expiry, the
// earlier of its idle timeout and its deadline, here 30 days:
//
//	_ = s.SetPersistent(true)
//	_ = s.SetLifetime(30 * 24 * time.Hour)
//	_ = s.SetIdleTimeout(30 * 24 * time.Hour)
//	err := s.Rotate(r.Context())
//
// # API clients
//
// [WithHeader]("X-Session-Id") carries the ID in a header as well, for clients that keep
// no cookies: the header names the request's session first, and the responses that give
// the client an ID (a new session saved, a rotation) carry it there.
//
// # Several Managers
//
// Managers may be nested (a site's session and an admin area's, each with its own cookie
// name): each one's session is found with [Manager.FromContext]; the package's
// FromContext gives the innermost one's.
//
// # After the response has started
//
// The session is saved, and the cookie decided, before the first byte of the response:
// at the handler's first Write, WriteHeader (other than 1xx), ReadFrom, Flush or Hijack,
// or when it returns. From then on every mutator of the request's [Session] — Set,
// Delete, SetUser, SetIdleTimeout, SetLifetime, SetPersistent, Rotate, Destroy, Update —
// returns [ErrCommitted] and does nothing: nothing changes in the session, in Redis or in
// the response. Its readers go on
// working. Change the session, and call Rotate and Destroy, before writing the response.
//
// # Rotation
//
// [Session.Rotate] (login) writes the session under a new ID at once. When the rotation
// keeps the session's user (a change of privilege), the old ID leads to the new session
// for the store's grace period, and a request still carrying the old cookie gets the new
// one in its response. When it changes the user (a login), the old ID leads nowhere: a
// request with the old cookie — which someone else may have planted — gets a new, empty
// session, and its logout cannot end the new one.
//
// # Events
//
// The store's events (store.WithEvents: an audit log, "new sign-in" mails) cover what the
// middleware does, with nothing to set here: a new session's first response emits
// created, a login ([Session.SetUser], then [Session.Rotate]) rotated and user-bound, a
// logout ([Session.Destroy]) destroyed, [Session.RevokeOthers] revoked for each other
// session. The handler runs off the request's path (see the store package's "Events").
//
// # Concurrent requests
//
// Concurrent requests of one session that change different attributes all keep their
// changes: a save writes only what its request changed. A plain read-modify-write of one
// attribute is not atomic, though: two requests that both read a counter at 1 and set it
// to 2 save 2, and one increment is lost — of concurrent saves of the same attribute, the
// last writer wins. Use [Session.Update] for counters, carts and anything else computed
// from the attribute's previous value: it loads the latest version, runs the change and
// saves it with a version check, retrying on a concurrent save, so nothing is lost.
//
//	err := s.Update(r.Context(), func(s *store.Session) error {
//		var n int
//		_ = s.Get("visits", &n)
//		return s.Set("visits", n+1)
//	})
//
// With the store's WithVersionCheck, every save of the response checks the version
// instead: a request that saves after another changed the session is answered 409
// Conflict by the default error handler (logged as a warning), and saves nothing.
//
// # Errors
//
// Redis calls use the request's context: a client that goes away mid-request cancels the
// save. The store retries through a failover until that context ends, and net/http gives
// it no deadline: [WithTimeout] bounds the middleware's load and save.
//
// When the session cannot be loaded or saved — Redis down past that bound, the request's
// context ended, a session over the store's size limit, a version conflict — the error
// handler answers instead of the handler ([WithErrorHandler]; by default 409 for a
// conflict, 500 otherwise, and a log line through the Manager's logger), and the
// handler's writes after that return [ErrNotSaved]. Nothing panics.
//
// # Logging
//
// Each Manager logs through its own logger, set with [WithLogger]; without one it logs
// nothing, as the store logs nothing without store.WithLogger. Pass slog.Default() to log
// through the program's default logger.
//
// # Metrics and traces
//
// The Manager has no observer of its own: give the store one (store.WithObserver; the
// module github.com/hasession/hasession/otel implements it with OpenTelemetry). The
// middleware loads and saves with the request's context, so with otelhttp (or any
// middleware that puts a span in the request's context) in front of the Manager, the
// store's spans of a request are children of the request's span.
package httpsession
