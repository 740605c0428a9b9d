package gorillastore_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/gorillastore"
	"github.com/hasession/hasession/store"
)

const cookieName = "sess"

func TestNewValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb)
	require.NoError(t, err)
	_, err = gorillastore.New(st, gorillastore.WithOptions(sessions.Options{Path: "/", MaxAge: -1}))
	require.Error(t, err, "a negative MaxAge")
	_, err = gorillastore.New(st, gorillastore.WithValueType("k", nil))
	require.Error(t, err)
	require.Panics(t, func() { _, _ = gorillastore.New(nil) })

	gs, err := gorillastore.New(st)
	require.NoError(t, err)
	sess, err := gs.New(httptest.NewRequest(http.MethodGet, "/", nil), cookieName)
	require.NoError(t, err)
	require.True(t, sess.IsNew)
	want := gorillastore.DefaultOptions
	want.MaxAge = 86400 // the store's default lifetime
	require.Equal(t, want, *sess.Options)
	sess.Options.Path = "/changed"
	again, err := gs.New(httptest.NewRequest(http.MethodGet, "/", nil), cookieName)
	require.NoError(t, err)
	require.Equal(t, want, *again.Options, "a session's options are its own copy")

	// MaxAge 0 follows the store's lifetime.
	st, err = store.New(rdb, store.WithLifetime(time.Hour))
	require.NoError(t, err)
	gs, err = gorillastore.New(st, gorillastore.WithOptions(sessions.Options{Path: "/x"}))
	require.NoError(t, err)
	sess, err = gs.New(httptest.NewRequest(http.MethodGet, "/", nil), cookieName)
	require.NoError(t, err)
	require.Equal(t, sessions.Options{Path: "/x", MaxAge: 3600}, *sess.Options)
}

// A default MaxAge is the sessions' lifetime: over the store's maximum it is refused
// with a typed error, at New.
func TestNewRefusesMaxAgeOverTheMaximumLifetime(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb, store.WithLifetime(time.Hour))
	require.NoError(t, err)
	_, err = gorillastore.New(st, gorillastore.WithOptions(sessions.Options{Path: "/", MaxAge: 86400 * 30}))
	require.ErrorIs(t, err, store.ErrInvalidExpiry)
	var ee *store.ExpiryError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 30*24*time.Hour, ee.Value)
	require.Equal(t, time.Hour, ee.Max)
	_, err = gorillastore.New(st, gorillastore.WithOptions(sessions.Options{Path: "/", MaxAge: 3600}))
	require.NoError(t, err, "the maximum itself")

	st, err = store.New(rdb, store.WithLifetime(time.Hour), store.WithMaxLifetime(30*24*time.Hour))
	require.NoError(t, err)
	gs, err := gorillastore.New(st, gorillastore.WithOptions(sessions.Options{Path: "/", MaxAge: 86400 * 30}))
	require.NoError(t, err, "within WithMaxLifetime")
	sess, err := gs.New(httptest.NewRequest(http.MethodGet, "/", nil), cookieName)
	require.NoError(t, err)
	require.Equal(t, 86400*30, sess.Options.MaxAge)
}
