package store

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/batch"
	"github.com/hasession/hasession/internal/format"
	"github.com/hasession/hasession/internal/sid"
)

// Metadata fields of the session hash (see package format). Attribute fields start with
// attrPrefix, so an attribute name can never reach a metadata field.
const (
	fVersion  = format.Version
	fCreated  = format.Created
	fDeadline = format.Deadline // absolute deadline, ms since epoch (Redis time)
	fTouched  = format.Touched  // last touch, ms since epoch (Redis time)
	fUser     = format.User
	fCodec    = format.Codec
	fSaveID   = format.SaveID
	fForward  = format.Forward
	fPending  = format.Pending       // a rotation in flight: the new session's tag
	fRevoked  = format.Revoked       // a tombstone left by a revoke
	fIdle     = format.Idle          // the session's own idle timeout (ms); none: the store's
	fPersist  = format.Persist       // the session's own cookie persistence: "1" persistent, "0" a session cookie
	fFormat   = format.FormatVersion // the key's format version; absent: 1 (see FORMAT.md)

	attrPrefix = format.AttrPrefix
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

	batch *batch.Batchers // nil: WithAutoPipeline(false)

	ctxHonoured bool          // the client applies context deadlines to its sockets
	clientBound time.Duration // how long one command can block the client by its own timeouts
	node        string        // OpEvent.Node (see nodeOf)
	stats       counters
	replyHint   atomic.Int64
	closed      atomic.Bool // see Close
	events      *eventQueue // nil: no WithEvents
	near        *nearCache  // nil: no WithNearCache
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
	if o.maxIdle == 0 {
		o.maxIdle = o.idle
	} else if o.maxIdle < o.idle {
		return nil, fmt.Errorf("hasession: maximum idle timeout %s is under the idle timeout %s", o.maxIdle, o.idle)
	}
	if o.maxAbsolute == 0 {
		o.maxAbsolute = o.absolute
	} else if o.maxAbsolute < o.absolute {
		return nil, fmt.Errorf("hasession: maximum lifetime %s is under the lifetime %s", o.maxAbsolute, o.absolute)
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
	st.node = nodeOf(rdb)
	st.ctxHonoured, st.clientBound = clientTimeouts(rdb)
	if o.autoPipeline {
		st.batch = batch.New(rdb)
	}
	if o.near != nil {
		nc, err := newNearCache(st, o.near)
		if err != nil {
			return nil, err
		}
		st.near = nc
	}
	if o.events != nil {
		st.events = newEventQueue(o.events, o.logger, EventQueueSize)
	}
	return st, nil
}

// Close closes the store: its auto-pipelining loops end (a loop sending a pipeline ends
// when the pipeline has its replies), its event goroutine (WithEvents) ends once it has
// delivered the events queued before Close (Close does not wait for it; events emitted
// later are dropped and counted), and from then on every call that would talk to
// Redis returns ErrClosed. A call under way returns ErrClosed at its next attempt or
// step; what it has sent completes. Calls that need no round trip still work:
// NewSession, Key, Ref, IndexKey, Stats, Client, and a Save of an unmodified session or a
// Rotate of a session never saved.
//
// Close does not close the go-redis client given to New: the caller made it and owns it,
// and may share it with other code. Close the client after the store, when nothing else
// uses it. Close may be called more than once, and concurrently with other calls; it
// returns nil.
func (st *Store) Close() error {
	if st.closed.Swap(true) {
		return nil
	}
	if st.batch != nil {
		st.batch.Close()
	}
	if st.near != nil {
		st.near.close()
	}
	if st.events != nil {
		st.events.close()
	}
	return nil
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

// process runs cmd, which reads or writes key: in the next pipeline to key's node (see
// WithAutoPipeline), or alone.
func (st *Store) process(ctx context.Context, key string, cmd redis.Cmder) error {
	if st.batch != nil {
		return st.batch.Process(ctx, key, cmd)
	}
	return st.rdb.Process(ctx, cmd)
}

// redisErr wraps a Redis or context error with what was being done; WRONGTYPE (a key
// holding something other than a hash) becomes a *CorruptError.
func (st *Store) redisErr(op opKind, key string, err error) error {
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		return &CorruptError{Key: key, Reason: "not a hash", Err: err}
	}
	return fmt.Errorf("hasession: %s: %w", op.String(), err)
}

// newSessionID returns a fresh session ID (a UUIDv4 from crypto/rand).
func newSessionID() (string, error) {
	id, err := sid.New()
	if err != nil {
		return "", fmt.Errorf("hasession: new session ID: %w", err)
	}
	return id, nil
}

// IdleTimeout returns the sliding expiry the store was built with.
func (st *Store) IdleTimeout() time.Duration { return st.o.idle }

// Lifetime returns the absolute lifetime the store was built with.
func (st *Store) Lifetime() time.Duration { return st.o.absolute }

// TouchInterval returns the touch interval the store was built with.
func (st *Store) TouchInterval() time.Duration { return st.o.touchInterval }

// MaxIdleTimeout returns the longest idle timeout a session may have of its own (see
// WithMaxIdleTimeout).
func (st *Store) MaxIdleTimeout() time.Duration { return st.o.maxIdle }

// MaxLifetime returns the longest lifetime a session may have of its own (see
// WithMaxLifetime).
func (st *Store) MaxLifetime() time.Duration { return st.o.maxAbsolute }

// touchMsFor returns the touch interval (ms) of a session whose idle timeout is idleMs:
// the store's, scaled down by idleMs/idle timeout for a shorter idle timeout, so that a
// session given a short idle timeout of its own is still touched in time. touch.lua
// computes the same.
func (st *Store) touchMsFor(idleMs int64) int64 {
	if idleMs <= 0 || idleMs >= st.idleMs {
		return st.touchMs
	}
	return int64(math.Floor(float64(st.touchMs) * float64(idleMs) / float64(st.idleMs)))
}
