package store_test

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
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

// Close on a live store: calls under way finish (with their result, or ErrClosed at a
// next attempt), the auto-pipelining loops end at once (in a Cluster, every node's), later
// calls return ErrClosed, and the client stays open with the sessions untouched.
func TestCloseEndsTheStore(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		// Another test's stores may still have loops: they end 2 s after their last command.
		eventually(t, 5*time.Second, func() bool { return pipeliningLoops() == 0 }, "no pipelining loop before the test")
		st := newStore(t, rdb, store.WithPrefix("close:"))
		ids := make([]string, 16)
		for i := range ids {
			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("n", i))
			require.NoError(t, st.Save(ctx, s))
			ids[i] = s.ID()
		}

		// Loads and saves under way when the store is closed.
		var wg sync.WaitGroup
		errs := make(chan error, len(ids))
		var calls atomic.Int64
		for _, id := range ids {
			wg.Go(func() {
				for {
					s, err := st.Load(ctx, id)
					if err == nil {
						err = s.Set("seen", true)
					}
					if err == nil {
						err = st.Save(ctx, s)
					}
					calls.Add(1)
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		// Calls under way: every caller has made a few.
		require.Eventually(t, func() bool { return calls.Load() >= 2*int64(len(ids)) }, 10*time.Second, time.Millisecond)
		// (A lone command goes alone from its caller's goroutine; concurrent ones queue.)
		require.Positive(t, pipeliningLoops(), "the concurrent calls went through pipelining loops")
		require.NoError(t, st.Close())
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatal("calls under way when the store was closed did not return")
		}
		close(errs)
		for err := range errs {
			require.ErrorIs(t, err, store.ErrClosed)
		}
		eventually(t, time.Second, func() bool { return pipeliningLoops() == 0 }, "the pipelining loops end at once when the store is closed")

		_, err := st.Load(ctx, ids[0])
		require.ErrorIs(t, err, store.ErrClosed)
		require.ErrorIs(t, st.Destroy(ctx, ids[0]), store.ErrClosed)
		require.NoError(t, st.Close(), "a second Close is harmless")

		// The client is the caller's: open, and the sessions are as they were left.
		require.NoError(t, rdb.Ping(ctx).Err())
		other := newStore(t, rdb, store.WithPrefix("close:"))
		for i, id := range ids {
			s, err := other.Load(ctx, id)
			require.NoError(t, err)
			var n int
			require.NoError(t, s.Get("n", &n))
			require.Equal(t, i, n)
			require.NoError(t, other.Destroy(ctx, id))
		}
		require.NoError(t, other.Close())
	})
}
