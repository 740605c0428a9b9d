package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RetryPolicy says how the store retries an operation that failed with an error a
// failover produces: a dead or frozen master, a promotion in progress, a stale slot map.
// Every store operation is safe to retry: a save carries a save ID and applies once, a
// load or touch repeated is harmless, rotation and destroy are idempotent.
type RetryPolicy struct {
	// MaxRetries is how many times a failed operation is tried again. 0 means none: one
	// attempt. Default 100: in practice the caller's context ends first.
	MaxRetries int
	// AttemptTimeout bounds each attempt (or the caller's deadline, when sooner), so an
	// attempt stuck on a dead node gives way to a retry. Default 1 s.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential pause between attempts.
	// Defaults 10 ms and 250 ms.
	MinBackoff, MaxBackoff time.Duration
}

// DefaultRetryPolicy is the policy of a store built without WithRetryPolicy.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 100, AttemptTimeout: time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 250 * time.Millisecond}

// Retryable reports whether err is one a failover produces and a later attempt may not:
// connection refused or reset, EOF, i/o and dial timeouts, no route to host, a closed
// pool connection, a pool timeout, CLUSTERDOWN, TRYAGAIN, LOADING, READONLY, MASTERDOWN,
// "max number of clients reached". (NOSCRIPT is not: the store's script runner answers it
// with EVAL at once.)
// It classifies with go-redis's helpers and the standard library's error types.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsLoadingError(err) ||
		redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) {
		return true
	}
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ETIMEDOUT) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	// No connection free in the client's pool in time; the server's client limit.
	return errors.Is(err, redis.ErrPoolTimeout) || redis.IsMaxClientsError(err)
}

// opKind is an operation of the store, for the retry loop: its name in errors and logs
// (String) and whether an attempt may wait for WAIT (waitsForAck).
type opKind uint8

// The store's operations.
const (
	opCaller       opKind = iota // an operation Retry runs, named by its caller
	opLoad                       // Load
	opSave                       // Save, and a rotation's copy
	opRotate                     // a rotation's first and last steps (pending.lua, forward.lua)
	opDestroy                    // one key of a Destroy (destroy.lua)
	opIndex                      // an entry in a user's index (index_add.lua)
	opUnindex                    // entries dropped from a user's index
	opReadIndex                  // a read of a user's index (index_read.lua)
	opListSessions               // Sessions' reads of the listed sessions (member.lua)
	opRevoke                     // Revoke's and RevokeAll's writes (member.lua)
)

// opNames are the operations' names, as errors and logs give them.
var opNames = [...]string{
	opCaller:       "operation",
	opLoad:         "load session",
	opSave:         "save session",
	opRotate:       "rotate session",
	opDestroy:      "destroy session",
	opIndex:        "index session",
	opUnindex:      "unindex session",
	opReadIndex:    "read session index",
	opListSessions: "list sessions",
	opRevoke:       "revoke sessions",
}

// String returns the operation's name, as errors and logs give it ("save session").
func (k opKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "opKind(" + strconv.Itoa(int(k)) + ")"
}

// waitsForAck reports whether an attempt of the operation may, with WithWriteAck, wait
// for WAIT after its write: a save, a login's index entry, a revoke, a logout, and a
// rotation (its forward step; its first step, which runs under the same kind, is given
// the same time).
func (k opKind) waitsForAck() bool {
	switch k {
	case opSave, opIndex, opRevoke, opDestroy, opRotate:
		return true
	}
	return false
}

// do runs op with the retry policy and returns its result. op gets a context bounded by
// the attempt timeout; it must not write state shared between attempts (an abandoned
// attempt may still be running, see call): it returns what it produced. Errors that are
// not retryable return at once; a retryable one is retried after a jittered backoff,
// once the cluster client has been told to reload its slot map.
func do[T any](st *Store, ctx context.Context, kind opKind, op func(ctx context.Context) (T, error)) (T, error) {
	return doWith(st, ctx, kind, op, runOp[T])
}

func runOp[T any](_ *Store, ctx context.Context, op func(ctx context.Context) (T, error)) (T, error) {
	return op(ctx)
}

// doWith is do for an op that takes its argument explicitly: with a top-level function
// (or method expression) as op, a hot path such as Load allocates no closure.
func doWith[A, T any](st *Store, ctx context.Context, kind opKind, arg A, op func(st *Store, ctx context.Context, arg A) (T, error)) (T, error) {
	return doNamed(st, ctx, kind, kind.String(), arg, op)
}

// doNamed is doWith under a name of its own (an operation Retry runs, named by its
// caller): name is the operation's name in errors and logs, kind says how long an
// attempt may take.
func doNamed[A, T any](st *Store, ctx context.Context, kind opKind, name string, arg A, op func(st *Store, ctx context.Context, arg A) (T, error)) (T, error) {
	if st.o.observer == nil {
		v, _, err := retryLoop(st, ctx, kind, name, arg, op)
		return v, err
	}
	start := time.Now()
	ctx, e := st.obsStart(ctx, kind, name)
	v, attempts, err := retryLoop(st, ctx, kind, name, arg, op)
	obsEnd(st, ctx, &e, start, attempts, &arg, &v, err)
	return v, err
}

// retryLoop is doNamed's loop; it also returns the attempts it made.
func retryLoop[A, T any](st *Store, ctx context.Context, kind opKind, name string, arg A, op func(st *Store, ctx context.Context, arg A) (T, error)) (T, int, error) {
	p := st.o.retry
	var zero T
	var last error
	for attempt := 0; ; attempt++ {
		if st.closed.Load() {
			return zero, attempt, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			if last == nil {
				return zero, attempt, fmt.Errorf("hasession: %s: %w", name, err)
			}
			return zero, attempt, &RetryError{Op: name, Attempts: attempt, Ctx: err, Last: last}
		}
		actx, cancel := st.attemptContext(ctx, p.AttemptTimeout+st.extraAttemptTime(kind))
		v, err := call(st, actx, arg, op)
		cancel()
		err = asPermissionError(err) // a refusal (ACL) is not retryable: returned below at once
		if err == nil {
			if attempt > 0 {
				st.stats.recovered.Add(1)
				st.o.logger.Info("hasession: recovered", "op", name, "attempts", attempt+1)
				st.notify(ctx, Notice{Kind: NoticeRecovered, Op: kind.obsOp(), Attempt: attempt + 1})
			}
			return v, attempt + 1, nil
		}
		if cerr := ended(ctx); cerr != nil {
			// Whatever the attempt failed with (an i/o timeout from a socket deadline set
			// from ctx's, which can fire before ctx's own timer), the caller must be able
			// to tell that its context ended: the error matches ctx's, and keeps its
			// cause.
			switch {
			case last == nil && err == cerr:
				return zero, attempt + 1, fmt.Errorf("hasession: %s: %w", name, err)
			case last == nil && errors.Is(err, cerr):
				return zero, attempt + 1, err
			}
			return zero, attempt + 1, &RetryError{Op: name, Attempts: attempt + 1, Ctx: cerr, Last: err}
		}
		if !Retryable(err) {
			return v, attempt + 1, err
		}
		last = err
		if attempt >= p.MaxRetries {
			if p.MaxRetries == 0 {
				return zero, attempt + 1, err
			}
			return zero, attempt + 1, &RetryError{Op: name, Attempts: attempt + 1, Last: err}
		}
		st.stats.retries.Add(1)
		st.notify(ctx, Notice{Kind: NoticeRetry, Op: kind.obsOp(), Attempt: attempt + 1, Err: err})
		if cc, ok := st.rdb.(*redis.ClusterClient); ok {
			cc.ReloadState(ctx)
			st.stats.reloads.Add(1)
			st.notify(ctx, Notice{Kind: NoticeReload, Op: kind.obsOp(), Attempt: attempt + 1})
		}
		st.o.logger.Debug("hasession: retrying", "op", name, "attempt", attempt+1, "err", err)
		backoff := p.MinBackoff << min(attempt, 16)
		if backoff > p.MaxBackoff || backoff <= 0 {
			backoff = p.MaxBackoff
		}
		backoff = backoff/2 + rand.N(backoff/2+1) // jitter: [b/2, b]
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// ended returns ctx's error if ctx has ended, or if its deadline has passed (then it
// waits for ctx's timer, due now, so that the error is the one ctx.Err() reports from then
// on). A read whose socket deadline was set from ctx's deadline fails at that deadline,
// possibly before ctx's own timer has run.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		t := time.NewTimer(100 * time.Millisecond) // a context that keeps its own time
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return context.DeadlineExceeded
		}
	}
	return nil
}

// attemptContext bounds one attempt. The caller's context is used as it is (no
// allocation on the hot path) when there are no retries, when the client ignores context
// deadlines on its sockets (see call), or when the client's own timeouts already end an
// attempt within d.
func (st *Store) attemptContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if st.o.retry.MaxRetries == 0 || !st.ctxHonoured || st.clientBound <= d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// call runs one attempt. A client that does not honour context deadlines on its sockets
// (go-redis's default: ContextTimeoutEnabled is false) could block an attempt for its
// read timeout, past the caller's deadline: for such a client the attempt runs in a
// goroutine and the caller stops waiting when the attempt's context ends (the abandoned
// call ends by the client's own timeouts).
func call[A, T any](st *Store, ctx context.Context, arg A, op func(st *Store, ctx context.Context, arg A) (T, error)) (T, error) {
	if st.ctxHonoured {
		return op(st, ctx, arg)
	}
	// The client's own timeouts end the call before the caller's deadline: call directly.
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > st.clientBound {
		return op(st, ctx, arg)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := op(st, ctx, arg)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// clientTimeouts reports whether the client applies context deadlines to its sockets, and
// how long one command can block it at most by its own timeouts (dial, then write and
// read); unknown or unbounded timeouts give a bound of an hour.
func clientTimeouts(rdb redis.UniversalClient) (ctxHonoured bool, bound time.Duration) {
	const unbounded = time.Hour
	var dial, read, write time.Duration
	switch c := rdb.(type) {
	case *redis.Client:
		o := c.Options()
		ctxHonoured, dial, read, write = o.ContextTimeoutEnabled, o.DialTimeout, o.ReadTimeout, o.WriteTimeout
	case *redis.ClusterClient:
		o := c.Options()
		ctxHonoured, dial, read, write = o.ContextTimeoutEnabled, o.DialTimeout, o.ReadTimeout, o.WriteTimeout
	default:
		return false, unbounded
	}
	if dial <= 0 || read < 0 || write < 0 {
		return ctxHonoured, unbounded
	}
	// go-redis applies its defaults to the options it keeps: 0 is not left here, but be
	// safe.
	if read == 0 {
		read = 3 * time.Second
	}
	if write == 0 {
		write = read
	}
	return ctxHonoured, dial + read + write
}

// FailoverOptions returns a copy of o tuned for failover: a short dial timeout and few
// dial retries, read and write timeouts of 1 s, context deadlines applied to sockets
// (ContextTimeoutEnabled), and a small backoff between go-redis's own retries. Use it
// with [NewFailoverClient], or on its own with redis.NewUniversalClient.
func FailoverOptions(o *redis.UniversalOptions) *redis.UniversalOptions {
	c := *o
	c.Addrs = append([]string(nil), o.Addrs...)
	c.DialTimeout = 300 * time.Millisecond
	c.DialerRetries = 2
	c.ReadTimeout = time.Second
	c.WriteTimeout = time.Second
	c.ContextTimeoutEnabled = true
	c.MinRetryBackoff = 8 * time.Millisecond
	c.MaxRetryBackoff = 128 * time.Millisecond
	return &c
}

// NewFailoverClient builds a go-redis client tuned for failover from o (see
// FailoverOptions). For a Cluster (several addresses, or IsClusterMode) it also sets
// ClusterStateReloadInterval to 1 s, which UniversalOptions lacks: a default
// ClusterClient reloads its slot map only on MOVED or every 60 s and keeps sending to a
// dead master until then.
func NewFailoverClient(o *redis.UniversalOptions) redis.UniversalClient {
	t := FailoverOptions(o)
	if t.MasterName == "" && (len(t.Addrs) > 1 || t.IsClusterMode) {
		co := t.Cluster()
		co.ClusterStateReloadInterval = time.Second
		return redis.NewClusterClient(co)
	}
	return redis.NewUniversalClient(t)
}

// Retry runs fn with the store's retry policy: each attempt gets a deadline, a failed
// attempt on a Cluster reloads the slot map, and retryable errors are retried with
// jittered backoff until the policy or ctx ends. It is for code that talks to the store's
// client directly (the scs and gorilla adapters), which then rides out a failover as the
// store does. fn must be safe to repeat.
func (st *Store) Retry(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	_, err := RetryValue(ctx, st, name, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return err
}

// RetryValue is [Store.Retry] for an operation that produces a value: it returns the
// value of the attempt that succeeded. An attempt the policy stopped waiting for (see
// [RetryPolicy]) may still be running, but what it returns is dropped: only a returned
// attempt's value reaches the caller, so fn needs no synchronisation of its own as long
// as it writes nothing shared.
func RetryValue[T any](ctx context.Context, st *Store, name string, fn func(ctx context.Context) (T, error)) (T, error) {
	return doNamed(st, ctx, opCaller, name, fn, runOp[T])
}
