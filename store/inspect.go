package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/format"
	"github.com/hasession/hasession/internal/sid"
)

// Inspection is a session as Redis holds it, read by [Store.Inspect] for an operator.
type Inspection struct {
	// ID is the session's ID: the one inspected, or the one its forward pointers led to.
	ID string
	// Key is the session's key, <prefix>{<tag>}.
	Key string
	// Forwarded lists the IDs whose forward pointers led to ID, the one inspected first:
	// rotations within the grace period. Empty when the ID inspected is the session's.
	Forwarded []string
	// Tombstone is set when the key is a tombstone left by a revoke or a logout: the ID
	// leads nowhere, and the fields below but TTL are zero.
	Tombstone bool
	// Version is bumped by every save.
	Version int64
	// Created is when the session was first saved, LastTouch when its TTL was last
	// extended, Deadline when it ends however active (Redis time).
	Created, LastTouch, Deadline time.Time
	// TTL is what is left of the key's time to live.
	TTL time.Duration
	// User is the user the session belongs to ("" for none).
	User string
	// Codec is the name of the codec the attribute values were written with.
	Codec string
	// IdleTimeout is the session's own idle timeout ([Session.SetIdleTimeout]); 0 when it
	// has none (the store's applies).
	IdleTimeout time.Duration
	// Persistence is the session's own cookie persistence ([Session.SetPersistent]):
	// "persistent", "session" (a session cookie), or "" when it chose none.
	Persistence string
	// Attrs names the session's attributes, sorted.
	Attrs []string

	values map[string]string
	st     *Store
}

// Encoded returns the attribute's value as stored (encoded by the codec named in Codec).
func (i *Inspection) Encoded(name string) ([]byte, bool) {
	v, ok := i.values[name]
	return []byte(v), ok
}

// Get decodes the attribute name into dst with the store's codec, as [Session.Get] does.
// It returns ErrNoAttribute when there is no such attribute, a [*CodecError] when the
// session was written with another codec, or the codec's error.
func (i *Inspection) Get(name string, dst any) error {
	v, ok := i.values[name]
	if !ok {
		return ErrNoAttribute
	}
	if want := i.st.o.codec.Name(); i.Codec != want {
		return &CodecError{Stored: i.Codec, Want: want}
	}
	if err := i.st.o.codec.Unmarshal([]byte(v), dst); err != nil {
		return fmt.Errorf("hasession: attribute %q: %w", name, err)
	}
	return nil
}

// Inspect reads the session with the given ID as Redis holds it, for operators and
// tools: its metadata, attribute names and encoded values, and its key's TTL. Unlike
// Load it writes nothing — no touch, no pruning — and it reads a session written with
// another codec (Get then says so). It follows forward pointers as Load does (a session
// rotated within the grace period: [Inspection.Forwarded]) and reports a tombstone
// instead of hiding it ([Inspection.Tombstone]). Each key costs one round trip (HGETALL
// and PTTL, pipelined), retried under the store's retry policy.
//
// It returns ErrInvalidID for a malformed ID (nothing sent), ErrNotFound when there is
// no key (or a chain of forward pointers longer than Load follows), a *CorruptError for
// data the store did not write, a *FormatError (ErrFormatVersion) for a key of a newer
// format, or a Redis error. Reserved fields a newer writer added (FORMAT.md) are ignored.
func (st *Store) Inspect(ctx context.Context, id string) (*Inspection, error) {
	if !sid.Valid(id) {
		return nil, ErrInvalidID
	}
	var forwarded []string
	for range maxHops {
		r, err := doNamed(st, ctx, opCaller, "inspect session", id, inspectOp)
		if err != nil {
			return nil, err
		}
		if r.fwd == "" {
			r.in.Forwarded = forwarded
			return r.in, nil
		}
		next, ok := forwardTarget(id, r.fwd)
		if !ok {
			return nil, &CorruptError{Key: st.key(id), Reason: "malformed forward pointer"}
		}
		forwarded = append(forwarded, id)
		id = next
	}
	return nil, ErrNotFound
}

type inspected struct {
	in  *Inspection
	fwd string
}

// inspectOp is one attempt of Inspect on one key: the inspection, or the forward token
// when the key is a forward pointer.
func inspectOp(st *Store, ctx context.Context, id string) (inspected, error) {
	key := st.key(id)
	var all *redis.MapStringStringCmd
	var ttl *redis.DurationCmd
	_, err := st.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, key)
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return inspected{}, st.redisErr(opCaller, key, err)
	}
	fields := all.Val()
	if len(fields) == 0 {
		return inspected{}, ErrNotFound
	}
	if v, ok := fields[fFormat]; ok {
		if err := checkFormat(key, v); err != nil {
			return inspected{}, err // a newer format: nothing else is read
		}
	}
	in := &Inspection{ID: id, Key: key, st: st, TTL: max(ttl.Val(), 0)}
	if fwd, ok := fields[fForward]; ok {
		return inspected{fwd: fwd}, nil
	}
	if _, ok := fields[fRevoked]; ok {
		in.Tombstone = true
		return inspected{in: in}, nil
	}
	ms := func(name string) (int64, error) {
		v, ok := fields[name]
		if !ok {
			return 0, &CorruptError{Key: key, Reason: "missing session metadata"}
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, &CorruptError{Key: key, Reason: "malformed session metadata", Err: numberError(name, v, err)}
		}
		return n, nil
	}
	var created, touched, deadline int64
	if in.Version, err = ms(fVersion); err == nil {
		if created, err = ms(fCreated); err == nil {
			if touched, err = ms(fTouched); err == nil {
				deadline, err = ms(fDeadline)
			}
		}
	}
	if err != nil {
		return inspected{}, err
	}
	in.Created, in.LastTouch, in.Deadline = time.UnixMilli(created), time.UnixMilli(touched), time.UnixMilli(deadline)
	in.User, in.Codec = fields[fUser], fields[fCodec]
	for name, v := range fields {
		switch {
		case strings.HasPrefix(name, attrPrefix):
			if in.values == nil {
				in.values = make(map[string]string)
			}
			in.values[name[len(attrPrefix):]] = v
			in.Attrs = append(in.Attrs, name[len(attrPrefix):])
		case name == fIdle:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return inspected{}, &CorruptError{Key: key, Reason: "malformed session metadata", Err: numberError(name, v, err)}
			}
			in.IdleTimeout = time.Duration(n) * time.Millisecond
		case name == fPersist:
			switch v {
			case "1":
				in.Persistence = "persistent"
			case "0":
				in.Persistence = "session"
			default:
				return inspected{}, &CorruptError{Key: key, Reason: "malformed cookie persistence " + quoteData(v)}
			}
		case name == fVersion, name == fCreated, name == fDeadline, name == fTouched,
			name == fUser, name == fCodec, name == fSaveID, name == fPending, format.Reserved(name):
		default:
			return inspected{}, &CorruptError{Key: key, Reason: "unknown field " + quoteData(name)}
		}
	}
	slices.Sort(in.Attrs)
	return inspected{in: in}, nil
}
