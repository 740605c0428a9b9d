package legacy

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultSCSPrefix is the key prefix of scs's goredisstore (goredisstore.New), and the
// default prefix of hasession's scs adapter.
const DefaultSCSPrefix = "scs:session:"

// ErrWrongType is the Err of a [CorruptError] for a legacy key that does not hold a
// string (goredisstore only writes strings).
var ErrWrongType = errors.New("legacy: key is not a string")

// ErrBraceInPrefix is returned by [NewSCS] for a new-layout prefix that contains '{' or
// '}': they would change the keys' hash slot.
var ErrBraceInPrefix = errors.New("legacy: prefix contains a brace")

// CorruptError is why a legacy session is [Corrupt]: its key is not a string (Err is
// [ErrWrongType]) or its value does not decode (Err is the decoder's error). The key is
// left as it is. Match it with errors.As.
type CorruptError struct {
	Key string
	Err error
}

// Error names the key and the reason.
func (e *CorruptError) Error() string {
	return "legacy: corrupt session at key " + strconv.Quote(e.Key) + ": " + e.Err.Error()
}

// Unwrap returns Err: [ErrWrongType] or the decoder's error.
func (e *CorruptError) Unwrap() error { return e.Err }

// RetryFunc runs op under a retry policy and returns the value of the attempt that
// succeeded; op is safe to repeat. A hasession store's policy is one:
//
//	func(ctx context.Context, name string, op func(context.Context) (any, error)) (any, error) {
//		return store.RetryValue(ctx, st, name, op)
//	}
//
// A nil RetryFunc runs op once.
type RetryFunc func(ctx context.Context, name string, op func(ctx context.Context) (any, error)) (any, error)

// retryValue runs op through r (once when r is nil).
func retryValue[T any](ctx context.Context, r RetryFunc, name string, op func(ctx context.Context) (T, error)) (T, error) {
	if r == nil {
		return op(ctx)
	}
	v, err := r(ctx, name, func(ctx context.Context) (any, error) { return op(ctx) })
	if err != nil {
		var zero T
		return zero, err
	}
	t, _ := v.(T)
	return t, nil
}

// SCSConfig configures an [SCS]. Start from [DefaultSCSConfig]: the zero value of a
// prefix is taken as it is (no prefix).
type SCSConfig struct {
	// LegacyPrefix is goredisstore's prefix: its keys are <LegacyPrefix><token>.
	// DefaultSCSConfig sets DefaultSCSPrefix.
	LegacyPrefix string
	// Prefix is the scs adapter's prefix: its keys are <Prefix>{<token>}, and a deleted
	// session's tombstone <Prefix>{<token>}:deleted. It may not contain a brace.
	// DefaultSCSConfig sets DefaultSCSPrefix.
	Prefix string
	// Decode checks a legacy value and returns the session's deadline; a value it
	// rejects is Corrupt. The adapter passes its SessionManager's scs.Codec. nil means
	// GobDeadline (scs's default codec, values not needed).
	Decode func([]byte) (deadline time.Time, err error)
}

// DefaultSCSConfig returns goredisstore's and the scs adapter's default prefixes, with
// GobDeadline as the decoder.
func DefaultSCSConfig() SCSConfig {
	return SCSConfig{LegacyPrefix: DefaultSCSPrefix, Prefix: DefaultSCSPrefix, Decode: GobDeadline}
}

// SCSStats counts what an [SCS] did, by read-through (Find) and by Move without dryRun.
type SCSStats struct {
	// Imported is the number of sessions written in hasession's layout. A move that
	// succeeded on Redis but whose reply was lost and retried counts as skipped.
	Imported uint64
	// Corrupt is the number of times a corrupt legacy session was met (each request
	// that meets one counts).
	Corrupt uint64
}

// SCS is the [Layout] of scs's goredisstore: a session is the string key
// <LegacyPrefix><token> (no hash tag), holding the bytes scs's codec produced, with a
// TTL. It moves a session to the scs adapter's key, <Prefix>{<token>}, with the same
// bytes and the TTL the legacy key had left: the token does not change, so the browser's
// cookie stays valid. It is safe for concurrent use.
//
// Moving one session is two scripts, each in one key's slot: one in the new key's slot
// writes the session unless the new key or its tombstone exists (so of concurrent movers
// exactly one writes, and a session deleted in hasession since is not brought back), then
// one in the legacy key's slot deletes the legacy key if it still holds the bytes read. A
// legacy key is never deleted unless hasession has the session, or deleted it since.
type SCS struct {
	rdb          redis.UniversalClient
	retry        RetryFunc
	legacyPrefix string
	prefix       string
	decode       func([]byte) (time.Time, error)

	imported, corrupt atomic.Uint64
}

var _ Layout = (*SCS)(nil)

var (
	//go:embed lua/scs_move.lua
	scsMoveLua string
	//go:embed lua/compare_delete.lua
	compareDeleteLua string

	scsMoveScript       = redis.NewScript(scsMoveLua)
	compareDeleteScript = redis.NewScript(compareDeleteLua)
)

// Replies of scs_move.lua.
const (
	moveWritten = 1
	moveExists  = 2
	moveDeleted = 3
)

// NewSCS returns the goredisstore layout on rdb (any go-redis client: on a Cluster the
// legacy keys, which have no hash tag, are spread over the slots, and the client routes
// each command), running every Redis operation through retry. Errors:
// [ErrBraceInPrefix]. NewSCS panics on a nil client (programmer error).
func NewSCS(rdb redis.UniversalClient, retry RetryFunc, cfg SCSConfig) (*SCS, error) {
	if rdb == nil {
		panic("legacy: NewSCS with a nil client")
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: %q", ErrBraceInPrefix, cfg.Prefix)
	}
	if cfg.Decode == nil {
		cfg.Decode = GobDeadline
	}
	return &SCS{rdb: rdb, retry: retry, legacyPrefix: cfg.LegacyPrefix, prefix: cfg.Prefix, decode: cfg.Decode}, nil
}

// Name returns "scs".
func (s *SCS) Name() string { return "scs" }

// Match returns the SCAN MATCH pattern of exactly the legacy keys: the glob-escaped
// legacy prefix followed by the 43 digits of an scs token. It matches none of the
// adapter's keys (<prefix>{<token>}) or tombstones, even with the same prefix.
func (s *SCS) Match() string { return GlobEscape(s.legacyPrefix) + scsTokenGlob }

// Token returns the token of a legacy key: the key is the legacy prefix followed by a
// valid scs token ([ValidSCSToken]). Any other key — the adapter's keys and tombstones
// among them — is not a legacy key.
func (s *SCS) Token(key string) (string, bool) {
	t, ok := strings.CutPrefix(key, s.legacyPrefix)
	if !ok || !ValidSCSToken(t) {
		return "", false
	}
	return t, true
}

// Stats returns what the SCS has done so far.
func (s *SCS) Stats() SCSStats {
	return SCSStats{Imported: s.imported.Load(), Corrupt: s.corrupt.Load()}
}

// LegacyKey returns the legacy key of a token: <LegacyPrefix><token>.
func (s *SCS) LegacyKey(token string) string { return s.legacyPrefix + token }

func (s *SCS) key(token string) string     { return s.prefix + "{" + token + "}" }
func (s *SCS) tombKey(token string) string { return s.key(token) + ":deleted" }

// legacyRead is what a legacy key held.
type legacyRead struct {
	present   bool
	wrongType bool
	val       []byte
	pttl      time.Duration // -1: no TTL
}

// read reads the legacy keys, pipelined (a Cluster pipeline is split by node): TYPE, GET
// and PTTL of each.
func (s *SCS) read(ctx context.Context, keys []string) ([]legacyRead, error) {
	return retryValue(ctx, s.retry, "scs legacy read", func(ctx context.Context) ([]legacyRead, error) {
		types := make([]*redis.StatusCmd, len(keys))
		gets := make([]*redis.StringCmd, len(keys))
		ttls := make([]*redis.DurationCmd, len(keys))
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				types[i] = p.Type(ctx, k)
				gets[i] = p.Get(ctx, k)
				ttls[i] = p.PTTL(ctx, k)
			}
			return nil
		})
		out := make([]legacyRead, len(keys))
		for i := range keys {
			typ, err := types[i].Result()
			if err != nil {
				return nil, err
			}
			switch typ {
			case "none":
				continue
			case "string":
			default:
				out[i].wrongType = true
				continue
			}
			b, err := gets[i].Bytes()
			switch {
			case errors.Is(err, redis.Nil):
				continue // expired between TYPE and GET
			case err != nil:
				return nil, err
			}
			ttl, err := ttls[i].Result()
			if err != nil {
				return nil, err
			}
			if ttl == -2 { // expired between GET and PTTL
				continue
			}
			if b == nil {
				b = []byte{}
			}
			out[i] = legacyRead{present: true, val: b, pttl: ttl}
		}
		return out, nil
	})
}

// candidate is a legacy session that can be moved.
type candidate struct {
	idx   int // in the caller's keys
	key   string
	token string
	val   []byte
	ttlMs int64
}

// check classifies what a legacy key held: a candidate to move, or an outcome.
func (s *SCS) check(key, token string, r legacyRead, now time.Time) (candidate, Outcome, error) {
	switch {
	case r.wrongType:
		return candidate{}, Corrupt, &CorruptError{Key: key, Err: ErrWrongType}
	case !r.present:
		return candidate{}, Skipped, nil
	}
	deadline, err := s.decode(r.val)
	if err != nil {
		return candidate{}, Corrupt, &CorruptError{Key: key, Err: err}
	}
	left := deadline.Sub(now)
	if r.pttl >= 0 {
		left = r.pttl
	}
	ms := int64((left + time.Millisecond - 1) / time.Millisecond)
	if ms <= 0 || !deadline.After(now) {
		return candidate{}, Skipped, nil // scs would not load it: expired
	}
	return candidate{key: key, token: token, val: r.val, ttlMs: ms}, 0, nil
}

// moveReply parses scs_move.lua's reply: its code, and the value the new key holds.
func moveReply(v any) (int64, []byte, error) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return 0, nil, fmt.Errorf("legacy: unexpected reply %v of the move script", v)
	}
	code, _ := a[0].(int64)
	switch code {
	case moveWritten, moveDeleted:
		return code, nil, nil
	case moveExists:
		if len(a) == 2 {
			if cur, ok := a[1].(string); ok {
				return code, []byte(cur), nil
			}
		}
	}
	return 0, nil, fmt.Errorf("legacy: unexpected reply %v of the move script", v)
}

// Move moves the sessions of the given keys (see [Layout]). A key that is not a legacy
// key (see [SCS.Token]) is Skipped and not touched. For the others, three pipelines:
// the legacy keys are read (TYPE, GET, PTTL); each session that decodes and has time
// left is written by a script in its new key's slot, unless the new key or its tombstone
// exists; then each legacy key whose session hasession now has (or deleted since) is
// deleted if it still holds the bytes read. Outcomes: Imported when this call wrote the
// session; Skipped when the key was gone, the session expired (its deadline passed), or
// hasession already had it or had deleted it; Corrupt, with a *[CorruptError], for a key
// that is not a string or a value Decode rejects. The scripts are sent with EVAL in the
// pipelines: a pipeline cannot fall back from EVALSHA on NOSCRIPT.
//
// With dryRun the new keys and tombstones are only looked at (EXISTS): Imported then
// means it would be. Errors: the context's error or a Redis error, once the retry policy
// gave up.
func (s *SCS) Move(ctx context.Context, keys []string, dryRun bool) ([]Result, error) {
	res := make([]Result, len(keys))
	var (
		idx    []int
		lkeys  []string
		tokens []string
	)
	for i, k := range keys {
		res[i] = Result{Key: k, Outcome: Skipped}
		if t, ok := s.Token(k); ok {
			idx = append(idx, i)
			lkeys = append(lkeys, k)
			tokens = append(tokens, t)
		}
	}
	if len(idx) == 0 {
		return res, nil
	}
	reads, err := s.read(ctx, lkeys)
	if err != nil {
		return nil, fmt.Errorf("legacy: read scs sessions: %w", err)
	}
	now := time.Now()
	var cands []candidate
	corrupt := 0
	for j, r := range reads {
		c, out, err := s.check(lkeys[j], tokens[j], r, now)
		if out != 0 {
			res[idx[j]].Outcome, res[idx[j]].Err = out, err
			if out == Corrupt {
				corrupt++
			}
			continue
		}
		c.idx = idx[j]
		cands = append(cands, c)
	}
	if dryRun {
		return res, s.dryRun(ctx, cands, res)
	}
	s.corrupt.Add(uint64(corrupt))
	if len(cands) == 0 {
		return res, nil
	}
	codes, err := retryValue(ctx, s.retry, "scs legacy move", func(ctx context.Context) ([]int64, error) {
		cmds := make([]*redis.Cmd, len(cands))
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range cands {
				cmds[i] = scsMoveScript.Eval(ctx, p, []string{s.key(c.token), s.tombKey(c.token)}, c.val, c.ttlMs)
			}
			return nil
		})
		codes := make([]int64, len(cmds))
		for i, cmd := range cmds {
			v, err := cmd.Result()
			if err != nil {
				return nil, err
			}
			if codes[i], _, err = moveReply(v); err != nil {
				return nil, err
			}
		}
		return codes, nil
	})
	if err != nil {
		return nil, fmt.Errorf("legacy: move scs sessions: %w", err)
	}
	for i, c := range cands {
		if codes[i] == moveWritten {
			res[c.idx].Outcome = Imported
			s.imported.Add(1)
		}
	}
	lks := make([]string, len(cands))
	vals := make([][]byte, len(cands))
	for i, c := range cands {
		lks[i], vals[i] = c.key, c.val
	}
	if err := s.deleteLegacy(ctx, lks, vals); err != nil {
		return nil, fmt.Errorf("legacy: delete moved scs sessions: %w", err)
	}
	return res, nil
}

// deleteLegacy deletes each legacy key that still holds the bytes read, pipelined.
func (s *SCS) deleteLegacy(ctx context.Context, keys []string, vals [][]byte) error {
	_, err := retryValue(ctx, s.retry, "scs legacy delete", func(ctx context.Context) (struct{}, error) {
		cmds := make([]*redis.Cmd, len(keys))
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = compareDeleteScript.Eval(ctx, p, []string{k}, vals[i])
			}
			return nil
		})
		for _, cmd := range cmds {
			if err := cmd.Err(); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// dryRun sets the outcome of each candidate: Imported unless its new key or tombstone
// exists.
func (s *SCS) dryRun(ctx context.Context, cands []candidate, res []Result) error {
	if len(cands) == 0 {
		return nil
	}
	there, err := retryValue(ctx, s.retry, "scs legacy dry run", func(ctx context.Context) ([]bool, error) {
		news := make([]*redis.IntCmd, len(cands))
		tombs := make([]*redis.IntCmd, len(cands))
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range cands {
				news[i] = p.Exists(ctx, s.key(c.token))
				tombs[i] = p.Exists(ctx, s.tombKey(c.token))
			}
			return nil
		})
		there := make([]bool, len(cands))
		for i := range cands {
			n, err := news[i].Result()
			if err != nil {
				return nil, err
			}
			d, err := tombs[i].Result()
			if err != nil {
				return nil, err
			}
			there[i] = n+d > 0
		}
		return there, nil
	})
	if err != nil {
		return fmt.Errorf("legacy: read scs sessions: %w", err)
	}
	for i, c := range cands {
		if there[i] {
			res[c.idx].Outcome = Skipped
		} else {
			res[c.idx].Outcome = Imported
		}
	}
	return nil
}

// Find is read-through for one session, for a caller that has just looked for the token's
// key in hasession's layout and not found it. It moves the legacy session, as Move does,
// and returns the session's bytes as hasession now has them: the legacy bytes when this
// call wrote them, or what the new key holds when another mover (a concurrent request)
// was first. Of concurrent calls for one token exactly one writes; the others return what
// it wrote. When the legacy key is missing the new key is read once more: a concurrent
// mover may have written it and deleted the legacy key since the caller looked.
//
// A malformed token, a missing or expired session, and a session deleted in hasession
// since (its tombstone is there) are (nil, false, nil). A corrupt legacy session is
// (nil, false, *[CorruptError]): the key is left as it is and counted in [SCS.Stats].
// Other errors: the context's error or a Redis error, once the retry policy gave up.
func (s *SCS) Find(ctx context.Context, token string) ([]byte, bool, error) {
	if !ValidSCSToken(token) {
		return nil, false, nil
	}
	lkey := s.LegacyKey(token)
	reads, err := s.read(ctx, []string{lkey})
	if err != nil {
		return nil, false, fmt.Errorf("legacy: read scs session: %w", err)
	}
	if !reads[0].present && !reads[0].wrongType {
		return s.findNew(ctx, token)
	}
	c, out, err := s.check(lkey, token, reads[0], time.Now())
	switch out {
	case Corrupt:
		s.corrupt.Add(1)
		return nil, false, err
	case Skipped:
		return nil, false, nil
	}
	type moved struct {
		code int64
		cur  []byte
	}
	keys := []string{s.key(token), s.tombKey(token)}
	m, err := retryValue(ctx, s.retry, "scs legacy move", func(ctx context.Context) (moved, error) {
		v, err := scsMoveScript.Run(ctx, s.rdb, keys, c.val, c.ttlMs).Result()
		if err != nil {
			return moved{}, err
		}
		code, cur, err := moveReply(v)
		return moved{code, cur}, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("legacy: move scs session: %w", err)
	}
	if m.code == moveWritten {
		s.imported.Add(1)
	}
	if err := s.deleteLegacy(ctx, []string{lkey}, [][]byte{c.val}); err != nil {
		return nil, false, fmt.Errorf("legacy: delete moved scs session: %w", err)
	}
	switch m.code {
	case moveWritten:
		return c.val, true, nil
	case moveExists:
		return m.cur, true, nil
	}
	return nil, false, nil
}

// findNew reads the session's key in hasession's layout.
func (s *SCS) findNew(ctx context.Context, token string) ([]byte, bool, error) {
	key := s.key(token)
	b, err := retryValue(ctx, s.retry, "scs find", func(ctx context.Context) ([]byte, error) {
		b, err := s.rdb.Get(ctx, key).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			return nil, nil
		case err != nil:
			return nil, err
		case b == nil:
			b = []byte{}
		}
		return b, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("legacy: find scs session: %w", err)
	}
	return b, b != nil, nil
}

// GlobEscape escapes the characters Redis's glob matching (SCAN MATCH) treats specially.
func GlobEscape(p string) string {
	var b strings.Builder
	for i := range len(p) {
		switch p[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
