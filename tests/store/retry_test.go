package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// Every error an operation returns once the caller's context has ended matches the
// context's error (and keeps its cause): a caller that checks errors.Is(err,
// context.DeadlineExceeded) must never see a bare i/o timeout instead. On a shared
// Cluster: rounds in which every master holds its clients (CLIENT PAUSE, so reads block
// until the callers' deadlines), then many operations with deadlines of a few
// milliseconds.
func TestErrorsAfterTheContextEndedMatchIt(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	configs := []struct {
		name     string
		failover bool // store.NewFailoverClient: context deadlines on the sockets
		opts     []store.Option
	}{
		{"failover client", true, nil},
		{"failover client without auto-pipelining", true, []store.Option{store.WithAutoPipeline(false)}},
		{"failover client without retries or auto-pipelining", true, []store.Option{store.WithAutoPipeline(false),
			store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 0})}},
		{"default client", false, nil},
	}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			var rdb redis.UniversalClient
			if cfg.failover {
				rdb = store.NewFailoverClient(topo.UniversalOptions())
				t.Cleanup(func() { _ = rdb.Close() })
			} else {
				rdb = client(t, topo)
			}
			cc := rdb.(*redis.ClusterClient)
			st := newStore(t, rdb, append(cfg.opts, store.WithTouchInterval(0))...)
			const sessions = 32
			ss := make([]*store.Session, sessions)
			for i := range ss {
				s, err := st.NewSession()
				require.NoError(t, err)
				require.NoError(t, s.Set("a", i))
				require.NoError(t, st.Save(t.Context(), s))
				ss[i] = s
			}
			var ops, failed, mismatched atomic.Int64
			var mu sync.Mutex
			var examples []string
			op := func(i int, d time.Duration) {
				ctx, cancel := context.WithTimeout(t.Context(), d)
				defer cancel()
				var err error
				if i%2 == 0 {
					_, err = st.Load(ctx, ss[i%sessions].ID())
				} else {
					s, lerr := st.Load(t.Context(), ss[i%sessions].ID())
					if lerr != nil {
						err = lerr
					} else {
						_ = s.Set("a", i)
						err = st.Save(ctx, s)
					}
				}
				ops.Add(1)
				if err == nil {
					return
				}
				failed.Add(1)
				if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
					mismatched.Add(1)
					mu.Lock()
					if len(examples) < 3 {
						examples = append(examples, err.Error())
					}
					mu.Unlock()
				}
			}
			// Reads that block until the deadline.
			for round := range 6 {
				require.NoError(t, cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
					return c.Do(ctx, "client", "pause", 250, "all").Err()
				}))
				var wg sync.WaitGroup
				for i := range 24 {
					wg.Go(func() { op(round*24+i, time.Duration(5+7*i)*time.Millisecond) })
				}
				wg.Wait()
				require.NoError(t, cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
					return c.Do(ctx, "client", "unpause").Err()
				}))
			}
			// Deadlines that end while a command is on the wire.
			stop := time.Now().Add(6 * time.Second)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < 3000 && time.Now().Before(stop); i += 8 {
						op(i, time.Duration(200+i%7*150)*time.Microsecond)
					}
				})
			}
			wg.Wait()
			t.Logf("%d operations, %d failed, %d with an error that does not match the context's", ops.Load(), failed.Load(), mismatched.Load())
			require.Zero(t, mismatched.Load(), "errors after the context ended that do not match it, e.g. %q", examples)
			require.Positive(t, failed.Load(), "some deadlines ended during an operation")
		})
	}
}
