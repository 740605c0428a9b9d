package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// increment adds one to the session's "n".
func increment(s *store.Session) error {
	var n int64
	if err := s.Get("n", &n); err != nil && !errors.Is(err, store.ErrNoAttribute) {
		return err
	}
	return s.Set("n", n+1)
}

func TestUpdateLosesNoIncrement(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		for _, versionCheck := range []bool{false, true} {
			// Two app servers: two stores, each on its own client.
			st1 := newStore(t, rdb, store.WithVersionCheck(versionCheck))
			st2 := newStore(t, client(t, topo), store.WithVersionCheck(versionCheck))
			s, err := st1.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("other", "kept"))
			require.NoError(t, st1.Save(ctx, s))

			const goroutines, each = 8, 10
			var wg sync.WaitGroup
			for g := range goroutines {
				st := st1
				if g%2 == 1 {
					st = st2
				}
				wg.Go(func() {
					for range each {
						if err := st.Update(ctx, s.ID(), increment); err != nil {
							t.Errorf("update: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()

			got, err := st2.Load(ctx, s.ID())
			require.NoError(t, err)
			var n int64
			require.NoError(t, got.Get("n", &n))
			require.EqualValues(t, goroutines*each, n, "version check %t", versionCheck)
			var other string
			require.NoError(t, got.Get("other", &other))
			require.Equal(t, "kept", other)
			require.EqualValues(t, 1+goroutines*each, got.Version(), "one save per update")
			require.EqualValues(t, 1+goroutines*each/2, st1.Stats().Saves, "Update's saves count in the store's stats")
		}
	})
}

func TestUpdate(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	rdb := client(t, topo)
	ctx := t.Context()
	st := newStore(t, rdb)
	other := newStore(t, client(t, topo))
	saved := func(t *testing.T) *store.Session {
		t.Helper()
		s, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("n", int64(1)))
		require.NoError(t, st.Save(ctx, s))
		return s
	}

	t.Run("the update is saved and the session keeps its other attributes", func(t *testing.T) {
		s := saved(t)
		require.NoError(t, st.Update(ctx, s.ID(), func(s *store.Session) error { return s.Set("cart", []string{"book"}) }))
		got, err := other.Load(ctx, s.ID())
		require.NoError(t, err)
		require.Equal(t, []string{"cart", "n"}, got.Keys())
		require.EqualValues(t, 2, got.Version())
	})

	t.Run("an error from fn saves nothing and is returned", func(t *testing.T) {
		s := saved(t)
		boom := errors.New("boom")
		err := st.Update(ctx, s.ID(), func(s *store.Session) error {
			_ = s.Set("n", int64(99))
			return boom
		})
		require.ErrorIs(t, err, boom)
		got, err := other.Load(ctx, s.ID())
		require.NoError(t, err)
		var n int64
		require.NoError(t, got.Get("n", &n))
		require.EqualValues(t, 1, n)
		require.EqualValues(t, 1, got.Version())
	})

	t.Run("a session that keeps changing under it ends in ErrConflict after the bound", func(t *testing.T) {
		s := saved(t)
		runs := 0
		err := st.Update(ctx, s.ID(), func(mine *store.Session) error {
			runs++
			// Another server saves between this load and this save, every time.
			theirs, err := other.Load(ctx, s.ID())
			if err != nil {
				return err
			}
			if err := theirs.Set("theirs", runs); err != nil {
				return err
			}
			if err := other.Save(ctx, theirs); err != nil {
				return err
			}
			return mine.Set("n", int64(100))
		})
		require.ErrorIs(t, err, store.ErrConflict)
		require.Equal(t, store.UpdateAttempts, runs)
		got, err := other.Load(ctx, s.ID())
		require.NoError(t, err)
		var n int64
		require.NoError(t, got.Get("n", &n))
		require.EqualValues(t, 1, n, "no attempt that met a concurrent save wrote anything")
	})

	t.Run("a context that ends stops the retries", func(t *testing.T) {
		s := saved(t)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		runs := 0
		err := st.Update(cctx, s.ID(), func(mine *store.Session) error {
			runs++
			theirs, err := other.Load(ctx, s.ID())
			if err != nil {
				return err
			}
			_ = theirs.Set("theirs", runs)
			if err := other.Save(ctx, theirs); err != nil {
				return err
			}
			cancel()
			return mine.Set("n", int64(100))
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 1, runs)
	})

	t.Run("a gone session is ErrNotFound and is not brought back", func(t *testing.T) {
		s := saved(t)
		require.NoError(t, other.Destroy(ctx, s.ID()))
		ran := false
		err := st.Update(ctx, s.ID(), func(s *store.Session) error { ran = true; return s.Set("n", int64(5)) })
		require.ErrorIs(t, err, store.ErrNotFound)
		require.False(t, ran)
		key, err := st.Key(s.ID())
		require.NoError(t, err)
		requireNoSession(t, rdb, key)
	})

	t.Run("an old ID within the grace period updates the rotated session", func(t *testing.T) {
		s := saved(t)
		old := s.ID()
		require.NoError(t, st.Rotate(ctx, s)) // the user stays the same (none)
		require.NoError(t, st.Update(ctx, old, increment))
		got, err := other.Load(ctx, s.ID())
		require.NoError(t, err)
		var n int64
		require.NoError(t, got.Get("n", &n))
		require.EqualValues(t, 2, n)
	})

	t.Run("a malformed ID sends nothing", func(t *testing.T) {
		var calls atomic.Int64
		err := st.Update(ctx, "not-an-id", func(*store.Session) error { calls.Add(1); return nil })
		require.ErrorIs(t, err, store.ErrInvalidID)
		require.Zero(t, calls.Load())
	})

	t.Run("an unchanged session sends no save", func(t *testing.T) {
		s := saved(t)
		before := st.Stats().Saves
		require.NoError(t, st.Update(ctx, s.ID(), func(*store.Session) error { return nil }))
		require.Equal(t, before, st.Stats().Saves)
	})
}
