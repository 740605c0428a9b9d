package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// LimitPolicy says what a login does when its user has the maximum number of sessions
// (WithMaxSessions).
type LimitPolicy uint8

const (
	// EvictOldest lets the login in and revokes the user's oldest sessions (by login
	// time, kept through Rotate) beyond the maximum, as Revoke does.
	EvictOldest LimitPolicy = iota + 1
	// RefuseLogin refuses the login with a *SessionLimitError (ErrTooManySessions):
	// nothing is written, the session keeps the user it had.
	RefuseLogin
)

func (p LimitPolicy) String() string {
	switch p {
	case EvictOldest:
		return "evict oldest"
	case RefuseLogin:
		return "refuse login"
	}
	return "LimitPolicy(" + strconv.Itoa(int(p)) + ")"
}

// WithMaxSessions caps the live sessions of one user at n (Spring Security's session
// concurrency control): a login — a Save or Rotate that gives a session a user it did not
// have — beyond it either evicts the user's oldest sessions (EvictOldest) or is refused
// (RefuseLogin). Off by default. n must be at least 1 and p one of the two policies.
//
// The cap holds under concurrent logins on every topology, with no command spanning two
// slots: logins of one user are ordered by the user's index (one slot), sessions are
// counted by reading them where they live. With RefuseLogin, 50 concurrent logins of a
// user with no session and a cap of 3 let exactly 3 in; with EvictOldest, once they are
// done, exactly the 3 most recent logins are live. What is counted: the user's sessions
// that are live in Redis, and logins still between their index entry and their write
// (at most 30 s, the pending window). A rotation is not a login: it keeps its session's
// place in the order.
//
// EvictOldest revokes after the login's write, on the login's call (WithEvents: an
// EventRevoked for each session evicted): when that revoke
// fails (a node down beyond the retry policy), the login still succeeds, the failure is
// logged, and the next login of the user evicts again. A concurrent login may evict the
// session of a login that was just written: the newest logins win.
func WithMaxSessions(n int, p LimitPolicy) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("hasession: max sessions %d: %w", n, ErrInvalidLimit)
		}
		if p != EvictOldest && p != RefuseLogin {
			return fmt.Errorf("hasession: max sessions policy %v: %w", p, ErrInvalidLimit)
		}
		o.maxSessions, o.limitPolicy = n, p
		return nil
	}
}

// ErrInvalidLimit: WithMaxSessions was given a maximum below 1 or an unknown policy.
var ErrInvalidLimit = errors.New("hasession: invalid session limit")

// ErrTooManySessions: a login was refused because its user has the maximum number of
// sessions (WithMaxSessions with RefuseLogin). Match it with errors.Is; the error is a
// *SessionLimitError.
var ErrTooManySessions = errors.New("hasession: too many sessions for the user")

// SessionLimitError reports a login refused by WithMaxSessions and RefuseLogin; it matches
// ErrTooManySessions. The login wrote nothing of its own (a refused Rotate has marked the
// old session with the tag of a copy it never writes, which only a revoke reads), and the
// Session keeps the user (and the ID) it had: its SetUser is undone, its other unsaved
// changes stay (a Save writes them).
type SessionLimitError struct {
	Max int // the maximum
}

func (e *SessionLimitError) Error() string {
	return fmt.Sprintf("hasession: login refused: the user has %d sessions, the maximum", e.Max)
}

// Is makes errors.Is(err, ErrTooManySessions) true.
func (e *SessionLimitError) Is(target error) bool { return target == ErrTooManySessions }

// indexLogin lists a login's session tag in the user's index (indexAdd, no rotation's
// order to keep). Under RefuseLogin, when the index holds as many entries as the cap
// allows (other than tag), it first reads those sessions where they live (member.lua
// 's': nothing written) and passes those that are not a live session of the user, so
// index_add counts only live sessions and logins in flight. An entry whose login was in
// flight when the index was read counts whatever its session's state (the login may
// write it, and close its window, before index_add runs); so does a session that could
// not be read.
func (st *Store) indexLogin(ctx context.Context, user, tag string, deadline any, lifeMs int64) (int64, error) {
	var gone []string
	if st.o.maxSessions > 0 && st.o.limitPolicy == RefuseLogin {
		entries, err := st.loginEntries(ctx, user)
		if err != nil {
			return 0, err
		}
		entries = slices.DeleteFunc(entries, func(e loginEntry) bool { return e.tag == tag })
		if len(entries) >= st.o.maxSessions {
			var settled []string
			for _, e := range entries {
				if !e.inFlight {
					settled = append(settled, e.tag)
				}
			}
			for i, r := range st.members(ctx, opIndex, settled, []any{user, "s", tombstoneMs}, false) {
				if r.err == nil && r.status != "live" {
					gone = append(gone, settled[i])
				}
			}
		}
	}
	return st.indexAdd(ctx, user, tag, deadline, lifeMs, "", gone)
}

// loginEntry is an entry of a user's index with its login time (0 when none is recorded:
// such sessions are evicted first) and whether its login was in flight (within its
// pending window) when the index was read.
type loginEntry struct {
	tag      string
	login    int64
	inFlight bool
}

// loginEntries reads the user's index with each entry's login (index_read.lua 'l').
func (st *Store) loginEntries(ctx context.Context, user string) ([]loginEntry, error) {
	flat, err := st.readIndex(ctx, user, "l")
	if err != nil {
		return nil, err
	}
	if len(flat)%3 != 0 {
		return nil, &CorruptError{Key: st.indexKey(user), Reason: "malformed index listing"}
	}
	entries := make([]loginEntry, 0, len(flat)/3)
	for i := 0; i < len(flat); i += 3 {
		login, _ := strconv.ParseInt(flat[i+1], 10, 64) // "" (none recorded): 0
		entries = append(entries, loginEntry{tag: flat[i], login: login, inFlight: flat[i+2] == "1"})
	}
	return entries, nil
}

// afterLogin runs when the login of user, whose session is now tag, was written. Under
// RefuseLogin it closes the login's pending window (best effort: until it closes, by its
// end, the session counts even if it expires). Under EvictOldest it reads the user's
// index and the listed sessions where they live (nothing written), orders the live ones
// by login time (then tag: every app server orders them alike) and revokes the oldest
// beyond the maximum — the session just written too, when newer logins have taken its
// place. Failures are logged: the login stands.
func (st *Store) afterLogin(ctx context.Context, user, tag string) {
	var err error
	switch {
	case st.o.maxSessions == 0:
		return
	case st.o.limitPolicy == RefuseLogin:
		_, err = st.indexUpdate(ctx, user, "w", []string{tag})
	default:
		err = st.evict(ctx, user)
	}
	if err != nil {
		st.o.logger.Warn("hasession: could not apply the maximum of sessions after a login; the next login does", "policy", st.o.limitPolicy.String(), "err", err)
	}
}

func (st *Store) evict(ctx context.Context, user string) error {
	entries, err := st.loginEntries(ctx, user)
	if err != nil || len(entries) <= st.o.maxSessions {
		return err
	}
	tags := make([]string, len(entries))
	for i, e := range entries {
		tags[i] = e.tag
	}
	live := entries[:0]
	var last error
	for i, r := range st.members(ctx, opIndex, tags, []any{user, "s", tombstoneMs}, false) {
		switch {
		case r.err != nil:
			last = r.err // not counted: evicting fewer is the safe side
		case r.status == "live":
			live = append(live, entries[i])
		}
	}
	// One login, one session: a rotation's copy and the session it rotates (both live
	// until the rotation forwards) keep one login time; they go together.
	slices.SortFunc(live, func(a, b loginEntry) int {
		return cmp.Or(cmp.Compare(a.login, b.login), cmp.Compare(a.tag, b.tag))
	})
	var groups [][]string
	for i, e := range live {
		if i > 0 && e.login != 0 && e.login == live[i-1].login {
			groups[len(groups)-1] = append(groups[len(groups)-1], e.tag)
			continue
		}
		groups = append(groups, []string{e.tag})
	}
	if len(groups) <= st.o.maxSessions {
		return last
	}
	var victims []string
	for _, g := range groups[:len(groups)-st.o.maxSessions] {
		victims = append(victims, g...)
	}
	_, _, err = st.revoke(ctx, user, victims, true, nil, maxHops)
	if st.near != nil {
		// An evicted session is revoked: once the login returns, no app server serves it
		// from its cache.
		st.nearRevoked(&err)
	}
	return cmp.Or(err, last)
}
