package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
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

// indexRace decides what a save that may have lost a race with a revoke does next: retry
// (with the session listed again), give up with ErrNotFound after maxIndexRaces, or
// return err as it is (nil when the save applied).
func indexRace(op opKind, err error, attempt int) (retry bool, _ error) {
	switch {
	case !errors.Is(err, errIndexRace):
		return false, err
	case attempt < maxIndexRaces:
		return true, nil
	}
	return false, fmt.Errorf("hasession: %s: %w", op.String(), ErrNotFound)
}

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

// loginsSuffix names the hash, beside a user's index and in its slot, that holds each
// entry's login time and pending window (see index_add.lua).
const loginsSuffix = ":l"

// indexAdd lists the session tag in the user's index (see index_add.lua) and returns
// Redis time: deadline is the session's absolute deadline, or "" for a new session,
// whose lifetime (ms) is lifeMs; from is the tag of the session this one is a rotation
// of, or this one's when it is listed again (it keeps that one's login time), or "" for
// a login. A login under WithMaxSessions and RefuseLogin is refused with a
// *SessionLimitError when the user has the maximum of sessions already (see
// indexLogin); gone are the tags found to be no session of the user's.
func (st *Store) indexAdd(ctx context.Context, user, tag string, deadline any, lifeMs int64, from string, gone []string) (int64, error) {
	idx := st.indexKey(user)
	span := lifeMs + pendingMs
	limit := 0
	if from == "" && st.o.maxSessions > 0 && st.o.limitPolicy == RefuseLogin {
		limit = st.o.maxSessions
	}
	args := make([]any, 0, 7+len(gone))
	args = append(args, tag, deadline, span, clockMarginMs, pendingMs, from, limit)
	for _, g := range gone {
		args = append(args, g)
	}
	now, err := do(st, ctx, opIndex, func(ctx context.Context) (int64, error) {
		v, err := st.runWrite(ctx, indexAddScript, idx, args...)
		if errors.Is(err, ErrNotAcknowledged) {
			if n, _ := v.(int64); n < 0 {
				err = nil // refused: nothing written to confirm
			} else {
				err = st.ackShortfall("login index entry", err)
			}
		}
		if err != nil {
			return 0, err
		}
		n, ok := v.(int64)
		if !ok {
			return 0, &CorruptError{Key: idx, Reason: "unexpected index reply " + quoteValue(v)}
		}
		return n, nil
	})
	if err != nil {
		return 0, st.redisErr(opIndex, idx, err)
	}
	if now < 0 {
		return 0, &SessionLimitError{Max: st.o.maxSessions}
	}
	return now, nil
}

// indexRemove drops tags from the user's index, best effort: an entry left behind
// points at a key that is gone or belongs to no one, and is pruned when found.
func (st *Store) indexRemove(ctx context.Context, user string, tags ...string) {
	if len(tags) == 0 {
		return
	}
	if _, err := st.indexUpdate(ctx, user, "r", tags); err != nil {
		st.o.logger.Warn("hasession: could not drop sessions from the user's index; they are pruned when found", "err", err)
	}
}

// indexUpdate runs index_remove.lua in mode ("r" drop the tags, with their logins; "w"
// close their logins' pending windows) and returns, for each tag, 1 where it applied
// ("r": this call removed the entry), else 0.
func (st *Store) indexUpdate(ctx context.Context, user, mode string, tags []string) ([]int64, error) {
	idx := st.indexKey(user)
	args := make([]any, 1, 1+len(tags))
	args[0] = mode
	for _, t := range tags {
		args = append(args, t)
	}
	return do(st, ctx, opUnindex, func(ctx context.Context) ([]int64, error) {
		cmd, err := runScript(st, ctx, alone, indexRemoveScript, idx, redis.NewIntSliceCmd, args...)
		return cmd.Val(), err
	})
}

// indexRead returns the tags in the user's index whose deadline has not passed.
func (st *Store) indexRead(ctx context.Context, user string) ([]string, error) {
	return st.readIndex(ctx, user, "")
}

// readIndex runs index_read.lua in mode ("" or "l").
func (st *Store) readIndex(ctx context.Context, user, mode string) ([]string, error) {
	idx := st.indexKey(user)
	tags, err := do(st, ctx, opReadIndex, func(ctx context.Context) ([]string, error) {
		cmd, err := runScript(st, ctx, alone, indexReadScript, idx, redis.NewStringSliceCmd, clockMarginMs, mode)
		return cmd.Val(), err
	})
	if err != nil {
		return nil, st.redisErr(opReadIndex, idx, err)
	}
	return tags, nil
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
func (st *Store) members(ctx context.Context, op opKind, tags []string, args []any, ack bool) []memberReply {
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
		revoked := 0 // live sessions this attempt ended (for an Observer)
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
			if out[i].status == "revoked" {
				revoked++
			}
		}
		if revoked > 0 {
			st.notify(ctx, Notice{Kind: NoticeRevoked, Op: OpRevoke, Count: revoked})
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
	case "format": // a key of a newer format, left as it is
		if v, ok := a[len(a)-1].(string); ok && len(a) == 2 {
			if err := checkFormat(key, v); err != nil {
				return memberReply{err: err}
			}
		}
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
	out, _, _ := st.pipeScript(ctx, st.rdb, memberScript, keys, args, false)
	return out
}
