package otel_test

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	hasessionotel "github.com/hasession/hasession/otel"
	"github.com/hasession/hasession/store"
)

// A store's near-cache counters reach the meter once the store is observed: hits and
// misses, the entries, the tracking connection opened, the lease a logout waited; and
// when observing stops, the counters keep their values (monotonic) and the entries leave
// the gauge.
func TestNearCacheMetrics(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	ctx := t.Context()
	tel := newTelemetry(t)
	rdb := cluster.Client(t, topo, redis.NewUniversalClient)
	st, err := store.New(rdb, store.WithPrefix("otel-near:"), store.WithObserver(tel.obs), store.WithNearCache(store.NearCache{}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })

	// Before any store is observed the near-cache's instruments have no data points.
	require.Zero(t, total(tel.collect(t), hasessionotel.MetricNearLoads))
	stop := tel.obs.ObserveNearCache(st)
	t.Cleanup(stop)

	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("n", 1))
	require.NoError(t, st.Save(ctx, s))
	// Loads until one is served from memory (the first reads Redis and fills the entry;
	// a hit then needs the tracking connection's lease).
	deadline := time.Now().Add(10 * time.Second)
	for st.Stats().NearHits == 0 {
		require.True(t, time.Now().Before(deadline), "no near-cache hit within 10 s: %+v", st.Stats())
		_, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
	}
	stats := st.Stats()
	points := tel.collect(t)
	dump(t, "after the loads", points)
	require.Equal(t, stats.NearHits, total(points, hasessionotel.MetricNearLoads, "hasession.near_cache.result=hit"))
	require.Equal(t, stats.NearMisses, total(points, hasessionotel.MetricNearLoads, "hasession.near_cache.result=miss"))
	require.Positive(t, stats.NearMisses)
	require.Equal(t, stats.NearCached, total(points, hasessionotel.MetricNearEntries))
	require.Equal(t, int64(1), stats.NearCached)
	require.Equal(t, stats.NearConnects, total(points, hasessionotel.MetricNearConnections, "hasession.near_cache.event=opened"))
	require.Positive(t, stats.NearConnects)
	require.Zero(t, total(points, hasessionotel.MetricNearLeaseWaits))

	// A logout waits the lease, and its write drops the entry.
	require.NoError(t, st.Destroy(ctx, s.ID()))
	stats = st.Stats()
	points = tel.collect(t)
	require.Equal(t, int64(1), total(points, hasessionotel.MetricNearLeaseWaits))
	require.Equal(t, stats.NearCached, total(points, hasessionotel.MetricNearEntries))
	require.Equal(t, stats.NearEvictedInvalidated+stats.NearEvictedLease+stats.NearEvictedReconnect+stats.NearEvictedCapacity,
		total(points, hasessionotel.MetricNearEvictions))

	// Observing stops: the counts stay, the entries go.
	hits := total(points, hasessionotel.MetricNearLoads, "hasession.near_cache.result=hit")
	stop()
	stop() // twice: nothing more
	points = tel.collect(t)
	require.Equal(t, hits, total(points, hasessionotel.MetricNearLoads, "hasession.near_cache.result=hit"))
	require.Equal(t, int64(1), total(points, hasessionotel.MetricNearLeaseWaits))
	require.Zero(t, total(points, hasessionotel.MetricNearEntries))

	// Observed again: reported from then on, not twice.
	misses := total(points, hasessionotel.MetricNearLoads, "hasession.near_cache.result=miss")
	before := st.Stats().NearMisses
	stop = tel.obs.ObserveNearCache(st)
	t.Cleanup(stop)
	require.Equal(t, misses, total(tel.collect(t), hasessionotel.MetricNearLoads, "hasession.near_cache.result=miss"),
		"a store observed again adds what it counted before")
	_, err = st.Load(ctx, s.ID()) // destroyed: read from Redis, a miss
	require.ErrorIs(t, err, store.ErrNotFound)
	gained := st.Stats().NearMisses - before
	require.Positive(t, gained)
	require.Equal(t, misses+gained, total(tel.collect(t), hasessionotel.MetricNearLoads, "hasession.near_cache.result=miss"),
		"a store observed again is counted from then on")
}

// The counters never go down, also when a store stops being observed while it works and
// a collection runs: loads run on two stores while one of them is observed and stopped
// again and again between collections.
func TestNearCacheMetricsStayMonotonic(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	ctx := t.Context()
	tel := newTelemetry(t)
	rdb := cluster.Client(t, topo, redis.NewUniversalClient)
	var stores [2]*store.Store
	for i := range stores {
		st, err := store.New(rdb, store.WithPrefix("otel-near-mono:"), store.WithNearCache(store.NearCache{}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		stores[i] = st
	}
	s, err := stores[0].NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("n", 1))
	require.NoError(t, stores[0].Save(ctx, s))
	t.Cleanup(tel.obs.ObserveNearCache(stores[1]))

	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := st.Load(ctx, s.ID()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() { close(done); wg.Wait() }()

	var last int64
	trials := 0
	defer func() { t.Logf("%d trials", trials) }()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 20_000 && time.Now().Before(deadline); i++ {
		trials++
		stop := tel.obs.ObserveNearCache(stores[0])
		collected := make(chan int64)
		go func() { collected <- total(tel.collect(t), hasessionotel.MetricNearLoads) }()
		// stop lands at a varying point of the collection (a busy wait of 0 to 49 µs).
		for t0 := time.Now(); time.Since(t0) < time.Duration(i%50)*time.Microsecond; {
		}
		stop()
		for _, n := range []int64{<-collected, total(tel.collect(t), hasessionotel.MetricNearLoads)} {
			require.GreaterOrEqual(t, n, last, "trial %d: the loads counter went down", i)
			last = n
		}
	}
	require.Positive(t, last)
}
