package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/sid"
)

const (
	// pendingMs bounds how long a login may take between listing the session in its
	// user's index and writing it: a save that arrives later (Redis time) applies nothing
	// and is listed again.
	pendingMs = 30_000
	// tombstoneMs is how long a revoked (or vanished) session's key stays blocked. It
	// exceeds pendingMs by the clock difference tolerated between two Redis nodes.
	tombstoneMs = 90_000
	// clockMarginMs is the clock difference tolerated between two Redis nodes: index
	// entries are dropped that long after their deadline, by the index node's clock.
	clockMarginMs = 60_000
	// maxIndexRaces bounds how often a login that lost a race with a revoke is retried.
	maxIndexRaces = 3
)

// errIndexRace: a save that gives a session a user lost a race with a revoke, or came
// later than the pending window after its index entry. Save and Rotate list it again.
var errIndexRace = errors.New("hasession: session index race")

// indexRace decides what a save that may have lost a race with a revoke does next: retry
// (with the session listed again), give up with ErrNotFound after maxIndexRaces, or
// return err as it is (nil when the save applied).
func indexRace(op string, err error, attempt int) (retry bool, _ error) {
	switch {
	case !errors.Is(err, errIndexRace):
		return false, err
	case attempt < maxIndexRaces:
		return true, nil
	}
	return false, fmt.Errorf("hasession: %s: %w", op, ErrNotFound)
}

// ErrNoUser is returned by the user index methods for an empty user.
var ErrNoUser = errors.New("hasession: no user given")

// SessionInfo describes one live session of a user, as Sessions lists it.
type SessionInfo struct {
	// Ref identifies the session to Revoke and RevokeAll. It is derived from the session's
	// key by a one-way hash: it can be shown to the user, it is not a session ID and
	// cannot be used as one.
	Ref string
	// Created is when the session was first saved; LastTouch when its TTL was last
	// extended; Expires when it ends unless used again; Deadline when it ends however
	// active (Redis time).
	Created, LastTouch, Expires, Deadline time.Time

	attrs map[string]string
	st    *Store
}

// Has reports whether the session had the attribute (among those Sessions asked for).
func (i SessionInfo) Has(name string) bool {
	_, ok := i.attrs[name]
	return ok
}

// Get decodes an attribute Sessions was asked for into dst. It returns ErrNoAttribute if
// the session has no such attribute or it was not asked for.
func (i SessionInfo) Get(name string, dst any) error {
	v, ok := i.attrs[name]
	if !ok {
		return ErrNoAttribute
	}
	if err := i.st.o.codec.Unmarshal([]byte(v), dst); err != nil {
		return fmt.Errorf("hasession: attribute %q: %w", name, err)
	}
	return nil
}

// RevokeError lists the sessions a revoke could not reach; it wraps the last error.
// Revoking again is safe: what was revoked stays revoked.
type RevokeError struct {
	User   string
	Failed []string // the sessions' Refs
	Err    error
}

func (e *RevokeError) Error() string {
	return fmt.Sprintf("hasession: %d session(s) of the user could not be revoked: %v", len(e.Failed), e.Err)
}

// Unwrap returns the last error.
func (e *RevokeError) Unwrap() error { return e.Err }

// Ref returns the reference of the session with the given ID, as Sessions reports it: a
// handler compares it with the listed sessions to mark the current one. It returns
// ErrInvalidID for a malformed ID.
func (st *Store) Ref(id string) (string, error) {
	if !sid.Valid(id) {
		return "", ErrInvalidID
	}
	return refOf(st.tag(id)), nil
}

// refOf returns the public reference of a session tag.
func refOf(tag string) string {
	sum := sha256.Sum256([]byte("hasession ref\x00" + tag))
	return hex.EncodeToString(sum[:12])
}

// IndexKey returns the key of the user's session index (a sorted set of session tags,
// scored by absolute deadline), for operators and tests. It is in a slot of its own: no
// command ever spans it and a session key.
func (st *Store) IndexKey(user string) string { return st.indexKey(user) }

// indexKey returns the key of the user's index: <prefix>u:{<user tag>}, where the user
// tag is a hash of the user (an HMAC with WithHashedIDs), so any user name is a safe hash
// tag and no user name appears in a key.
func (st *Store) indexKey(user string) string {
	var tag string
	if st.o.tagger.Hashed() {
		tag = st.o.tagger.Tag("user\x00" + user)
	} else {
		sum := sha256.Sum256([]byte("hasession user\x00" + user))
		tag = hex.EncodeToString(sum[:16])
	}
	return st.o.prefix + "u:{" + tag + "}"
}

// indexAdd lists the session tag in the user's index (see index_add.lua) and returns
// Redis time: deadline is the session's absolute deadline, or "" for a new session.
func (st *Store) indexAdd(ctx context.Context, user, tag string, deadline any) (int64, error) {
	idx := st.indexKey(user)
	span := st.lifeMs + pendingMs
	now, err := do(st, ctx, "index session", func(ctx context.Context) (int64, error) {
		if st.o.ackReplicas > 0 {
			v, err := st.evalAcked(ctx, indexAddScript, idx, tag, deadline, span, clockMarginMs)
			if errors.Is(err, ErrNotAcknowledged) {
				err = st.ackShortfall("login index entry", err)
			}
			if err != nil {
				return 0, err
			}
			n, ok := v.(int64)
			if !ok {
				return 0, &CorruptError{Key: idx, Reason: "unexpected index reply " + quoteValue(v)}
			}
			return n, nil
		}
		return indexAddScript.Run(ctx, st.rdb, []string{idx}, tag, deadline, span, clockMarginMs).Int64()
	})
	if err != nil {
		return 0, st.redisErr("index session", idx, err)
	}
	return now, nil
}

// indexRemove drops a tag from the user's index, best effort: an entry left behind
// points at a key that is gone or belongs to no one, and is pruned when found.
func (st *Store) indexRemove(ctx context.Context, user string, tags ...string) {
	if len(tags) == 0 {
		return
	}
	idx := st.indexKey(user)
	members := make([]any, len(tags))
	for i, t := range tags {
		members[i] = t
	}
	_, err := do(st, ctx, "unindex session", func(ctx context.Context) (int64, error) {
		return st.rdb.ZRem(ctx, idx, members...).Result()
	})
	if err != nil {
		st.o.logger.Warn("hasession: could not drop sessions from the user's index; they are pruned when found", "err", err)
	}
}

// indexRead returns the tags in the user's index whose deadline has not passed.
func (st *Store) indexRead(ctx context.Context, user string) ([]string, error) {
	idx := st.indexKey(user)
	tags, err := do(st, ctx, "read session index", func(ctx context.Context) ([]string, error) {
		return indexReadScript.Run(ctx, st.rdb, []string{idx}, clockMarginMs).StringSlice()
	})
	if err != nil {
		return nil, st.redisErr("read session index", idx, err)
	}
	return tags, nil
}

// Sessions returns the user's live sessions, most recently used first, with the
// attributes named in attrs (read them with SessionInfo.Get). It reads the user's index
// (one round trip) and the listed sessions (one pipelined round trip, per node in a
// Cluster). Entries whose session is gone — expired, destroyed, revoked, rotated away —
// are dropped from the index as they are found.
func (st *Store) Sessions(ctx context.Context, user string, attrs ...string) ([]SessionInfo, error) {
	if user == "" {
		return nil, ErrNoUser
	}
	tags, err := st.indexRead(ctx, user)
	if err != nil || len(tags) == 0 {
		return nil, err
	}
	args := make([]any, 0, 3+len(attrs))
	args = append(args, user, "l", tombstoneMs)
	for _, a := range attrs {
		args = append(args, attrPrefix+a)
	}
	replies := st.members(ctx, "list sessions", tags, args, false)
	now := time.Now()
	var infos []SessionInfo
	var prune []string
	for i, r := range replies {
		if errors.Is(r.err, ErrCorrupt) {
			st.o.logger.Warn("hasession: unreadable session left out of the list", "err", r.err)
			continue
		}
		if r.err != nil {
			return nil, r.err
		}
		switch r.status {
		case "gone", "dead":
			prune = append(prune, tags[i])
		case "live":
			info, err := st.sessionInfo(tags[i], r.vals, attrs, now)
			if err != nil {
				st.o.logger.Warn("hasession: unreadable session left out of the list", "err", err)
				continue
			}
			infos = append(infos, info)
		}
	}
	st.indexRemove(ctx, user, prune...)
	slices.SortFunc(infos, func(a, b SessionInfo) int { return b.LastTouch.Compare(a.LastTouch) })
	return infos, nil
}

// sessionInfo builds a SessionInfo from a 'live' reply of member.lua.
func (st *Store) sessionInfo(tag string, vals []any, attrs []string, now time.Time) (SessionInfo, error) {
	info := SessionInfo{Ref: refOf(tag), st: st}
	key := st.keyOfTag(tag)
	if len(vals) != 4+len(attrs) {
		return info, &CorruptError{Key: key, Reason: "malformed session listing"}
	}
	listingFields := [...]string{fCreated, fTouched, fDeadline}
	var ms [len(listingFields)]int64
	for j := range ms {
		v, _ := vals[j].(string)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return info, &CorruptError{Key: key, Reason: "malformed session metadata", Err: numberError(listingFields[j], v, err)}
		}
		ms[j] = n
	}
	pttl, _ := vals[3].(int64)
	info.Created, info.LastTouch, info.Deadline = time.UnixMilli(ms[0]), time.UnixMilli(ms[1]), time.UnixMilli(ms[2])
	info.Expires = now.Add(time.Duration(pttl) * time.Millisecond)
	for j, a := range attrs {
		if v, ok := vals[4+j].(string); ok {
			if info.attrs == nil {
				info.attrs = make(map[string]string, len(attrs))
			}
			info.attrs[a] = v
		}
	}
	return info, nil
}

// Revoke ends one session of the user, given its ID or its Ref (from Sessions): a request
// that carries it finds no session (given the ID of a session rotated within the grace
// period, the session it leads to ends too). Revoking a session that is already gone,
// or a Ref that is not listed, is not an error; a session that belongs to another user
// is ErrNotFound and is left alone.
func (st *Store) Revoke(ctx context.Context, user, idOrRef string) error {
	if user == "" {
		return ErrNoUser
	}
	var tags []string
	if sid.Valid(idOrRef) {
		id := idOrRef
		for range maxHops {
			tag := st.tag(id)
			tags = append(tags, tag)
			// The chain is followed as far as Load follows it (maxHops keys in all): an
			// ID whose chain Load finds no session at ends none.
			other, fwd, err := st.revoke(ctx, user, []string{tag}, nil, maxHops-len(tags)+1)
			if err != nil {
				return err
			}
			if other && len(tags) == 1 {
				return ErrNotFound
			}
			next, ok := forwardTarget(id, fwd)
			if fwd == "" || !ok {
				return nil
			}
			id = next
		}
		return nil
	}
	all, err := st.indexRead(ctx, user)
	if err != nil {
		return err
	}
	for _, t := range all {
		if refOf(t) == idOrRef {
			tags = append(tags, t)
			break
		}
	}
	if len(tags) == 0 {
		return nil
	}
	other, _, err := st.revoke(ctx, user, tags, nil, maxHops)
	if err != nil {
		return err
	}
	if other {
		return ErrNotFound
	}
	return nil
}

// RevokeAll ends every session of the user except those named in except (IDs or Refs:
// the current session after a password change, say). When it returns nil, every session
// the user had when it was called is gone, and so is any rotation of them in flight; a
// login that runs concurrently may survive it, and is then listed in the index. When some
// sessions could not be reached (a node down beyond the retry policy) it returns a
// *RevokeError naming them; calling it again is safe.
func (st *Store) RevokeAll(ctx context.Context, user string, except ...string) error {
	if user == "" {
		return ErrNoUser
	}
	keep := make(map[string]bool, len(except))
	for _, e := range except {
		if sid.Valid(e) {
			keep[refOf(st.tag(e))] = true
		} else {
			keep[e] = true
		}
	}
	tags, err := st.indexRead(ctx, user)
	if err != nil {
		return err
	}
	targets := tags[:0]
	for _, t := range tags {
		if !keep[refOf(t)] {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	_, _, err = st.revoke(ctx, user, targets, keep, maxHops)
	return err
}

// revoke revokes the tags and, hop by hop, the tags rotations were writing them to (a
// live session, its tombstone and its forward pointer keep the rotation's target: a
// rotation that got past its mark before the revoke, or a revoke whose reply was lost,
// is followed); it drops what is gone from the user's index. A forward pointer's mark is
// followed within budget keys (counting the first); a revoked session's (a rotation in
// flight) always. other reports that the first tag held
// a live session of another user (left alone, and left in the index); fwd is the forward
// token when the first tag was a forward pointer.
func (st *Store) revoke(ctx context.Context, user string, tags []string, keep map[string]bool, budget int) (other bool, fwd string, err error) {
	args := []any{user, "r", tombstoneMs}
	var done, failed []string
	var last error
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		seen[t] = true
	}
	first := tags[0]
	for hop := 0; len(tags) > 0 && hop < maxHops; hop++ {
		replies := st.members(ctx, "revoke sessions", tags, args, true)
		var next []string
		for i, r := range replies {
			switch {
			case r.err != nil:
				failed, last = append(failed, refOf(tags[i])), r.err
			case r.status == "other":
				other = other || tags[i] == first
			default: // gone, dead, revoked
				done = append(done, tags[i])
				// revoked: {pending}; dead: {forward token, pending}
				var p string
				if n := len(r.vals); n > 0 {
					p, _ = r.vals[n-1].(string)
				}
				if r.status == "dead" && tags[i] == first && len(r.vals) == 2 {
					fwd, _ = r.vals[0].(string)
				}
				if r.status == "dead" && hop+1 >= budget {
					p = "" // as far as Load follows the chain
				}
				if p != "" && !seen[p] && !keep[refOf(p)] {
					seen[p] = true
					next = append(next, p)
				}
			}
		}
		tags = next
	}
	st.indexRemove(ctx, user, done...)
	if len(failed) > 0 {
		return other, fwd, &RevokeError{User: user, Failed: failed, Err: last}
	}
	return other, fwd, nil
}

// memberReply is member.lua's reply for one tag: its status and the values after it, or
// the error that stopped it.
type memberReply struct {
	status string
	vals   []any
	err    error
}

// members runs member.lua with args on each tag's session key — in one pipeline (one
// round trip per node in a Cluster) — and retries those that failed with a retryable
// error, under the retry policy. With ack (and WithWriteAck) each node's pipeline ends
// with WAIT.
func (st *Store) members(ctx context.Context, op string, tags []string, args []any, ack bool) []memberReply {
	var mu sync.Mutex // an attempt abandoned at its deadline may still finish (see call)
	out := make([]memberReply, len(tags))
	todo := make([]int, len(tags))
	for i := range todo {
		todo[i] = i
	}
	attempt := 0
	_, err := do(st, ctx, op, func(ctx context.Context) (struct{}, error) {
		mu.Lock()
		attempt++
		mine, cur := attempt, slices.Clone(todo)
		mu.Unlock()
		keys := make([]string, len(cur))
		for j, i := range cur {
			keys[j] = st.keyOfTag(tags[i])
		}
		res := st.pipeMembers(ctx, keys, args, ack)
		mu.Lock()
		defer mu.Unlock()
		if mine != attempt {
			return struct{}{}, context.DeadlineExceeded // superseded: its results are dropped
		}
		var retry []int
		var first error
		for j, i := range cur {
			r := res[j]
			if r.err != nil {
				out[i] = memberReply{err: st.redisErr(op, keys[j], r.err)}
				if Retryable(r.err) {
					retry = append(retry, i)
					if first == nil {
						first = r.err
					}
				}
				continue
			}
			out[i] = parseMember(keys[j], r.val)
		}
		todo = retry
		return struct{}{}, first
	})
	mu.Lock()
	defer mu.Unlock()
	attempt++ // nothing an abandoned attempt returns lands after this
	if err != nil {
		for _, i := range todo {
			out[i] = memberReply{err: err}
		}
	}
	return slices.Clone(out)
}

// parseMember reads one reply of member.lua.
func parseMember(key string, v any) memberReply {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return memberReply{err: &CorruptError{Key: key, Reason: "unexpected reply " + quoteValue(v)}}
	}
	status, _ := a[0].(string)
	switch status {
	case "gone", "dead", "other", "revoked", "live":
		return memberReply{status: status, vals: a[1:]}
	}
	return memberReply{err: &CorruptError{Key: key, Reason: "unexpected reply " + quoteValue(v)}}
}

type cmdResult struct {
	val any
	err error
}

// pipeMembers sends member.lua for every key in one pipeline. With ack (and
// WithWriteAck), each node's pipeline ends with WAIT and its keys fail with an *AckError
// when too few replicas confirmed.
func (st *Store) pipeMembers(ctx context.Context, keys []string, args []any, ack bool) []cmdResult {
	if ack && st.o.ackReplicas > 0 {
		return st.pipeMembersAcked(ctx, keys, args)
	}
	out, _ := st.pipeScript(ctx, st.rdb, memberScript, keys, args, false)
	return out
}

// pipeScript runs script on each key in one pipeline of c. EVALSHA in a pipeline has no
// EVAL fallback: the keys whose node answered NOSCRIPT are sent again with EVAL. With
// wait, every pipeline ends with WAIT — on the connection that sent the writes, which is
// the one WAIT counts — and acked is the lowest count WAIT returned (-1 on an error).
func (st *Store) pipeScript(ctx context.Context, c redis.Cmdable, script *redis.Script, keys []string, args []any, wait bool) (out []cmdResult, acked int) {
	acked = st.o.ackReplicas
	run := func(idx []int, eval bool) {
		cmds := make([]*redis.Cmd, len(idx))
		var w *redis.Cmd
		_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range idx {
				if eval {
					cmds[j] = script.Eval(ctx, p, []string{keys[i]}, args...)
				} else {
					cmds[j] = script.EvalSha(ctx, p, []string{keys[i]}, args...)
				}
			}
			if wait {
				w = p.Do(ctx, "wait", st.o.ackReplicas, st.o.ackTimeout.Milliseconds())
			}
			return nil
		})
		for j, i := range idx {
			out[i] = cmdResult{cmds[j].Val(), cmds[j].Err()}
		}
		if w != nil {
			if n, err := w.Int(); err != nil {
				acked = -1
			} else {
				acked = min(acked, n)
			}
		}
	}
	out = make([]cmdResult, len(keys))
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	run(all, false)
	var again []int
	for i, r := range out {
		if redis.HasErrorPrefix(r.err, "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		run(again, true)
	}
	return out, acked
}

// pipeMembersAcked groups the keys by master and runs, on each master at once, one
// pipeline of member.lua calls ending with WAIT.
func (st *Store) pipeMembersAcked(ctx context.Context, keys []string, args []any) []cmdResult {
	out := make([]cmdResult, len(keys))
	groups := map[*redis.Client][]int{}
	for i, k := range keys {
		node, err := st.masterFor(ctx, k)
		if err != nil {
			out[i] = cmdResult{err: err}
			continue
		}
		groups[node] = append(groups[node], i)
	}
	var wg sync.WaitGroup
	for node, idx := range groups {
		wg.Go(func() {
			gk := make([]string, len(idx))
			for j, i := range idx {
				gk[j] = keys[i]
			}
			res, acked := st.pipeScript(ctx, node, memberScript, gk, args, true)
			var err error
			if acked < st.o.ackReplicas {
				st.stats.unacked.Add(1)
				err = &AckError{Acked: max(acked, 0), Want: st.o.ackReplicas}
			}
			for j, i := range idx {
				out[i] = res[j]
				if out[i].err == nil && err != nil {
					out[i] = cmdResult{err: err}
				}
			}
		})
	}
	wg.Wait()
	return out
}

// evalAcked runs script on key's master followed by WAIT in one pipeline, so WAIT counts
// the replicas that have this connection's writes, and returns the script's reply; an
// *AckError when too few replicas confirmed. EVALSHA in a pipeline has no EVAL fallback:
// on NOSCRIPT the script is loaded and the pipeline sent again.
func (st *Store) evalAcked(ctx context.Context, script *redis.Script, key string, args ...any) (any, error) {
	node, err := st.masterFor(ctx, key)
	if err != nil {
		return nil, err
	}
	for range 2 {
		var eval, wait *redis.Cmd
		_, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			eval = script.EvalSha(ctx, p, []string{key}, args...)
			wait = p.Do(ctx, "wait", st.o.ackReplicas, st.o.ackTimeout.Milliseconds())
			return nil
		})
		if eval != nil && redis.HasErrorPrefix(eval.Err(), "NOSCRIPT") {
			if err := script.Load(ctx, node).Err(); err != nil {
				return nil, err
			}
			continue
		}
		if eval == nil {
			return nil, err
		}
		if err := eval.Err(); err != nil {
			return nil, err
		}
		acked, err := wait.Int()
		if err != nil {
			return eval.Val(), err
		}
		if acked < st.o.ackReplicas {
			return eval.Val(), &AckError{Acked: acked, Want: st.o.ackReplicas}
		}
		return eval.Val(), nil
	}
	return nil, err
}
