package store_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// login saves a new session of user with a device attribute, the way a login handler
// would: anonymous session first, then SetUser and Rotate.
func login(t testing.TB, ctx context.Context, st *store.Store, user, device string) *store.Session {
	t.Helper()
	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("cart", "anonymous cart"))
	require.NoError(t, st.Save(ctx, s))
	s.SetUser(user)
	require.NoError(t, s.Set("device", device))
	require.NoError(t, st.Rotate(ctx, s))
	return s
}

func refs(infos []store.SessionInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Ref
	}
	return out
}

func ref(t testing.TB, st *store.Store, id string) string {
	t.Helper()
	r, err := st.Ref(id)
	require.NoError(t, err)
	return r
}

func TestUserSessionsListRevokeRevokeAll(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users:"+t.Name()+":"), store.WithGracePeriod(time.Second))
		user := "alice@example.com"
		devices := []string{"laptop", "phone", "tablet"}
		var ss []*store.Session
		for _, d := range devices {
			ss = append(ss, login(t, ctx, st, user, d))
		}
		other := login(t, ctx, st, "bob", "desktop")

		infos, err := st.Sessions(ctx, user, "device", "missing")
		require.NoError(t, err)
		require.Len(t, infos, 3)
		byRef := map[string]store.SessionInfo{}
		for _, in := range infos {
			byRef[in.Ref] = in
		}
		for i, s := range ss {
			in, ok := byRef[ref(t, st, s.ID())]
			require.True(t, ok, "session %d listed", i)
			var d string
			require.NoError(t, in.Get("device", &d))
			require.Equal(t, devices[i], d)
			require.False(t, in.Has("missing"))
			require.ErrorIs(t, in.Get("missing", &d), store.ErrNoAttribute)
			require.ErrorIs(t, in.Get("cart", &d), store.ErrNoAttribute, "not asked for")
			require.WithinDuration(t, s.CreatedAt(), in.Created, time.Millisecond)
			require.WithinDuration(t, s.Deadline(), in.Deadline, time.Millisecond)
			require.False(t, in.LastTouch.Before(in.Created))
			require.True(t, in.Expires.After(time.Now()))
			require.NotEqual(t, s.ID(), in.Ref, "a Ref is not an ID")
		}

		// Revoke the phone by its Ref: its ID finds nothing, the others are intact.
		require.NoError(t, st.Revoke(ctx, user, ref(t, st, ss[1].ID())))
		_, err = st.Load(ctx, ss[1].ID())
		require.ErrorIs(t, err, store.ErrNotFound)
		infos, err = st.Sessions(ctx, user)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{ref(t, st, ss[0].ID()), ref(t, st, ss[2].ID())}, refs(infos))
		// Revoking it again is not an error; bob's session is not alice's to revoke.
		require.NoError(t, st.Revoke(ctx, user, ss[1].ID()))
		require.ErrorIs(t, st.Revoke(ctx, user, other.ID()), store.ErrNotFound)
		_, err = st.Load(ctx, other.ID())
		require.NoError(t, err)

		// Log out everywhere but the laptop.
		require.NoError(t, st.RevokeAll(ctx, user, ss[0].ID()))
		_, err = st.Load(ctx, ss[2].ID())
		require.ErrorIs(t, err, store.ErrNotFound)
		got, err := st.Load(ctx, ss[0].ID())
		require.NoError(t, err)
		require.Equal(t, user, got.User())
		infos, err = st.Sessions(ctx, user)
		require.NoError(t, err)
		require.Equal(t, []string{ref(t, st, ss[0].ID())}, refs(infos))

		// A save of a revoked session writes nothing and resurrects nothing.
		require.NoError(t, ss[2].Set("late", 1))
		require.ErrorIs(t, st.Save(ctx, ss[2]), store.ErrNotFound)
		_, err = st.Load(ctx, ss[2].ID())
		require.ErrorIs(t, err, store.ErrNotFound)

		// Everything, then nothing is left and bob is untouched.
		require.NoError(t, st.RevokeAll(ctx, user))
		_, err = st.Load(ctx, ss[0].ID())
		require.ErrorIs(t, err, store.ErrNotFound)
		infos, err = st.Sessions(ctx, user)
		require.NoError(t, err)
		require.Empty(t, infos)
		infos, err = st.Sessions(ctx, "bob")
		require.NoError(t, err)
		require.Len(t, infos, 1)

		require.ErrorIs(t, st.RevokeAll(ctx, ""), store.ErrNoUser)
		_, err = st.Sessions(ctx, "")
		require.ErrorIs(t, err, store.ErrNoUser)
	})
}

func TestUserIndexFollowsRotateLogoutAndUserChange(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users-rot:"+t.Name()+":"), store.WithGracePeriod(time.Second))
		s := login(t, ctx, st, "carol", "laptop")
		oldID := s.ID()
		require.NoError(t, st.Rotate(ctx, s)) // a privilege change
		require.Equal(t, "carol", s.User())
		infos, err := st.Sessions(ctx, "carol")
		require.NoError(t, err)
		require.Equal(t, []string{ref(t, st, s.ID())}, refs(infos), "the rotated session, not the old ID")

		// A request still carrying the old ID during the grace period, then RevokeAll:
		// neither ID finds a session.
		got, err := st.Load(ctx, oldID)
		require.NoError(t, err)
		require.Equal(t, s.ID(), got.ID())
		require.NoError(t, st.RevokeAll(ctx, "carol"))
		for _, id := range []string{oldID, s.ID()} {
			_, err = st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound)
		}

		// Logout (Destroy) drops the entry at once.
		s = login(t, ctx, st, "carol", "phone")
		require.NoError(t, st.Destroy(ctx, s.ID()))
		n, err := rdb.ZCard(ctx, st.IndexKey("carol")).Result()
		require.NoError(t, err)
		require.Zero(t, n)

		// A session handed from one user to another without a rotation moves index.
		s = login(t, ctx, st, "carol", "kiosk")
		s.SetUser("dave")
		require.NoError(t, st.Save(ctx, s))
		infos, err = st.Sessions(ctx, "carol")
		require.NoError(t, err)
		require.Empty(t, infos)
		infos, err = st.Sessions(ctx, "dave")
		require.NoError(t, err)
		require.Equal(t, []string{ref(t, st, s.ID())}, refs(infos))
		s.SetUser("")
		require.NoError(t, st.Save(ctx, s))
		infos, err = st.Sessions(ctx, "dave")
		require.NoError(t, err)
		require.Empty(t, infos)

		// A new session saved with a user at once (no anonymous step) is listed too.
		s, err = st.NewSession()
		require.NoError(t, err)
		s.SetUser("erin")
		require.NoError(t, st.Save(ctx, s))
		infos, err = st.Sessions(ctx, "erin")
		require.NoError(t, err)
		require.Equal(t, []string{ref(t, st, s.ID())}, refs(infos))

		// A session loaded before RevokeAll cannot be rotated past it.
		s = login(t, ctx, st, "frank", "laptop")
		stale, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		require.NoError(t, st.RevokeAll(ctx, "frank"))
		require.ErrorIs(t, st.Rotate(ctx, stale), store.ErrNotFound)
		infos, err = st.Sessions(ctx, "frank")
		require.NoError(t, err)
		require.Empty(t, infos)
	})
}

func TestExpiredSessionsLeaveTheListWithoutACleanupJob(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users-exp:"+t.Name()+":"),
			store.WithIdleTimeout(time.Second), store.WithTouchInterval(100*time.Millisecond))
		keep := login(t, ctx, st, "gina", "laptop")
		drop := login(t, ctx, st, "gina", "phone")
		require.NotEqual(t, keep.ID(), drop.ID())
		// The laptop stays active; the phone idles out on its own.
		eventually(t, 10*time.Second, func() bool {
			if _, err := st.Load(ctx, keep.ID()); err != nil {
				t.Fatalf("the active session expired: %v", err)
			}
			infos, err := st.Sessions(ctx, "gina")
			require.NoError(t, err)
			return len(infos) == 1 && infos[0].Ref == ref(t, st, keep.ID())
		}, "the idle session leaves the list")
		n, err := rdb.ZCard(ctx, st.IndexKey("gina")).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "the listing pruned the expired entry from the index")
	})
}

func TestIndexAndSessionsLiveInTheirOwnSlots(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	rdb := client(t, topo)
	ctx := t.Context()
	st := newStore(t, rdb, store.WithPrefix("users-slot:"))
	var ids []string
	for _, d := range []string{"a", "b", "c", "d"} {
		ids = append(ids, login(t, ctx, st, "hana", d).ID())
	}
	idxSlot, err := rdb.ClusterKeySlot(ctx, st.IndexKey("hana")).Result()
	require.NoError(t, err)
	slots := map[int64]bool{}
	for _, id := range ids {
		key, err := st.Key(id)
		require.NoError(t, err)
		slot, err := rdb.ClusterKeySlot(ctx, key).Result()
		require.NoError(t, err)
		require.NotEqual(t, idxSlot, slot, "a session in the index's slot would prove nothing")
		slots[slot] = true
	}
	require.Greater(t, len(slots), 1)
	// Listing and revoking work across those slots (a cross-slot command would fail with
	// CROSSSLOT).
	infos, err := st.Sessions(ctx, "hana")
	require.NoError(t, err)
	require.Len(t, infos, len(ids))
	require.NoError(t, st.RevokeAll(ctx, "hana"))
	for _, id := range ids {
		_, err := st.Load(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
}

// A login racing RevokeAll never leaves a session the index doesn't know: every session
// that exists afterwards is listed, and a last RevokeAll leaves none.
func TestLoginRacingRevokeAll(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users-race:"+t.Name()+":"), store.WithGracePeriod(time.Second))
		const user, logins, revokers = "ivan", 1000, 2
		var ids sync.Map
		var wg sync.WaitGroup
		var failed, revokes atomic.Int64
		stop := make(chan struct{})
		for w := range 4 {
			wg.Go(func() {
				for i := range logins / 4 {
					s, err := st.NewSession()
					require.NoError(t, err)
					require.NoError(t, s.Set("n", w*1000+i))
					if i%2 == 0 { // login by rotation of an anonymous session
						require.NoError(t, st.Save(ctx, s))
					}
					s.SetUser(user)
					if i%2 == 0 {
						err = st.Rotate(ctx, s)
					} else {
						err = st.Save(ctx, s)
					}
					if err != nil {
						require.ErrorIs(t, err, store.ErrNotFound, "a login loses a race only to a revoke")
						failed.Add(1)
						continue
					}
					ids.Store(s.ID(), true)
				}
			})
		}
		var rg sync.WaitGroup
		for range revokers {
			rg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					require.NoError(t, st.RevokeAll(ctx, user))
					revokes.Add(1)
				}
			})
		}
		wg.Wait()
		close(stop)
		rg.Wait()
		require.Positive(t, revokes.Load())

		infos, err := st.Sessions(ctx, user)
		require.NoError(t, err)
		listed := map[string]bool{}
		for _, in := range infos {
			listed[in.Ref] = true
		}
		alive := 0
		ids.Range(func(k, _ any) bool {
			id := k.(string)
			if _, err := st.Load(ctx, id); err == nil {
				alive++
				require.True(t, listed[ref(t, st, id)], "live session %s is not in the index", id)
			} else {
				require.ErrorIs(t, err, store.ErrNotFound)
			}
			return true
		})
		t.Logf("%d logins, %d lost a race, %d RevokeAll calls, %d sessions alive after, %d listed", logins, failed.Load(), revokes.Load(), alive, len(infos))
		require.Equal(t, alive, len(infos))

		require.NoError(t, st.RevokeAll(ctx, user))
		ids.Range(func(k, _ any) bool {
			_, err := st.Load(ctx, k.(string))
			require.ErrorIs(t, err, store.ErrNotFound)
			return true
		})
	})
}

// A login caught between its index entry and its write, when a RevokeAll passes in
// between, does not create the session the revoke saw missing: it takes a fresh ID,
// which is listed, and the old one stays blocked.
func TestLoginCaughtByARevokeTakesAFreshID(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users-tomb:"+t.Name()+":"))
		s, err := st.NewSession()
		require.NoError(t, err)
		s.SetUser("lena")
		first := s.ID()
		// What the login's first step leaves: an index entry, no session yet.
		require.NoError(t, rdb.ZAdd(ctx, st.IndexKey("lena"), redis.Z{Score: 1e15, Member: first}).Err())
		require.NoError(t, st.RevokeAll(ctx, "lena"))
		key, err := st.Key(first)
		require.NoError(t, err)
		require.Equal(t, "1", rdb.HGet(ctx, key, "_r").Val(), "a tombstone blocks the key")
		require.Positive(t, rdb.PTTL(ctx, key).Val())

		require.NoError(t, st.Save(ctx, s))
		require.NotEqual(t, first, s.ID(), "the new session took another ID")
		_, err = st.Load(ctx, first)
		require.ErrorIs(t, err, store.ErrNotFound)
		infos, err := st.Sessions(ctx, "lena")
		require.NoError(t, err)
		require.Equal(t, []string{ref(t, st, s.ID())}, refs(infos))
	})
}

// A revoke of a session that a rotation is copying (marked with the new tag) blocks the
// new tag too.
func TestRevokeFollowsARotationInFlight(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users-inflight:"+t.Name()+":"))
		s := login(t, ctx, st, "mia", "laptop")
		next, err := st.NewSession() // stands for the ID the rotation picked
		require.NoError(t, err)
		key, err := st.Key(s.ID())
		require.NoError(t, err)
		require.NoError(t, rdb.HSet(ctx, key, "_n", next.ID()).Err())
		require.NoError(t, st.RevokeAll(ctx, "mia"))
		nextKey, err := st.Key(next.ID())
		require.NoError(t, err)
		require.Equal(t, "1", rdb.HGet(ctx, nextKey, "_r").Val(), "the rotation's target is blocked")
		_, err = st.Load(ctx, s.ID())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// A rotation that completed between RevokeAll's read of the index and its revoke is
// followed through the old key's forward pointer; a logout during a rotation blocks its
// target; revoking a rotated session's old ID ends the new one.
func TestRevokeAndLogoutFollowRotations(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users-follow:"+t.Name()+":"), store.WithGracePeriod(time.Minute))
		idx := st.IndexKey("zoe")

		s := login(t, ctx, st, "zoe", "laptop")
		oldID := s.ID()
		require.NoError(t, st.Rotate(ctx, s))
		// The index as RevokeAll would have read it before the rotation listed the new ID.
		require.NoError(t, rdb.ZRem(ctx, idx, s.ID()).Err())
		require.NoError(t, rdb.ZAdd(ctx, idx, redis.Z{Score: 1e15, Member: oldID}).Err())
		require.NoError(t, st.RevokeAll(ctx, "zoe"))
		for _, id := range []string{oldID, s.ID()} {
			_, err := st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound)
		}

		// Logout while a rotation is copying the session.
		s = login(t, ctx, st, "zoe", "phone")
		target, err := st.NewSession()
		require.NoError(t, err)
		key, _ := st.Key(s.ID())
		require.NoError(t, rdb.HSet(ctx, key, "_n", target.ID()).Err())
		require.NoError(t, st.Destroy(ctx, s.ID()))
		targetKey, _ := st.Key(target.ID())
		require.Equal(t, "1", rdb.HGet(ctx, targetKey, "_r").Val(), "the rotation's target is blocked")

		// Revoke by the old ID during the grace period.
		s = login(t, ctx, st, "zoe", "tablet")
		oldID = s.ID()
		require.NoError(t, st.Rotate(ctx, s))
		require.NoError(t, st.Revoke(ctx, "zoe", oldID))
		for _, id := range []string{oldID, s.ID()} {
			_, err := st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
		// Revoking it again, by ID or by a Ref no longer listed, is not an error.
		require.NoError(t, st.Revoke(ctx, "zoe", s.ID()))
		require.NoError(t, st.Revoke(ctx, "zoe", ref(t, st, s.ID())))
	})
}

// Two copies of one session: one leaves the user, the other gives it back. The session
// is listed in the end.
func TestUserHandedBackIsListed(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("users-back:"+t.Name()+":"))
		s := login(t, ctx, st, "yves", "laptop")
		c1, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		c2, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		c1.SetUser("")
		require.NoError(t, st.Save(ctx, c1))
		// Whatever the index held for the session now, c2 must list it again.
		require.NoError(t, rdb.Del(ctx, st.IndexKey("yves")).Err())
		c2.SetUser("yves")
		require.NoError(t, st.Save(ctx, c2))
		infos, err := st.Sessions(ctx, "yves")
		require.NoError(t, err)
		require.Equal(t, []string{ref(t, st, s.ID())}, refs(infos))
	})
}

// roundTrips counts what a client sends to Redis: one per command outside a pipeline,
// one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// seedUser saves n sessions of user concurrently and returns their IDs.
func seedUser(t testing.TB, ctx context.Context, st *store.Store, user string, n int) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	var first atomic.Value
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				s, err := st.NewSession()
				if err == nil {
					_ = s.Set("device", "d"+strconv.Itoa(i))
					s.SetUser(user)
					err = st.Save(ctx, s)
				}
				if err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				ids[i] = s.ID()
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return ids
}

// 10,000 sessions of one user are listed and revoked in a bounded number of round trips:
// the index, one pipeline (per node), and the index cleanup.
func TestTenThousandSessionsInBoundedRoundTrips(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, _ redis.UniversalClient) {
		ctx := t.Context()
		rdb := client(t, topo)
		st := newStore(t, rdb, store.WithPrefix(uniquePrefix(t)))
		const n = 10_000
		ids := seedUser(t, ctx, st, "jane", n)
		// Scripts are loaded by the first call (a NOSCRIPT pass); count a warm call.
		_, err := st.Sessions(ctx, "jane", "device")
		require.NoError(t, err)
		rt := &roundTrips{}
		rdb.AddHook(rt)
		start := time.Now()
		infos, err := st.Sessions(ctx, "jane", "device")
		listTook := time.Since(start)
		require.NoError(t, err)
		require.Len(t, infos, n)
		listTrips := rt.n.Load()
		rt.n.Store(0)
		start = time.Now()
		require.NoError(t, st.RevokeAll(ctx, "jane", ids[0]))
		revokeTook := time.Since(start)
		revokeTrips := rt.n.Load()
		t.Logf("%s: listed %d sessions in %d round trips (%v); revoked %d in %d round trips (%v)", topo.Kind(), n, listTrips, listTook, n-1, revokeTrips, revokeTook)
		// A pipeline counts once in the hook however many nodes it reaches (a cluster
		// client sends it to each node at once).
		require.EqualValues(t, 2, listTrips, "index read + one pipeline")
		require.EqualValues(t, 3, revokeTrips, "index read + one pipeline + index cleanup")
		// The index cleanup dropped the 9,999 entries and their logins, in one call.
		listed, err := rdb.ZCard(ctx, st.IndexKey("jane")).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, listed, "entries left in the index")
		logins, err := rdb.HLen(ctx, st.IndexKey("jane")+":l").Result()
		require.NoError(t, err)
		require.EqualValues(t, 2, logins, "logins left beside the index: the session kept's, and the last login's time")
		infos, err = st.Sessions(ctx, "jane")
		require.NoError(t, err)
		require.Len(t, infos, 1)
		for _, id := range []string{ids[1], ids[n/2], ids[n-1]} {
			_, err := st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
	})
}

// BenchmarkUserSessions10k: list and revoke-all of one user with 10,000 sessions (one
// pipeline each). Run: go test -run '^$' -bench UserSessions10k -benchtime 5x ./store/
func BenchmarkUserSessions10k(b *testing.B) {
	topo := cluster.Shared(b, cluster.KindStandalone)
	rdb := client(b, topo)
	ctx := context.Background()
	st, err := store.New(rdb, store.WithPrefix("bench-users:"))
	require.NoError(b, err)
	const n = 10_000
	b.Run("Sessions", func(b *testing.B) {
		b.ReportAllocs()
		seedUser(b, ctx, st, "list", n)
		b.ResetTimer()
		for b.Loop() {
			infos, err := st.Sessions(ctx, "list", "device")
			if err != nil || len(infos) != n {
				b.Fatalf("%d sessions, %v", len(infos), err)
			}
		}
		b.ReportMetric(float64(n), "sessions")
	})
	b.Run("RevokeAll", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			user := fmt.Sprintf("revoke-%d", i)
			seedUser(b, ctx, st, user, n)
			b.StartTimer()
			if err := st.RevokeAll(ctx, user); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n), "sessions")
	})
}
