package store

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/sid"
	"github.com/hasession/hasession/internal/testhook"
)

var (
	//go:embed lua/touch.lua
	touchLua string
	//go:embed lua/save.lua
	saveLua string
	//go:embed lua/forward.lua
	forwardLua string
	//go:embed lua/destroy.lua
	destroyLua string
	//go:embed lua/index_add.lua
	indexAddLua string
	//go:embed lua/index_read.lua
	indexReadLua string
	//go:embed lua/member.lua
	memberLua string
	//go:embed lua/pending.lua
	pendingLua string

	touchScript     = redis.NewScript(touchLua)
	saveScript      = redis.NewScript(saveLua)
	forwardScript   = redis.NewScript(forwardLua)
	destroyScript   = redis.NewScript(destroyLua)
	indexAddScript  = redis.NewScript(indexAddLua)
	indexReadScript = redis.NewScript(indexReadLua)
	memberScript    = redis.NewScript(memberLua)
	pendingScript   = redis.NewScript(pendingLua)
)

// The SHAs of the scripts on the hot paths, boxed once (see evalShaArgs).
var touchSHA, saveSHA any = touchScript.Hash(), saveScript.Hash()

// evalShaArgs returns the arguments of an EVALSHA of the script with the given SHA on one
// key, in one allocation: go-redis's Script.Run copies the arguments into a new slice and
// boxes the SHA and a one-key slice on every call.
func evalShaArgs(sha any, key string, args ...any) []any {
	a := make([]any, 4, 4+len(args))
	a[0], a[1], a[2], a[3] = "evalsha", sha, 1, key
	return append(a, args...)
}

// Metadata fields of the session hash. Attribute fields start with attrPrefix, so an
// attribute name can never reach a metadata field.
const (
	fVersion  = "_v"
	fCreated  = "_c"
	fDeadline = "_a" // absolute deadline, ms since epoch (Redis time)
	fTouched  = "_t" // last touch, ms since epoch (Redis time)
	fUser     = "_u"
	fCodec    = "_k"
	fSaveID   = "_s"
	fForward  = "_f"
	fPending  = "_n" // a rotation in flight: the new session's tag
	fRevoked  = "_r" // a tombstone left by a revoke

	attrPrefix = "."
	maxHops    = 4 // forward pointers followed by one Load (rotations within one grace period)
)

// Store keeps sessions in Redis. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	o       options
	idleMs  int64
	lifeMs  int64
	touchMs int64
	graceMs int64

	// Boxed once: an int64 or string stored in an interface allocates each time.
	idleArg, lifeArg, touchArg, graceArg, codecArg any

	batch *batchers // nil: WithAutoPipeline(false)

	ctxHonoured bool          // the client applies context deadlines to its sockets
	clientBound time.Duration // how long one command can block the client by its own timeouts
	stats       counters
	replyHint   atomic.Int64
}

// New returns a Store on any go-redis v9 client: *redis.Client, a Sentinel
// *redis.Client (NewFailoverClient), *redis.ClusterClient or *redis.Ring. Invalid options
// are an error here, never later. New panics on a nil client (programmer error).
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		panic("hasession: store.New with a nil client")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.touchInterval >= o.idle {
		return nil, fmt.Errorf("hasession: touch interval %s must be shorter than the idle timeout %s", o.touchInterval, o.idle)
	}
	if o.ackReplicas > 0 {
		var rt time.Duration
		switch c := rdb.(type) {
		case *redis.Client:
			rt = c.Options().ReadTimeout
		case *redis.ClusterClient:
			rt = c.Options().ReadTimeout
		default:
			return nil, fmt.Errorf("hasession: write acknowledgement needs a *redis.Client or *redis.ClusterClient, not %T", rdb)
		}
		// The save and WAIT go in one pipeline, read with the client's ReadTimeout.
		if rt > 0 && o.ackTimeout >= rt {
			return nil, fmt.Errorf("hasession: WAIT timeout %s must be shorter than the client's ReadTimeout %s", o.ackTimeout, rt)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	st := &Store{
		rdb:     rdb,
		o:       o,
		idleMs:  o.idle.Milliseconds(),
		lifeMs:  o.absolute.Milliseconds(),
		touchMs: o.touchInterval.Milliseconds(),
		graceMs: o.grace.Milliseconds(),
	}
	st.idleArg, st.lifeArg, st.touchArg, st.graceArg = st.idleMs, st.lifeMs, st.touchMs, st.graceMs
	st.codecArg = o.codec.Name()
	st.ctxHonoured, st.clientBound = clientTimeouts(rdb)
	if o.autoPipeline {
		st.batch = newBatchers(rdb)
	}
	return st, nil
}

// Client returns the go-redis client the store uses.
func (st *Store) Client() redis.UniversalClient { return st.rdb }

// Key returns the Redis key of the session with the given ID: <prefix>{<tag>}, where the
// tag is the ID or, with WithHashedIDs, its HMAC. It returns ErrInvalidID for a
// malformed ID.
func (st *Store) Key(id string) (string, error) {
	if !sid.Valid(id) {
		return "", ErrInvalidID
	}
	return st.key(id), nil
}

func (st *Store) key(id string) string { return st.keyOfTag(st.tag(id)) }

// tag returns the hash tag of a session: its ID or, with WithHashedIDs, its HMAC.
func (st *Store) tag(id string) string {
	if st.o.tagger != nil {
		return st.o.tagger.Tag(id)
	}
	return id
}

func (st *Store) keyOfTag(tag string) string { return st.o.prefix + "{" + tag + "}" }

// NewSession returns a new, empty session with a fresh ID (a UUIDv4 from crypto/rand). It
// costs nothing in Redis until it is first saved.
func (st *Store) NewSession() (*Session, error) {
	id, err := newSessionID()
	if err != nil {
		return nil, err
	}
	return &Session{st: st, id: id, isNew: true}, nil
}

// Load returns the session with the given ID, in one round trip (a plain HGETALL). It
// validates the ID's format first: a malformed ID is ErrInvalidID and sends nothing. A
// missing or expired session is ErrNotFound. When the touch is due (the last one is older
// than the touch interval) a second round trip runs a script that extends the TTL to
// min(idle timeout, absolute deadline − now) and reads the session in the same atomic
// step: the session returned is then the one touched, never a mix of two states, and a
// rotation or destroy that came between the two round trips is seen (followed, or
// ErrNotFound). A rotated session's old ID leads to the new session during the grace
// period (one more round trip): the returned session's ID is then the new one.
//
// Other errors: *CodecError (ErrCodecMismatch), *CorruptError (ErrCorrupt), the context's
// error, or a Redis error.
func (st *Store) Load(ctx context.Context, id string) (*Session, error) {
	if !sid.Valid(id) {
		return nil, ErrInvalidID
	}
	for range maxHops {
		r, err := doWith(st, ctx, "load session", id, loadOp)
		if err != nil {
			return nil, err
		}
		s, fwd := r.s, r.fwd
		if fwd == "" {
			st.stats.loads.Add(1)
			return s, nil
		}
		next, ok := forwardTarget(id, fwd)
		if !ok {
			return nil, &CorruptError{Key: st.key(id), Reason: "malformed forward pointer"}
		}
		id = next
	}
	return nil, ErrNotFound
}

type loaded struct {
	s   *Session
	fwd string
}

// loadOp is one attempt of Load: a top-level function, so that the retry loop needs no
// closure.
func loadOp(st *Store, ctx context.Context, id string) (loaded, error) {
	s, fwd, err := st.load(ctx, id)
	return loaded{s, fwd}, err
}

// load reads one key with a plain HGETALL — as cheap as a GET of the same bytes: no
// script, and the reply is parsed in place from one buffer. When the session's touch is
// due, it reads the session again with the touch script, which touches it and returns it
// in one atomic step: the session returned is the one that was touched (a save, a
// rotation or a destroy that came between is seen, not overwritten by stale fields). It
// returns the session, or the forward token when the key is a forward pointer.
func (st *Store) load(ctx context.Context, id string) (*Session, string, error) {
	key := st.key(id)
	rawb, err := st.hgetall(ctx, key)
	if err != nil {
		return nil, "", st.redisErr("load session", key, err)
	}
	s, fwd, err := st.parseLoaded(ctx, id, key, rawb, false)
	if err != nil || fwd != "" {
		return nil, fwd, err
	}
	if time.Now().UnixMilli()-s.touched < st.touchMs {
		st.stats.touchesSkipped.Add(1)
		return s, "", nil
	}
	if loadTouchHook != nil {
		loadTouchHook(key)
	}
	if rawb, err = st.touchRead(ctx, key); err != nil {
		return nil, "", st.redisErr("load session", key, err)
	}
	t, fwd, err := st.parseLoaded(ctx, id, key, rawb, true)
	if err != nil || fwd != "" {
		return nil, fwd, err
	}
	if t.touched > s.touched {
		st.stats.touches.Add(1)
	} else {
		st.stats.touchesSkipped.Add(1) // not due by Redis's clock
	}
	return t, "", nil
}

// loadTouchHook, when set (by tests), runs between a load's HGETALL and its touch.
var loadTouchHook func(key string)

// parseLoaded turns a raw reply of HGETALL (or, with touched, of the touch script: the
// same shape) into the session, or the forward token when the key is a forward pointer.
func (st *Store) parseLoaded(ctx context.Context, id, key string, rawb []byte, touched bool) (*Session, string, error) {
	// The reply buffer is ours alone and never written again: the session's attributes
	// point into it.
	raw := unsafe.String(unsafe.SliceData(rawb), len(rawb))
	var fields []string
	var err error
	if len(raw) > 0 && (raw[0] == '-' || raw[0] == '!') {
		// An error reply (WRONGTYPE, MOVED, CLUSTERDOWN, NOSCRIPT, …): the raw command
		// does not interpret it, so run the typed command, which goes through the
		// client's redirection and error handling (and loads a missing script).
		if fields, err = st.typedFields(ctx, key, touched, raw); err != nil {
			return nil, "", st.redisErr("load session", key, err)
		}
	} else if fields, err = parseRESPFields(raw); err != nil {
		return nil, "", &CorruptError{Key: key, Reason: "malformed HGETALL reply: " + err.Error()}
	}
	if len(fields) == 0 {
		return nil, "", ErrNotFound
	}
	s := &Session{st: st, id: id}
	if fwd, err := s.fill(key, fields); err != nil || fwd != "" {
		return nil, fwd, err
	}
	return s, "", nil
}

// typedFields reads the hash at key (with touched, through the touch script) with a typed
// command, after the raw one got the error reply raw.
func (st *Store) typedFields(ctx context.Context, key string, touched bool, raw string) ([]string, error) {
	if touched {
		if strings.HasPrefix(raw, "-NOSCRIPT") { // a new or restarted node: load the script
			return touchScript.Eval(ctx, st.rdb, []string{key}, st.idleArg, st.touchArg).StringSlice()
		}
		return touchScript.Run(ctx, st.rdb, []string{key}, st.idleArg, st.touchArg).StringSlice()
	}
	m, err := st.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	fields := make([]string, 0, 2*len(m))
	for k, v := range m {
		fields = append(fields, k, v)
	}
	return fields, nil
}

// touchRead runs the touch script (see touch.lua) as a raw command: it extends the TTL to
// min(idle, deadline − now), with Redis time, if the touch is due, and returns the whole
// hash as HGETALL would, read in the same step.
func (st *Store) touchRead(ctx context.Context, key string) ([]byte, error) {
	cmd := redis.NewRawCmd(ctx, evalShaArgs(touchSHA, key, st.idleArg, st.touchArg)...)
	cmd.SetFirstKeyPos(3)
	if err := st.process(ctx, key, cmd); err != nil && ctx.Err() != nil {
		// Auto-pipelined, the command may still be in flight: leave it alone.
		return nil, err
	}
	return cmd.Result()
}

// largeReply is the size of a raw HGETALL reply from which load reads into a buffer of
// its own (see hgetall); maxReplyGuess bounds the size that buffer starts with, so that
// one huge session does not make the next loads (whose sessions keep their buffer)
// hold that much each.
const (
	largeReply    = 2048
	maxReplyGuess = 16 << 10
)

// hgetall reads the hash at key as one raw RESP reply. A small reply is read by
// redis.RawCmd, whose buffer starts empty and grows as the reply arrives: a few small
// allocations. A large one would grow a dozen times (about five times its size in all),
// so when recent replies were large it is streamed into one buffer sized from them.
func (st *Store) hgetall(ctx context.Context, key string) ([]byte, error) {
	hint := st.replyHint.Load()
	if hint < largeReply {
		cmd := redis.NewRawCmd(ctx, "hgetall", key)
		if err := st.process(ctx, key, cmd); err != nil && ctx.Err() != nil {
			// Auto-pipelined, the command may still be in flight: leave it alone.
			return nil, err
		}
		b, err := cmd.Result()
		if err == nil {
			st.noteReply(hint, len(b))
		}
		return b, err
	}
	// Read by go-redis, but the buffer is ours. The command is never retried by go-redis
	// (it would append to a half-written buffer), and travels in pipelines of its kind
	// (see batchers): doWith retries each caller, with a new buffer.
	w := &replyBuf{b: make([]byte, 0, min(hint+hint/8, maxReplyGuess))}
	cmd := redis.NewRawWriteToCmd(ctx, w, "hgetall", key)
	if err := st.process(ctx, key, cmd); err != nil && ctx.Err() != nil {
		// Still in flight, perhaps, and writing to w: leave both alone.
		return nil, err
	}
	if _, err := cmd.Result(); err != nil {
		return nil, err
	}
	b := w.b
	st.noteReply(hint, len(b))
	if cap(b)-len(b) > len(b)/4 {
		// The session keeps its reply: not a buffer much larger (a small session read
		// after a large one).
		b = append(make([]byte, 0, len(b)), b...)
	}
	return b, nil
}

// noteReply keeps the size hint for the next HGETALL when the reply's size differs from
// it by more than an eighth, or crosses largeReply (loads of sessions of one size do not
// all write the shared hint).
func (st *Store) noteReply(hint int64, n int) {
	m := int64(n)
	if d := m - hint; d > hint/8 || -d > hint/8 || (m < largeReply) != (hint < largeReply) {
		st.replyHint.Store(m)
	}
}

// process runs cmd, which reads or writes key: in the next pipeline to key's node (see
// WithAutoPipeline), or alone.
func (st *Store) process(ctx context.Context, key string, cmd redis.Cmder) error {
	if st.batch != nil {
		return st.batch.process(ctx, key, cmd)
	}
	return st.rdb.Process(ctx, cmd)
}

// fill reads the metadata out of the hash's fields and keeps the attribute pairs,
// reusing the fields slice. It returns the forward token if the key is a forward pointer.
func (s *Session) fill(key string, fields []string) (string, error) {
	var haveVersion, haveCreated, haveDeadline, haveTouched bool
	var codecName string
	attrs := fields[:0]
	for i := 0; i+1 < len(fields); i += 2 {
		name, val := fields[i], fields[i+1]
		if len(name) > 0 && name[0] == attrPrefix[0] {
			attrs = append(attrs, name[1:], val)
			continue
		}
		var err error
		switch name {
		case fVersion:
			s.version, err = strconv.ParseInt(val, 10, 64)
			haveVersion = true
		case fCreated:
			s.created, err = strconv.ParseInt(val, 10, 64)
			haveCreated = true
		case fDeadline:
			s.deadline, err = strconv.ParseInt(val, 10, 64)
			haveDeadline = true
		case fTouched:
			s.touched, err = strconv.ParseInt(val, 10, 64)
			haveTouched = true
		case fUser:
			s.user, s.storedUser = val, val
		case fCodec:
			codecName = val
		case fSaveID, fPending:
		case fForward:
			return val, nil
		case fRevoked:
			return "", ErrNotFound
		default:
			return "", &CorruptError{Key: key, Reason: "unknown field " + quoteData(name)}
		}
		if err != nil {
			return "", &CorruptError{Key: key, Reason: "malformed session metadata", Err: numberError(name, val, err)}
		}
	}
	if !haveVersion || !haveCreated || !haveDeadline || !haveTouched {
		return "", &CorruptError{Key: key, Reason: "missing session metadata"}
	}
	if codecName != s.st.o.codec.Name() {
		return "", &CodecError{Stored: codecName, Want: s.st.o.codec.Name()}
	}
	s.attrs = attrs
	return "", nil
}

// redisErr wraps a Redis or context error with what was being done; WRONGTYPE (a key
// holding something other than a hash) becomes a *CorruptError.
func (st *Store) redisErr(op, key string, err error) error {
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		return &CorruptError{Key: key, Reason: "not a hash", Err: err}
	}
	return fmt.Errorf("hasession: %s: %w", op, err)
}

// newSessionID returns a fresh session ID (a UUIDv4 from crypto/rand).
func newSessionID() (string, error) {
	id, err := sid.New()
	if err != nil {
		return "", fmt.Errorf("hasession: new session ID: %w", err)
	}
	return id, nil
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

// errKeyExists: a new session's key is taken (by a session or a forward pointer). It
// matches ErrConflict: an earlier save of the session, whose reply was lost, may have
// written it.
var errKeyExists = fmt.Errorf("%w: the new session's key exists already (an earlier save of it may have applied: load it)", ErrConflict)

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
// A session that was never saved just gets a new ID. Errors are Save's, ErrRotated, and
// ErrNotFound when the old session is gone (destroyed, expired, revoked, or rotated to
// another user). An *AckError (WithWriteAck) says the new session was written but not
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
		if user != "" {
			t, err := st.indexAdd(ctx, user, newTag, cur.deadline)
			if err != nil {
				return err
			}
			until = t + pendingMs
		}
		args := make([]any, 0, 11+len(cur.attrs)+2*len(s.changes))
		args = append(args, newSaveID(), "", "c", st.idleArg, cur.deadline, st.codecArg, "", cur.created, cur.version, until)
		if user != "" {
			args[6] = "+" + user
		}
		args = cur.appendAll(args)
		r, err = st.save(ctx, newKey, args)
		if errors.Is(err, ErrNotAcknowledged) {
			ackErr, err = err, nil // written: the rotation goes on
		}
		if retry, err := indexRace("rotate session", err, races); err != nil {
			return err
		} else if retry {
			races++
			if newID, err = newSessionID(); err != nil {
				return err
			}
			continue
		}
		// 3. The old key: a forward pointer, or a tombstone when the session changes
		// user — if the old session is still the version copied.
		n, err := st.forward(ctx, oldID, newID, cur.version, user != cur.storedUser)
		if errors.Is(err, ErrNotAcknowledged) {
			ackErr, err = cmp.Or(ackErr, err), nil // forwarded on the master
		}
		if err != nil {
			st.o.logger.Warn("hasession: rotation wrote the new session but could not forward the old one; the old session is intact", "err", err)
			return err
		}
		if n == 1 || n == 2 {
			cur.applyChanges()
			s.attrs, s.changes, s.userSet = cur.attrs, nil, false
			if cur.storedUser != "" {
				st.indexRemove(ctx, cur.storedUser, st.tag(oldID))
			}
			s.id = newID
			s.user, s.storedUser = user, user
			s.version, s.touched, s.deadline, s.created = r.version, r.now, r.deadline, r.created
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

// rotateRead is a rotation's first step (pending.lua): the session at the old ID as Redis
// holds it, marked with the new tag when it has a user. ErrNotFound when there is none;
// ErrRotated when the key is a forward pointer: another request (or an earlier Rotate of
// s that returned an error) rotated the session first, and a rotation is never rotated
// again through its old ID (the old ID's holder would not end with the session).
func (st *Store) rotateRead(ctx context.Context, oldID, newTag string) (*Session, error) {
	key := st.key(oldID)
	fields, err := do(st, ctx, "rotate session", func(ctx context.Context) ([]string, error) {
		return pendingScript.Run(ctx, st.rdb, []string{key}, newTag).StringSlice()
	})
	if err != nil {
		return nil, st.redisErr("rotate session", key, err)
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
	n, err := do(st, ctx, "rotate session", func(ctx context.Context) (int64, error) {
		if st.o.ackReplicas > 0 {
			// With write acknowledgement the pointer (or tombstone) waits for replicas
			// as the new session did: a failover that lost it would bring the old
			// session back beside the new one (or hand a login to the old ID's holder).
			v, err := st.evalAcked(ctx, forwardScript, key, token, ttl, ver, mode, tag)
			n, _ := v.(int64)
			if errors.Is(err, ErrNotAcknowledged) && n != 1 && n != 2 {
				err = nil // nothing written to confirm
			}
			return n, err
		}
		return forwardScript.Run(ctx, st.rdb, []string{key}, token, ttl, ver, mode, tag).Int64()
	})
	if errors.Is(err, ErrNotAcknowledged) {
		return n, st.ackShortfall("rotation", err)
	}
	if err != nil {
		return 0, st.redisErr("rotate session", key, err)
	}
	return n, nil
}

// Destroy deletes the session with the given ID (logout). Destroying a rotated session's
// old ID within the grace period deletes the new session too, at the end of a chain of
// rotations (A→B→C: Destroy(A) ends C), and blocks a rotation in flight; the tombstone of
// a rotation that changed the user leads nowhere (Destroy of that old ID ends nothing).
// The session at the end of the chain is destroyed first and the forward pointers on the
// way after it, so a Destroy cut short (an error, a deadline) has ended the session or
// nothing a request can see: a pointer left over leads to a tombstone. A key destroyed
// that held a rotation mark (a user's session) is left a tombstone that keeps it, so a
// Destroy retried after a lost reply follows the chain again; one whose session was
// saved recently keeps those saves, so a save retried after a lost reply is answered as
// applied (it was, before the logout). A missing session is not an error. Foreign data at
// the key (another type, or a hash that is none of the store's own shapes: see
// destroy.lua) is left untouched and is a *CorruptError (ErrCorrupt). Errors:
// ErrInvalidID (nothing sent), *CorruptError, the context's error or a Redis error.
func (st *Store) Destroy(ctx context.Context, id string) error {
	if !sid.Valid(id) {
		return ErrInvalidID
	}
	// The chain is followed by ID (a forward token is masked with its key's ID) and, where
	// the ID is not known (a mark found on a tombstone names a tag), by the rotation mark.
	tag, tomb := st.tag(id), tombLogout
	var pointers []string // forward pointers passed, deleted once the session is
	var ackErr error      // the first key WAIT did not confirm (WithWriteAck, AckRequired)
	acked := func(err error) error {
		if errors.Is(err, ErrNotAcknowledged) {
			ackErr = cmp.Or(ackErr, err)
			return nil
		}
		return err
	}
hops:
	for range maxHops {
		d, err := st.destroyKey(ctx, st.keyOfTag(tag), tomb, true)
		if err = acked(err); err != nil {
			return err
		}
		if destroyHopHook != nil {
			destroyHopHook()
		}
		if !d.deleted && d.fwd != "" {
			pointers = append(pointers, tag)
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
		if _, err := st.destroyKey(ctx, st.keyOfTag(p), tombLogout, false); acked(err) != nil {
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
	return do(st, ctx, "destroy session", func(ctx context.Context) (destroyed, error) {
		var d destroyed
		var res []any
		var err, ackErr error
		if st.o.ackReplicas > 0 {
			// With write acknowledgement a logout waits for replicas as a save does, so
			// that a failover does not bring the session back.
			var v any
			v, err = st.evalAcked(ctx, destroyScript, key, tombArg, mode, keep)
			res, _ = v.([]any)
			if errors.Is(err, ErrNotAcknowledged) {
				ackErr, err = st.ackShortfall("logout", err), nil
			}
		} else {
			res, err = destroyScript.Run(ctx, st.rdb, []string{key}, tombArg, mode, keep).Slice()
		}
		if err != nil {
			return d, st.redisErr("destroy session", key, err)
		}
		if len(res) == 4 {
			n, _ := res[0].(int64)
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

// IdleTimeout returns the sliding expiry the store was built with.
func (st *Store) IdleTimeout() time.Duration { return st.o.idle }

// Lifetime returns the absolute lifetime the store was built with.
func (st *Store) Lifetime() time.Duration { return st.o.absolute }

// TouchInterval returns the touch interval the store was built with.
func (st *Store) TouchInterval() time.Duration { return st.o.touchInterval }
