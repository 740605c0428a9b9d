package gorillastore

import (
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/store"
)

// The Store's per-session state goes when the session is garbage collected.
func TestStateIsForgottenWithItsSession(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb)
	require.NoError(t, err)
	gs, err := New(st)
	require.NoError(t, err)

	kept := sessions.NewSession(gs, "kept")
	for range 100 {
		sess := sessions.NewSession(gs, "s")
		stt, err := gs.fresh()
		require.NoError(t, err)
		gs.attach(sess, stt)
		gs.detach(sess)
		gs.attach(sess, stt)
	}
	stt, err := gs.fresh()
	require.NoError(t, err)
	gs.attach(kept, stt)
	require.Eventually(t, func() bool {
		runtime.GC()
		gs.mu.Lock()
		defer gs.mu.Unlock()
		return len(gs.states) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Same(t, stt, gs.lookup(kept))
	runtime.KeepAlive(kept)
}
