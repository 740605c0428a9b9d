package httpsession_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

const month = 30 * 24 * time.Hour

// rememberServer is a site whose login may "remember me":
//
//	/login?user=…&remember=1  SetUser; with remember, a persistent cookie, 30 days idle
//	                          and lifetime; then Rotate
//	/forget                   SetPersistent(false)
//	/bad?life=…               SetLifetime(life): "invalid" (400) when refused
//	/expiry                   "idle=<d> life=<d> persistent=<p>,<ok>"
//	/visit                    touches nothing
func rememberServer(t *testing.T, rdb redis.UniversalClient, opts ...httpsession.Option) (*httptest.Server, *store.Store) {
	t.Helper()
	st, err := store.New(rdb, store.WithPrefix("remember:"), store.WithMaxIdleTimeout(month), store.WithMaxLifetime(month))
	require.NoError(t, err)
	m, err := httpsession.New(st, opts...)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		err := s.SetUser(r.FormValue("user"))
		if r.FormValue("remember") != "" {
			err = errors.Join(err, s.SetPersistent(true), s.SetIdleTimeout(month), s.SetLifetime(month))
		}
		if err == nil {
			err = s.Rotate(r.Context())
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /forget", func(w http.ResponseWriter, r *http.Request) {
		if err := httpsession.FromContext(r.Context()).SetPersistent(false); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /bad", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.FormValue("life"))
		if err := httpsession.FromContext(r.Context()).SetLifetime(d); errors.Is(err, store.ErrInvalidExpiry) {
			http.Error(w, "invalid", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /expiry", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		p, ok := s.Persistent()
		fmt.Fprintf(w, "idle=%s life=%s persistent=%t,%t", s.IdleTimeout(), s.Lifetime(), p, ok)
	})
	mux.HandleFunc("GET /visit", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	srv := httptest.NewTLSServer(m.Handler(mux))
	t.Cleanup(srv.Close)
	return srv, st
}

// getCookie requests path on srv with the cookie (if any) and returns the response's
// session cookie (nil: none set), its status and body.
func getCookie(t *testing.T, srv *httptest.Server, path string, ck *http.Cookie) (*http.Cookie, int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if ck != nil {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, c := range resp.Cookies() {
		if c.Name == httpsession.DefaultCookieName {
			return c, resp.StatusCode, string(body)
		}
	}
	return nil, resp.StatusCode, string(body)
}

// requireMaxAge checks a persistent cookie: Max-Age and Expires within a few seconds of
// the session's expiry.
func requireMaxAge(t *testing.T, ck *http.Cookie, want time.Duration) {
	t.Helper()
	require.NotNil(t, ck, "a cookie")
	require.InDelta(t, want.Seconds(), float64(ck.MaxAge), 5, "Max-Age of %s", ck)
	require.WithinDuration(t, time.Now().Add(want), ck.Expires, 5*time.Second, "Expires of %s", ck)
}

// requireSessionCookie checks a session cookie: neither Max-Age nor Expires.
func requireSessionCookie(t *testing.T, ck *http.Cookie) {
	t.Helper()
	require.NotNil(t, ck, "a cookie")
	require.Zero(t, ck.MaxAge, "Max-Age of %s", ck)
	require.True(t, ck.Expires.IsZero(), "Expires of %s", ck)
}

// A "remember me" login gets a persistent cookie whose Max-Age is the session's own
// expiry, whatever the Manager's default; a login without it keeps the Manager's
// default. The choice is stored with the session: every later response, on any app
// server, follows it.
func TestRememberMe(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			rdb := client(t, topo)

			t.Run("session cookies by default", func(t *testing.T) {
				srv, st := rememberServer(t, rdb, httpsession.WithPersistentCookie(false))
				other, _ := rememberServer(t, client(t, topo), httpsession.WithPersistentCookie(false)) // another app server

				plain, _, _ := getCookie(t, srv, "/login?user=ada", nil)
				requireSessionCookie(t, plain)
				ck, _, _ := getCookie(t, srv, "/visit", plain)
				require.Nil(t, ck, "a session cookie is set only when the ID changes")

				remembered, _, _ := getCookie(t, srv, "/login?user=ada&remember=1", nil)
				requireMaxAge(t, remembered, month)
				key, err := st.Key(remembered.Value)
				require.NoError(t, err)
				ttl := rdb.PTTL(t.Context(), key).Val()
				require.InDelta(t, month.Seconds(), ttl.Seconds(), 10, "the session's TTL in Redis")
				s, err := st.Load(t.Context(), remembered.Value)
				require.NoError(t, err)
				require.WithinDuration(t, s.ExpiresAt(), time.Now().Add(time.Duration(remembered.MaxAge)*time.Second), 2*time.Second,
					"Max-Age matches the session's expiry")
				require.Equal(t, month, s.Deadline().Sub(s.CreatedAt()))

				// Every later response, also from another app server, renews it.
				for _, server := range []*httptest.Server{srv, other} {
					ck, _, body := getCookie(t, server, "/expiry", remembered)
					requireMaxAge(t, ck, month)
					require.Equal(t, remembered.Value, ck.Value)
					require.Equal(t, fmt.Sprintf("idle=%s life=%s persistent=true,true", month, month), body)
				}
				_, _, body := getCookie(t, other, "/expiry", plain)
				require.Equal(t, fmt.Sprintf("idle=%s life=%s persistent=false,false", store.DefaultIdleTimeout, store.DefaultLifetime), body)

				// Forgotten: the response replaces the browser's persistent cookie with a
				// session cookie of the same ID; the next responses carry none.
				ck, _, _ = getCookie(t, srv, "/forget", remembered)
				requireSessionCookie(t, ck)
				require.Equal(t, remembered.Value, ck.Value)
				ck, _, body = getCookie(t, other, "/expiry", remembered)
				require.Nil(t, ck)
				require.Contains(t, body, "persistent=false,true")
			})

			t.Run("persistent cookies by default", func(t *testing.T) {
				srv, _ := rememberServer(t, rdb) // WithPersistentCookie(true), the default
				plain, _, _ := getCookie(t, srv, "/login?user=bob", nil)
				requireMaxAge(t, plain, store.DefaultIdleTimeout)
				ck, _, _ := getCookie(t, srv, "/visit", plain)
				requireMaxAge(t, ck, store.DefaultIdleTimeout)
				// A session that asks for a session cookie gets one, from then on.
				ck, _, _ = getCookie(t, srv, "/forget", plain)
				requireSessionCookie(t, ck) // replaces the persistent one
				require.Equal(t, plain.Value, ck.Value)
				ck, _, _ = getCookie(t, srv, "/visit", plain)
				require.Nil(t, ck, "no persistent cookie any more, and the session cookie is not sent again")
				remembered, _, _ := getCookie(t, srv, "/login?user=bob&remember=1", plain)
				requireMaxAge(t, remembered, month)
			})

			t.Run("bad input is a typed error and changes nothing", func(t *testing.T) {
				srv, st := rememberServer(t, rdb, httpsession.WithPersistentCookie(false))
				plain, _, _ := getCookie(t, srv, "/login?user=cy", nil)
				for _, life := range []string{"0s", "-1h", (month + time.Second).String()} {
					ck, code, body := getCookie(t, srv, "/bad?life="+life, plain)
					require.Equal(t, http.StatusBadRequest, code, body)
					require.Nil(t, ck)
				}
				s, err := st.Load(t.Context(), plain.Value)
				require.NoError(t, err)
				require.Equal(t, store.DefaultLifetime, s.Lifetime())
				require.EqualValues(t, 1, s.Version(), "nothing saved since the login")
			})
		})
	}
}
