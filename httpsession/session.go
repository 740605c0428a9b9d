package httpsession

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hasession/hasession/store"
)

// Errors of the middleware. The store's errors (store.ErrNoAttribute, …) pass through
// unchanged.
var (
	// ErrCommitted is what every mutator of the request's Session (Set, Delete, SetUser,
	// SetIdleTimeout, SetLifetime, SetPersistent, Rotate, Destroy, Update) returns, having done nothing, once the response has
	// started: the session was saved already (or found unchanged, or its save failed and
	// the error handler answered) and the cookie decided, so a change now would be lost.
	ErrCommitted = errors.New("hasession: the response has started; the session can no longer change")
	// ErrNotSaved is what the response writer's Write, ReadFrom, Flush and Hijack return
	// once the session could not be saved: the error handler has answered instead.
	ErrNotSaved = errors.New("hasession: session not saved; the error handler answered")
)

type ctxKey struct{}

// FromContext returns the request's session, or nil when the request did not go through
// [Manager.Handler]. Call it with r.Context(). Where Managers are nested (one handler
// inside another's), it returns the innermost one's session: [Manager.FromContext] names
// the Manager.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

// FromContext returns the request's session of this Manager, or nil when the request did
// not go through m's Handler. Several Managers (each with its own cookie name, on their
// own stores or on one) may wrap one handler, one inside the other: each one's session is
// found by its Manager.
func (m *Manager) FromContext(ctx context.Context) *Session {
	for h := FromContext(ctx); h != nil; h = h.outer {
		if h.m == m {
			return h
		}
	}
	return nil
}

// Session is the request's session as handlers see it: a [store.Session] that the
// middleware loaded before the handler ran and saves, if it changed, before the first
// byte of the response.
//
// Its readers (ID, Get, Keys, User, …) are those of store.Session, on the request's
// current session. Its mutators — Set, Delete, SetUser, SetIdleTimeout, SetLifetime,
// SetPersistent, Rotate, Destroy and Update —
// change the request's session only until the response has started (the handler's first
// Write, WriteHeader other than 1xx, ReadFrom, Flush or Hijack, or its return): from then
// on each of them returns [ErrCommitted] and does nothing, neither in the session nor in
// Redis.
//
// Rotate and Destroy act at once, in Redis, with the context they are given (the
// request's), so a handler learns of a failure while it can still answer; the cookie
// follows in the response.
//
// A Session is safe for concurrent use, for the duration of the request.
type Session struct {
	m     *Manager
	outer *Session // the session of the Manager whose Handler wraps this one's, if any
	mu    sync.Mutex
	s     *store.Session // the request's current session: Destroy and Update replace it

	cookieID  string // the cookie's value, "" without a cookie
	hadCookie bool
	destroyed bool // Destroy was called: expire the cookie unless a new session is saved
	committed bool
	// persistSet: SetPersistent was called: the cookie goes out again, so that the
	// browser's copy follows the choice (a persistent cookie replaced by a session one).
	persistSet bool
}

// cur returns the request's current session, for a reader. The store.Session has a lock
// of its own: h.mu only guards which session is current.
func (h *Session) cur() *store.Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.s
}

// change runs fn, a change of the request's session, under h.mu, unless the response has
// started: then it returns ErrCommitted without running fn. Every mutator goes through
// it.
func (h *Session) change(fn func(s *store.Session) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.committed {
		return ErrCommitted
	}
	return fn(h.s)
}

// ID returns the session's ID, which the cookie carries. A new session has an ID too,
// but it reaches the browser only if the session is saved.
func (h *Session) ID() string { return h.cur().ID() }

// IsNew reports whether the session has never been saved: the visitor brought no cookie,
// or one that led to no session (malformed, unknown, expired, destroyed).
func (h *Session) IsNew() bool { return h.cur().IsNew() }

// Get decodes the attribute into dst, a non-nil pointer. It returns
// store.ErrNoAttribute when the session has no such attribute.
func (h *Session) Get(key string, dst any) error { return h.cur().Get(key, dst) }

// Has reports whether the session has the attribute.
func (h *Session) Has(key string) bool { return h.cur().Has(key) }

// Keys returns the names of the session's attributes, sorted.
func (h *Session) Keys() []string { return h.cur().Keys() }

// User returns the user the session belongs to ("" for an anonymous session).
func (h *Session) User() string { return h.cur().User() }

// Modified reports whether the session has changes to save.
func (h *Session) Modified() bool { return h.cur().Modified() }

// Version returns the session's version: 0 before the first save, then one more per save.
func (h *Session) Version() int64 { return h.cur().Version() }

// CreatedAt returns when the session was first saved; zero before that.
func (h *Session) CreatedAt() time.Time { return h.cur().CreatedAt() }

// ExpiresAt returns when the session expires unless it is used again; zero before the
// first save.
func (h *Session) ExpiresAt() time.Time { return h.cur().ExpiresAt() }

// Deadline returns the session's absolute deadline: it is gone then, however active.
// Zero before the first save.
func (h *Session) Deadline() time.Time { return h.cur().Deadline() }

// LastTouch returns when the session's expiry was last extended (by a save, or a load
// whose touch was due); zero before the first save.
func (h *Session) LastTouch() time.Time { return h.cur().LastTouch() }

// IdleTimeout returns the session's idle timeout: its own, or the store's (see
// store.Session.IdleTimeout).
func (h *Session) IdleTimeout() time.Duration { return h.cur().IdleTimeout() }

// Lifetime returns the session's absolute lifetime: its own, or the store's (see
// store.Session.Lifetime).
func (h *Session) Lifetime() time.Duration { return h.cur().Lifetime() }

// Persistent reports the cookie persistence the session was given (SetPersistent): ok
// is false when it was given none, and the Manager's [WithPersistentCookie] applies.
func (h *Session) Persistent() (persistent, ok bool) { return h.cur().Persistent() }

// SetIdleTimeout gives the session an idle timeout of its own, saved with the response
// and kept through Rotate (see store.Session.SetIdleTimeout): a persistent cookie's
// Max-Age follows it. It returns a *store.ExpiryError (store.ErrInvalidExpiry) for d
// under 1 s or over the store's maximum, or ErrCommitted once the response has started;
// either way nothing changes.
func (h *Session) SetIdleTimeout(d time.Duration) error {
	return h.change(func(s *store.Session) error { return s.SetIdleTimeout(d) })
}

// SetLifetime gives the session an absolute lifetime of its own, from its creation,
// saved with the response and kept through Rotate (see store.Session.SetLifetime). It
// returns a *store.ExpiryError (store.ErrInvalidExpiry) for d under 1 s or over the
// store's maximum, or ErrCommitted once the response has started; either way nothing
// changes.
func (h *Session) SetLifetime(d time.Duration) error {
	return h.change(func(s *store.Session) error { return s.SetLifetime(d) })
}

// SetPersistent chooses the session's cookie, whatever the Manager's
// [WithPersistentCookie] says: persistent (true; Max-Age and Expires follow the
// session's expiry, and it survives a browser restart: "remember me") or a session
// cookie (false). It is saved with the session, so every app server and every later
// response follows it, and kept through Rotate. It returns ErrCommitted, having done
// nothing, once the response has started.
//
//	_ = s.SetPersistent(true)                // on a "remember me" login
//	_ = s.SetLifetime(30 * 24 * time.Hour)   // within store.WithMaxLifetime
//	_ = s.SetIdleTimeout(7 * 24 * time.Hour) // within store.WithMaxIdleTimeout
//	err := s.Rotate(r.Context())
func (h *Session) SetPersistent(persistent bool) error {
	return h.change(func(s *store.Session) error {
		s.SetPersistent(persistent)
		h.persistSet = true
		return nil
	})
}

// Set records an attribute to save with the response. It returns a *store.ValueError
// (store.ErrUnencodable) when v cannot be encoded (the session is unchanged then), or
// ErrCommitted, having done nothing, once the response has started.
func (h *Session) Set(key string, v any) error {
	return h.change(func(s *store.Session) error { return s.Set(key, v) })
}

// Delete removes the attribute, with the response; deleting a missing attribute is a
// no-op. It returns ErrCommitted, having done nothing, once the response has started.
func (h *Session) Delete(key string) error {
	return h.change(func(s *store.Session) error {
		s.Delete(key)
		return nil
	})
}

// Pop returns the attribute decoded into dst and deletes it with the response, in one
// step: a flash message, shown once (see [store.Session.Pop]; read it with
// [store.Get] or Get to leave it). ErrNoAttribute when there is none; ErrCommitted,
// having done nothing, once the response has started.
func (h *Session) Pop(key string, dst any) error {
	return h.change(func(s *store.Session) error { return s.Pop(key, dst) })
}

// Clear deletes every attribute with the response; the session, its ID and user stay. It
// returns ErrCommitted, having done nothing, once the response has started.
func (h *Session) Clear() error {
	return h.change(func(s *store.Session) error {
		s.Clear()
		return nil
	})
}

// SetUser sets the user the session belongs to ("" clears it), saved with the response;
// call Rotate with it on login. It returns ErrCommitted, having done nothing, once the
// response has started.
func (h *Session) SetUser(user string) error {
	return h.change(func(s *store.Session) error {
		s.SetUser(user)
		return nil
	})
}

// Rotate gives the session a new ID now (call it on login and on any change of
// privilege, against session fixation): the session, with its pending changes, is
// written under the new ID, and the response carries the new cookie. The old ID leads to
// the new session for the store's grace period, so requests already in flight with the
// old cookie still find it. A session never saved just gets a new ID, without a Redis
// call.
//
// Errors: ErrCommitted once the response has started (nothing done), or store.Rotate's;
// on error the session keeps its ID and the old cookie stays valid.
func (h *Session) Rotate(ctx context.Context) error {
	return h.change(func(s *store.Session) error { return h.m.st.Rotate(ctx, s) })
}

// Destroy deletes the session from Redis now (logout) and replaces it with a new, empty
// one. The response expires the cookie (Max-Age=0), unless the handler stores something
// in the new session, which then gets a new cookie. Call it before the response starts:
// from then on it returns ErrCommitted and does nothing — the session stays in Redis and
// the cookie stays valid (end the session with [store.Store.Destroy] then, without
// expiring the cookie).
//
// Errors: ErrCommitted (nothing done), the context's error or a Redis error (the session
// then still exists).
func (h *Session) Destroy(ctx context.Context) error {
	return h.change(func(s *store.Session) error {
		if err := h.m.st.DestroySession(ctx, s); err != nil {
			return err
		}
		fresh, err := h.m.st.NewSession()
		if err != nil {
			return err
		}
		h.s, h.destroyed = fresh, true
		return nil
	})
}

// Update changes the session atomically, for a read-modify-write that concurrent
// requests of the same session must not lose (a counter, a cart): it loads the
// session's latest version from Redis, runs fn on it and saves what fn changed at once,
// with a version check, running fn again on a fresh load when another request saved in
// between (see store.Store.Update: fn may run more than once, and must only read and
// change the session it is given). The request's session is then the one Update saved,
// so the save with the response does not write fn's attributes again: a later Set in the
// same request is saved with the response, as usual (with the store's WithVersionCheck,
// that save too fails if another request saved in between).
//
// Changes the request made before Update are saved first, as the response would save
// them. A session not yet in Redis (no cookie, or Destroy was called) has no other
// request to race with: fn runs once on a new session, which is saved at once.
//
// Errors: ErrCommitted once the response has started (nothing done, fn not run), fn's
// error (fn's changes are not saved), an error matching store.ErrConflict when the
// session kept changing under every attempt, the store's errors (store.ErrNotFound: the
// session is gone — logged out, revoked, expired — and is not brought back), the
// context's error. On error the request's session is left as it was.
func (h *Session) Update(ctx context.Context, fn func(*store.Session) error) error {
	return h.change(func(cur *store.Session) error {
		st := h.m.st
		if cur.Modified() {
			if err := st.Save(ctx, cur); err != nil {
				return err
			}
		}
		if cur.IsNew() {
			s, err := st.NewSession()
			if err != nil {
				return err
			}
			if err := fn(s); err != nil {
				return err
			}
			if err := st.Save(ctx, s); err != nil {
				return err
			}
			h.s = s
			return nil
		}
		var last *store.Session
		if err := st.Update(ctx, cur.ID(), func(s *store.Session) error {
			last = s
			return fn(s)
		}); err != nil {
			return err
		}
		h.s = last
		return nil
	})
}

// Ref returns the current session's reference, as store.Store.Sessions lists it: a page
// that lists the user's sessions marks the current one with it.
func (h *Session) Ref() string {
	ref, _ := h.m.st.Ref(h.ID())
	return ref
}

// RevokeOthers ends every other session of the session's user ("log out everywhere
// else", after a password change): see store.Store.RevokeAll. It returns store.ErrNoUser
// for an anonymous session. It leaves the request's session as it is, so it works after
// the response has started too.
func (h *Session) RevokeOthers(ctx context.Context) error {
	return h.m.st.RevokeAll(ctx, h.User(), h.ID())
}
