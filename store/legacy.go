package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/sid"
)

//go:embed lua/legacy.lua
var legacyLua string

var legacyScript = redis.NewScript(legacyLua)

// ErrLegacyCorrupt: a legacy session being migrated (see [Store.Adopt], [WithLegacyHash])
// does not decode, cannot be stored (an attribute the codec cannot encode, a session over
// the size limit), or its key holds another Redis type. It was left untouched, and no
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

// Unwrap returns the decoder's or the store's error (a *ValueError, a *SizeError).
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
// (ErrLegacyCorrupt) when it does not convert, cannot be stored (an attribute the codec
// cannot encode, a session over the size limit: Err is the [*ValueError] or [*SizeError])
// or the key is of another type, with nothing written and ref untouched; the context's error or a Redis error once the retry policy
// gave up — ref is then unchanged, or moved (a later call finds the claim).
func (st *Store) Adopt(ctx context.Context, ref LegacyRef, convert LegacyConvert) (*Session, error) {
	claim := st.claimKey(ref)
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
	unstorable := func(err error) (*Session, bool, error) {
		st.stats.legacyCorrupt.Add(1)
		return nil, false, &LegacyError{Key: ref.Key, Field: ref.Field, Reason: "cannot be stored", Err: err}
	}
	for k, v := range attrs {
		if err := s.Set(k, v); err != nil {
			return unstorable(err) // *ValueError: the codec cannot encode it
		}
	}
	if err := s.SetLifetime(life); err != nil {
		return nil, false, err
	}
	if err := st.Save(ctx, s); err != nil {
		var se *SizeError
		if errors.As(err, &se) {
			return unstorable(err) // over the store's size limit: nothing was sent
		}
		return nil, false, err
	}
	got, err := st.legacyCall(ctx, ref, claim, "c", rep.val, forwardToken(st.claimMask(ref), s.ID()), life.Milliseconds())
	if err != nil {
		// The claim may have been made (its reply lost): the session saved is then the
		// one the claim names, and must stay. If it was not, it expires on its own.
		return nil, false, err
	}
	if got.state == legacyClaimed || got.state == legacyMoved && got.id == s.ID() {
		// Claimed now, or by an earlier attempt of this call whose reply was lost.
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
		if r.state == legacyMoved {
			id, ok := forwardTarget(st.claimMask(ref), r.id)
			if !ok {
				return legacyReply{}, &CorruptError{Key: claim, Reason: "claim of a migrated session holds no session ID"}
			}
			r.id = id
		}
		return r, nil
	})
}

// claimKey returns the key of ref's claim: in ref.Key's Cluster slot, whatever ref.Key
// looks like, and one key per legacy session — {<slot tag>}:<prefix>moved:<name>, where
// the slot tag is the canonical tag of that slot (see slotTags) and the name is ref.Key
// and ref.Field, or with WithHashedIDs their HMAC tag: a dump of Redis then shows no
// legacy ID either (a legacy ID may be a cookie that still works, through the claim).
func (st *Store) claimKey(ref LegacyRef) string {
	return "{" + slotTag(keySlot(ref.Key)) + "}:" + st.o.prefix + "moved:" + st.tag(ref.Key+"\x00"+ref.Field)
}

// claimMask is what the ID in ref's claim is masked with (see forwardToken): with
// WithHashedIDs an HMAC Redis does not hold, so a dump of Redis reveals no live session
// ID through a claim either.
func (st *Store) claimMask(ref LegacyRef) string {
	return st.tag("hasession/claim\x00" + ref.Key + "\x00" + ref.Field)
}

// hashedPart returns what Redis Cluster hashes of key: the content of its hash tag (the
// first '{' with a '}' after it and something between), or else the whole key.
func hashedPart(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// keySlot returns key's Redis Cluster hash slot: CRC16 (XMODEM) of its hashed part,
// modulo 16384.
func keySlot(key string) int { return int(crc16(hashedPart(key)) % clusterSlots) }

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's key hash.
func crc16(s string) uint16 {
	var crc uint16
	for i := range len(s) {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

var (
	slotTagsOnce sync.Once
	slotTagsTab  []string
)

// slotTag returns the canonical hash tag of a Cluster slot: the decimal form of the least
// integer n ≥ 0 whose CRC16 lands in the slot. Every slot has one below 200,000; the table
// is built once, on the first migration.
func slotTag(slot int) string {
	slotTagsOnce.Do(func() {
		tab := make([]string, clusterSlots)
		left := clusterSlots
		for n := 0; left > 0; n++ {
			v := strconv.Itoa(n)
			if sl := crc16(v) % clusterSlots; tab[sl] == "" {
				tab[sl] = v
				left--
			}
		}
		slotTagsTab = tab
	})
	return slotTagsTab[slot]
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
// the old ID leads to the new session after it, for as long as that one can live.
//
// With this option, an ID is taken (see [Store.ValidID]) when it is a hasession ID or a
// legacy one: 1 to 128 printable ASCII characters, no space. A Load that finds no session
// costs one more round trip (the hash's slot). A value of the hash that does not move (the
// codec cannot encode it) is left as it is, and Load returns the error. Remove the option
// once the hash is empty (HLEN) and no old cookie can still lead through a claim (the
// claims live as long as the sessions moved).
//
// key and attr must not be empty.
func WithLegacyHash(key, attr string) Option {
	return func(o *options) error {
		if key == "" || attr == "" {
			return errors.New("hasession: WithLegacyHash: empty key or attribute name")
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
