package store_test

import (
	"context"
	"io"
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
