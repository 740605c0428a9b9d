package store_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// The store runs its hot-path scripts by EVALSHA and falls back to EVAL when Redis does
// not have them (after SCRIPT FLUSH, a restart or a failover to a node that never ran
// them).
func TestScriptsAfterScriptFlush(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("flush:"), store.WithTouchInterval(0))
		s, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("a", 1))

		require.NoError(t, rdb.ScriptFlush(ctx).Err())
		require.NoError(t, st.Save(ctx, s))

		require.NoError(t, rdb.ScriptFlush(ctx).Err())
		got, err := st.Load(ctx, s.ID()) // the touch is due on every load
		require.NoError(t, err)
		var a int
		require.NoError(t, got.Get("a", &a))
		require.Equal(t, 1, a)

		require.NoError(t, got.Set("a", 2))
		require.NoError(t, rdb.ScriptFlush(ctx).Err())
		require.NoError(t, st.Save(ctx, got))
		require.Equal(t, int64(2), got.Version())
	})
}
