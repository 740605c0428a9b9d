package store_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// formatSession saves a new session of user with one attribute and returns it and its key.
func formatSession(t *testing.T, st *store.Store, user string) (*store.Session, string) {
	t.Helper()
	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("a", "x"))
	s.SetUser(user)
	require.NoError(t, st.Save(t.Context(), s))
	key, err := st.Key(s.ID())
	require.NoError(t, err)
	return s, key
}

// A reserved field a newer writer added ('_' and an uppercase letter, FORMAT.md) is
// ignored by every reader and kept by every writer: the session loads, saves, is
// touched, listed, inspected and destroyed as any other, and the field stays.
func TestFormatReservedFieldsAreIgnoredAndKept(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("format-reserved:"))
		const user = "format-reserved-user"
		s, key := formatSession(t, st, user)
		require.NoError(t, rdb.HSet(ctx, key, "_Xnext", "from a newer writer").Err())
		kept := func(t *testing.T) {
			t.Helper()
			v, err := rdb.HGet(ctx, key, "_Xnext").Result()
			require.NoError(t, err, "the reserved field is kept")
			require.Equal(t, "from a newer writer", v)
		}

		got, err := st.Load(ctx, s.ID())
		require.NoError(t, err, "loads")
		var a string
		require.NoError(t, got.Get("a", &a))
		require.Equal(t, "x", a)
		require.Equal(t, []string{"a"}, got.Keys(), "a reserved field is no attribute")

		require.NoError(t, got.Set("b", 2))
		require.NoError(t, st.Save(ctx, got), "saves")
		kept(t)

		// A touch: the last touch made old, so the touch is due by every clock.
		require.NoError(t, rdb.HSet(ctx, key, "_t", "1").Err())
		touched, err := st.Load(ctx, s.ID())
		require.NoError(t, err, "loads, touched")
		require.Greater(t, touched.LastTouch().UnixMilli(), int64(1), "touched")
		kept(t)

		list, err := st.Sessions(ctx, user)
		require.NoError(t, err, "listed")
		require.Len(t, list, 1)
		ref, err := st.Ref(s.ID())
		require.NoError(t, err)
		require.Equal(t, ref, list[0].Ref)

		in, err := st.Inspect(ctx, s.ID())
		require.NoError(t, err, "inspected")
		require.Equal(t, []string{"a", "b"}, in.Attrs)

		// A rotation's copy holds what version 1 knows: the field stays with the old key
		// until that key is replaced (FORMAT.md: reserved fields are per key).
		require.NoError(t, st.Rotate(ctx, touched))
		newKey, err := st.Key(touched.ID())
		require.NoError(t, err)
		require.Zero(t, rdb.HExists(ctx, newKey, "_Xnext").Val(), "not carried by a rotation")
		_, err = st.Load(ctx, s.ID())
		require.NoError(t, err, "the old ID forwards")

		// A forward pointer and a tombstone with a reserved field are no foreign data.
		other, otherKey := formatSession(t, st, "")
		require.NoError(t, rdb.HSet(ctx, otherKey, "_Qx", "1").Err())
		require.NoError(t, st.Destroy(ctx, other.ID()), "destroyed")
		require.NoError(t, rdb.HSet(ctx, key, "_Xnext", "on a pointer").Err())
		_, err = st.Load(ctx, s.ID())
		require.NoError(t, err, "a pointer with a reserved field forwards")
		require.NoError(t, st.Destroy(ctx, s.ID()), "a chain through it is destroyed")
		_, err = st.Load(ctx, touched.ID())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// Any other unknown field is still foreign data: refused as corrupt, and left untouched.
func TestFormatUnknownFieldStaysCorrupt(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("format-unknown:"))
		for _, field := range []string{"_x", "_xNext", "foo", "_1"} {
			t.Run(field, func(t *testing.T) {
				s, key := formatSession(t, st, "")
				require.NoError(t, rdb.HSet(ctx, key, field, "1").Err())
				before, err := rdb.Dump(ctx, key).Result()
				require.NoError(t, err)

				_, err = st.Load(ctx, s.ID())
				require.ErrorIs(t, err, store.ErrCorrupt, "Load")
				_, err = st.Inspect(ctx, s.ID())
				require.ErrorIs(t, err, store.ErrCorrupt, "Inspect")
				err = st.Destroy(ctx, s.ID())
				require.ErrorIs(t, err, store.ErrCorrupt, "Destroy")

				after, err := rdb.Dump(ctx, key).Result()
				require.NoError(t, err)
				require.Equal(t, before, after, "left untouched")
			})
		}
	})
}

// A key of a newer format ('_F' > 1) is refused whole, by every reader and writer, with a
// *FormatError, and left byte-identical.
func TestFormatNewerVersionIsRefused(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("format-newer:"))
		const user = "format-newer-user"
		refused := func(t *testing.T, err error, what string) {
			t.Helper()
			require.ErrorIs(t, err, store.ErrFormatVersion, what)
			var fe *store.FormatError
			require.ErrorAs(t, err, &fe, what)
			require.EqualValues(t, 2, fe.Version, what)
			require.EqualValues(t, 1, fe.Known, what)
			require.NotErrorIs(t, err, store.ErrCorrupt, what)
		}

		s, key := formatSession(t, st, user)
		// A version 2 session, as a newer writer would leave it: a field of its own, and
		// its last touch due for a touch by every clock.
		require.NoError(t, rdb.HSet(ctx, key, "_F", "2", "_w", "new", "_t", "1").Err())
		before, err := rdb.Dump(ctx, key).Result()
		require.NoError(t, err)
		ttlBefore := rdb.PTTL(ctx, key).Val()
		unchanged := func(t *testing.T, what string) {
			t.Helper()
			after, err := rdb.Dump(ctx, key).Result()
			require.NoError(t, err, what)
			require.Equal(t, before, after, "%s: the key is byte-identical", what)
			require.LessOrEqual(t, rdb.PTTL(ctx, key).Val(), ttlBefore, "%s: its TTL was not extended", what)
		}

		_, err = st.Load(ctx, s.ID())
		refused(t, err, "Load")
		unchanged(t, "Load")

		_, err = st.Inspect(ctx, s.ID())
		refused(t, err, "Inspect")

		require.NoError(t, s.Set("b", 1))
		refused(t, st.Save(ctx, s), "Save")
		unchanged(t, "Save")

		refused(t, st.Rotate(ctx, s), "Rotate")
		unchanged(t, "Rotate")

		refused(t, st.Destroy(ctx, s.ID()), "Destroy")
		unchanged(t, "Destroy")

		err = st.Revoke(ctx, user, s.ID())
		refused(t, err, "Revoke")
		unchanged(t, "Revoke")

		_, err = st.Sessions(ctx, user)
		refused(t, err, "Sessions")
		unchanged(t, "Sessions")

		// A forward pointer of a newer format is not followed.
		p, pkey := formatSession(t, st, user)
		old := p.ID()
		require.NoError(t, st.Rotate(ctx, p))
		require.NoError(t, rdb.HSet(ctx, pkey, "_F", "2").Err())
		_, err = st.Load(ctx, old)
		refused(t, err, "Load of a pointer")
		refused(t, st.Destroy(ctx, old), "Destroy of a pointer")
		_, err = st.Load(ctx, p.ID())
		require.NoError(t, err, "the session it led to is left alone")

		// Version 1, written out, is read as ever.
		v1, v1key := formatSession(t, st, "")
		require.NoError(t, rdb.HSet(ctx, v1key, "_F", "1").Err())
		_, err = st.Load(ctx, v1.ID())
		require.NoError(t, err)
		require.NoError(t, v1.Set("b", 1))
		require.NoError(t, st.Save(ctx, v1))
	})
}
