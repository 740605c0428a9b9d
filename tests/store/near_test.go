package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// nearStore returns a store with the near-cache on, on a client of its own (an app
// server of its own), closed when the test ends.
func nearStore(t *testing.T, topo cluster.Topology, prefix string, opts ...store.Option) *store.Store {
	t.Helper()
	rdb := client(t, topo)
	st := newStore(t, rdb, append([]store.Option{store.WithPrefix(prefix), store.WithNearCache(store.NearCache{})}, opts...)...)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// loadHit loads id until a load is served from the cache (the tracking connection is
// dialled in the background on first use), within a deadline.
func loadHit(t *testing.T, st *store.Store, id string) *store.Session {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := st.Stats().NearHits
		s, err := st.Load(t.Context(), id)
		require.NoError(t, err)
		if st.Stats().NearHits > before {
			return s
		}
		require.True(t, time.Now().Before(deadline), "no load of %s was a hit: %+v", id, st.Stats())
	}
}

func TestNearCacheBasics(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, _ redis.UniversalClient) {
		prefix := uniquePrefix(t)
		a, b := nearStore(t, topo, prefix), nearStore(t, topo, prefix)
		ctx := t.Context()
		s, err := a.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("n", 1))
		require.NoError(t, a.Save(ctx, s))

		got := loadHit(t, b, s.ID())
		require.Equal(t, s.Version(), got.Version())
		var n int
		require.NoError(t, got.Get("n", &n))
		require.Equal(t, 1, n)

		// A save on a is seen by b, within the lease at the latest.
		require.NoError(t, s.Set("n", 2))
		require.NoError(t, a.Save(ctx, s))
		require.Eventually(t, func() bool {
			got, err := b.Load(ctx, s.ID())
			return err == nil && got.Version() == s.Version()
		}, 5*time.Second, time.Millisecond)
		require.Positive(t, b.Stats().NearEvictedInvalidated, "%+v", b.Stats())

		// a reads its own write at once, cached or not.
		got = loadHit(t, a, s.ID())
		require.NoError(t, s.Set("n", 3))
		require.NoError(t, a.Save(ctx, s))
		got, err = a.Load(ctx, s.ID())
		require.NoError(t, err)
		require.Equal(t, s.Version(), got.Version())

		// A destroy on a: b never serves the session after Destroy returned.
		loadHit(t, b, s.ID())
		require.NoError(t, a.Destroy(ctx, s.ID()))
		_, err = b.Load(ctx, s.ID())
		require.ErrorIs(t, err, store.ErrNotFound)
		require.Equal(t, int64(1), a.Stats().NearLeaseWaits)
	})
}

func TestNearCacheOptions(t *testing.T) {
	for _, c := range []store.NearCache{
		{Size: -1}, {Lease: -time.Second}, {Heartbeat: 60 * time.Millisecond}, {Lease: time.Minute},
	} {
		_, err := store.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), store.WithNearCache(c))
		require.Error(t, err, "%+v", c)
	}
	_, err := store.New(redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}), store.WithNearCache(store.NearCache{}))
	require.Error(t, err)
	require.False(t, errors.Is(err, context.Canceled))
}
