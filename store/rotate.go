package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// maxRotateCopies bounds how often Rotate copies the session again because it was saved
// between the copy and the forward step.
const maxRotateCopies = 5

// Rotate gives the session a new ID (call it on login and on any change of privilege,
// against session fixation). The session as Redis holds it when Rotate runs (with what
// other requests saved since s was loaded), plus the changes s has not saved yet, is
// written under the new ID first; then the old key becomes, for the grace period, a
// forward pointer to the new ID, so requests still carrying the old ID land on the new
// session. The forward step applies only if the old session was not saved since it was
// copied; otherwise the copy is dropped and made again (at most 5 times, then
// ErrConflict), so no concurrent save is lost.
// The session's own idle timeout, lifetime and cookie persistence (stored, or set on s
// and not saved yet) go with it: the new ID has the same ones.
//
// A rotation that changes who the session belongs to (the user stored before is not the
// user after: a login, "" to "alice", or a switch, "alice" to "bob") leaves no forward
// pointer: the old key becomes a tombstone, so the old ID finds nothing (Load returns
// ErrNotFound, Destroy and Save of it touch nothing). Whoever held the old ID — a
// session planted by an attacker — is not handed the new session. With a grace period of
// 0, every rotation leaves a tombstone.
//
// The two keys live in different Cluster slots, so these are two steps, ordered so that
// a failure between them loses nothing: the old session is intact until the new one
// exists. On error s keeps its old ID and Rotate may be called again.
//
// Of concurrent rotations of one session exactly one wins. A rotation that finds the
// session rotated by another request (two requests loaded it and both rotate it, at
// once or one after the other) drops its copy and returns ErrRotated, which matches
// ErrNotFound: s keeps its old ID and its unsaved changes, and the old ID forwards to the
// winner's session for the grace period, so the user is still logged in — load the old
// ID again and redo the changes there. (If the winner changed the session's user, the old
// ID leads nowhere and the loser gets ErrNotFound.) A Rotate retried within one call
// after a lost reply recognises its own forward pointer and succeeds.
//
// A session that was never saved just gets a new ID. Errors are Save's, ErrRotated,
// ErrNotFound when the old session is gone (destroyed, expired, revoked, or rotated to
// another user), ErrOutcomeUnknown when the forward step, retried after a lost reply,
// finds the old key gone (its pointer may have expired with the grace period: s keeps its
// old ID, the new session is kept), and a *FormatError when it is of a newer format
// (FORMAT.md): it is left as it is, and nothing of the rotation stays. An *AckError (WithWriteAck) says the new session was written but not
// confirmed by enough replicas; the rotation is complete and s has the new ID.
func (st *Store) Rotate(ctx context.Context, s *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != st {
		return ErrWrongStore
	}
	if s.gone {
		return ErrDestroyed
	}
	newID, err := newSessionID()
	if err != nil {
		return err
	}
	if s.isNew {
		s.id = newID
		return nil
	}
	if size := s.sizeLocked(); size > st.o.sizeLimit {
		return &SizeError{Size: size, Limit: st.o.sizeLimit}
	}
	var cur *Session
	var r saveResult
	var ackErr error
	races, copies := 0, 0
	for {
		// 1. The session as Redis holds it now, marked (when it has a user) with the new
		// tag: a revoke of the old session from now on revokes the new one too.
		if cur, err = st.rotateRead(ctx, s.id, st.tag(newID)); err != nil {
			return err
		}
		oldID := cur.id
		cur.changes = s.changes
		// The session's own expiry goes along: what Redis holds, and what s changed.
		cur.newIdle, cur.newLife, cur.newPersist = s.newIdle, s.newLife, s.newPersist
		deadline := cur.deadline
		if cur.newLife != 0 {
			deadline = cur.created + cur.newLife
		}
		user := cur.user
		if s.userSet {
			user = s.user
		}
		if size := cur.sizeLocked(); size > st.o.sizeLimit {
			return &SizeError{Size: size, Limit: st.o.sizeLimit}
		}
		// 2. The new session, listed in its user's index first.
		newKey, newTag := st.key(newID), st.tag(newID)
		var until any = ""
		login := user != "" && user != cur.storedUser
		if user != "" {
			var t int64
			if login {
				t, err = st.indexLogin(ctx, user, newTag, deadline, cur.lifeMsLocked())
				if errors.Is(err, ErrTooManySessions) {
					s.user, s.userSet = s.storedUser, false // refused: s keeps the user it had
				}
			} else {
				t, err = st.indexAdd(ctx, user, newTag, deadline, cur.lifeMsLocked(), st.tag(oldID), nil)
			}
			if err != nil {
				return err
			}
			until = t + pendingMs
		}
		a := saveArgs{
			saveID: newSaveID(), expect: "", mode: saveCopy, idle: st.idleArg, second: cur.deadline, codec: st.codecArg,
			user: "", created: cur.created, oldVersion: cur.version, until: until,
		}
		if user != "" {
			a.user = "+" + user
		}
		// The copy is a new key: it gets the session's own idle timeout and persistence
		// whether they changed or not.
		a.ownIdle, a.lifetime, a.persist = cur.expiryArgs()
		if cur.newIdle == 0 && cur.idle != 0 {
			a.ownIdle = cur.idle
		}
		if cur.newPersist == 0 {
			a.persist = persistArg(cur.persist)
		}
		r, err = st.save(ctx, newKey, a.copyOf(cur))
		if errors.Is(err, ErrNotAcknowledged) {
			ackErr, err = err, nil // written: the rotation goes on
		}
		if retry, err := indexRace(opRotate, err, races); err != nil {
			return err
		} else if retry {
			races++
			if user != "" {
				st.indexRemove(ctx, user, newTag) // never written (see Save)
			}
			if newID, err = newSessionID(); err != nil {
				return err
			}
			continue
		}
		// 3. The old key: a forward pointer, or a tombstone when the session changes
		// user — if the old session is still the version copied.
		if rotateForwardHook != nil {
			rotateForwardHook()
		}
		n, err := st.forward(ctx, oldID, newID, cur.version, user != cur.storedUser)
		if errors.Is(err, ErrNotAcknowledged) {
			ackErr, err = cmp.Or(ackErr, err), nil // forwarded on the master
		}
		if errors.Is(err, ErrFormatVersion) {
			// The old key is of a newer format now (another writer, since it was read):
			// it is left as it is, and the copy, which is not that session, is dropped.
			if _, derr := st.destroyKey(ctx, newKey, tombPlain, false); derr != nil && !errors.Is(derr, ErrNotAcknowledged) {
				st.o.logger.Warn("hasession: could not drop a rotation's copy", "err", derr)
			}
			if user != "" {
				st.indexRemove(ctx, user, newTag)
			}
			return err
		}
		if errors.Is(err, ErrOutcomeUnknown) {
			// The new session stays: if the forward step applied, requests that followed
			// the pointer carry its ID now. (If it did not, no one was given that ID.)
			st.o.logger.Warn("hasession: rotation's outcome unknown: the new session is kept", "err", err)
			return err
		}
		if err != nil {
			st.o.logger.Warn("hasession: rotation wrote the new session but could not forward the old one; the old session is intact", "err", err)
			return err
		}
		if n == 1 || n == 2 {
			cur.applyChanges()
			s.attrs, s.changes, s.userSet, s.shared = cur.attrs, nil, false, false
			s.idle, s.persist, s.newIdle, s.newLife, s.newPersist = cur.idle, cur.persist, 0, 0, 0
			if cur.storedUser != "" {
				st.indexRemove(ctx, cur.storedUser, st.tag(oldID))
			}
			s.id = newID
			s.user, s.storedUser = user, user
			s.version, s.touched, s.deadline, s.created = r.version, r.now, r.deadline, r.created
			if st.events != nil {
				st.events.emit(Event{Kind: EventRotated, Ref: refOf(newTag), OldRef: refOf(st.tag(oldID)), User: user})
				if user != "" && user != cur.storedUser {
					st.emit(EventUserBound, newTag, user)
				}
			}
			if login {
				st.afterLogin(ctx, user, newTag)
			}
			return ackErr
		}
		// The copy is not the session any more: drop it.
		if _, err := st.destroyKey(ctx, newKey, tombPlain, false); err != nil && !errors.Is(err, ErrNotAcknowledged) {
			return err
		}
		if user != "" {
			st.indexRemove(ctx, user, newTag)
		}
		switch n {
		case 0:
			// The old session was destroyed or revoked meanwhile: so is its rotation.
			return ErrNotFound
		case 3:
			// Another rotation of the session won: its copy is the session.
			return ErrRotated
		}
		// Saved since the copy: copy it again, under a fresh ID.
		if copies++; copies >= maxRotateCopies {
			return fmt.Errorf("hasession: rotate session: saved concurrently %d times: %w", copies, ErrConflict)
		}
		if newID, err = newSessionID(); err != nil {
			return err
		}
	}
}

// rotateForwardHook, when set (by tests), runs between a rotation's copy and its forward
// step.
var rotateForwardHook func()

// rotateRead is a rotation's first step (pending.lua): the session at the old ID as Redis
// holds it, marked with the new tag when it has a user. ErrNotFound when there is none;
// ErrRotated when the key is a forward pointer: another request (or an earlier Rotate of
// s that returned an error) rotated the session first, and a rotation is never rotated
// again through its old ID (the old ID's holder would not end with the session).
func (st *Store) rotateRead(ctx context.Context, oldID, newTag string) (*Session, error) {
	key := st.key(oldID)
	fields, err := do(st, ctx, opRotate, func(ctx context.Context) ([]string, error) {
		cmd, err := runScript(st, ctx, alone, pendingScript, key, redis.NewStringSliceCmd, newTag)
		return cmd.Val(), err
	})
	if err != nil {
		return nil, st.redisErr(opRotate, key, err)
	}
	if len(fields) == 0 {
		return nil, ErrNotFound
	}
	cur := &Session{st: st, id: oldID}
	fwd, err := cur.fill(key, fields)
	if ce := (*CodecError)(nil); errors.As(err, &ce) && ce.Stored == "" {
		return nil, &CorruptError{Key: key, Reason: "missing codec"}
	} else if err != nil {
		return nil, err
	}
	if fwd != "" {
		if _, ok := forwardTarget(oldID, fwd); !ok {
			return nil, &CorruptError{Key: key, Reason: "malformed forward pointer"}
		}
		return nil, ErrRotated
	}
	return cur, nil
}

// forward is a rotation's last step (forward.lua): the old key becomes a forward pointer
// to the new ID for the grace period or, when tomb (a rotation that changes the session's
// user) or without a grace period, a tombstone no request follows — provided the old
// session is still at version. A marked session's pointer or tombstone keeps the
// rotation's mark, naming newID's tag. It returns 1 (done), 2 (done
// already: a retry of this call's forward, whose pointer names newID), 3 (another
// rotation forwarded the old key first), 0 (the old session is gone) or -1 (it was saved
// since it was copied).
func (st *Store) forward(ctx context.Context, oldID, newID string, version int64, tomb bool) (int64, error) {
	key, token := st.key(oldID), forwardToken(oldID, newID)
	mode, ttl := "f", st.graceArg
	if tomb || st.graceMs == 0 {
		mode, ttl = "t", max(st.graceMs, tombstoneMs)
	}
	ver, tag := strconv.FormatInt(version, 10), st.tag(newID)
	mark := new(writeMark) // (an argument forward.lua does not read: see runSaveOp)
	n, err := do(st, ctx, opRotate, func(ctx context.Context) (int64, error) {
		// With write acknowledgement the pointer (or tombstone) waits for replicas as the
		// new session did: a failover that lost it would bring the old session back
		// beside the new one (or hand a login to the old ID's holder).
		v, err := st.runWrite(ctx, forwardScript, key, token, ttl, ver, mode, tag, mark)
		retry := mark.resent()
		if f, ok := v.(string); ok && err == nil {
			// A key of a newer format, left as it is.
			if ferr := checkFormat(key, f); ferr != nil {
				return 0, ferr
			}
		}
		n, ok := v.(int64)
		if errors.Is(err, ErrNotAcknowledged) && n != 1 && n != 2 {
			err = nil // nothing written to confirm
		}
		if err == nil && !ok {
			err = fmt.Errorf("unexpected forward reply %T", v)
		}
		if err == nil && n == 0 && retry {
			// The old key is gone, or a tombstone without this rotation's token: an
			// earlier attempt, whose reply was lost, may have forwarded it, and the
			// pointer expired (the grace period) before this one.
			err = fmt.Errorf("%w: the old session is gone, and an earlier attempt of the forward step, whose reply was lost, may have applied", ErrOutcomeUnknown)
		}
		return n, err
	})
	if errors.Is(err, ErrNotAcknowledged) {
		return n, st.ackShortfall("rotation", err)
	}
	if err != nil {
		return 0, st.redisErr(opRotate, key, err)
	}
	return n, nil
}
