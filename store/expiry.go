package store

import "time"

// minExpiry is the shortest idle timeout or lifetime a session may be given.
const minExpiry = time.Second

// IdleTimeout returns the session's idle timeout: its own (SetIdleTimeout, saved or not)
// or else the store's.
func (s *Session) IdleTimeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.idleMsLocked()) * time.Millisecond
}

// idleMsLocked is the session's idle timeout in ms, with s.mu held.
func (s *Session) idleMsLocked() int64 {
	switch {
	case s.newIdle != 0:
		return s.newIdle
	case s.idle != 0:
		return s.idle
	}
	return s.st.idleMs
}

// SetIdleTimeout gives the session an idle timeout of its own, saved with the next Save
// (or Rotate): from then on a load or save extends the session's TTL to d (but never past
// its deadline), on Redis's clock, on every app server, and Rotate carries it to the new
// ID. d must be at least 1 s and at most the store's maximum ([WithMaxIdleTimeout]; by
// default the store's idle timeout): otherwise SetIdleTimeout returns an [*ExpiryError]
// (matching [ErrInvalidExpiry]) and the session is unchanged.
func (s *Session) SetIdleTimeout(d time.Duration) error {
	if d < minExpiry || d > s.st.o.maxIdle {
		return &ExpiryError{Setting: "idle timeout", Value: d, Min: minExpiry, Max: s.st.o.maxIdle}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newIdle = d.Milliseconds()
	return nil
}

// Lifetime returns the session's absolute lifetime: the one SetLifetime gave it and not
// saved yet; else, once saved, its deadline less its creation; else the store's.
func (s *Session) Lifetime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.newLife != 0:
		return time.Duration(s.newLife) * time.Millisecond
	case !s.isNew:
		return time.Duration(s.deadline-s.created) * time.Millisecond
	}
	return s.st.o.absolute
}

// lifeMsLocked is the lifetime (ms) a new session is saved with, with s.mu held.
func (s *Session) lifeMsLocked() int64 {
	if s.newLife != 0 {
		return s.newLife
	}
	return s.st.lifeMs
}

// SetLifetime gives the session an absolute lifetime of its own, counted from its
// creation, saved with the next Save (or Rotate): the save sets its deadline to
// created-at + d, computed in Redis, and Rotate carries it to the new ID. A lifetime
// longer than the store's is how a "remember me" login outlives the others; one shorter
// than the session's age ends the session at that save ([ErrNotFound]). d must be at
// least 1 s and at most the store's maximum ([WithMaxLifetime]; by default the store's
// lifetime): otherwise SetLifetime returns an [*ExpiryError] (matching
// [ErrInvalidExpiry]) and the session is unchanged.
func (s *Session) SetLifetime(d time.Duration) error {
	if d < minExpiry || d > s.st.o.maxAbsolute {
		return &ExpiryError{Setting: "lifetime", Value: d, Min: minExpiry, Max: s.st.o.maxAbsolute}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newLife = d.Milliseconds()
	return nil
}

// Persistent reports the cookie persistence the session was given (SetPersistent, saved
// or not): persistent is true for a cookie that outlives the browser session, false for
// a session cookie; ok is false when the session was never given one, and the
// middleware's default applies.
func (s *Session) Persistent() (persistent, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.persist
	if s.newPersist != 0 {
		p = s.newPersist
	}
	return p > 0, p != 0
}

// SetPersistent records, with the session, whether its cookie is to outlive the browser
// session (true, a "remember me" login) or be a session cookie (false), saved with the
// next Save (or Rotate) so that every app server sees it; Rotate carries it. The store
// only keeps it: httpsession and gorillastore choose the cookie by it.
func (s *Session) SetPersistent(persistent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newPersist = -1
	if persistent {
		s.newPersist = 1
	}
}

// expiryArgs returns save.lua's ARGV[11] to ARGV[13] for the session's pending expiry
// changes: its own idle timeout (ms) or "", its own lifetime (ms) or "", its cookie
// persistence ('1', '0') or "".
func (s *Session) expiryArgs() (idle, life any, persist string) {
	idle, life = "", ""
	if s.newIdle != 0 {
		idle = s.newIdle
	}
	if s.newLife != 0 {
		life = s.newLife
	}
	return idle, life, persistArg(s.newPersist)
}

// persistArg encodes a persistence for save.lua ("" for none).
func persistArg(p int8) string {
	switch {
	case p > 0:
		return "1"
	case p < 0:
		return "0"
	}
	return ""
}

// applyExpiry folds the saved expiry changes into what the session holds; the deadline
// comes from the save's reply.
func (s *Session) applyExpiry() {
	if s.newIdle != 0 {
		s.idle = s.newIdle
	}
	if s.newPersist != 0 {
		s.persist = s.newPersist
	}
	s.newIdle, s.newLife, s.newPersist = 0, 0, 0
}
