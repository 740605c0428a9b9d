package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/testhook"
)

// Save writes the attributes changed since the session was loaded (set and deleted) and
// the user, in one script that also bumps the version and sets the TTL to
// min(idle timeout, absolute deadline − now), with now from Redis TIME. An unmodified
// session sends nothing. A save never resurrects a destroyed, expired or rotated-away
// session (ErrNotFound). Each Save carries one save ID for all its attempts, so a save
// retried after a lost reply is applied once and answered as it was the first time, also
// when other saves landed in between (within the retry window: see the package doc).
//
// Errors: ErrNotFound, ErrConflict (WithVersionCheck; or a new session whose key exists
// already: an earlier Save of it that returned an error may have applied), *SizeError
// (nothing sent), *CodecError, *CorruptError (nothing written), ErrDestroyed,
// ErrWrongStore, the context's error or a Redis error. With WithWriteAck, an *AckError
// (ErrNotAcknowledged) says the save applied on the master but was not confirmed by
// enough replicas: s then reflects the save (it is no longer new, its changes are
// applied), and saving it again is an update.
func (st *Store) Save(ctx context.Context, s *Session) error {
	return st.saveSession(ctx, s, st.o.versionCheck)
}

// saveSession is Save; with checkVersion, an existing session is saved only if its
// version in Redis is still the one s was loaded with (ErrConflict otherwise).
func (st *Store) saveSession(ctx context.Context, s *Session, checkVersion bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != st {
		return ErrWrongStore
	}
	if s.gone {
		return ErrDestroyed
	}
	if !s.modified() {
		return nil
	}
	if size := s.sizeLocked(); size > st.o.sizeLimit {
		return &SizeError{Size: size, Limit: st.o.sizeLimit}
	}
	// An update sends the deadline and created-at it knows: what a retry is answered with
	// where the session is gone since its first attempt applied (see save.lua).
	mode, expect, second, created := "u", "", any(s.deadline), any(s.created)
	if s.isNew {
		mode, second, created = "n", st.lifeArg, 0
	} else if checkVersion && !testhook.IgnoreVersionCheck.Load() { // the switch: a broken build, for the history checker's tests
		expect = strconv.FormatInt(s.version, 10)
	}
	// One save ID for every attempt: an attempt answered 'stale' (index race) applied
	// nothing and recorded nothing, so the next one may carry it too.
	saveID := newSaveID()
	var r saveResult
	var ackErr error
	for attempt := 0; ; attempt++ {
		// A save that gives the session a user lists it in the user's index first.
		var until any = ""
		// (After a race, also when the user looks unchanged: the stored one was not.)
		if s.userSet && s.user != "" && (s.user != s.storedUser || attempt > 0) {
			var deadline any = ""
			if !s.isNew {
				deadline = s.deadline
			}
			t, err := st.indexAdd(ctx, s.user, st.tag(s.id), deadline)
			if err != nil {
				return err
			}
			until = t + pendingMs
		}
		args := make([]any, 0, 11+3*len(s.changes))
		args = append(args, saveID, expect, mode, st.idleArg, second, st.codecArg, s.userArg(), created, 0, until)
		args = s.appendChanges(args)
		var err error
		r, err = st.save(ctx, st.key(s.id), args)
		if errors.Is(err, ErrNotAcknowledged) {
			// Applied on the master: s must say what Redis holds.
			ackErr, err = err, nil
		}
		if retry, err := indexRace("save session", err, attempt); err != nil {
			return err
		} else if !retry {
			break
		}
		if s.isNew { // its ID was never sent: take another one
			if s.id, err = newSessionID(); err != nil {
				return err
			}
		}
	}
	// A session that leaves a user stays in that user's index until it is found to
	// belong to another: removing it here could race a save that gives it back.
	s.applyChanges()
	s.version, s.touched, s.deadline, s.created = r.version, r.now, r.deadline, r.created
	s.isNew = false
	s.storedUser = s.user
	return ackErr
}

type saveResult struct{ version, now, deadline, created int64 }

// save runs the save script with the retry policy: every attempt carries the same save
// ID, so an attempt whose reply was lost is not applied again.
func (st *Store) save(ctx context.Context, key string, args []any) (saveResult, error) {
	r, err := doWith(st, ctx, "save session", saveReq{key, args}, runSaveOp)
	switch {
	case err == nil:
		st.stats.saves.Add(1)
	case errors.Is(err, ErrConflict):
		st.stats.conflicts.Add(1)
	}
	return r, err
}

type saveReq struct {
	key  string
	args []any
}

// runSaveOp is one attempt of save: a top-level function, so that the retry loop needs no
// closure.
func runSaveOp(st *Store, ctx context.Context, r saveReq) (saveResult, error) {
	return st.runSave(ctx, r.key, r.args)
}

// runSave runs the save script and turns its reply into a result or an error.
func (st *Store) runSave(ctx context.Context, key string, args []any) (saveResult, error) {
	var r saveResult
	var res string
	var err error
	if testhook.FreshSaveID.Load() { // a broken build, for the history checker's tests
		args = append([]any{newSaveID()}, args[1:]...)
	}
	if st.o.ackReplicas > 0 {
		res, err = st.saveAcked(ctx, key, args)
	} else {
		cmd := redis.NewStringCmd(ctx, evalShaArgs(saveSHA, key, args...)...)
		cmd.SetFirstKeyPos(3)
		if err := st.process(ctx, key, cmd); err != nil && ctx.Err() != nil {
			// Auto-pipelined, the command may still be in flight: leave it alone. A
			// retry carries the same save ID.
			return r, st.redisErr("save session", key, err)
		}
		res, err = cmd.Result()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			res, err = saveScript.Eval(ctx, st.rdb, []string{key}, args...).Text()
		}
	}
	if err != nil && !errors.Is(err, ErrNotAcknowledged) {
		return r, st.redisErr("save session", key, err)
	}
	r, perr := parseSaveReply(key, res, st.o.codec.Name())
	if perr != nil {
		return r, perr
	}
	return r, err // nil, or ErrNotAcknowledged: applied, not confirmed
}

// parseSaveReply reads the save script's reply (see save.lua); codec is the store's.
func parseSaveReply(key, res, codec string) (saveResult, error) {
	var r saveResult
	status, rest, _ := strings.Cut(res, ":")
	switch status {
	case "ok", "dup":
		var nums [4]int64
		for i := range nums {
			var f string
			var err error
			f, rest, _ = strings.Cut(rest, ":")
			if nums[i], err = strconv.ParseInt(f, 10, 64); err != nil {
				return saveResult{}, &CorruptError{Key: key, Reason: "malformed save reply " + quoteData(res)}
			}
		}
		r.version, r.now, r.deadline, r.created = nums[0], nums[1], nums[2], nums[3]
		return r, nil
	case "notfound":
		return r, ErrNotFound
	case "conflict":
		return r, ErrConflict
	case "exists":
		return r, errKeyExists
	case "revoked", "stale":
		return r, errIndexRace
	case "corrupt":
		if len(rest) > MaxQuoted {
			rest = quoteData(rest)
		}
		return r, &CorruptError{Key: key, Reason: rest}
	case "codec":
		return r, &CodecError{Stored: rest, Want: codec}
	}
	return r, &CorruptError{Key: key, Reason: "unexpected save reply " + quoteData(res)}
}

// newSaveID returns 16 random hex digits: unique per save (not secret).
func newSaveID() string {
	var b [16]byte
	const digits = "0123456789abcdef"
	x := rand.Uint64()
	for i := range b {
		b[i] = digits[x&15]
		x >>= 4
	}
	return string(b[:])
}
