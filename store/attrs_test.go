package store_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/store"
)

// The typed getters, Pop and Clear on a session's pending changes (nothing is sent to
// Redis: the client points nowhere).
func TestTypedGettersPopAndClear(t *testing.T) {
	s := offlineSession(t)
	require.NoError(t, s.Set("name", "ada"))
	require.NoError(t, s.Set("n", 42))
	require.NoError(t, s.Set("flash", "saved"))

	name, err := store.Get[string](s, "name")
	require.NoError(t, err)
	require.Equal(t, "ada", name)
	n, err := store.Get[int](s, "n")
	require.NoError(t, err)
	require.Equal(t, 42, n)
	_, err = store.Get[int](s, "missing")
	require.ErrorIs(t, err, store.ErrNoAttribute)
	bad, err := store.Get[[]int](s, "name")
	require.Error(t, err, "a string does not decode into []int")
	require.NotErrorIs(t, err, store.ErrNoAttribute)
	require.Nil(t, bad, "the zero value with the error")
	d, err := store.GetOr(s, "missing", 7)
	require.NoError(t, err)
	require.Equal(t, 7, d)
	_, err = store.GetOr(s, "name", 7)
	require.Error(t, err, "a present value that does not decode is an error, not the default")

	var f string
	require.Error(t, s.Pop("flash", new([]int)), "wrong type")
	require.True(t, s.Has("flash"), "a Pop that fails leaves the attribute")
	require.NoError(t, s.Pop("flash", &f))
	require.Equal(t, "saved", f)
	require.False(t, s.Has("flash"), "popped: shown once")
	require.ErrorIs(t, s.Pop("flash", &f), store.ErrNoAttribute)

	s.SetUser("ada")
	s.Clear()
	require.Empty(t, s.Keys())
	require.Equal(t, "ada", s.User(), "Clear keeps the session's user")
}

// A value the codec cannot encode — a flash message of an unsupported type — is a typed
// error, and the session is left as it was.
func TestSetUnencodableValueIsTyped(t *testing.T) {
	s := offlineSession(t)
	require.NoError(t, s.Set("flash", "saved"))
	for _, v := range []any{make(chan int), func() {}} {
		err := s.Set("flash", v)
		require.ErrorIs(t, err, store.ErrUnencodable, "%T", v)
		var ve *store.ValueError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "flash", ve.Key)
		got, err := store.Get[string](s, "flash")
		require.NoError(t, err)
		require.Equal(t, "saved", got, "the session is unchanged")
	}
}

// offlineSession returns a new session of a store whose client points nowhere: its pending
// changes are all a test reads.
func offlineSession(t *testing.T) *store.Session {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb)
	require.NoError(t, err)
	s, err := st.NewSession()
	require.NoError(t, err)
	return s
}
