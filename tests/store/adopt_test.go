package store_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// lostClaimReply is a go-redis hook that lets the first claim of legacy key through to
// Redis and then loses its reply (io.EOF, as a connection dropped in a failover would):
// the claim is made, and the store's retry policy runs it again.
type lostClaimReply struct {
	key  string
	lost atomic.Bool
}

func (h *lostClaimReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lostClaimReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if h.isClaim(cmd) && err == nil && h.lost.CompareAndSwap(false, true) {
			cmd.SetErr(io.EOF)
			return io.EOF
		}
		return err
	}
}

func (h *lostClaimReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// isClaim reports whether cmd runs legacy.lua's claim ('c') on h.key.
func (h *lostClaimReply) isClaim(cmd redis.Cmder) bool {
	a := cmd.Args()
	if len(a) < 6 || (cmd.Name() != "evalsha" && cmd.Name() != "eval") {
		return false
	}
	key, _ := a[3].(string)
	mode, _ := a[5].(string)
	return key == h.key && mode == "c"
}

// A claim whose reply was lost and that the retry policy ran again finds the claim it
// made: the session it names is the one this call saved, which it returns — it must not
// destroy it as another's (the user would be logged out, and the legacy session is gone).
func TestAdoptKeepsItsSessionWhenTheClaimsReplyIsLost(t *testing.T) {
	rdb := client(t, cluster.Shared(t, cluster.KindStandalone))
	ctx := t.Context()
	st, err := store.New(rdb, store.WithPrefix("adopt:lost:"))
	require.NoError(t, err)
	key := "adopt:lost:legacy:" + time.Now().Format("150405.000000000")
	require.NoError(t, rdb.SetEx(ctx, key, "ada", time.Hour).Err())
	hook := &lostClaimReply{key: key}
	rdb.AddHook(hook)

	s, err := st.Adopt(ctx, store.LegacyRef{Key: key}, func(raw []byte, ttl time.Duration) (map[string]any, time.Duration, error) {
		return map[string]any{"user": string(raw)}, ttl, nil
	})
	require.True(t, hook.lost.Load(), "the claim's reply was lost")
	require.NoError(t, err)
	loaded, err := st.Load(ctx, s.ID())
	require.NoError(t, err, "the session the claim names exists")
	var user string
	require.NoError(t, loaded.Get("user", &user))
	require.Equal(t, "ada", user)
	require.Equal(t, int64(1), st.Stats().LegacyImported)
	again, err := st.Adopt(ctx, store.LegacyRef{Key: key}, nil)
	require.NoError(t, err)
	require.Equal(t, s.ID(), again.ID())
}

// Legacy keys of any shape move, each once, on every topology: keys that share a hash tag
// (each gets a claim of its own), a key with a '}' and no '{' (its claim is in its slot:
// no CROSSSLOT); a legacy session too large for the store is an ErrLegacyCorrupt, counted
// and left as it is, not an error on every request.
func TestAdoptKeysOfAnyShape(t *testing.T) {
	for _, kind := range []cluster.Kind{cluster.KindStandalone, cluster.KindCluster} {
		t.Run(string(kind), func(t *testing.T) {
			rdb := client(t, cluster.Shared(t, kind))
			ctx := t.Context()
			st, err := store.New(rdb, store.WithPrefix("adopt:shape:"))
			require.NoError(t, err)
			stamp := time.Now().Format("150405.000000000")
			convert := func(raw []byte, ttl time.Duration) (map[string]any, time.Duration, error) {
				return map[string]any{"user": string(raw)}, ttl, nil
			}
			ids := map[string]string{}
			for _, key := range []string{"{app" + stamp + "}:sess:A", "{app" + stamp + "}:sess:B", "x}y" + stamp, "a{}b" + stamp} {
				require.NoError(t, rdb.SetEx(ctx, key, "user of "+key, time.Hour).Err())
				t.Cleanup(func() { rdb.Del(context.WithoutCancel(ctx), key) })
				s, err := st.Adopt(ctx, store.LegacyRef{Key: key}, convert)
				require.NoError(t, err, key)
				user, err := store.Get[string](s, "user")
				require.NoError(t, err)
				require.Equal(t, "user of "+key, user, "each legacy session moves to a session of its own")
				n, err := rdb.Exists(ctx, key).Result()
				require.NoError(t, err)
				require.Zero(t, n, "%s is deleted", key)
				ids[key] = s.ID()
			}
			require.Len(t, ids, 4)
			for key, id := range ids {
				s, err := st.Adopt(ctx, store.LegacyRef{Key: key}, convert)
				require.NoError(t, err, key)
				require.Equal(t, id, s.ID(), "%s's claim leads to its own session", key)
			}
			require.EqualValues(t, 4, st.Stats().LegacyImported)

			hash := "py}sessions" + stamp
			big := strings.Repeat("x", 70_000)
			require.NoError(t, rdb.HSet(ctx, hash, "small", "ok", "big", big).Err())
			t.Cleanup(func() { rdb.Del(context.WithoutCancel(ctx), hash) })
			hs, err := store.New(rdb, store.WithPrefix("adopt:shape:"), store.WithLegacyHash(hash, "data"))
			require.NoError(t, err)
			s, err := hs.Load(ctx, "small")
			require.NoError(t, err, "a hash key with a '}': no CROSSSLOT")
			data, err := store.Get[string](s, "data")
			require.NoError(t, err)
			require.Equal(t, "ok", data)
			_, err = hs.Load(ctx, "big")
			var le *store.LegacyError
			require.ErrorAs(t, err, &le)
			require.ErrorIs(t, err, store.ErrLegacyCorrupt)
			var se *store.SizeError
			require.ErrorAs(t, err, &se, "the size limit is why")
			v, err := rdb.HGet(ctx, hash, "big").Result()
			require.NoError(t, err)
			require.Equal(t, big, v, "left as it is")
			require.EqualValues(t, 1, hs.Stats().LegacyCorrupt)
		})
	}
}
