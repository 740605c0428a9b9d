package gorillastore_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/gorillastore"
	"github.com/hasession/hasession/store"
)

// lifetimeInRedis returns the session's lifetime as Redis holds it (its absolute
// deadline less its creation), and its TTL.
func lifetimeInRedis(t *testing.T, st *store.Store, rdb redis.UniversalClient, id string) (time.Duration, time.Duration) {
	t.Helper()
	key, err := st.Key(id)
	require.NoError(t, err)
	s, err := st.Load(t.Context(), id)
	require.NoError(t, err)
	ttl, err := rdb.PTTL(t.Context(), key).Result()
	require.NoError(t, err)
	return s.Deadline().Sub(s.CreatedAt()), ttl
}

// Options.MaxAge is the session's lifetime in Redis, not only the cookie's: with MaxAge
// 60 the session is gone 60 s after its creation, not after the store's lifetime (24
// hours). (Before, a gorilla user who set MaxAge got a cookie of that age and a session
// of the store's.)
func TestMaxAgeIsTheSessionsLifetime(t *testing.T) {
	eachTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Run("the store's default options", func(t *testing.T) {
			st, gs := newStores(t, rdb, "gs:maxage-life:", gorillastore.WithOptions(sessions.Options{Path: "/", MaxAge: 60, Secure: true}))
			s := newSite(t, gs)
			resp, err := s.do(save(func(sess *sessions.Session) { sess.Values["k"] = "v" }))
			require.NoError(t, err)
			require.Equal(t, 60, setCookie(t, resp).MaxAge)
			life, ttl := lifetimeInRedis(t, st, rdb, s.cookie())
			require.Equal(t, time.Minute, life, "the session's deadline is MaxAge after its creation")
			require.LessOrEqual(t, ttl, time.Minute)
			require.Greater(t, ttl, 50*time.Second)

			// Loaded again (its MaxAge is its lifetime) and saved: the deadline stays.
			var loaded int
			resp, err = s.do(save(func(sess *sessions.Session) {
				loaded = sess.Options.MaxAge
				sess.Values["k"] = "w"
			}))
			require.NoError(t, err)
			require.Equal(t, 60, loaded)
			require.Equal(t, 60, setCookie(t, resp).MaxAge)
			life, _ = lifetimeInRedis(t, st, rdb, s.cookie())
			require.Equal(t, time.Minute, life)
		})

		t.Run("a session's own options", func(t *testing.T) {
			st, gs := newStores(t, rdb, "gs:maxage-own:")
			s := newSite(t, gs)
			resp, err := s.do(save(func(sess *sessions.Session) {
				sess.Values["k"] = "v"
				sess.Options.MaxAge = 60
			}))
			require.NoError(t, err)
			require.Equal(t, 60, setCookie(t, resp).MaxAge)
			life, ttl := lifetimeInRedis(t, st, rdb, s.cookie())
			require.Equal(t, time.Minute, life)
			require.LessOrEqual(t, ttl, time.Minute)
			require.Greater(t, ttl, 50*time.Second)

			// A longer one later moves the deadline, up to the store's lifetime (24 h).
			_, err = s.do(save(func(sess *sessions.Session) { sess.Options.MaxAge = 3600 }))
			require.NoError(t, err)
			life, ttl = lifetimeInRedis(t, st, rdb, s.cookie())
			require.Equal(t, time.Hour, life)
			// (The store's idle timeout, 30 min, is shorter than what is left of it.)
			require.Greater(t, ttl, store.DefaultIdleTimeout-10*time.Second)
			require.LessOrEqual(t, ttl, store.DefaultIdleTimeout)

			// Over the maximum: a typed error, nothing written, no cookie.
			id := s.cookie()
			var cookies []string
			_, err = s.do(func(w http.ResponseWriter, r *http.Request, sess *sessions.Session) error {
				sess.Values["k"] = "lost?"
				sess.Options.MaxAge = 86400 * 30
				err := sess.Save(r, w)
				cookies = w.Header().Values("Set-Cookie")
				return err
			})
			require.ErrorIs(t, err, store.ErrInvalidExpiry)
			var ee *store.ExpiryError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, store.DefaultLifetime, ee.Max)
			require.Empty(t, cookies)
			got, err := st.Load(t.Context(), id)
			require.NoError(t, err)
			require.EqualValues(t, 2, got.Version(), "nothing written")
			var v string
			require.NoError(t, got.Get("k", &v))
			require.Equal(t, "v", v)
			require.Equal(t, time.Hour, got.Deadline().Sub(got.CreatedAt()))
		})

		t.Run("the default MaxAge keeps the store's lifetime and writes nothing new", func(t *testing.T) {
			st, gs := newStores(t, rdb, "gs:maxage-default:")
			s := newSite(t, gs)
			resp, err := s.do(save(func(sess *sessions.Session) { sess.Values["k"] = "v" }))
			require.NoError(t, err)
			require.Equal(t, 86400, setCookie(t, resp).MaxAge)
			life, _ := lifetimeInRedis(t, st, rdb, s.cookie())
			require.Equal(t, store.DefaultLifetime, life)
			s2, err := st.Load(t.Context(), s.cookie())
			require.NoError(t, err)
			require.Equal(t, store.DefaultIdleTimeout, s2.IdleTimeout())
			_, chose := s2.Persistent()
			require.False(t, chose)
		})

		t.Run("a session saved before the maximum was lowered keeps its lifetime", func(t *testing.T) {
			prefix := fmt.Sprintf("gs:maxage-lowered:%s:%d:", t.Name(), time.Now().UnixNano())
			newGS := func(life time.Duration) (*store.Store, *gorillastore.Store) {
				st, err := store.New(rdb, store.WithPrefix(prefix), store.WithLifetime(life))
				require.NoError(t, err)
				gs, err := gorillastore.New(st)
				require.NoError(t, err)
				return st, gs
			}
			_, before := newGS(2 * time.Hour)
			s := newSite(t, before)
			_, err := s.do(save(func(sess *sessions.Session) { sess.Values["k"] = "v" }))
			require.NoError(t, err)
			id := s.cookie()
			// The app is deployed again with a lifetime (and so a maximum) of one hour.
			st, after := newGS(time.Hour)
			s2 := newSite(t, after)
			u, err := url.Parse(s2.srv.URL)
			require.NoError(t, err)
			s2.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: id, Path: "/"}})
			_, err = s2.do(save(func(sess *sessions.Session) {
				require.Equal(t, 7200, sess.Options.MaxAge, "loaded with its lifetime")
				sess.Values["k"] = "w"
			}))
			require.NoError(t, err, "saving a loaded session with its own lifetime is no error")
			life, _ := lifetimeInRedis(t, st, rdb, id)
			require.Equal(t, 2*time.Hour, life, "it keeps its lifetime")
			got, err := st.Load(t.Context(), id)
			require.NoError(t, err)
			v, err := store.Get[string](got, "k")
			require.NoError(t, err)
			require.Equal(t, "w", v)
		})
	})
}
