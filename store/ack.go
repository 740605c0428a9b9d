package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// WithWriteAck makes a save succeed only when WAIT confirms that at least replicas
// replicas have it within timeout; otherwise Save returns an *AckError (the save applied
// on the master, which may lose it if it dies before replicating), or accepts the save
// under WithWriteAckPolicy(AckBestEffort). Logouts (Destroy) and revokes wait the same
// way, so that a failover does not bring an ended session back. WAIT runs on the same
// connection as the save, on the key's master. WAIT is best effort: it narrows the window
// in which an acknowledged write can be lost in a failover, but Redis does not promise
// that a replica which acknowledged is the one promoted, nor that it is durable on disk.
// With replicas below the number of replicas, a graceful Sentinel failover can still lose
// acknowledged saves: Sentinel lets the old master take writes while it promotes a
// replica, and a replica that acknowledged them is resynchronised from the new master.
// Asking for every replica closes that window (such a save fails with ErrNotAcknowledged
// instead); the failover tests check it.
//
// The save and WAIT are sent in one pipeline, which go-redis reads with the client's
// ReadTimeout: timeout must be shorter than it (New checks). Default off.
func WithWriteAck(replicas int, timeout time.Duration) Option {
	return func(o *options) error {
		if replicas < 1 || timeout <= 0 {
			return fmt.Errorf("hasession: write ack needs replicas ≥ 1 and a positive timeout, got %d, %s", replicas, timeout)
		}
		o.ackReplicas, o.ackTimeout = replicas, timeout
		return nil
	}
}

// AckPolicy says what a save does when WAIT cannot confirm it: no replica connected
// (a master just promoted has none until one re-attaches), or WAIT timed out.
type AckPolicy int

// Write acknowledgement policies.
const (
	// AckRequired: the save fails with an *AckError (matches ErrNotAcknowledged). The
	// save applied on the master all the same; the error says it may not survive the
	// master's death. For callers that act on it (retry later, refuse a privilege change).
	AckRequired AckPolicy = iota
	// AckBestEffort: the save succeeds. The shortfall is counted (Stats.Unacknowledged
	// and Stats.AcceptedUnacknowledged) and logged at Warn level. Such a save is as
	// durable as one without WAIT; the others keep WAIT's guarantee.
	AckBestEffort
)

// String returns "required" or "best-effort".
func (p AckPolicy) String() string {
	switch p {
	case AckRequired:
		return "required"
	case AckBestEffort:
		return "best-effort"
	}
	return fmt.Sprintf("AckPolicy(%d)", int(p))
}

// WithWriteAckPolicy sets what a save that WAIT cannot confirm does (see [AckPolicy]):
// fail with ErrNotAcknowledged (AckRequired, the default) or succeed and be counted
// (AckBestEffort). It applies to saves, rotations, logouts (Destroy: every key of the
// chain is destroyed, then the *AckError is returned) and the index entry a login writes
// first; RevokeAll always reports a shortfall (*RevokeError). Without WithWriteAck it
// has no effect.
//
// A session store usually wants AckBestEffort: after a failover the promoted master has
// no replica until one re-attaches (seconds), and AckRequired turns every save of that
// shard into an error meanwhile, although the save applied.
func WithWriteAckPolicy(p AckPolicy) Option {
	return func(o *options) error {
		if p != AckRequired && p != AckBestEffort {
			return fmt.Errorf("hasession: unknown write ack policy %d", int(p))
		}
		o.ackPolicy = p
		return nil
	}
}

// AckError says how many replicas WAIT confirmed for a write (a save, a login's index
// entry, a revoke).
type AckError struct {
	Acked, Want int
}

func (e *AckError) Error() string {
	return fmt.Sprintf("hasession: write confirmed by %d of %d replicas", e.Acked, e.Want)
}

// Is makes errors.Is(err, ErrNotAcknowledged) true.
func (e *AckError) Is(target error) bool { return target == ErrNotAcknowledged }

// ErrNotAcknowledged matches an *AckError.
var ErrNotAcknowledged = errors.New("hasession: save not acknowledged by enough replicas")

// ackShortfall counts a write WAIT did not confirm (err, an *AckError) and applies the
// policy: nil when it accepts the write, err otherwise. what names the write: "save",
// "logout", "login index entry" or "rotation".
func (st *Store) ackShortfall(what string, err error) error {
	return st.ackShortfallIn(context.Background(), what, err)
}

// ackShortfallIn is ackShortfall within the operation whose context is ctx (an
// Observer's Notify gets it).
func (st *Store) ackShortfallIn(ctx context.Context, what string, err error) error {
	st.stats.unacked.Add(1)
	accepted := st.o.ackPolicy == AckBestEffort
	if st.o.observer != nil {
		op := OpSave
		switch what {
		case "logout":
			op = OpDestroy
		case "login index entry":
			op = OpIndex
		case "rotation":
			op = OpRotate
		}
		n := Notice{Kind: NoticeAckShortfall, Op: op, Err: err, Want: st.o.ackReplicas, Accepted: accepted}
		var ae *AckError
		if errors.As(err, &ae) {
			n.Acked, n.Want = ae.Acked, ae.Want
		}
		st.o.observer.Notify(ctx, n)
	}
	if !accepted {
		return err
	}
	st.stats.acceptedUnacked.Add(1)
	var ae *AckError
	if errors.As(err, &ae) {
		st.o.logger.Warn("hasession: "+what+" accepted without replica acknowledgement", "acked", ae.Acked, "want", ae.Want)
	}
	return nil
}

// extraAttemptTime is what an attempt of the operation may take beyond the attempt
// timeout: a save, a login's index entry, a revoke, a logout and a rotation's forward
// step with write acknowledgement wait up to the WAIT timeout on top (see
// opKind.waitsForAck).
func (st *Store) extraAttemptTime(kind opKind) time.Duration {
	if st.o.ackReplicas > 0 && kind.waitsForAck() {
		return st.o.ackTimeout
	}
	return 0
}

// masterFor returns a client bound to the master that serves key.
func (st *Store) masterFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := st.rdb.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("hasession: write acknowledgement needs a *redis.Client or *redis.ClusterClient, not %T", st.rdb)
}

// runWrite runs a script that writes key: with WithWriteAck through evalAcked (a shortfall
// is an *AckError returned beside the reply), otherwise alone.
func (st *Store) runWrite(ctx context.Context, script *script, key string, args ...any) (any, error) {
	if st.o.ackReplicas > 0 {
		return st.evalAcked(ctx, script, key, args...)
	}
	cmd, err := runScript(st, ctx, alone, script, key, redis.NewCmd, args...)
	return cmd.Val(), err
}

// saveAcked runs the save script and WAIT in one pipeline on the key's master (see
// evalAcked). A save that did not apply (not found, conflict, …) has nothing to confirm.
func (st *Store) saveAcked(ctx context.Context, sc *script, key string, args []any) (string, error) {
	v, err := st.evalAcked(ctx, sc, key, args...)
	res, _ := v.(string)
	if errors.Is(err, ErrNotAcknowledged) {
		if !strings.HasPrefix(res, "ok:") && !strings.HasPrefix(res, "dup:") {
			return res, nil
		}
		err = st.ackShortfallIn(ctx, "save", err)
	}
	return res, err
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
			res, acked, _ := st.pipeScript(ctx, node, memberScript, gk, args, true)
			var err error
			if acked < st.o.ackReplicas {
				st.stats.unacked.Add(1)
				err = &AckError{Acked: max(acked, 0), Want: st.o.ackReplicas}
				st.notify(ctx, Notice{Kind: NoticeAckShortfall, Op: OpRevoke, Err: err, Acked: max(acked, 0), Want: st.o.ackReplicas})
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
