package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hasession/hasession/internal/sid"
)

// SessionInfo describes one live session of a user, as Sessions lists it.
type SessionInfo struct {
	// Ref identifies the session to Revoke and RevokeAll. It is derived from the session's
	// key by a one-way hash: it can be shown to the user, it is not a session ID and
	// cannot be used as one.
	Ref string
	// Created is when the session was first saved; LastTouch when its TTL was last
	// extended; Expires when it ends unless used again; Deadline when it ends however
	// active (Redis time).
	Created, LastTouch, Expires, Deadline time.Time

	attrs map[string]string
	st    *Store
}

// Has reports whether the session had the attribute (among those Sessions asked for).
func (i SessionInfo) Has(name string) bool {
	_, ok := i.attrs[name]
	return ok
}

// Get decodes an attribute Sessions was asked for into dst. It returns ErrNoAttribute if
// the session has no such attribute or it was not asked for.
func (i SessionInfo) Get(name string, dst any) error {
	v, ok := i.attrs[name]
	if !ok {
		return ErrNoAttribute
	}
	if err := i.st.o.codec.Unmarshal([]byte(v), dst); err != nil {
		return fmt.Errorf("hasession: attribute %q: %w", name, err)
	}
	return nil
}

// Ref returns the reference of the session with the given ID, as Sessions reports it: a
// handler compares it with the listed sessions to mark the current one. It returns
// ErrInvalidID for a malformed ID.
func (st *Store) Ref(id string) (string, error) {
	if !sid.Valid(id) {
		return "", ErrInvalidID
	}
	return refOf(st.tag(id)), nil
}

// refOf returns the public reference of a session tag.
func refOf(tag string) string {
	sum := sha256.Sum256([]byte("hasession ref\x00" + tag))
	return hex.EncodeToString(sum[:12])
}

// IndexKey returns the key of the user's session index (a sorted set of session tags,
// scored by absolute deadline), for operators and tests. It is in a slot of its own: no
// command ever spans it and a session key.
func (st *Store) IndexKey(user string) string { return st.indexKey(user) }

// Sessions returns the user's live sessions, most recently used first, with the
// attributes named in attrs (read them with SessionInfo.Get). It reads the user's index
// (one round trip) and the listed sessions (one pipelined round trip, per node in a
// Cluster). Entries whose session is gone — expired, destroyed, revoked, rotated away —
// are dropped from the index as they are found.
func (st *Store) Sessions(ctx context.Context, user string, attrs ...string) ([]SessionInfo, error) {
	if user == "" {
		return nil, ErrNoUser
	}
	tags, err := st.indexRead(ctx, user)
	if err != nil || len(tags) == 0 {
		return nil, err
	}
	args := make([]any, 0, 3+len(attrs))
	args = append(args, user, "l", tombstoneMs)
	for _, a := range attrs {
		args = append(args, attrPrefix+a)
	}
	replies := st.members(ctx, opListSessions, tags, args, false)
	now := time.Now()
	var infos []SessionInfo
	var prune, expired []string
	for i, r := range replies {
		if errors.Is(r.err, ErrCorrupt) {
			st.o.logger.Warn("hasession: unreadable session left out of the list", "err", r.err)
			continue
		}
		if r.err != nil {
			return nil, r.err
		}
		switch r.status {
		case "gone", "dead":
			prune = append(prune, tags[i])
			if r.status == "gone" && st.events != nil {
				// Listed, and no key: expired. member.lua left a tombstone, so any other
				// listing finds it dead, and this one alone reports it.
				expired = append(expired, tags[i])
			}
		case "live":
			info, err := st.sessionInfo(tags[i], r.vals, attrs, now)
			if err != nil {
				st.o.logger.Warn("hasession: unreadable session left out of the list", "err", err)
				continue
			}
			infos = append(infos, info)
		}
	}
	for _, t := range expired {
		st.emit(EventExpired, t, user)
	}
	st.indexRemove(ctx, user, prune...)
	slices.SortFunc(infos, func(a, b SessionInfo) int { return b.LastTouch.Compare(a.LastTouch) })
	return infos, nil
}

// sessionInfo builds a SessionInfo from a 'live' reply of member.lua.
func (st *Store) sessionInfo(tag string, vals []any, attrs []string, now time.Time) (SessionInfo, error) {
	info := SessionInfo{Ref: refOf(tag), st: st}
	key := st.keyOfTag(tag)
	if len(vals) != 4+len(attrs) {
		return info, &CorruptError{Key: key, Reason: "malformed session listing"}
	}
	listingFields := [...]string{fCreated, fTouched, fDeadline}
	var ms [len(listingFields)]int64
	for j := range ms {
		v, _ := vals[j].(string)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return info, &CorruptError{Key: key, Reason: "malformed session metadata", Err: numberError(listingFields[j], v, err)}
		}
		ms[j] = n
	}
	pttl, _ := vals[3].(int64)
	info.Created, info.LastTouch, info.Deadline = time.UnixMilli(ms[0]), time.UnixMilli(ms[1]), time.UnixMilli(ms[2])
	info.Expires = now.Add(time.Duration(pttl) * time.Millisecond)
	for j, a := range attrs {
		if v, ok := vals[4+j].(string); ok {
			if info.attrs == nil {
				info.attrs = make(map[string]string, len(attrs))
			}
			info.attrs[a] = v
		}
	}
	return info, nil
}

// Revoke ends one session of the user, given its ID or its Ref (from Sessions): a request
// that carries it finds no session (given the ID of a session rotated within the grace
// period, the session it leads to ends too). Revoking a session that is already gone,
// or a Ref that is not listed, is not an error; a session that belongs to another user
// is ErrNotFound and is left alone.
func (st *Store) Revoke(ctx context.Context, user, idOrRef string) (err error) {
	if st.near != nil {
		defer st.nearRevoked(&err)
	}
	if user == "" {
		return ErrNoUser
	}
	var tags []string
	if sid.Valid(idOrRef) {
		id := idOrRef
		for range maxHops {
			tag := st.tag(id)
			tags = append(tags, tag)
			// The chain is followed as far as Load follows it (maxHops keys in all): an
			// ID whose chain Load finds no session at ends none.
			other, fwd, err := st.revoke(ctx, user, []string{tag}, false, nil, maxHops-len(tags)+1)
			if err != nil {
				return err
			}
			if other && len(tags) == 1 {
				return ErrNotFound
			}
			next, ok := forwardTarget(id, fwd)
			if fwd == "" || !ok {
				return nil
			}
			id = next
		}
		return nil
	}
	all, err := st.indexRead(ctx, user)
	if err != nil {
		return err
	}
	for _, t := range all {
		if refOf(t) == idOrRef {
			tags = append(tags, t)
			break
		}
	}
	if len(tags) == 0 {
		return nil
	}
	other, _, err := st.revoke(ctx, user, tags, true, nil, maxHops)
	if err != nil {
		return err
	}
	if other {
		return ErrNotFound
	}
	return nil
}

// RevokeAll ends every session of the user except those named in except (IDs or Refs:
// the current session after a password change, say). When it returns nil, every session
// the user had when it was called is gone, and so is any rotation of them in flight; a
// login that runs concurrently may survive it, and is then listed in the index. When some
// sessions could not be reached (a node down beyond the retry policy) it returns a
// *RevokeError naming them; calling it again is safe.
func (st *Store) RevokeAll(ctx context.Context, user string, except ...string) (err error) {
	if st.near != nil {
		defer st.nearRevoked(&err)
	}
	if user == "" {
		return ErrNoUser
	}
	keep := make(map[string]bool, len(except))
	for _, e := range except {
		if sid.Valid(e) {
			keep[refOf(st.tag(e))] = true
		} else {
			keep[e] = true
		}
	}
	tags, err := st.indexRead(ctx, user)
	if err != nil {
		return err
	}
	targets := tags[:0]
	for _, t := range tags {
		if !keep[refOf(t)] {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	_, _, err = st.revoke(ctx, user, targets, true, keep, maxHops)
	return err
}

// revoke revokes the tags and, hop by hop, the tags rotations were writing them to (a
// live session, its tombstone and its forward pointer keep the rotation's target: a
// rotation that got past its mark before the revoke, or a revoke whose reply was lost,
// is followed); it drops what is gone from the user's index. listed says that the tags
// were read from the index (RevokeAll, a Ref), not named by the caller (an ID): see the
// expiry in the package doc, "Events". A forward pointer's mark is
// followed within budget keys (counting the first); a revoked session's (a rotation in
// flight) always. other reports that the first tag held
// a live session of another user (left alone, and left in the index); fwd is the forward
// token when the first tag was a forward pointer.
func (st *Store) revoke(ctx context.Context, user string, tags []string, listed bool, keep map[string]bool, budget int) (other bool, fwd string, err error) {
	args := []any{user, "r", tombstoneMs}
	var done, failed, gone []string
	var last error
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		seen[t] = true
	}
	first := tags[0]
	for hop := 0; len(tags) > 0 && hop < maxHops; hop++ {
		replies := st.members(ctx, opRevoke, tags, args, true)
		var next []string
		for i, r := range replies {
			switch {
			case r.err != nil:
				failed, last = append(failed, refOf(tags[i])), r.err
			case r.status == "other":
				other = other || tags[i] == first
			default: // gone, dead, revoked
				switch {
				case st.events == nil:
					done = append(done, tags[i])
				case r.status == "revoked":
					done = append(done, tags[i])
					st.emit(EventRevoked, tags[i], user)
				case r.status == "gone" && hop == 0 && listed:
					// Listed, and gone before the revoke came: expired (see Sessions).
					done = append(done, tags[i])
					st.emit(EventExpired, tags[i], user)
				case r.status == "gone" && hop == 0:
					// Named by its ID: expired if it was listed (see unindexExpired). Past
					// the first hop, a gone tag is a rotation's new session not written yet.
					gone = append(gone, tags[i])
				default:
					done = append(done, tags[i])
				}
				// revoked: {pending}; dead: {forward token, pending}
				var p string
				if n := len(r.vals); n > 0 {
					p, _ = r.vals[n-1].(string)
				}
				if r.status == "dead" && tags[i] == first && len(r.vals) == 2 {
					fwd, _ = r.vals[0].(string)
				}
				if r.status == "dead" && hop+1 >= budget {
					p = "" // as far as Load follows the chain
				}
				if p != "" && !seen[p] && !keep[refOf(p)] {
					seen[p] = true
					next = append(next, p)
				}
			}
		}
		tags = next
	}
	st.indexRemove(ctx, user, done...)
	st.unindexExpired(ctx, user, gone)
	if len(failed) > 0 {
		return other, fwd, &RevokeError{User: user, Failed: failed, Err: last}
	}
	return other, fwd, nil
}
