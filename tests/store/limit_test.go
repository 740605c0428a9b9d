package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// loginRace runs n logins of user at once, through two stores (two app servers): the even
// ones a Save that gives a new session the user, the odd ones the login handler's way
// (an anonymous session saved beforehand, then SetUser and Rotate). It returns each
// login's session and error.
func loginRace(t *testing.T, ctx context.Context, stores [2]*store.Store, user string, n int) ([]*store.Session, []error) {
	t.Helper()
	ss, errs := make([]*store.Session, n), make([]error, n)
	for i := range n {
		s, err := stores[i%2].NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("n", i))
		if i%2 == 1 {
			require.NoError(t, stores[1].Save(ctx, s))
		}
		ss[i] = s
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			ss[i].SetUser(user)
			if i%2 == 0 {
				errs[i] = stores[0].Save(ctx, ss[i])
			} else {
				errs[i] = stores[1].Rotate(ctx, ss[i])
			}
		})
	}
	close(start)
	wg.Wait()
	return ss, errs
}

// live counts the sessions that load, and checks that the others are ErrNotFound.
func live(t *testing.T, ctx context.Context, st *store.Store, ss []*store.Session) (ids []string) {
	t.Helper()
	for _, s := range ss {
		got, err := st.Load(ctx, s.ID())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		require.NoError(t, err)
		ids = append(ids, got.ID())
	}
	return ids
}

func refsOf(t *testing.T, st *store.Store, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = ref(t, st, id)
	}
	return out
}

// 50 concurrent logins of one user with a maximum of 3 and RefuseLogin: exactly 3 are let
// in, every other one is refused with ErrTooManySessions and leaves its session as it was.
func TestMaxSessionsRefuseLoginRace(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		const logins, limit = 50, 3
		opts := []store.Option{store.WithPrefix(uniquePrefix(t)), store.WithMaxSessions(limit, store.RefuseLogin)}
		stores := [2]*store.Store{newStore(t, rdb, opts...), newStore(t, rdb, opts...)}
		user := "refused@example.com"
		ss, errs := loginRace(t, ctx, stores, user, logins)
		var in []*store.Session
		refused := 0
		for i, err := range errs {
			if err == nil {
				in = append(in, ss[i])
				continue
			}
			require.ErrorIs(t, err, store.ErrTooManySessions, "login %d", i)
			var le *store.SessionLimitError
			require.ErrorAs(t, err, &le)
			require.Equal(t, limit, le.Max)
			refused++
			if i%2 == 1 { // a refused rotation: the anonymous session is intact, with no user
				got, err := stores[1].Load(ctx, ss[i].ID())
				require.NoError(t, err, "refused login %d keeps its session", i)
				require.Empty(t, got.User())
			}
		}
		infos, err := stores[0].Sessions(ctx, user)
		require.NoError(t, err)
		t.Logf("%d concurrent logins, maximum %d: %d let in, %d refused; %d live sessions listed", logins, limit, len(in), refused, len(infos))
		require.Equal(t, limit, len(in), "logins let in")
		require.Equal(t, logins-limit, refused)
		require.Len(t, live(t, ctx, stores[0], in), limit, "sessions of the logins let in that load")
		require.ElementsMatch(t, refsOf(t, stores[0], ids(in)), refs(infos))
	})
}

// 50 concurrent logins of one user with a maximum of 3 and EvictOldest: every login
// succeeds and, once all are done, exactly 3 of the sessions are live.
func TestMaxSessionsEvictOldestRace(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		const logins, limit = 50, 3
		opts := []store.Option{store.WithPrefix(uniquePrefix(t)), store.WithMaxSessions(limit, store.EvictOldest)}
		stores := [2]*store.Store{newStore(t, rdb, opts...), newStore(t, rdb, opts...)}
		user := "evicted@example.com"
		ss, errs := loginRace(t, ctx, stores, user, logins)
		for i, err := range errs {
			require.NoError(t, err, "login %d", i)
		}
		left := live(t, ctx, stores[0], ss)
		infos, err := stores[1].Sessions(ctx, user)
		require.NoError(t, err)
		t.Logf("%d concurrent logins, maximum %d: %d live sessions left (%d listed), %d evicted", logins, limit, len(left), len(infos), logins-len(left))
		require.Len(t, left, limit, "live sessions left")
		require.ElementsMatch(t, refsOf(t, stores[0], left), refs(infos))
	})
}

func ids(ss []*store.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID()
	}
	return out
}

// EvictOldest evicts by login time: the oldest login goes, a rotation keeps its session's
// place, and a session that expired (gone from Redis) is not counted.
func TestMaxSessionsEvictOldestOrder(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix(uniquePrefix(t)), store.WithMaxSessions(3, store.EvictOldest))
		user := "order@example.com"
		a := login(t, ctx, st, user, "a")
		b := login(t, ctx, st, user, "b")
		c := login(t, ctx, st, user, "c")
		require.Len(t, live(t, ctx, st, []*store.Session{a, b, c}), 3)
		d := login(t, ctx, st, user, "d")
		require.Equal(t, []string{b.ID(), c.ID(), d.ID()}, live(t, ctx, st, []*store.Session{a, b, c, d}), "the oldest login is evicted")

		// b rotates (a privilege change): not a login, it keeps b's place.
		require.NoError(t, st.Rotate(ctx, b))
		e := login(t, ctx, st, user, "e")
		require.Equal(t, []string{c.ID(), d.ID(), e.ID()}, live(t, ctx, st, []*store.Session{b, c, d, e}), "the rotated session kept its login's place")

		// c expires (its key vanishes): it is not counted, so the next login evicts no one.
		require.NoError(t, rdb.Del(ctx, keyOf(t, st, c.ID())).Err())
		f := login(t, ctx, st, user, "f")
		require.Equal(t, []string{d.ID(), e.ID(), f.ID()}, live(t, ctx, st, []*store.Session{d, e, f}))
		infos, err := st.Sessions(ctx, user)
		require.NoError(t, err)
		require.ElementsMatch(t, refsOf(t, st, []string{d.ID(), e.ID(), f.ID()}), refs(infos))
	})
}

func keyOf(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	k, err := st.Key(id)
	require.NoError(t, err)
	return k
}

// RefuseLogin counts live sessions and logins in flight: a logout or an expired session
// makes room, a refused login writes nothing, and a session that changes to another
// user stops counting for the first.
func TestMaxSessionsRefuseLoginCountsLiveSessions(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix(uniquePrefix(t)), store.WithMaxSessions(2, store.RefuseLogin))
		user := "count@example.com"
		a := login(t, ctx, st, user, "a")
		b := login(t, ctx, st, user, "b")

		// A third login is refused, the Save way and the Rotate way.
		s, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("k", "v"))
		s.SetUser(user)
		require.ErrorIs(t, st.Save(ctx, s), store.ErrTooManySessions)
		require.True(t, s.IsNew(), "nothing written")
		require.Empty(t, s.User(), "the refused SetUser is undone")
		n, err := rdb.Exists(ctx, keyOf(t, st, s.ID())).Result()
		require.NoError(t, err)
		require.Zero(t, n, "no key written for a refused login")
		require.NoError(t, st.Save(ctx, s), "saved again: an anonymous session")
		got, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		require.Empty(t, got.User())
		v, err := store.Get[string](got, "k")
		require.NoError(t, err)
		require.Equal(t, "v", v)
		anon, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, anon.Set("cart", "1"))
		require.NoError(t, st.Save(ctx, anon))
		anonID := anon.ID()
		anon.SetUser(user)
		err = st.Rotate(ctx, anon)
		require.ErrorIs(t, err, store.ErrTooManySessions)
		require.Equal(t, anonID, anon.ID(), "a refused rotation keeps the old ID")
		require.Empty(t, anon.User(), "the refused SetUser is undone")
		got, err = st.Load(ctx, anonID)
		require.NoError(t, err)
		require.Empty(t, got.User())

		// A logout makes room.
		require.NoError(t, st.Destroy(ctx, a.ID()))
		anon.SetUser(user)
		require.NoError(t, st.Rotate(ctx, anon))
		// An expired session makes room (its entry is still in the index).
		require.NoError(t, rdb.Del(ctx, keyOf(t, st, b.ID())).Err())
		c := login(t, ctx, st, user, "c")
		// A session that changes user stops counting for the first user.
		c.SetUser("someone-else")
		require.NoError(t, st.Rotate(ctx, c))
		d := login(t, ctx, st, user, "d")
		infos, err := st.Sessions(ctx, user)
		require.NoError(t, err)
		require.ElementsMatch(t, refsOf(t, st, []string{anon.ID(), d.ID()}), refs(infos))
		_, err = st.NewSession()
		require.NoError(t, err)
		e, err := st.NewSession()
		require.NoError(t, err)
		e.SetUser(user)
		require.NoError(t, e.Set("k", "v"))
		require.ErrorIs(t, st.Save(ctx, e), store.ErrTooManySessions, "full again")
	})
}

// uniquePrefix is a key prefix of the test's own, also when the test runs again on the
// same topology (-count).
func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("%s:%d:", t.Name(), time.Now().UnixNano())
}

// A session in the middle of a rotation (its copy written, its old key not yet a forward
// pointer: both live, with one login time) counts once: with a maximum of 3 a login then
// evicts the one oldest session, not two; with RefuseLogin and a maximum of 4 the login
// is let in (3 sessions), not refused.
func TestMaxSessionsCountARotationInFlightOnce(t *testing.T) {
	t.Cleanup(func() { testhook.SetRotateForwardHook(nil) })
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		for _, p := range []store.LimitPolicy{store.EvictOldest, store.RefuseLogin} {
			limit := 3
			if p == store.RefuseLogin {
				limit = 4
			}
			st := newStore(t, rdb, store.WithPrefix(uniquePrefix(t)), store.WithMaxSessions(limit, p), store.WithGracePeriod(time.Minute))
			user := "rotating@example.com"
			b := login(t, ctx, st, user, "b")
			c := login(t, ctx, st, user, "c")
			r := login(t, ctx, st, user, "r")
			var d *store.Session
			var derr error
			testhook.SetRotateForwardHook(func() {
				testhook.SetRotateForwardHook(nil)
				d, derr = st.NewSession()
				if derr == nil {
					d.SetUser(user)
					derr = st.Save(ctx, d)
				}
			})
			require.NoError(t, st.Rotate(ctx, r)) // a privilege change: the same user
			require.NoError(t, derr, "%v: the login during the rotation", p)
			if p == store.RefuseLogin {
				require.Equal(t, []string{b.ID(), c.ID(), r.ID(), d.ID()}, live(t, ctx, st, []*store.Session{b, c, r, d}))
				continue
			}
			require.Equal(t, []string{c.ID(), r.ID(), d.ID()}, live(t, ctx, st, []*store.Session{b, c, r, d}), "only the oldest login, b, is evicted")
		}
	})
}
