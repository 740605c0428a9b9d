package store

import (
	"context"
	"errors"
	"strconv"

	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/format"
	"github.com/hasession/hasession/internal/sid"
)

// Load returns the session with the given ID, in one round trip (a plain HGETALL). It
// validates the ID's format first: a malformed ID is ErrInvalidID and sends nothing. A
// missing or expired session is ErrNotFound. When the touch is due (the last one is older
// than the touch interval) a second round trip runs a script that extends the TTL to
// min(idle timeout, absolute deadline − now) and reads the session in the same atomic
// step: the session returned is then the one touched, never a mix of two states, and a
// rotation or destroy that came between the two round trips is seen (followed, or
// ErrNotFound). A rotated session's old ID leads to the new session during the grace
// period (one more round trip): the returned session's ID is then the new one.
// The idle timeout is the session's own where it has one (Session.SetIdleTimeout).
// With WithLegacyHash, an ID that names no session here is looked up in the legacy hash
// and its session moved (see WithLegacyHash): the returned session's ID is then new.
//
// Other errors: *CodecError (ErrCodecMismatch), *CorruptError (ErrCorrupt),
// *LegacyError (ErrLegacyCorrupt: a legacy session that does not move, left as it is),
// the context's error, or a Redis error.
func (st *Store) Load(ctx context.Context, id string) (*Session, error) {
	if !sid.Valid(id) {
		if st.o.legacyHash != nil && validLegacyID(id) {
			return st.loadLegacy(ctx, id)
		}
		return nil, ErrInvalidID
	}
	s, err := st.loadID(ctx, id)
	if st.o.legacyHash != nil && errors.Is(err, ErrNotFound) {
		return st.loadLegacy(ctx, id)
	}
	return s, err
}

// loadID is Load of a well-formed ID, in the store's own format.
func (st *Store) loadID(ctx context.Context, id string) (*Session, error) {
	for range maxHops {
		r, err := doWith(st, ctx, opLoad, id, loadOp)
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
	s     *Session
	fwd   string
	touch Touch // for an Observer
}

// loadOp is one attempt of Load: a top-level function, so that the retry loop needs no
// closure.
func loadOp(st *Store, ctx context.Context, id string) (loaded, error) {
	s, fwd, touch, err := st.load(ctx, id)
	return loaded{s, fwd, touch}, err
}

// load reads one key with a plain HGETALL — as cheap as a GET of the same bytes: no
// script, and the reply is parsed in place from one buffer. When the session's touch is
// due, it reads the session again with the touch script, which touches it and returns it
// in one atomic step: the session returned is the one that was touched (a save, a
// rotation or a destroy that came between is seen, not overwritten by stale fields). It
// returns the session, or the forward token when the key is a forward pointer, and
// whether it touched the session.
func (st *Store) load(ctx context.Context, id string) (*Session, string, Touch, error) {
	key := st.key(id)
	var rawb []byte
	var err error
	var tmpl *Session // a hit's session, parsed at an earlier hit
	cached := false
	if st.near != nil {
		rawb, tmpl, cached, err = st.nearRead(ctx, key)
	} else {
		rawb, err = st.hgetall(ctx, key)
	}
	if err != nil {
		return nil, "", TouchNone, st.redisErr(opLoad, key, err)
	}
	var s *Session
	var fwd string
	if tmpl != nil {
		s = tmpl.sharedCopy()
	} else if s, fwd, _, err = st.parseLoaded(ctx, id, key, rawb, false); cached && err == nil && fwd == "" {
		st.nearKeep(key, rawb, s)
	}
	nowMs := time.Now().UnixMilli()
	if cached && err == nil && fwd == "" && nowMs >= s.deadline {
		// Past its absolute deadline: Redis ends the key then (its TTL never reaches
		// past it), but sends the invalidation only when it gets to deleting it. Read it
		// as without the cache.
		if rawb, err = st.hgetall(ctx, key); err != nil {
			return nil, "", TouchNone, st.redisErr(opLoad, key, err)
		}
		s, fwd, _, err = st.parseLoaded(ctx, id, key, rawb, false)
	}
	if err != nil || fwd != "" {
		return nil, fwd, TouchNone, err
	}
	if nowMs-s.touched < st.touchMsFor(s.idle) {
		st.stats.touchesSkipped.Add(1)
		return s, "", TouchSkipped, nil
	}
	if loadTouchHook != nil {
		loadTouchHook(key)
	}
	if rawb, err = st.touchRead(ctx, key); err != nil {
		return nil, "", TouchNone, st.redisErr(opLoad, key, err)
	}
	t, fwd, didTouch, err := st.parseLoaded(ctx, id, key, rawb, true)
	if err != nil || fwd != "" {
		return nil, fwd, TouchNone, err
	}
	touch := TouchSent
	if didTouch {
		st.stats.touches.Add(1)
	} else {
		st.stats.touchesSkipped.Add(1) // not due by Redis's clock
		touch = TouchSkipped
	}
	return t, "", touch, nil
}

// touchMark names the pair the touch script appends to the hash it returns when it
// touched the session.
const touchMark = "!"

// loadTouchHook, when set (by tests), runs between a load's HGETALL and its touch.
var loadTouchHook func(key string)

// parseLoaded turns a raw reply of HGETALL (or, with touched, of the touch script: the
// same shape, and a last pair named touchMark when it touched the session: didTouch)
// into the session, or the forward token when the key is a forward pointer.
func (st *Store) parseLoaded(ctx context.Context, id, key string, rawb []byte, touched bool) (s *Session, fwd string, didTouch bool, err error) {
	// The reply buffer is ours alone and never written again: the session's attributes
	// point into it.
	raw := unsafe.String(unsafe.SliceData(rawb), len(rawb))
	var fields []string
	if len(raw) > 0 && (raw[0] == '-' || raw[0] == '!') {
		// An error reply (WRONGTYPE, MOVED, CLUSTERDOWN, NOSCRIPT, …): the raw command
		// does not interpret it, so run the typed command, which goes through the
		// client's redirection and error handling (and loads a missing script).
		if fields, err = st.typedFields(ctx, key, touched, raw); err != nil {
			return nil, "", false, st.redisErr(opLoad, key, err)
		}
	} else if fields, err = parseRESPFields(raw); err != nil {
		return nil, "", false, &CorruptError{Key: key, Reason: "malformed HGETALL reply: " + err.Error()}
	}
	if len(fields) == 0 {
		return nil, "", false, ErrNotFound
	}
	if n := len(fields); touched && n >= 2 && fields[n-2] == touchMark && fields[n-1] == "touched" { // see touch.lua
		didTouch, fields = true, fields[:n-2]
	}
	s = &Session{st: st, id: id}
	if fwd, err := s.fill(key, fields); err != nil || fwd != "" {
		return nil, fwd, false, err
	}
	return s, "", didTouch, nil
}

// fill reads the metadata out of the hash's fields and keeps the attribute pairs,
// reusing the fields slice. It returns the forward token if the key is a forward pointer.
// A key of a newer format (FORMAT.md) is a *FormatError whatever else it holds; reserved
// fields (format.Reserved) it does not know are ignored.
func (s *Session) fill(key string, fields []string) (string, error) {
	var haveVersion, haveCreated, haveDeadline, haveTouched, haveFormat, revoked bool
	var codecName, fwd, formatVer string
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
		case fIdle:
			s.idle, err = strconv.ParseInt(val, 10, 64)
			if err == nil && s.idle <= 0 {
				return "", newerFormat(key, haveFormat, formatVer, fields[i:], &CorruptError{Key: key, Reason: "malformed session metadata: idle timeout " + quoteData(val)})
			}
		case fPersist:
			switch val {
			case "1":
				s.persist = 1
			case "0":
				s.persist = -1
			default:
				return "", newerFormat(key, haveFormat, formatVer, fields[i:], &CorruptError{Key: key, Reason: "malformed session metadata: persistence " + quoteData(val)})
			}
		case fSaveID, fPending:
		case fForward:
			fwd = val
		case fRevoked:
			revoked = true
		case fFormat:
			formatVer, haveFormat = val, true
		default:
			if !format.Reserved(name) {
				return "", newerFormat(key, haveFormat, formatVer, fields[i:], &CorruptError{Key: key, Reason: "unknown field " + quoteData(name)})
			}
		}
		if err != nil {
			return "", newerFormat(key, haveFormat, formatVer, fields[i:], &CorruptError{Key: key, Reason: "malformed session metadata", Err: numberError(name, val, err)})
		}
	}
	if haveFormat {
		if err := checkFormat(key, formatVer); err != nil {
			return "", err
		}
	}
	switch {
	case revoked:
		return "", ErrNotFound
	case fwd != "":
		return fwd, nil
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

// newerFormat returns the error of a key whose fields made fill stop with err at rest
// (the pairs not read yet; those before were rewritten into the attributes, and seen
// says whether a format version v was among them): a *FormatError (or a *CorruptError
// for a malformed version) when the key holds a format version this package does not
// know, since a newer format may give fields new names and values, and err otherwise.
func newerFormat(key string, seen bool, v string, rest []string, err error) error {
	for i := 0; !seen && i+1 < len(rest); i += 2 {
		if rest[i] == fFormat {
			seen, v = true, rest[i+1]
		}
	}
	if seen {
		if ferr := checkFormat(key, v); ferr != nil {
			return ferr
		}
	}
	return err
}

// typedFields reads the hash at key (with touched, through the touch script) with a typed
// command, after the raw one got the error reply raw.
func (st *Store) typedFields(ctx context.Context, key string, touched bool, raw string) ([]string, error) {
	if touched {
		cmd, err := runScript(st, ctx, alone, touchScript, key, redis.NewStringSliceCmd, st.idleArg, st.touchArg)
		if err != nil {
			return nil, err
		}
		return cmd.Val(), nil
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
	cmd, err := runScript(st, ctx, batched, touchScript, key, redis.NewRawCmd, st.idleArg, st.touchArg)
	if err != nil {
		return nil, err // auto-pipelined and cut short, the command may still be in flight
	}
	return cmd.Val(), nil
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
	// (see batch.Batchers): doWith retries each caller, with a new buffer.
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
