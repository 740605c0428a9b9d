package store_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
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
		loadHit(t, a, s.ID())
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

// raceResult is what revokeRace saw.
type raceResult struct {
	revokes    int64 // revocations that returned nil
	after      int64 // loads invoked after a revocation returned
	violations int64 // of those, loads that returned the session
	hits       int64 // loads served from a cache, in all
}

// revokeRace runs n revocations racing cached reads on three app servers (three stores,
// each on a client of its own, with the near-cache on): lanes at once, each creating a
// session of its own user on one app server, loading it into the other two's caches, and
// revoking it (Destroy, Revoke or RevokeAll, in turn) on one of the three while the other
// two load it in a loop. A load invoked after the revocation returned that returns the
// session is a violation (reported, unless quiet, and counted).
func revokeRace(t *testing.T, topo cluster.Topology, n int64, quiet bool) raceResult {
	t.Helper()
	prefix := uniquePrefix(t)
	var apps [3]*store.Store
	for i := range apps {
		apps[i] = nearStore(t, topo, prefix)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	const lanes = 48
	var started, revokes, after, violations atomic.Int64
	var wg sync.WaitGroup
	for lane := range lanes {
		wg.Go(func() {
			user := fmt.Sprintf("u%d", lane)
			for k := started.Add(1); k <= n && ctx.Err() == nil; k = started.Add(1) {
				creator, revoker := apps[k%3], apps[(k/3)%3]
				s, err := creator.NewSession()
				if err != nil {
					t.Error(err)
					return
				}
				s.SetUser(user)
				if err := creator.Save(ctx, s); err != nil {
					t.Error(err)
					return
				}
				var readers []*store.Store
				for _, a := range apps {
					if a != revoker {
						readers = append(readers, a)
					}
				}
				// Into the readers' caches (a few loads: the first fills the cache).
				for _, r := range readers {
					for range 3 {
						if _, err := r.Load(ctx, s.ID()); err != nil {
							t.Error(err)
							return
						}
					}
				}
				var revokedAt atomic.Pointer[time.Time]
				stop := make(chan struct{})
				var rg sync.WaitGroup
				for _, r := range readers {
					rg.Go(func() {
						seen := 0
						for {
							select {
							case <-stop:
								if seen >= 3 || ctx.Err() != nil {
									return
								}
							default:
							}
							inv := time.Now()
							got, err := r.Load(ctx, s.ID())
							if at := revokedAt.Load(); at != nil && inv.After(*at) {
								seen++
								after.Add(1)
								if err == nil {
									if violations.Add(1) <= 5 && !quiet {
										t.Errorf("session %s (version %d) loaded %s after its revocation returned", got.ID(), got.Version(), inv.Sub(*at))
									}
								}
							}
							runtime.Gosched()
						}
					})
				}
				switch k % 3 {
				case 0:
					err = revoker.Destroy(ctx, s.ID())
				case 1:
					err = revoker.Revoke(ctx, user, s.ID())
				default:
					err = revoker.RevokeAll(ctx, user)
				}
				now := time.Now()
				revokedAt.Store(&now)
				close(stop)
				rg.Wait()
				if err != nil {
					t.Error(err)
					return
				}
				revokes.Add(1)
			}
		})
	}
	wg.Wait()
	var hits int64
	for _, a := range apps {
		hits += a.Stats().NearHits
	}
	return raceResult{revokes: revokes.Load(), after: after.Load(), violations: violations.Load(), hits: hits}
}

// After a revocation returns on one app server, no app server serves the session again,
// cached or not: 0 violations over 10,000 revocations racing cached reads on a Cluster,
// and 3,000 on a single server and on Sentinel.
func TestNearCacheRevokeRace(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, _ redis.UniversalClient) {
		n := int64(3_000)
		if topo.Kind() == cluster.KindCluster {
			n = 10_000
		}
		r := revokeRace(t, topo, n, false)
		t.Logf("%s: %d revocations, %d loads after them, %d violations, %d hits in all", topo.Kind(), r.revokes, r.after, r.violations, r.hits)
		require.Equal(t, n, r.revokes)
		require.Zero(t, r.violations)
		require.Greater(t, r.hits, r.revokes, "the reads raced were served from the caches")
	})
}

// The race finds the hole in a build whose revocations do not wait the lease.
func TestNearCacheRevokeRaceBrokenNoLeaseWait(t *testing.T) {
	testhook.NearNoLeaseWait.Store(true)
	defer testhook.NearNoLeaseWait.Store(false)
	topo := cluster.Shared(t, cluster.KindStandalone)
	r := revokeRace(t, topo, 2_000, true)
	t.Logf("without the lease wait: %d revocations, %d loads after them, %d violations", r.revokes, r.after, r.violations)
	require.Positive(t, r.violations)
}

// A cached session is not served past its absolute deadline: Redis ends the key then, but
// sends the invalidation only when it gets to deleting it (lazily, or by sampling).
func TestNearCacheAbsoluteDeadline(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	st := nearStore(t, topo, uniquePrefix(t), store.WithTouchInterval(10*time.Minute))
	ctx := t.Context()
	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("n", 1))
	require.NoError(t, s.SetLifetime(time.Second))
	require.NoError(t, st.Save(ctx, s))
	loadHit(t, st, s.ID())
	deadline := s.ExpiresAt()
	served := 0
	for time.Now().Before(deadline.Add(1500 * time.Millisecond)) {
		inv := time.Now()
		_, err := st.Load(ctx, s.ID())
		// Redis ends the key once its clock (milliseconds, read as each command
		// starts) is past the deadline: 10 ms of margin.
		if inv.After(deadline.Add(10*time.Millisecond)) && err == nil {
			served++
		}
	}
	require.Zero(t, served, "loads after the absolute deadline that returned the session")
}

// Sessions served from one cache entry share its parsed attributes: a save of one (which
// deletes, sets and adds attributes) changes no other, nor what the entry serves next —
// whether the session saved is a copy of the entry's parsed session or the hit that
// parsed it.
func TestNearCacheHitsShareNothingWritable(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	for _, first := range []bool{false, true} {
		t.Run(fmt.Sprintf("the first hit saved: %t", first), func(t *testing.T) {
			st := nearStore(t, topo, uniquePrefix(t))
			ctx := t.Context()
			s, err := st.NewSession()
			require.NoError(t, err)
			for k, v := range map[string]int{"a": 1, "b": 2, "c": 3} {
				require.NoError(t, s.Set(k, v))
			}
			require.NoError(t, st.Save(ctx, s))

			parsed := loadHit(t, st, s.ID()) // parses the entry's session, which it keeps
			x, y := loadHit(t, st, s.ID()), loadHit(t, st, s.ID())
			saved := x
			if first {
				saved = parsed
			}
			saved.Delete("a")
			require.NoError(t, saved.Set("b", 7))
			require.NoError(t, saved.Set("d", 4))
			require.NoError(t, st.Save(ctx, saved))

			want := map[string]int{"b": 7, "c": 3, "d": 4}
			require.Equal(t, want, intAttrs(t, saved))
			require.Equal(t, map[string]int{"a": 1, "b": 2, "c": 3}, intAttrs(t, y), "a session served from the same entry")
			got, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
			require.Equal(t, want, intAttrs(t, got))
		})
	}
}

// intAttrs returns the session's attributes, each decoded as an int.
func intAttrs(t *testing.T, s *store.Session) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, k := range s.Keys() {
		var v int
		require.NoError(t, s.Get(k, &v))
		out[k] = v
	}
	return out
}

// A login that evicts a session (WithMaxSessions, EvictOldest) waits the lease, as a
// revocation does: once it returned, no app server serves the evicted session from its
// cache. (It did not wait: another app server could serve the evicted session for up to
// the lease after the login returned.)
// (Also when the eviction's write was not acknowledged by enough replicas: it applied.)
func TestNearCacheEvictionWaitsTheLease(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	for _, c := range []struct {
		name string
		opts []store.Option
	}{
		{"acknowledged", nil},
		// No replica: every WAIT falls short; the saves accept it, a revoke says so.
		{"WAIT short", []store.Option{store.WithWriteAck(1, 20*time.Millisecond), store.WithWriteAckPolicy(store.AckBestEffort)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := uniquePrefix(t)
			a := nearStore(t, topo, prefix, append(c.opts, store.WithMaxSessions(2, store.EvictOldest))...)
			b := nearStore(t, topo, prefix)
			ctx := t.Context()
			first, err := a.NewSession()
			require.NoError(t, err)
			first.SetUser("alice")
			login := func(s *store.Session) {
				t.Helper()
				if err := a.Save(ctx, s); err != nil && !errors.Is(err, store.ErrNotAcknowledged) {
					t.Fatal(err)
				}
			}
			login(first)
			second, _ := a.NewSession()
			second.SetUser("alice")
			login(second)
			require.Zero(t, a.Stats().NearLeaseWaits, "no eviction yet")
			loadHit(t, b, first.ID())

			third, _ := a.NewSession() // evicts first
			third.SetUser("alice")
			login(third)
			require.Equal(t, int64(1), a.Stats().NearLeaseWaits, "the login that evicted waited the lease")
			_, err = b.Load(ctx, first.ID())
			require.ErrorIs(t, err, store.ErrNotFound, "the evicted session, served after the login returned")
		})
	}
}
