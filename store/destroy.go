package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hasession/hasession/internal/sid"
)

// Destroy deletes the session with the given ID (logout). Destroying a rotated session's
// old ID within the grace period deletes the new session too, at the end of a chain of
// rotations (A→B→C: Destroy(A) ends C), and blocks a rotation in flight; the tombstone of
// a rotation that changed the user leads nowhere (Destroy of that old ID ends nothing).
// The session at the end of the chain is destroyed first and the forward pointers on the
// way after it, so a Destroy cut short (an error, a deadline) has ended the session or
// nothing a request can see: a pointer left over leads to a tombstone. A key destroyed
// that held a rotation mark (a user's session) is left a tombstone that keeps it, so a
// Destroy retried after a lost reply follows the chain again (as far as the first call
// went: a chain longer than Load follows, maxHops keys, keeps its session past them
// alive, and the last pointer's tombstone keeps no mark, so that a Revoke or Destroy of
// an ID of the part destroyed, which finds tombstones, ends nothing); one whose session was
// saved recently keeps those saves, so a save retried after a lost reply is answered as
// applied (it was, before the logout); one of a user's session keeps the user, so a
// Destroy retried after a lost reply takes the session out of the user's index (else the
// user's listing would report it expired). A missing session is not an error. Foreign data at
// the key (another type, or a hash that is none of the store's own shapes: see
// destroy.lua) is left untouched and is a *CorruptError (ErrCorrupt); a key of a newer
// format (FORMAT.md) is left untouched and is a *FormatError (ErrFormatVersion). Errors:
// ErrInvalidID (nothing sent), *CorruptError, *FormatError, the context's error or a
// Redis error.
func (st *Store) Destroy(ctx context.Context, id string) (err error) {
	if !sid.Valid(id) {
		return ErrInvalidID
	}
	if st.near != nil {
		defer st.nearRevoked(&err)
	}
	// The chain is followed by ID (a forward token is masked with its key's ID) and, where
	// the ID is not known (a mark found on a tombstone names a tag), by the rotation mark.
	tag, tomb := st.tag(id), tombLogout
	var pointers []string // forward pointers passed, deleted once the session is
	var cut string        // the last of them, when the chain goes on past maxHops keys
	var ackErr error      // the first key WAIT did not confirm (WithWriteAck, AckRequired)
	acked := func(err error) error {
		if errors.Is(err, ErrNotAcknowledged) {
			ackErr = cmp.Or(ackErr, err)
			return nil
		}
		return err
	}
hops:
	for hop := range maxHops {
		d, err := st.destroyKey(ctx, st.keyOfTag(tag), tomb, true)
		if err = acked(err); err != nil {
			return err
		}
		if destroyHopHook != nil {
			destroyHopHook()
		}
		if !d.deleted && d.fwd != "" {
			pointers = append(pointers, tag)
			if hop == maxHops-1 {
				// Its target is past what Load follows: left alone, as a Load of the
				// chain's first ID does not find it.
				cut = tag
			}
		}
		if d.deleted && st.events != nil {
			st.emit(EventDestroyed, tag, d.user) // a session: a pointer is kept here
		}
		if d.user != "" {
			st.indexRemove(ctx, d.user, tag)
		}
		next, ok := "", false
		if d.fwd != "" && id != "" {
			next, ok = forwardTarget(id, d.fwd)
		}
		if ok && d.pending != "" && st.tag(next) != d.pending {
			// The mark names another session than the pointer (a rotation that lost a
			// race marked it last): block it, so it cannot outlive the logout.
			p, err := st.destroyKey(ctx, st.keyOfTag(d.pending), tombPlain, false)
			if err = acked(err); err != nil {
				return err
			}
			if p.deleted && p.fwd == "" && st.events != nil {
				st.emit(EventDestroyed, d.pending, p.user)
			}
			if p.user != "" {
				st.indexRemove(ctx, p.user, d.pending)
			}
		}
		switch {
		case ok:
			// The rotation's new session, and whatever it forwards to in turn.
			id, tag = next, st.tag(next)
		case d.pending != "":
			// A rotation in flight (the key was a session: its target is blocked), or the
			// mark a logout's tombstone kept (a retry: the chain goes on from there).
			id, tag = "", d.pending
			if d.deleted && d.fwd == "" {
				tomb = tombPlain
			}
			if st.o.tagger == nil {
				id = tag // the tag is the ID
			}
		default:
			break hops
		}
	}
	for _, p := range slices.Backward(pointers) {
		// A logout's tombstone keeps the pointer's mark, so that a Destroy retried after a
		// lost reply follows the chain again; the last pointer's, whose target this
		// logout left alone, keeps none: a revoke or a Destroy that reaches that
		// tombstone later (through the marks of the ones before it) must not end a
		// session that no ID of the chain leads to.
		t := tombLogout
		if p == cut {
			t = tombPlain
		}
		if _, err := st.destroyKey(ctx, st.keyOfTag(p), t, false); acked(err) != nil {
			return err
		}
	}
	return ackErr
}

// destroyHopHook, when set (by tests), runs after each key of a Destroy's chain.
var destroyHopHook func()

// destroyed is what destroy.lua found at a key it deleted.
type destroyed struct {
	deleted            bool
	fwd, user, pending string
}

// What destroyKey leaves in the key's place.
const (
	tombNone   = iota // nothing
	tombPlain         // a tombstone ('_r' = '1'): a rotation in flight cannot write the key
	tombLogout        // a logout's tombstone ('_r' = 'd') keeping the rotation mark, if any
)

// destroyKey deletes one key under the retry policy (see destroy.lua), leaving tomb in
// its place; with keepPointer, a forward pointer is left as it is (and answered).
func (st *Store) destroyKey(ctx context.Context, key string, tomb int, keepPointer bool) (destroyed, error) {
	var tombArg, mode, keep any = "", "", ""
	if keepPointer {
		keep = "k"
	}
	if tomb != tombNone {
		tombArg = tombstoneMs
	}
	if tomb == tombLogout {
		mode = "d"
	}
	return do(st, ctx, opDestroy, func(ctx context.Context) (destroyed, error) {
		var d destroyed
		// With write acknowledgement a logout waits for replicas as a save does, so that a
		// failover does not bring the session back.
		v, err := st.runWrite(ctx, destroyScript, key, tombArg, mode, keep)
		var ackErr error
		if errors.Is(err, ErrNotAcknowledged) {
			ackErr, err = st.ackShortfall("logout", err), nil
		}
		res, ok := v.([]any)
		if err == nil && !ok {
			err = fmt.Errorf("unexpected destroy reply %T", v)
		}
		if err != nil {
			return d, st.redisErr(opDestroy, key, err)
		}
		if len(res) == 4 {
			n, _ := res[0].(int64)
			if n == -2 { // a newer format, left untouched
				v, _ := res[1].(string)
				if err := checkFormat(key, v); err != nil {
					return d, err
				}
				return d, &CorruptError{Key: key, Reason: "unexpected destroy reply " + quoteValue(res)}
			}
			if n < 0 { // foreign data, left untouched
				reason, _ := res[1].(string)
				if field, ok := res[2].(string); ok {
					reason += " " + quoteData(field)
				}
				return d, &CorruptError{Key: key, Reason: reason}
			}
			d.deleted = n == 1
			d.fwd, _ = res[1].(string)
			d.user, _ = res[2].(string)
			d.pending, _ = res[3].(string)
		}
		return d, ackErr // nil, or *AckError: applied, not confirmed
	})
}

// DestroySession destroys the session s (see Destroy) and marks s destroyed: a later Save
// or Rotate of s returns ErrDestroyed.
func (st *Store) DestroySession(ctx context.Context, s *Session) error {
	s.mu.Lock()
	id, isNew := s.id, s.isNew
	s.mu.Unlock()
	var err error
	if !isNew {
		// Not acknowledged by enough replicas (WithWriteAck) is destroyed on the master.
		if err = st.Destroy(ctx, id); err != nil && !errors.Is(err, ErrNotAcknowledged) {
			return err
		}
	}
	s.mu.Lock()
	s.gone = true
	s.mu.Unlock()
	return err
}
