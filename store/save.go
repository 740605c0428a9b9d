package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

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
// The session's own idle timeout, lifetime and cookie persistence, set since the load
// (Session.SetIdleTimeout, SetLifetime, SetPersistent), are saved with it.
//
// Errors: ErrNotFound, ErrConflict (WithVersionCheck; or a new session whose key exists
// already: an earlier Save of it that returned an error may have applied), *SizeError
// (nothing sent), *CodecError, *CorruptError (nothing written), *FormatError (a session
// of a newer format: nothing written), ErrDestroyed,
// ErrWrongStore, ErrOutcomeUnknown (an attempt whose reply was lost was retried, and the
// retry found the session gone with the saves it remembered, or changed: the save may
// have applied before, and been lost since in a failover), the context's error or a Redis
// error. With WithWriteAck, an *AckError
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
	a := saveArgs{
		// One save ID for every attempt: an attempt answered 'stale' (index race) applied
		// nothing and recorded nothing, so the next one may carry it too.
		saveID: newSaveID(),
		expect: "", mode: saveUpdate, idle: st.idleArg, second: 0, codec: st.codecArg,
		user: s.userArg(), created: 0, oldVersion: 0, until: "",
	}
	a.ownIdle, a.lifetime, a.persist = s.expiryArgs()
	if s.isNew {
		a.mode, a.second, a.created = saveNew, st.lifeArg, 0
	} else if checkVersion && !testhook.IgnoreVersionCheck.Load() { // the switch: a broken build, for the history checker's tests
		a.expect = strconv.FormatInt(s.version, 10)
	}
	// What the save does that WithEvents reports, once it applied.
	created, bound := s.isNew, s.userSet && s.user != "" && s.user != s.storedUser
	var r saveResult
	var ackErr error
	login := false
	for attempt := 0; ; attempt++ {
		// A save that gives the session a user (a login) lists it in the user's index
		// first. (After a race, also when the user looks unchanged: the stored one was
		// not.)
		var until any = ""
		listed := s.userSet && s.user != "" && (s.user != s.storedUser || attempt > 0)
		isLogin := listed
		// So does a save that changes the deadline of a user's session (SetLifetime): the
		// index entry must not be dropped before the session ends (not a login: it
		// keeps its login time).
		user := s.user
		if !listed && s.newLife != 0 && !s.isNew && (!s.userSet || s.user == s.storedUser) && s.storedUser != "" {
			listed, user = true, s.storedUser
		}
		if listed {
			var deadline any = ""
			if !s.isNew {
				deadline = s.deadline
				if s.newLife != 0 {
					deadline = s.created + s.newLife
				}
			}
			var t int64
			var err error
			if isLogin {
				t, err = st.indexLogin(ctx, user, st.tag(s.id), deadline, s.lifeMsLocked())
				if errors.Is(err, ErrTooManySessions) {
					s.user, s.userSet = s.storedUser, false // refused: s keeps the user it had
				}
			} else {
				t, err = st.indexAdd(ctx, user, st.tag(s.id), deadline, s.lifeMsLocked(), st.tag(s.id), nil)
			}
			if err != nil {
				return err
			}
			until, login = t+pendingMs, login || isLogin
		}
		a.until = until
		var err error
		r, err = st.save(ctx, st.key(s.id), a.changes(s))
		if errors.Is(err, ErrNotAcknowledged) {
			// Applied on the master: s must say what Redis holds.
			ackErr, err = err, nil
		}
		if retry, err := indexRace(opSave, err, attempt); err != nil {
			return err
		} else if !retry {
			break
		}
		if s.isNew { // its ID was never sent: take another one
			// (Its index entry goes: a tombstone or the pending window's end keeps it
			// from ever being written.)
			if until != "" {
				st.indexRemove(ctx, user, st.tag(s.id))
			}
			if s.id, err = newSessionID(); err != nil {
				return err
			}
		}
	}
	// A session that leaves a user stays in that user's index until it is found to
	// belong to another: removing it here could race a save that gives it back.
	s.applyChanges()
	if a.mode == saveUpdate && r.deadline == 0 {
		// A retry answered where the session is gone since its first attempt applied: an
		// update does not send the deadline and created-at, which never change under one
		// key but by a lifetime it sends (see save.lua); s has them.
		r.deadline, r.created = s.deadline, s.created
		if life, ok := a.lifetime.(int64); ok {
			r.deadline = s.created + life
		}
	}
	s.version, s.touched, s.deadline, s.created = r.version, r.now, r.deadline, r.created
	s.isNew = false
	s.storedUser = s.user
	if st.events != nil {
		if created {
			st.emit(EventCreated, st.tag(s.id), s.user)
		}
		if bound {
			st.emit(EventUserBound, st.tag(s.id), s.user)
		}
	}
	if login {
		st.afterLogin(ctx, s.user, st.tag(s.id))
	}
	return ackErr
}

// saveArgs are the arguments of save.lua, ARGV[1] to ARGV[14] in its order, and build the
// attribute tail (ARGV[15] on) from a session: the Go side of the script's contract,
// which its header documents. Every field is sent as it is: set each one (a nil any is
// not an empty string).
type saveArgs struct {
	saveID string   // ARGV[1]: 16 hex digits (newSaveID), the same for every attempt of one save
	expect string   // ARGV[2]: the version the session must still have; '' for no check
	mode   saveMode // ARGV[3]
	idle   any      // ARGV[4]: the store's idle timeout (ms)
	// ARGV[5]: saveNew, the absolute lifetime (ms); saveCopy, the absolute deadline (ms
	// since epoch); saveUpdate, 0 (the stored one applies).
	second any
	codec  any    // ARGV[6]: the store's codec name
	user   string // ARGV[7]: '' unchanged, '+name' set, '-' clear (see Session.userArg)
	// ARGV[8]: saveCopy, the created-at (ms since epoch); saveNew and saveUpdate, 0
	// (unused).
	created any
	// ARGV[9]: saveCopy, the old session's version; otherwise 0 (unused).
	oldVersion any
	// ARGV[10]: '' or, when the save gives the session a user, the time (ms, Redis time)
	// until which the user's index entry written just before is trusted.
	until any
	// ARGV[11]: '' or the session's own idle timeout (ms, an int64), stored in '_i'.
	ownIdle any
	// ARGV[12]: '' or the session's own lifetime (ms, an int64): the deadline becomes
	// created-at + it.
	lifetime any
	// ARGV[13]: '' or the session's own cookie persistence: '1' persistent, '0' a
	// session cookie (see persistArg).
	persist string
}

// saveMode is save.lua's ARGV[3].
type saveMode uint8

// The modes of save.lua.
const (
	saveNew    saveMode = iota // 'n': a new session
	saveUpdate                 // 'u': an update of an existing session
	saveCopy                   // 'c': a rotation's copy, a new key that keeps the old session's created-at and deadline
)

// arg returns the mode as save.lua reads it; a constant, boxed without allocating.
func (m saveMode) arg() any {
	switch m {
	case saveNew:
		return "n"
	case saveUpdate:
		return "u"
	}
	return "c"
}

// changes returns the arguments of a save of s's pending changes: ARGV[1] to ARGV[14],
// then ARGV[15]: the number of deleted attributes, their fields, then field/value pairs
// of the set ones (Session.appendChanges).
func (a *saveArgs) changes(s *Session) []any {
	return s.appendChanges(a.appendHead(make([]any, 0, 15+3*len(s.changes))))
}

// copyOf returns the arguments of a rotation's copy of s: ARGV[1] to ARGV[14], then
// ARGV[15]: no deletion, and every attribute of s after its pending changes
// (Session.appendAll).
func (a *saveArgs) copyOf(s *Session) []any {
	return s.appendAll(a.appendHead(make([]any, 0, 15+len(s.attrs)+2*len(s.changes))))
}

// appendHead appends ARGV[1] to ARGV[14] (ARGV[14], the retry flag, empty: save puts a
// writeMark there).
func (a *saveArgs) appendHead(args []any) []any {
	return append(args, a.saveID, a.expect, a.mode.arg(), a.idle, a.second, a.codec, a.user, a.created, a.oldVersion, a.until,
		a.ownIdle, a.lifetime, a.persist, "")
}

// historySuffix names the hash, beside a session's key and in its slot, that keeps the
// saves that left the session's '_s' for the count while young (see save.lua), so that a
// retry is recognised after many saves landed in between.
const historySuffix = ":s"

// argRetry is the index in save.lua's arguments of ARGV[14], the retry flag.
const argRetry = 13

type saveResult struct{ version, now, deadline, created int64 }

// save runs the save script with the retry policy: every attempt carries the same save
// ID, so an attempt whose reply was lost is not applied again.
func (st *Store) save(ctx context.Context, key string, args []any) (saveResult, error) {
	mark := new(writeMark)
	args[argRetry] = mark // ARGV[14]: '1' when written again
	r, err := doWith(st, ctx, opSave, saveReq{key, args, mark}, runSaveOp)
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
	mark *writeMark // args[argRetry]: a reply to a command written before may have been lost
}

// runSaveOp is one attempt of save: a top-level function, so that the retry loop needs no
// closure. A retry answered "not found" (the key is gone, with the saves it remembered)
// or "conflict" may follow an attempt that applied and whose reply was lost:
// ErrOutcomeUnknown. A retry is any write of the command after the first: the store's
// own retries and go-redis's (a client's MaxRetries, a ClusterClient's MaxRedirects), which
// write the same command again after a lost reply without the store's knowing.
func runSaveOp(st *Store, ctx context.Context, r saveReq) (saveResult, error) {
	res, err := st.runSave(ctx, r.key, r.args)
	retry := r.mark.resent()
	switch {
	case retry && errors.Is(err, ErrNotFound):
		return res, fmt.Errorf("%w: save: the session is gone, and an earlier attempt, whose reply was lost, may have applied", ErrOutcomeUnknown)
	case retry && errors.Is(err, errNotApplied):
		// Another save made the version this one would have made: this save is not in the
		// session. It never applied, or a failover lost it — after another request may
		// have read it, so Save does not say "conflict" (which says it never applied).
		return res, &lostSaveError{}
	case retry && errors.Is(err, ErrConflict):
		// Not this save's own first attempt (that one is in '_s' or the history, and
		// answered as applied), unless they lost it: the session changed too often since
		// (more than 1024 saves, or saves older than 60 s), or an older server wrote it.
		return res, fmt.Errorf("%w: save: the session changed, and an earlier attempt, whose reply was lost, may have applied (and been lost in a failover)", ErrOutcomeUnknown)
	}
	return res, err
}

// writeMark is an argument of a write's command that counts the times the command is
// written to a connection: go-redis encodes it (MarshalBinary) each time it writes the
// command, also when it writes it again on its own after a lost reply, within one call.
// It is written as an empty string the first time and as "1" after (save.lua's retry
// flag, ARGV[14]).
type writeMark struct{ n atomic.Int32 }

var markRetry = []byte("1")

// MarshalBinary counts a write and returns the argument's bytes.
func (m *writeMark) MarshalBinary() ([]byte, error) {
	if m.n.Add(1) > 1 {
		return markRetry, nil
	}
	return nil, nil
}

// String is for logs and traces (it counts nothing).
func (m *writeMark) String() string { return "write-mark" }

// resent reports whether the command was written more than once: its reply may be that
// of a write after one whose reply was lost.
func (m *writeMark) resent() bool { return m.n.Load() > 1 }

// notRun takes back a write the node answered NOSCRIPT or TRYAGAIN to: it ran nothing.
func (m *writeMark) notRun() { m.n.Add(-1) }

// notRun takes back a write of each writeMark in argv (see writeMark.notRun).
func notRun(argv []any) {
	for _, a := range argv {
		if m, ok := a.(*writeMark); ok {
			m.notRun()
		}
	}
}

// errNotApplied is save.lua's 'conflict:<version>:n': a version-checked retry met another
// version, and the key shows that another save made the version this one would have
// made. It matches ErrConflict.
var errNotApplied = fmt.Errorf("%w (another save made the version this one would have made)", ErrConflict)

// lostSaveError is Save's error when a version-checked save's earlier attempt, whose reply
// was lost, is not in the session: another save made the version it would have made. The
// attempt never applied, or a failover lost it after another request may have read it. It
// matches ErrOutcomeUnknown; Update, which only needs the change in the session as Redis
// keeps it, starts again.
type lostSaveError struct{}

func (*lostSaveError) Error() string {
	return "hasession: outcome unknown: save: an earlier attempt, whose reply was lost, is not in the session (another save made the version it would have made): it never applied, or a failover lost it, and another request may have read it"
}

func (*lostSaveError) Is(target error) bool { return target == ErrOutcomeUnknown }

// runSave runs the save script and turns its reply into a result or an error.
func (st *Store) runSave(ctx context.Context, key string, args []any) (saveResult, error) {
	var r saveResult
	var res string
	var err error
	if testhook.FreshSaveID.Load() { // a broken build, for the history checker's tests
		args = append([]any{newSaveID()}, args[1:]...)
	}
	for sc := saveScript; ; sc = saveScriptAlone {
		if st.o.ackReplicas > 0 {
			res, err = st.saveAcked(ctx, sc, key, args)
		} else {
			var cmd *redis.StringCmd
			cmd, err = runScript(st, ctx, batched, sc, key, redis.NewStringCmd, args...)
			if err == nil { // else, auto-pipelined and cut short, it may still be in flight
				res = cmd.Val()
			}
		}
		// While its slot migrates (Cluster resharding), a node answers TRYAGAIN to a
		// script of two keys when one of them, here mostly the save history, is missing:
		// the save is sent again without the history (nothing ran), which only narrows its
		// retry window, rather than waiting for the migration's end.
		if sc == saveScriptAlone || !redis.HasErrorPrefix(err, "TRYAGAIN") {
			break
		}
		notRun(args) // that write ran nothing
	}
	if err != nil && !errors.Is(err, ErrNotAcknowledged) {
		return r, st.redisErr(opSave, key, err)
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
		if strings.HasSuffix(rest, ":n") {
			return r, errNotApplied
		}
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
	case "format":
		if err := checkFormat(key, rest); err != nil {
			return r, err
		}
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
