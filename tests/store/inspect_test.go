package store_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/store"
)

func TestInspect(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		prefix := "inspect:" + t.Name() + ":"
		st := newStore(t, rdb, store.WithPrefix(prefix), store.WithGracePeriod(time.Minute))
		s, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("cart", []string{"apple"}))
		require.NoError(t, s.Set("n", 7))
		require.NoError(t, st.Save(ctx, s))
		s.SetUser("alice")
		require.NoError(t, st.Rotate(ctx, s)) // a login: the old ID leads nowhere
		key, err := st.Key(s.ID())
		require.NoError(t, err)
		require.NoError(t, rdb.PExpire(ctx, key, 10*time.Minute).Err()) // a touch would extend it
		before, err := rdb.HGetAll(ctx, key).Result()
		require.NoError(t, err)

		t.Run("a session's own expiry and cookie persistence", func(t *testing.T) {
			own := newStore(t, rdb, store.WithPrefix(prefix), store.WithMaxIdleTimeout(time.Hour))
			r, err := own.NewSession()
			require.NoError(t, err)
			require.NoError(t, r.Set("k", "v"))
			require.NoError(t, r.SetIdleTimeout(45*time.Minute))
			r.SetPersistent(true)
			require.NoError(t, own.Save(ctx, r))
			in, err := own.Inspect(ctx, r.ID())
			require.NoError(t, err)
			require.Equal(t, 45*time.Minute, in.IdleTimeout)
			require.Equal(t, "persistent", in.Persistence)
			in, err = st.Inspect(ctx, s.ID())
			require.NoError(t, err)
			require.Zero(t, in.IdleTimeout, "none of its own")
			require.Empty(t, in.Persistence)
		})

		t.Run("reads metadata, attribute names and values", func(t *testing.T) {
			in, err := st.Inspect(ctx, s.ID())
			require.NoError(t, err)
			require.Equal(t, s.ID(), in.ID)
			require.Equal(t, key, in.Key)
			require.Empty(t, in.Forwarded)
			require.False(t, in.Tombstone)
			require.Equal(t, s.Version(), in.Version)
			require.Equal(t, "alice", in.User)
			require.Equal(t, "msgpack", in.Codec)
			require.Equal(t, []string{"cart", "n"}, in.Attrs)
			require.WithinDuration(t, s.CreatedAt(), in.Created, time.Millisecond)
			require.WithinDuration(t, s.Deadline(), in.Deadline, time.Millisecond)
			require.False(t, in.LastTouch.Before(in.Created))
			require.Greater(t, in.TTL, 9*time.Minute)
			require.LessOrEqual(t, in.TTL, 10*time.Minute)
			var cart []string
			require.NoError(t, in.Get("cart", &cart))
			require.Equal(t, []string{"apple"}, cart)
			require.ErrorIs(t, in.Get("missing", &cart), store.ErrNoAttribute)
			enc, ok := in.Encoded("n")
			require.True(t, ok)
			require.Equal(t, []byte{0x07}, enc)
		})
		t.Run("writes nothing", func(t *testing.T) {
			after, err := rdb.HGetAll(ctx, key).Result()
			require.NoError(t, err)
			require.Equal(t, before, after)
			ttl, err := rdb.PTTL(ctx, key).Result()
			require.NoError(t, err)
			require.LessOrEqual(t, ttl, 10*time.Minute)
		})
		t.Run("reads a session of another codec, and says so on Get", func(t *testing.T) {
			js := newStore(t, rdb, store.WithPrefix(prefix), store.WithCodec(codec.JSON))
			in, err := js.Inspect(ctx, s.ID())
			require.NoError(t, err)
			require.Equal(t, "msgpack", in.Codec)
			var n int
			require.ErrorIs(t, in.Get("n", &n), store.ErrCodecMismatch)
		})
		t.Run("follows a forward pointer", func(t *testing.T) {
			old := s.ID()
			require.NoError(t, st.Rotate(ctx, s)) // same user: the old ID forwards
			in, err := st.Inspect(ctx, old)
			require.NoError(t, err)
			require.Equal(t, s.ID(), in.ID)
			require.Equal(t, []string{old}, in.Forwarded)
		})
		t.Run("reports a tombstone", func(t *testing.T) {
			require.NoError(t, st.Revoke(ctx, "alice", s.ID()))
			in, err := st.Inspect(ctx, s.ID())
			require.NoError(t, err)
			require.True(t, in.Tombstone)
			require.Empty(t, in.Attrs)
			require.Positive(t, in.TTL)
		})
		t.Run("missing, malformed, foreign", func(t *testing.T) {
			fresh, err := st.NewSession()
			require.NoError(t, err)
			_, err = st.Inspect(ctx, fresh.ID())
			require.ErrorIs(t, err, store.ErrNotFound)
			_, err = st.Inspect(ctx, "{not-an-id}")
			require.ErrorIs(t, err, store.ErrInvalidID)
			k, err := st.Key(fresh.ID())
			require.NoError(t, err)
			require.NoError(t, rdb.HSet(ctx, k, "foo", "bar").Err())
			require.NoError(t, rdb.Expire(ctx, k, time.Minute).Err())
			_, err = st.Inspect(ctx, fresh.ID())
			require.ErrorIs(t, err, store.ErrCorrupt)
		})
	})
}
