package store_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// pipeliningLoops counts the auto-pipelining goroutines of every store.
func pipeliningLoops() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "batch.(*batcher).loop(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// noLoops waits until no store has an auto-pipelining goroutine (another test's store
// may still have one: it ends 2 s after its last command).
func noLoops(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return pipeliningLoops() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// countHook counts the commands and pipelines the client is asked to send.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// Close ends the auto-pipelining loops at once (not after their 2 s idle time), every
// later call that would talk to Redis returns ErrClosed without sending anything, and the
// client, which the caller owns, stays open. Nothing listens at the client's address.
func TestCloseStopsTheStore(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialerRetries: 1})
	defer rdb.Close()
	hook := &countHook{}
	rdb.AddHook(hook)
	st, err := store.New(rdb, store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 0}))
	require.NoError(t, err)
	ctx := t.Context()
	const id = "6f1c2a9e-2b0d-4a8e-9a51-3c7d9f0e4b21"

	noLoops(t)
	// A lone load goes alone from its caller's goroutine; queued, it starts a loop.
	_, err = st.Load(ctx, id)
	require.Error(t, err, "nothing listens")
	require.Zero(t, pipeliningLoops(), "a lone load started no loop")
	testhook.QueueLoneCommands.Store(true)
	_, err = st.Load(ctx, id)
	testhook.QueueLoneCommands.Store(false)
	require.Error(t, err, "nothing listens")
	require.NotErrorIs(t, err, store.ErrClosed)
	require.Positive(t, pipeliningLoops(), "the load went through a pipelining loop, which waits 2 s for more")

	require.NoError(t, st.Close())
	require.Eventually(t, func() bool { return pipeliningLoops() == 0 }, time.Second, 5*time.Millisecond,
		"the pipelining loops end at once when the store is closed")

	sent := hook.n.Load()
	_, err = st.Load(ctx, id)
	require.ErrorIs(t, err, store.ErrClosed)
	s, err := st.NewSession() // no round trip: works
	require.NoError(t, err)
	require.NoError(t, s.Set("k", 1))
	require.ErrorIs(t, st.Save(ctx, s), store.ErrClosed)
	s.SetUser("alice") // the save would list the session in alice's index first
	require.ErrorIs(t, st.Save(ctx, s), store.ErrClosed)
	require.ErrorIs(t, st.Destroy(ctx, id), store.ErrClosed)
	require.ErrorIs(t, st.Update(ctx, id, func(*store.Session) error { return nil }), store.ErrClosed)
	_, err = st.Sessions(ctx, "alice")
	require.ErrorIs(t, err, store.ErrClosed)
	require.ErrorIs(t, st.Revoke(ctx, "alice", id), store.ErrClosed)
	require.ErrorIs(t, st.RevokeAll(ctx, "alice"), store.ErrClosed)
	called := false
	require.ErrorIs(t, st.Retry(ctx, "custom", func(context.Context) error { called = true; return nil }), store.ErrClosed)
	require.False(t, called, "Retry runs nothing on a closed store")
	require.Equal(t, sent, hook.n.Load(), "nothing was sent after Close")

	require.NoError(t, st.Close(), "a second Close is harmless")
	require.Zero(t, pipeliningLoops(), "no call after Close started a loop")

	// The client is the caller's, still open: a command fails only because nothing listens.
	err = rdb.Ping(ctx).Err()
	require.Error(t, err)
	require.NotErrorIs(t, err, redis.ErrClosed)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)

	// Without auto-pipelining there is nothing to stop.
	plain, err := store.New(rdb, store.WithAutoPipeline(false))
	require.NoError(t, err)
	require.NoError(t, plain.Close())
	_, err = plain.Load(ctx, id)
	require.ErrorIs(t, err, store.ErrClosed)
}

// Calls under way when the store is closed finish (queued commands are still sent, not
// dropped), and the pipelining loops end after them.
func TestCloseWithCallsUnderWay(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialerRetries: 1})
	defer rdb.Close()
	st, err := store.New(rdb, store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	require.NoError(t, err)
	noLoops(t)
	const workers = 16
	done := make(chan error, workers)
	var closed atomic.Bool
	var calls atomic.Int64
	for range workers {
		go func() {
			for {
				_, err := st.Load(context.Background(), "6f1c2a9e-2b0d-4a8e-9a51-3c7d9f0e4b21")
				calls.Add(1)
				if closed.Load() && errors.Is(err, store.ErrClosed) {
					done <- nil
					return
				}
			}
		}()
	}
	// Calls under way: every worker has made a few.
	require.Eventually(t, func() bool { return calls.Load() >= 2*workers }, 5*time.Second, time.Millisecond)
	closed.Store(true)
	require.NoError(t, st.Close())
	timeout := time.After(5 * time.Second)
	for range workers {
		select {
		case <-done:
		case <-timeout:
			t.Fatal("a call under way when the store was closed never returned")
		}
	}
	require.Eventually(t, func() bool { return pipeliningLoops() == 0 }, time.Second, 5*time.Millisecond)
}
