package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

// A node that hangs holds an auto-pipelined command no longer than its caller waits: the
// commands of callers that gave up are not sent, and the first load after the node
// recovers does not queue behind their pipelines.
func TestAutoPipelineAfterAHungNode(t *testing.T) {
	ctx := t.Context()
	topo := cluster.StandaloneForTest(t)
	o := topo.UniversalOptions()
	o.ContextTimeoutEnabled = true // the client's read timeout (3 s) is far beyond the callers'
	rdb := redis.NewUniversalClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	var sent atomic.Int64
	rdb.AddHook(cluster.CommandCounter{N: &sent})
	st := newStore(t, rdb)
	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("a", 1))
	require.NoError(t, st.Save(ctx, s))

	node := topo.Nodes()[0]
	require.NoError(t, topo.Pause(ctx, node))
	// Two waves of loads that give up after 200 ms: the first fills the sending loops'
	// pipelines, the second queues behind them.
	var wg sync.WaitGroup
	var failed atomic.Int64
	wave := func() {
		for range 40 {
			wg.Go(func() {
				lctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				if _, err := st.Load(lctx, s.ID()); err != nil {
					failed.Add(1)
				}
			})
		}
	}
	start := sent.Load()
	wave()
	require.Eventually(t, func() bool { return sent.Load() > start }, 5*time.Second, time.Millisecond)
	wave()
	wg.Wait()
	require.EqualValues(t, 80, failed.Load(), "the node is paused")
	before := sent.Load()
	require.NoError(t, topo.Unpause(ctx, node))
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, err := st.Load(lctx, s.ID())
	require.NoError(t, err)
	require.Equal(t, s.ID(), got.ID())
	require.Less(t, sent.Load()-before, int64(10), "the loads of callers that gave up are not sent after recovery")
}
