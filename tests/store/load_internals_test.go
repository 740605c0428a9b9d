package store_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// setLoadTouchHook runs f once, the next time a load is between its HGETALL and its
// touch.
func setLoadTouchHook(t *testing.T, f func(key string)) {
	t.Helper()
	var fired atomic.Bool
	testhook.SetLoadTouchHook(func(key string) {
		if fired.CompareAndSwap(false, true) {
			f(key)
		}
	})
	t.Cleanup(func() { testhook.SetLoadTouchHook(nil) })
}

// savedSession saves a new session with attribute a = val and returns it.
func savedSession(t *testing.T, st *store.Store, val string) *store.Session {
	t.Helper()
	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("a", val))
	require.NoError(t, st.Save(t.Context(), s))
	return s
}

// A rotation between the HGETALL of a load and its touch: the load must follow the
// forward pointer the key became, not report the session missing.
func TestLoadTouchSeesARotationBetweenReadAndTouch(t *testing.T) {
	st := internalStore(t, store.WithTouchInterval(0)) // a touch is due on every load
	ctx := t.Context()
	s := savedSession(t, st, "v")
	oldID := s.ID()
	other, err := st.Load(ctx, oldID)
	require.NoError(t, err)
	setLoadTouchHook(t, func(string) { require.NoError(t, st.Rotate(ctx, other)) })

	got, err := st.Load(ctx, oldID)
	require.NoError(t, err, "a load racing a rotation")
	require.Equal(t, other.ID(), got.ID(), "the load followed the forward pointer")
	require.NotEqual(t, oldID, got.ID())
	var v string
	require.NoError(t, got.Get("a", &v))
	require.Equal(t, "v", v)
}

// The session a touching load returns is the one the touch touched: fields and version
// from the same atomic step as the new last touch and TTL, not from the read before it.
func TestLoadTouchReturnsWhatItTouched(t *testing.T) {
	const idle = time.Minute
	st := internalStore(t, store.WithTouchInterval(0), store.WithIdleTimeout(idle))
	ctx := t.Context()
	s := savedSession(t, st, "old")
	in := internals(st)
	key := in.Key(s.ID())
	other, err := st.Load(ctx, s.ID())
	require.NoError(t, err)
	setLoadTouchHook(t, func(string) {
		require.NoError(t, other.Set("a", "new"))
		require.NoError(t, st.Save(ctx, other)) // version 2
		// Age the TTL, so that the touch's extension shows.
		require.NoError(t, in.Client.PExpire(ctx, key, idle/2).Err())
	})

	before := st.Stats().Touches
	got, err := st.Load(ctx, s.ID())
	require.NoError(t, err)
	var v string
	require.NoError(t, got.Get("a", &v))
	require.Equal(t, "new", v, "the attribute as the touch found it")
	require.Equal(t, int64(2), got.Version(), "the version as the touch found it")

	stored, err := in.Client.HGet(ctx, key, fTouched).Int64()
	require.NoError(t, err)
	require.Equal(t, stored, got.LastTouch().UnixMilli(), "the last touch is the one this load wrote")
	pttl, err := in.Client.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, pttl, idle*3/4, "the touch extended the TTL to the idle timeout")
	require.Equal(t, before+1, st.Stats().Touches, "counted as a touch")
}
