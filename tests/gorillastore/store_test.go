package gorillastore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/gorillastore"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

const cookieName = "sess"

type profile struct {
	Name string
	Tags []string
}

// eachTopology runs f once per topology kind, as a subtest, with a failover-tuned client.
func eachTopology(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			f(t, client(t, cluster.Shared(t, kind)))
		})
	}
}

func newStores(t *testing.T, rdb redis.UniversalClient, prefix string, opts ...gorillastore.Option) (*store.Store, *gorillastore.Store) {
	t.Helper()
	st, err := store.New(rdb, store.WithPrefix(prefix))
	require.NoError(t, err)
	gs, err := gorillastore.New(st, opts...)
	require.NoError(t, err)
	return st, gs
}

// site is an HTTPS server whose one handler gets the session and runs the step the test
// gives it, and a browser (a client with a cookie jar) that talks to it.
type site struct {
	t    *testing.T
	gs   *gorillastore.Store
	srv  *httptest.Server
	c    *http.Client
	mu   sync.Mutex
	step func(w http.ResponseWriter, r *http.Request, sess *sessions.Session) error
	done chan error
}

func newSite(t *testing.T, gs *gorillastore.Store) *site {
	t.Helper()
	s := &site{t: t, gs: gs, done: make(chan error, 1)}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		step := s.step
		s.mu.Unlock()
		sess, err := gs.Get(r, cookieName)
		if err == nil {
			if again, _ := gs.Get(r, cookieName); again != sess {
				err = errors.New("Get returned another session for the same request")
			} else {
				err = step(w, r, sess)
			}
		}
		s.done <- err
	}))
	t.Cleanup(s.srv.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	s.c = s.srv.Client()
	s.c.Jar = jar
	s.c.Timeout = 30 * time.Second
	return s
}

// do makes one request running step and returns the response and the step's error.
func (s *site) do(step func(w http.ResponseWriter, r *http.Request, sess *sessions.Session) error) (*http.Response, error) {
	s.t.Helper()
	s.mu.Lock()
	s.step = step
	s.mu.Unlock()
	resp, err := s.c.Get(s.srv.URL + "/")
	require.NoError(s.t, err)
	_ = resp.Body.Close()
	return resp, <-s.done
}

// save is a step that saves the session after f changed it.
func save(f func(sess *sessions.Session)) func(http.ResponseWriter, *http.Request, *sessions.Session) error {
	return func(w http.ResponseWriter, r *http.Request, sess *sessions.Session) error {
		f(sess)
		return sess.Save(r, w)
	}
}

// cookie returns the session cookie the browser holds, or "".
func (s *site) cookie() string {
	u, _ := url.Parse(s.srv.URL)
	for _, c := range s.c.Jar.Cookies(u) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

func setCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	t.Fatal("no session cookie in the response")
	return nil
}

func TestValuesRoundTrip(t *testing.T) {
	eachTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		st, gs := newStores(t, rdb, "gs:rt:",
			gorillastore.WithValueType("visits", 0), gorillastore.WithValueType("profile", profile{}))
		s := newSite(t, gs)

		var wasNew bool
		resp, err := s.do(save(func(sess *sessions.Session) {
			wasNew = sess.IsNew
			sess.Values["name"] = "ada"
			sess.Values["n"] = 42
			sess.Values["big"] = uint64(1 << 63)
			sess.Values["pi"] = 3.5
			sess.Values["ok"] = true
			sess.Values["m"] = map[string]any{"a": "b", "c": 1, "l": []int{1, 2}}
			sess.Values["ints"] = map[int]string{1: "one"}
			sess.Values["visits"] = 7
			sess.Values["profile"] = profile{Name: "Ada", Tags: []string{"admin"}}
			sess.AddFlash("welcome")
		}))
		require.NoError(t, err)
		require.True(t, wasNew)
		c := setCookie(t, resp)
		require.Len(t, c.Value, 36, "the cookie carries the session ID")
		require.True(t, c.HttpOnly)
		require.True(t, c.Secure)
		require.Equal(t, http.SameSiteLaxMode, c.SameSite)
		require.Equal(t, "/", c.Path)
		require.Equal(t, 86400, c.MaxAge)
		id := c.Value

		var got map[any]any
		var flashes []any
		_, err = s.do(save(func(sess *sessions.Session) {
			wasNew = sess.IsNew
			got = maps.Clone(sess.Values)
			flashes = sess.Flashes()
		}))
		require.NoError(t, err)
		require.False(t, wasNew)
		require.Equal(t, map[any]any{
			"name":    "ada",
			"n":       int64(42),
			"big":     uint64(1 << 63),
			"pi":      3.5,
			"ok":      true,
			"m":       map[string]any{"a": "b", "c": int64(1), "l": []any{int64(1), int64(2)}},
			"ints":    map[any]any{int64(1): "one"},
			"visits":  7,
			"profile": profile{Name: "Ada", Tags: []string{"admin"}},
			"_flash":  []any{"welcome"},
		}, got)
		require.Equal(t, []any{"welcome"}, flashes)
		require.Equal(t, id, s.cookie())

		// Flashes removed the key: Save deleted the attribute in Redis.
		hs, err := st.Load(t.Context(), id)
		require.NoError(t, err)
		require.False(t, hs.Has("_flash"))
		require.True(t, hs.Has("name"))

		_, err = s.do(save(func(sess *sessions.Session) {
			delete(sess.Values, "name")
			sess.Values["n"] = int64(43)
		}))
		require.NoError(t, err)
		hs, err = st.Load(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, []string{"big", "ints", "m", "n", "ok", "pi", "profile", "visits"}, hs.Keys())
		var n int64
		require.NoError(t, hs.Get("n", &n))
		require.EqualValues(t, 43, n)
	})
}

func TestUnchangedValuesAreNotWritten(t *testing.T) {
	eachTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		st, gs := newStores(t, rdb, "gs:unchanged:", gorillastore.WithValueType("profile", profile{}))
		s := newSite(t, gs)
		_, err := s.do(save(func(sess *sessions.Session) {
			sess.Values["x"] = "1"
			sess.Values["y"] = map[string]any{"k": []any{"v"}}
			sess.Values["profile"] = profile{Name: "Ada"}
		}))
		require.NoError(t, err)
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: s.cookie()})

		// Two requests load the session; each changes one value.
		a, err := gs.New(req, cookieName)
		require.NoError(t, err)
		b, err := gs.New(req, cookieName)
		require.NoError(t, err)

		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		require.NoError(t, gs.Save(req, httptest.NewRecorder(), a), "an unchanged session")
		require.Zero(t, n.Load(), "an unchanged session sends nothing")

		a.Values["x"] = "2"
		b.Values["y"].(map[string]any)["k"] = []any{"w"} // changed in place
		require.NoError(t, gs.Save(req, httptest.NewRecorder(), a))
		require.NoError(t, gs.Save(req, httptest.NewRecorder(), b))
		hs, err := st.Load(ctx, a.ID)
		require.NoError(t, err)
		var x string
		var y map[string][]string
		require.NoError(t, hs.Get("x", &x))
		require.NoError(t, hs.Get("y", &y))
		require.Equal(t, "2", x, "b's save did not write its stale x")
		require.Equal(t, map[string][]string{"k": {"w"}}, y, "a value changed in place is written")
		require.EqualValues(t, 3, hs.Version())
	})
}

func TestBadValuesAreErrorsAndSendNothing(t *testing.T) {
	eachTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		_, gs := newStores(t, rdb, "gs:bad:", gorillastore.WithValueType("typed", 0))
		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		for name, c := range map[string]struct {
			key, val any
			is       error
		}{
			"a key that is not a string":      {42, "x", gorillastore.ErrKeyNotString},
			"a value the codec cannot encode": {"ch", make(chan int), nil},
			"a value that would not load":     {"nested", map[string]any{"m": map[int]string{1: "a"}}, nil},
			"a value of another type":         {"typed", "not an int", nil},
		} {
			t.Run(name, func(t *testing.T) {
				req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
				sess, err := gs.New(req, cookieName)
				require.NoError(t, err)
				sess.Values["fine"] = "ok"
				sess.Values[c.key] = c.val
				rec := httptest.NewRecorder()
				err = gs.Save(req, rec, sess)
				require.Error(t, err)
				t.Log(err)
				if c.is != nil {
					require.ErrorIs(t, err, c.is)
				}
				require.Empty(t, rec.Result().Cookies(), "no cookie")
				require.Empty(t, sess.ID)
			})
		}
		require.Zero(t, n.Load(), "nothing reached Redis")
	})
}

func TestMaxAgeNotPositiveDestroys(t *testing.T) {
	eachTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		st, gs := newStores(t, rdb, "gs:maxage:")
		s := newSite(t, gs)
		for _, maxAge := range []int{-1, 0} {
			_, err := s.do(save(func(sess *sessions.Session) { sess.Values["k"] = "v" }))
			require.NoError(t, err)
			id := s.cookie()
			_, err = st.Load(ctx, id)
			require.NoError(t, err)

			resp, err := s.do(save(func(sess *sessions.Session) { sess.Options.MaxAge = maxAge }))
			require.NoError(t, err)
			require.Negative(t, setCookie(t, resp).MaxAge, "MaxAge %d expires the cookie", maxAge)
			require.Empty(t, s.cookie(), "the browser dropped the cookie")
			_, err = st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound, "MaxAge %d destroys the session", maxAge)

			var wasNew bool
			_, err = s.do(func(_ http.ResponseWriter, _ *http.Request, sess *sessions.Session) error {
				wasNew = sess.IsNew
				return nil
			})
			require.NoError(t, err)
			require.True(t, wasNew)
		}
	})
}

func TestMalformedCookieGetsANewSessionWithoutRedis(t *testing.T) {
	eachTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		_, gs := newStores(t, rdb, "gs:malformed:")
		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		for _, v := range []string{"{evil}", "F47AC10B-58CC-4372-A567-0E02B2C3D479", "f47ac10b-58cc-4372-a567-0e02b2c3d47 ", "x"} {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
			req.AddCookie(&http.Cookie{Name: cookieName, Value: v})
			sess, err := gs.Get(req, cookieName)
			require.NoError(t, err, "%q", v)
			require.True(t, sess.IsNew)
			require.Empty(t, sess.ID)
			require.Empty(t, sess.Values)
		}
		require.Zero(t, n.Load(), "nothing reached Redis")
	})
}

// sessionsHolding returns the keys under prefix of the sessions (hashes) that hold value
// in some field, on every master.
func sessionsHolding(t *testing.T, rdb redis.UniversalClient, prefix, value string) []string {
	t.Helper()
	ctx := t.Context()
	var mu sync.Mutex
	var found []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			if c.Type(ctx, key).Val() != "hash" {
				continue
			}
			for _, v := range c.HGetAll(ctx, key).Val() {
				if strings.Contains(v, value) {
					mu.Lock()
					found = append(found, key)
					mu.Unlock()
				}
			}
		}
		return iter.Err()
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) }))
	} else {
		require.NoError(t, scan(ctx, rdb))
	}
	return found
}

// A request in flight while its session ends elsewhere — a logout, a revoke of every
// session of the user, an expiry — must not bring the session, or its values, back.
func TestSessionGoneMeanwhileIsNotBroughtBack(t *testing.T) {
	eachTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		for _, c := range []struct {
			name string
			end  func(t *testing.T, st *store.Store, id string)
		}{
			{"destroyed", func(t *testing.T, st *store.Store, id string) {
				require.NoError(t, st.Destroy(ctx, id))
			}},
			{"revoked with every session of the user", func(t *testing.T, st *store.Store, _ string) {
				require.NoError(t, st.RevokeAll(ctx, "ada"))
			}},
			{"expired", func(t *testing.T, st *store.Store, id string) {
				key, err := st.Key(id)
				require.NoError(t, err)
				require.Eventually(t, func() bool { return rdb.Exists(ctx, key).Val() == 0 }, 10*time.Second, 20*time.Millisecond)
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				prefix := "gs:gone:" + strings.ReplaceAll(c.name, " ", "-") + ":"
				st, err := store.New(rdb, store.WithPrefix(prefix), store.WithIdleTimeout(2*time.Second), store.WithTouchInterval(time.Second))
				require.NoError(t, err)
				gs, err := gorillastore.New(st)
				require.NoError(t, err)
				s := newSite(t, gs)
				_, err = s.do(save(func(sess *sessions.Session) {
					sess.Values["user"] = "ada-logged-in"
					sess.Values["cart"] = "book"
				}))
				require.NoError(t, err)
				id := s.cookie()
				// The session belongs to ada, as a login would make it.
				hs, err := st.Load(ctx, id)
				require.NoError(t, err)
				hs.SetUser("ada")
				require.NoError(t, st.Save(ctx, hs))

				resp, err := s.do(func(w http.ResponseWriter, r *http.Request, sess *sessions.Session) error {
					if sess.IsNew || sess.Values["user"] != "ada-logged-in" {
						return errors.New("the session did not load")
					}
					c.end(t, st, id) // meanwhile, elsewhere
					sess.Values["cart"] = "book, pen"
					return sess.Save(r, w)
				})
				require.Empty(t, sessionsHolding(t, rdb, prefix, "ada-logged-in"), "the login is not back, under any ID")
				require.ErrorIs(t, err, store.ErrNotFound)
				for _, ck := range resp.Cookies() {
					require.NotEqual(t, cookieName, ck.Name, "no cookie for a session that is gone")
				}
				_, err = st.Load(ctx, id)
				require.ErrorIs(t, err, store.ErrNotFound)

				// The browser's next request gets a new, empty session.
				_, err = s.do(func(w http.ResponseWriter, r *http.Request, sess *sessions.Session) error {
					if !sess.IsNew || len(sess.Values) != 0 {
						return fmt.Errorf("want a new empty session, got %v", sess.Values)
					}
					return nil
				})
				require.NoError(t, err)
			})
		}
	})
}

func TestOptionsAreHonoured(t *testing.T) {
	rdb := client(t, cluster.Shared(t, cluster.KindStandalone))
	_, gs := newStores(t, rdb, "gs:options:", gorillastore.WithOptions(sessions.Options{
		Path: "/app", Domain: "example.com", MaxAge: 60, SameSite: http.SameSiteStrictMode,
	}))
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/app", nil)
	sess, err := gs.Get(req, cookieName)
	require.NoError(t, err)
	sess.Values["k"] = "v"
	rec := httptest.NewRecorder()
	require.NoError(t, sess.Save(req, rec))
	c := rec.Result().Cookies()[0]
	require.Equal(t, "/app", c.Path)
	require.Equal(t, "example.com", c.Domain)
	require.Equal(t, 60, c.MaxAge)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, `no-cache="Set-Cookie"`, rec.Header().Get("Cache-Control"))
	require.False(t, c.Secure)
	require.False(t, c.HttpOnly)

	// A session's own options win, as with any gorilla store.
	sess.Options.MaxAge = 120
	sess.Options.Secure = true
	rec = httptest.NewRecorder()
	require.NoError(t, sess.Save(req, rec))
	c = rec.Result().Cookies()[0]
	require.Equal(t, 120, c.MaxAge)
	require.True(t, c.Secure)
	require.Equal(t, sess.ID, c.Value)
}
