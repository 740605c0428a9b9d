package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/sid"
)

var (
	//go:embed lua/load.lua
	loadLua string
	//go:embed lua/save.lua
	saveLua string
	//go:embed lua/forward.lua
	forwardLua string
	//go:embed lua/destroy.lua
	destroyLua string

	loadScript    = redis.NewScript(loadLua)
	saveScript    = redis.NewScript(saveLua)
	forwardScript = redis.NewScript(forwardLua)
	destroyScript = redis.NewScript(destroyLua)
)

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
	if o.logger == nil {
		o.logger = slog.New(discardHandler{})
	}
	return &Store{
		rdb:     rdb,
		o:       o,
		idleMs:  o.idle.Milliseconds(),
		lifeMs:  o.absolute.Milliseconds(),
		touchMs: o.touchInterval.Milliseconds(),
		graceMs: o.grace.Milliseconds(),
	}, nil
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

func (st *Store) key(id string) string {
	tag := id
	if st.o.tagger != nil {
		tag = st.o.tagger.Tag(id)
	}
	return st.o.prefix + "{" + tag + "}"
}

// NewSession returns a new, empty session with a fresh ID (a UUIDv4 from crypto/rand). It
// costs nothing in Redis until it is first saved.
func (st *Store) NewSession() (*Session, error) {
	id, err := sid.New()
	if err != nil {
		return nil, fmt.Errorf("hasession: new session ID: %w", err)
	}
	return &Session{st: st, id: id, isNew: true}, nil
}

// Load returns the session with the given ID, in one round trip. It validates the ID's
// format first: a malformed ID is ErrInvalidID and sends nothing. A missing or expired
// session is ErrNotFound. When the touch is due (the last one is older than the touch
// interval) the same script extends the TTL to min(idle timeout, absolute deadline − now).
// A rotated session's old ID leads to the new session during the grace period (one more
// round trip): the returned session's ID is then the new one.
//
// Other errors: *CodecError (ErrCodecMismatch), *CorruptError (ErrCorrupt), the context's
// error, or a Redis error.
func (st *Store) Load(ctx context.Context, id string) (*Session, error) {
	if !sid.Valid(id) {
		return nil, ErrInvalidID
	}
	for range maxHops {
		s, fwd, err := st.load(ctx, id)
		if err != nil || fwd == "" {
			return s, err
		}
		next, ok := forwardTarget(id, fwd)
		if !ok {
			return nil, &CorruptError{Key: st.key(id), Reason: "malformed forward pointer"}
		}
		id = next
	}
	return nil, ErrNotFound
}

// load runs the load script for one key. It returns the session, or the forward token
// when the key is a forward pointer.
func (st *Store) load(ctx context.Context, id string) (*Session, string, error) {
	key := st.key(id)
	reply, err := loadScript.Run(ctx, st.rdb, []string{key}, st.idleMs, st.touchMs).Text()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return nil, "", ErrNotFound
		}
		return nil, "", st.redisErr("load session", key, err)
	}
	fields, err := parseFields(reply, nil)
	if err != nil {
		return nil, "", &CorruptError{Key: key, Reason: "malformed load reply: " + err.Error()}
	}
	s := &Session{st: st, id: id}
	if fwd, err := s.fill(key, fields); err != nil || fwd != "" {
		return nil, fwd, err
	}
	return s, "", nil
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
			s.user = val
		case fCodec:
			codecName = val
		case fSaveID:
		case fForward:
			return val, nil
		default:
			return "", &CorruptError{Key: key, Reason: fmt.Sprintf("unknown field %q", name)}
		}
		if err != nil {
			return "", &CorruptError{Key: key, Reason: fmt.Sprintf("field %s is not a number", name), Err: err}
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

func newSaveID() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64()&0xffffffff, 36)
}

// Save writes the attributes changed since the session was loaded (set and deleted) and
// the user, in one script that also bumps the version and sets the TTL to
// min(idle timeout, absolute deadline − now), with now from Redis TIME. An unmodified
// session sends nothing. A save never resurrects a destroyed, expired or rotated-away
// session (ErrNotFound). Each save carries a save ID, so a save retried after a lost
// reply is applied once.
//
// Errors: ErrNotFound, ErrConflict (WithVersionCheck), *SizeError (nothing sent),
// *CodecError, *CorruptError, ErrDestroyed, the context's error or a Redis error.
func (st *Store) Save(ctx context.Context, s *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != st {
		return errors.New("hasession: session belongs to another store")
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
	mode, expect, second := "u", "", int64(0)
	if s.isNew {
		mode, second = "n", st.lifeMs
	} else if st.o.versionCheck {
		expect = strconv.FormatInt(s.version, 10)
	}
	args := make([]any, 0, 10+3*len(s.changes))
	args = append(args, newSaveID(), expect, mode, st.idleMs, second, st.o.codec.Name(), s.userArg(), 0, 0)
	args = s.appendChanges(args)
	r, err := st.runSave(ctx, st.key(s.id), args)
	if err != nil {
		return err
	}
	s.applyChanges()
	s.version, s.touched, s.deadline, s.created = r.version, r.now, r.deadline, r.created
	s.isNew = false
	return nil
}

type saveResult struct{ version, now, deadline, created int64 }

// runSave runs the save script and turns its reply into a result or an error.
func (st *Store) runSave(ctx context.Context, key string, args []any) (saveResult, error) {
	var r saveResult
	res, err := saveScript.Run(ctx, st.rdb, []string{key}, args...).Slice()
	if err != nil {
		return r, st.redisErr("save session", key, err)
	}
	code, _ := replyInt(res, 0)
	switch code {
	case 1, 2:
		var ok1, ok2, ok3, ok4 bool
		r.version, ok1 = replyInt(res, 1)
		r.now, ok2 = replyInt(res, 2)
		r.deadline, ok3 = replyInt(res, 3)
		r.created, ok4 = replyInt(res, 4)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return r, &CorruptError{Key: key, Reason: fmt.Sprintf("malformed save reply %v", res)}
		}
		return r, nil
	case -1:
		return r, ErrNotFound
	case -2:
		return r, ErrConflict
	case -3:
		return r, errors.New("hasession: save session: the new session's key exists already")
	case -4:
		return r, &CorruptError{Key: key, Reason: fmt.Sprint(res[1:]...)}
	case -5:
		stored := ""
		if len(res) > 1 {
			stored = fmt.Sprint(res[1])
		}
		return r, &CodecError{Stored: stored, Want: st.o.codec.Name()}
	}
	return r, &CorruptError{Key: key, Reason: fmt.Sprintf("unexpected save reply %v", res)}
}

func replyInt(res []any, i int) (int64, bool) {
	if i >= len(res) {
		return 0, false
	}
	v, ok := res[i].(int64)
	return v, ok
}

// Rotate gives the session a new ID (call it on login and on any change of privilege,
// against session fixation). The session, with its pending changes, is written under the
// new ID first; then the old key becomes a forward pointer to the new ID for the grace
// period, so requests still carrying the old ID land on the new session. The two keys
// live in different Cluster slots, so these are two steps, ordered so that a failure
// between them loses nothing: the old session is intact until the new one exists. On
// error s keeps its old ID and Rotate may be called again.
//
// A session that was never saved just gets a new ID. Errors are Save's.
func (st *Store) Rotate(ctx context.Context, s *Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != st {
		return errors.New("hasession: session belongs to another store")
	}
	if s.gone {
		return ErrDestroyed
	}
	newID, err := sid.New()
	if err != nil {
		return fmt.Errorf("hasession: new session ID: %w", err)
	}
	if s.isNew {
		s.id = newID
		return nil
	}
	if size := s.sizeLocked(); size > st.o.sizeLimit {
		return &SizeError{Size: size, Limit: st.o.sizeLimit}
	}
	oldID, oldVersion := s.id, s.version
	args := make([]any, 0, 10+2*len(s.attrs)+3*len(s.changes))
	args = append(args, newSaveID(), "", "c", st.idleMs, s.deadline, st.o.codec.Name(), "", s.created, oldVersion)
	if s.user != "" {
		args[6] = "+" + s.user
	}
	args = s.appendAll(args)
	r, err := st.runSave(ctx, st.key(newID), args)
	if err != nil {
		return err
	}
	if st.graceMs > 0 {
		err = forwardScript.Run(ctx, st.rdb, []string{st.key(oldID)}, forwardToken(oldID, newID), st.graceMs).Err()
	} else {
		_, err = st.destroy(ctx, oldID)
	}
	if err != nil {
		st.o.logger.Warn("hasession: rotation wrote the new session but could not forward the old one; the old session is intact", "err", err)
		return st.redisErr("rotate session", st.key(oldID), err)
	}
	s.applyChanges()
	s.id = newID
	s.version, s.touched, s.deadline, s.created = r.version, r.now, r.deadline, r.created
	return nil
}

// Destroy deletes the session with the given ID (logout). Destroying a rotated session's
// old ID within the grace period deletes the new session too. A missing session is not
// an error. Errors: ErrInvalidID (nothing sent), the context's error or a Redis error.
func (st *Store) Destroy(ctx context.Context, id string) error {
	if !sid.Valid(id) {
		return ErrInvalidID
	}
	for range maxHops {
		fwd, err := st.destroy(ctx, id)
		if err != nil || fwd == "" {
			return err
		}
		next, ok := forwardTarget(id, fwd)
		if !ok {
			return nil
		}
		id = next
	}
	return nil
}

func (st *Store) destroy(ctx context.Context, id string) (string, error) {
	key := st.key(id)
	res, err := destroyScript.Run(ctx, st.rdb, []string{key}).Slice()
	if err != nil {
		return "", st.redisErr("destroy session", key, err)
	}
	if len(res) == 2 {
		if s, ok := res[1].(string); ok {
			return s, nil
		}
	}
	return "", nil
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// DestroySession destroys the session s (see Destroy) and marks s destroyed: a later Save
// or Rotate of s returns ErrDestroyed.
func (st *Store) DestroySession(ctx context.Context, s *Session) error {
	s.mu.Lock()
	id, isNew := s.id, s.isNew
	s.mu.Unlock()
	if !isNew {
		if err := st.Destroy(ctx, id); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.gone = true
	s.mu.Unlock()
	return nil
}
