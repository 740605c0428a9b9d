package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/sid"
)

// Migration from another store: a session that another Redis session store wrote (the
// legacy session) is moved into the store's format the first time a request meets it —
// read, converted, saved as a new hasession session with the lifetime it had left, and
// deleted — exactly once however many requests meet it at the same time. The adapters
// use [Store.Adopt] for their peers' layouts (scs's goredisstore, gorilla's redistore and
// redisstore); [WithLegacyHash] moves the sessions of one Redis hash of session IDs, a
// common pattern of Python applications, in Load.
//
// Exactly once, without a cross-slot command: the request that moves a session writes
// the new session first, then claims the legacy one in a script on the legacy key's slot
// — the claim key, {<legacy key>}:<prefix>moved[:<field>], holds the new session's ID and
// the legacy session is deleted in the same step, but only if it still holds what the
// request read. A request that finds the claim loads the session it names; one that
// loses the claim destroys the session it wrote, which nobody was given. The claim lasts
// the grace period (WithGracePeriod, at least a minute): requests in flight with the old
// cookie land in the new session, whose ID the response carries.

//go:embed lua/legacy.lua
var legacyLua string

var legacyScript = redis.NewScript(legacyLua)

// ErrLegacyCorrupt: a legacy session being migrated (see [Store.Adopt], [WithLegacyHash])
// does not decode, or its key holds another Redis type. It was left untouched, and no
// session was made of it.
var ErrLegacyCorrupt = errors.New("hasession: unreadable legacy session")

// LegacyError reports a legacy session that cannot be migrated: Key (and Field, for a
// hash) names it, Reason says why, Err is the decoder's error if there was one. It
// matches [ErrLegacyCorrupt]. The legacy data is left untouched.
type LegacyError struct {
	Key, Field, Reason string
	Err                error
}

func (e *LegacyError) Error() string {
	where := fmt.Sprintf("%q", e.Key)
	if e.Field != "" {
		where += fmt.Sprintf(" field %q", e.Field)
	}
	msg := "hasession: legacy session " + where + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrLegacyCorrupt.
func (e *LegacyError) Is(target error) bool { return target == ErrLegacyCorrupt }

// Unwrap returns the decoder's error.
func (e *LegacyError) Unwrap() error { return e.Err }

// LegacyRef names a legacy session: a string key, or a field of a hash.
type LegacyRef struct {
	Key   string
	Field string // the field of the hash Key; "" for a string key
}

// LegacyConvert turns a legacy session's value into the new session's attributes and
// lifetime. raw is the value as Redis holds it; ttl is the legacy key's remaining TTL (0:
// none). The lifetime is the one the new session gets from now: 0 means the store's
// lifetime; one over the store's maximum is cut to it; one under a second means the
// session has expired (nothing is moved). An error means raw does not decode: Adopt
// returns it in a [*LegacyError] and leaves the legacy session as it is.
type LegacyConvert func(raw []byte, ttl time.Duration) (attrs map[string]any, lifetime time.Duration, err error)

// maxLegacyTries bounds the rounds of Adopt that find the legacy session changed between
// its read and its claim (an app server of the old store writing it meanwhile).
const maxLegacyTries = 3

// Adopt returns the session that the legacy session ref became, moving it if nobody has:
// it reads ref (one script on ref's slot), converts it with convert, saves the result as
// a new session (attributes set one by one, with the store's codec) and claims ref for
// it, which deletes the legacy session (see the package's section on migration). Under
// concurrent calls for the same ref, exactly one moves it, and every call returns that
// session. The returned session's ID is new: set it in the response's cookie.
//
// Errors: ErrNotFound when ref holds no session (or it has expired, or it was moved and
// the new session is gone since: logged out, expired); a [*LegacyError]
// (ErrLegacyCorrupt) when it does not convert or the key is of another type, with
// nothing written and ref untouched; [*ValueError] for an attribute the codec cannot
// encode (ref untouched); the context's error or a Redis error once the retry policy
// gave up — ref is then unchanged, or moved (a later call finds the claim). ref.Key may
// not contain '{' unless it has a hash tag: another key in its slot could not be named.
func (st *Store) Adopt(ctx context.Context, ref LegacyRef, convert LegacyConvert) (*Session, error) {
	claim, err := st.claimKey(ref)
	if err != nil {
		return nil, err
	}
	for range maxLegacyTries {
		s, again, err := st.adoptOnce(ctx, ref, claim, convert)
		if !again {
			return s, err
		}
	}
	return nil, fmt.Errorf("hasession: legacy session %q changed %d times while being moved: %w", ref.Key, maxLegacyTries, ErrConflict)
}

func (st *Store) adoptOnce(ctx context.Context, ref LegacyRef, claim string, convert LegacyConvert) (s *Session, again bool, err error) {
	rep, err := st.legacyCall(ctx, ref, claim, "r")
	if err != nil {
		return nil, false, err
	}
	switch rep.state {
	case legacyMoved:
		s, err := st.Load(ctx, rep.id)
		return s, false, err
	case legacyNone:
		return nil, false, ErrNotFound
	case legacyWrongType:
		st.stats.legacyCorrupt.Add(1)
		return nil, false, &LegacyError{Key: ref.Key, Field: ref.Field, Reason: "key holds a " + rep.id}
	}
	ttl := time.Duration(0)
	if rep.pttl > 0 {
		ttl = time.Duration(rep.pttl) * time.Millisecond
	}
	attrs, life, err := convert([]byte(rep.val), ttl)
	if err != nil {
		st.stats.legacyCorrupt.Add(1)
		return nil, false, &LegacyError{Key: ref.Key, Field: ref.Field, Reason: "does not decode", Err: err}
	}
	switch {
	case life == 0:
		life = st.o.absolute
	case life < minExpiry:
		return nil, false, ErrNotFound // expired
	case life > st.o.maxAbsolute:
		life = st.o.maxAbsolute
	}
	s, err = st.NewSession()
	if err != nil {
		return nil, false, err
	}
	for k, v := range attrs {
		if err := s.Set(k, v); err != nil {
			return nil, false, err
		}
	}
	if err := s.SetLifetime(life); err != nil {
		return nil, false, err
	}
	if err := st.Save(ctx, s); err != nil {
		return nil, false, err
	}
	keep := max(st.o.grace, time.Minute).Milliseconds()
	got, err := st.legacyCall(ctx, ref, claim, "c", rep.val, s.ID(), keep)
	if err != nil {
		// The claim may have been made and its reply lost: s is kept, as the session a
		// later call finds the claim naming, or one given to nobody that expires on its
		// own after the idle timeout.
		return nil, false, err
	}
	// Claimed, or claimed by an attempt whose reply was lost and found by the retry.
	if got.state == legacyClaimed || got.state == legacyMoved && got.id == s.ID() {
		st.stats.legacyImported.Add(1)
		return s, false, nil
	}
	// Not ours: the session just saved was given to nobody.
	if derr := st.DestroySession(context.WithoutCancel(ctx), s); derr != nil {
		st.o.logger.Warn("hasession: an unclaimed migrated session was not destroyed; it expires on its own", "err", derr)
	}
	switch got.state {
	case legacyMoved:
		s, err := st.Load(ctx, got.id)
		return s, false, err
	case legacyNone:
		return nil, false, ErrNotFound
	case legacyWrongType:
		return nil, false, &LegacyError{Key: ref.Key, Field: ref.Field, Reason: "key holds a " + got.id}
	}
	return nil, true, nil // changed since read: read again
}

const (
	legacyNone      = 0
	legacyMoved     = 1
	legacyWrongType = 2
	legacyFound     = 3 // read: found; claim: claimed
	legacyClaimed   = 3
)

type legacyReply struct {
	state int64
	id    string // legacyMoved: the session's ID; legacyWrongType: the key's type
	val   string
	pttl  int64
}

// legacyCall runs legacy.lua on ref, with the store's retry policy.
func (st *Store) legacyCall(ctx context.Context, ref LegacyRef, claim, mode string, extra ...any) (legacyReply, error) {
	args := append([]any{mode, ref.Field}, extra...)
	return RetryValue(ctx, st, "legacy "+mode, func(ctx context.Context) (legacyReply, error) {
		res, err := legacyScript.Run(ctx, st.rdb, []string{ref.Key, claim}, args...).Slice()
		if err != nil {
			return legacyReply{}, err
		}
		var r legacyReply
		if len(res) > 0 {
			r.state, _ = res[0].(int64)
		}
		if len(res) > 1 {
			s, _ := res[1].(string)
			if r.state == legacyFound && mode == "r" {
				r.val = s
			} else {
				r.id = s
			}
		}
		if len(res) > 2 {
			r.pttl, _ = res[2].(int64)
		}
		if r.state == legacyMoved && !sid.Valid(r.id) {
			return legacyReply{}, &CorruptError{Key: claim, Reason: "claim of a migrated session holds no session ID"}
		}
		return r, nil
	})
}

// claimKey returns the key of ref's claim: in ref.Key's hash slot, as Redis Cluster
// hashes it.
func (st *Store) claimKey(ref LegacyRef) (string, error) {
	tag, ok := slotTag(ref.Key)
	if !ok {
		return "", fmt.Errorf("hasession: legacy key %q: a '{' without a hash tag: no key of its slot can be named", ref.Key)
	}
	k := "{" + tag + "}:" + st.o.prefix + "moved"
	if ref.Field != "" {
		k += ":" + ref.Field
	}
	return k, nil
}

// slotTag returns what Redis Cluster hashes of key: the content of its hash tag (the
// first '{' with a '}' after it and something between), or the whole key. A key with a
// '{' and no hash tag hashes whole, and no other key can be made to hash with it by a tag
// of the key itself: ok is false.
func slotTag(key string) (tag string, ok bool) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key, key != ""
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return "", false
	}
	return key[i+1 : i+1+j], true
}

// legacyHash is the configuration of WithLegacyHash.
type legacyHash struct {
	key, attr string
}

// maxLegacyIDLen bounds the IDs a Store with WithLegacyHash takes for legacy ones.
const maxLegacyIDLen = 128

// WithLegacyHash moves, in Load, the sessions of a Redis hash that another application
// keeps them in — one hash (key), field: the session ID, value: the session's data, no
// TTL (the pattern of many Python applications on redis-py). A Load of an ID that is not
// a hasession session, a missing one or one that is no hasession ID at all, looks the ID
// up in the hash: found, the value becomes the new session's attribute attr (a string
// holding the value's bytes), the session gets the store's idle timeout and lifetime (the
// legacy session had none), the field is deleted, and Load returns the new session — its
// ID is new: the caller sends it in the cookie, as after a rotation (httpsession does).
// The move happens once however many requests meet the session (see [Store.Adopt]);
// the old ID leads to the new session for the grace period after it.
//
// With this option, an ID is taken (see [Store.ValidID]) when it is a hasession ID or a
// legacy one: 1 to 128 printable ASCII characters, no space. A Load that finds no session
// costs one more round trip (the hash's slot). A value of the hash that does not move (the
// codec cannot encode it) is left as it is, and Load returns the error. Remove the option
// once the hash is empty (HLEN), or import the rest up front with the CLI.
//
// key and attr must not be empty; key may not contain '{' unless it has a hash tag.
func WithLegacyHash(key, attr string) Option {
	return func(o *options) error {
		if key == "" || attr == "" {
			return errors.New("hasession: WithLegacyHash: empty key or attribute name")
		}
		if _, ok := slotTag(key); !ok {
			return fmt.Errorf("hasession: WithLegacyHash: key %q has a '{' but no hash tag", key)
		}
		o.legacyHash = &legacyHash{key: key, attr: attr}
		return nil
	}
}

// ValidID reports whether id may name a session of the store: a hasession ID (a canonical
// lowercase UUIDv4), or, with [WithLegacyHash], a legacy one. Load returns ErrInvalidID
// for anything else, without a round trip.
func (st *Store) ValidID(id string) bool {
	return sid.Valid(id) || st.o.legacyHash != nil && validLegacyID(id)
}

// validLegacyID reports whether id may name a session of a legacy hash: 1 to
// maxLegacyIDLen characters from '!' to '~'.
func validLegacyID(id string) bool {
	if id == "" || len(id) > maxLegacyIDLen {
		return false
	}
	for i := range len(id) {
		if id[i] < '!' || id[i] > '~' {
			return false
		}
	}
	return true
}

// loadLegacy moves the session id of the legacy hash, if it holds one (see
// WithLegacyHash): ErrNotFound otherwise.
func (st *Store) loadLegacy(ctx context.Context, id string) (*Session, error) {
	lh := st.o.legacyHash
	attr := lh.attr
	return st.Adopt(ctx, LegacyRef{Key: lh.key, Field: id}, func(raw []byte, _ time.Duration) (map[string]any, time.Duration, error) {
		return map[string]any{attr: string(raw)}, 0, nil
	})
}
