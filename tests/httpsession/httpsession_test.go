package httpsession_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// cmdCounter counts the session commands a client sends (not the client's own
// handshakes, pings and topology discovery).
type cmdCounter struct{ n atomic.Int64 }

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *cmdCounter) count(cmd redis.Cmder) {
	switch strings.ToLower(cmd.Name()) {
	case "hello", "client", "ping", "cluster", "sentinel", "info", "command", "readonly":
		return
	}
	c.n.Add(1)
}

// app is a small site on the middleware:
//
//	/visit            touches nothing
//	/set?k=…&v=…      stores an attribute
//	/get?k=…          the attribute's value, or "-"
//	/whoami           "new=<bool> user=<user> keys=<k1,k2>"
//	/login?user=…     SetUser and Rotate
//	/logout           Destroy (and /logout?flash=… stores a flash in the new session)
type app struct {
	st   *store.Store
	m    *httpsession.Manager
	rdb  redis.UniversalClient
	srv  *httptest.Server
	cmds *cmdCounter
}

func newApp(t *testing.T, rdb redis.UniversalClient, tls bool, opts ...httpsession.Option) *app {
	t.Helper()
	return newAppOn(t, rdb, tls, []store.Option{store.WithGracePeriod(time.Second)}, opts...)
}

// newAppOn is newApp with the store's options.
func newAppOn(t *testing.T, rdb redis.UniversalClient, tls bool, storeOpts []store.Option, opts ...httpsession.Option) *app {
	t.Helper()
	a := &app{rdb: rdb, cmds: &cmdCounter{}}
	rdb.AddHook(a.cmds)
	var err error
	a.st, err = store.New(rdb, storeOpts...)
	require.NoError(t, err)
	a.m, err = httpsession.New(a.st, opts...)
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /visit", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		if err := s.Set(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		var v string
		if err := httpsession.FromContext(r.Context()).Get(r.FormValue("k"), &v); err != nil {
			v = "-"
		}
		_, _ = io.WriteString(w, v)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		fmt.Fprintf(w, "new=%t user=%s keys=%s", s.IsNew(), s.User(), strings.Join(s.Keys(), ","))
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		if err := s.SetUser(r.FormValue("user")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if d := r.FormValue("device"); d != "" {
			_ = s.Set("device", d)
		}
		if err := s.Rotate(r.Context()); errors.Is(err, store.ErrTooManySessions) {
			http.Error(w, "signed in on too many devices", http.StatusConflict)
			return
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		if err := s.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if f := r.FormValue("flash"); f != "" {
			_ = s.Set("flash", f)
		}
		_, _ = io.WriteString(w, "bye")
	})
	// /devices lists the user's sessions as "<ref> <device> <current>" lines;
	// /revoke?ref=… ends one, /revoke-others every other.
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		infos, err := a.m.Sessions(r.Context(), s.User(), "device")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, in := range infos {
			var d string
			_ = in.Get("device", &d)
			fmt.Fprintf(w, "%s %s %t\n", in.Ref, d, in.Ref == s.Ref())
		}
	})
	mux.HandleFunc("GET /revoke", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		if err := a.m.Revoke(r.Context(), s.User(), r.FormValue("ref")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /revoke-others", func(w http.ResponseWriter, r *http.Request) {
		if err := httpsession.FromContext(r.Context()).RevokeOthers(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	if tls {
		a.srv = httptest.NewTLSServer(a.m.Handler(mux))
	} else {
		a.srv = httptest.NewServer(a.m.Handler(mux))
	}
	t.Cleanup(a.srv.Close)
	return a
}

// user returns an HTTP client with its own cookie jar: one browser.
func (a *app) user(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := *a.srv.Client()
	c.Jar = jar
	return &c
}

// get requests path and returns the response (body read and closed) and its body.
func (a *app) get(t *testing.T, c *http.Client, path string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.srv.URL+path, nil)
	require.NoError(t, err)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	return send(t, c, req)
}

// send sends req with c, requires 200 OK, and returns the response (body read and
// closed) and its body.
func send(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", req.Method, req.URL.Path, body)
	return resp, string(body)
}

// sessionCookie returns the response's session cookie, or nil.
func (a *app) sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == a.m.CookieName() {
			return c
		}
	}
	return nil
}

// jarCookie returns the session cookie the user's jar holds, or nil.
func (a *app) jarCookie(t *testing.T, c *http.Client) *http.Cookie {
	t.Helper()
	u, err := url.Parse(a.srv.URL)
	require.NoError(t, err)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == a.m.CookieName() {
			return ck
		}
	}
	return nil
}

func TestMiddleware(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			a := newApp(t, client(t, topo), true)

			t.Run("a visit that stores nothing sets no cookie and sends no command", func(t *testing.T) {
				c := a.user(t)
				before := a.cmds.n.Load()
				resp, body := a.get(t, c, "/visit")
				require.Equal(t, "hello", body)
				require.Empty(t, resp.Header.Values("Set-Cookie"))
				require.Empty(t, resp.Header.Values("Cache-Control"))
				require.Equal(t, []string{"Cookie"}, resp.Header.Values("Vary"))
				_, body = a.get(t, c, "/whoami")
				require.Equal(t, "new=true user= keys=", body)
				require.Equal(t, before, a.cmds.n.Load(), "Redis commands sent")
				require.Nil(t, a.jarCookie(t, c))
			})

			t.Run("the first store sets a secure cookie that follows the session's expiry", func(t *testing.T) {
				c := a.user(t)
				resp, _ := a.get(t, c, "/set?k=theme&v=dark")
				ck := a.sessionCookie(resp)
				require.NotNil(t, ck, "no session cookie in %q", resp.Header.Values("Set-Cookie"))
				require.True(t, ck.HttpOnly)
				require.True(t, ck.Secure)
				require.Equal(t, http.SameSiteLaxMode, ck.SameSite)
				require.Equal(t, "/", ck.Path)
				require.Empty(t, ck.Domain)
				// The store's default idle timeout is 30 minutes.
				require.InDelta(t, (30 * time.Minute).Seconds(), ck.MaxAge, 5)
				require.WithinDuration(t, time.Now().Add(30*time.Minute), ck.Expires, 5*time.Second)
				require.Equal(t, []string{"Cookie"}, resp.Header.Values("Vary"))
				require.Equal(t, []string{`no-cache="Set-Cookie"`}, resp.Header.Values("Cache-Control"))

				key, err := a.st.Key(ck.Value)
				require.NoError(t, err)
				require.EqualValues(t, 1, a.rdb.Exists(t.Context(), key).Val())
			})

			t.Run("the cookie round-trips and is refreshed on every response", func(t *testing.T) {
				c := a.user(t)
				resp, _ := a.get(t, c, "/set?k=theme&v=dark")
				first := a.sessionCookie(resp)
				require.NotNil(t, first)

				resp, body := a.get(t, c, "/get?k=theme")
				require.Equal(t, "dark", body)
				again := a.sessionCookie(resp)
				require.NotNil(t, again, "a persistent cookie is re-sent to slide its expiry")
				require.Equal(t, first.Value, again.Value)
				require.Positive(t, again.MaxAge)

				a.get(t, c, "/set?k=lang&v=fr")
				_, body = a.get(t, c, "/whoami")
				require.Equal(t, "new=false user= keys=lang,theme", body)
				require.Equal(t, first.Value, a.jarCookie(t, c).Value)
			})

			t.Run("a malformed cookie gets a fresh session and sends no command", func(t *testing.T) {
				for _, v := range []string{"{not-an-id}", "x", strings.Repeat("a", 36), "6F1C2A9E-2B0D-4A8E-9A51-3C7D9F0E4B21"} {
					before := a.cmds.n.Load()
					resp, body := a.get(t, a.srv.Client(), "/whoami", &http.Cookie{Name: a.m.CookieName(), Value: v})
					require.Equal(t, "new=true user= keys=", body, "cookie %q", v)
					require.Nil(t, a.sessionCookie(resp))
					require.Equal(t, before, a.cmds.n.Load(), "Redis commands sent for cookie %q", v)
				}
			})

			t.Run("an unknown cookie gets a fresh session", func(t *testing.T) {
				unsaved, err := a.st.NewSession()
				require.NoError(t, err)
				ck := &http.Cookie{Name: a.m.CookieName(), Value: unsaved.ID()}
				before := a.cmds.n.Load()
				resp, body := a.get(t, a.srv.Client(), "/whoami", ck)
				require.Equal(t, "new=true user= keys=", body)
				require.Nil(t, a.sessionCookie(resp))
				require.Equal(t, before+1, a.cmds.n.Load(), "one load, no write")

				resp, _ = a.get(t, a.srv.Client(), "/set?k=a&v=1", ck)
				fresh := a.sessionCookie(resp)
				require.NotNil(t, fresh)
				require.NotEqual(t, unsaved.ID(), fresh.Value, "a session ID chosen by the client is never adopted")
			})

			t.Run("rotate changes the cookie and the old one works only during the grace period", func(t *testing.T) {
				c := a.user(t)
				resp, _ := a.get(t, c, "/set?k=cart&v=book")
				old := a.sessionCookie(resp)
				require.NotNil(t, old)

				resp, _ = a.get(t, c, "/login?user=alice")
				rotated := a.sessionCookie(resp)
				require.NotNil(t, rotated)
				require.NotEqual(t, old.Value, rotated.Value)
				_, body := a.get(t, c, "/whoami")
				require.Equal(t, "new=false user=alice keys=cart", body)

				// The login changed who the session belongs to: the old cookie leads
				// nowhere, at once (against session fixation).
				anon := a.srv.Client()
				oldCk := &http.Cookie{Name: old.Name, Value: old.Value}
				_, body = a.get(t, anon, "/whoami", oldCk)
				require.Equal(t, "new=true user= keys=", body)

				// A rotation that keeps the user: a request in flight with the old cookie
				// lands on the new session and brings the new cookie back.
				old = rotated
				resp, _ = a.get(t, c, "/login?user=alice")
				rotated = a.sessionCookie(resp)
				require.NotNil(t, rotated)
				require.NotEqual(t, old.Value, rotated.Value)
				oldCk = &http.Cookie{Name: old.Name, Value: old.Value}
				resp, body = a.get(t, anon, "/whoami", oldCk)
				require.Equal(t, "new=false user=alice keys=cart", body)
				fwd := a.sessionCookie(resp)
				require.NotNil(t, fwd)
				require.Equal(t, rotated.Value, fwd.Value)

				// After the grace period (1 s) the old cookie leads nowhere.
				require.Eventually(t, func() bool {
					_, body := a.get(t, anon, "/whoami", oldCk)
					return body == "new=true user= keys="
				}, 10*time.Second, 100*time.Millisecond)
				_, body = a.get(t, c, "/whoami")
				require.Equal(t, "new=false user=alice keys=cart", body)
			})

			t.Run("logout destroys the session and expires the cookie", func(t *testing.T) {
				c := a.user(t)
				a.get(t, c, "/set?k=cart&v=book")
				a.get(t, c, "/login?user=bob")
				ck := a.jarCookie(t, c)
				require.NotNil(t, ck)
				key, err := a.st.Key(ck.Value)
				require.NoError(t, err)

				resp, _ := a.get(t, c, "/logout")
				gone := a.sessionCookie(resp)
				require.NotNil(t, gone)
				require.Equal(t, -1, gone.MaxAge, "Set-Cookie: %q", resp.Header.Values("Set-Cookie"))
				require.Contains(t, resp.Header.Get("Set-Cookie"), "Max-Age=0")
				require.Empty(t, gone.Value)
				require.Nil(t, a.jarCookie(t, c))
				// Nothing at the key, or the tombstone a logout leaves: no session field but
				// the user it keeps (FORMAT.md), no attribute.
				fields, err := a.rdb.HKeys(t.Context(), key).Result()
				require.NoError(t, err)
				if len(fields) > 0 {
					require.Contains(t, fields, "_r", "a tombstone, not a session: %v", fields)
				}
				for _, f := range fields {
					require.Contains(t, []string{"_r", "_n", "_u", "_s", "_R"}, f, "the key holds no session: %v", fields)
				}

				_, body := a.get(t, a.srv.Client(), "/whoami", &http.Cookie{Name: ck.Name, Value: ck.Value})
				require.Equal(t, "new=true user= keys=", body)
			})

			t.Run("logout that stores a flash starts a new session", func(t *testing.T) {
				c := a.user(t)
				a.get(t, c, "/login?user=carol")
				a.get(t, c, "/set?k=cart&v=book")
				before := a.jarCookie(t, c)
				require.NotNil(t, before)

				resp, _ := a.get(t, c, "/logout?flash=bye")
				after := a.sessionCookie(resp)
				require.NotNil(t, after)
				require.NotEqual(t, before.Value, after.Value)
				require.Positive(t, after.MaxAge)
				_, body := a.get(t, c, "/whoami")
				require.Equal(t, "new=false user= keys=flash", body)
			})

			t.Run("concurrent requests of one user changing different attributes keep all", func(t *testing.T) {
				c := a.user(t)
				a.get(t, c, "/set?k=base&v=1")
				const n = 8
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("%s/set?k=a%d&v=%d", a.srv.URL, i, i), nil)
						if err != nil {
							t.Error(err)
							return
						}
						resp, err := c.Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						_ = resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							t.Errorf("status %d", resp.StatusCode)
						}
					})
				}
				wg.Wait()
				_, body := a.get(t, c, "/whoami")
				require.Equal(t, "new=false user= keys=a0,a1,a2,a3,a4,a5,a6,a7,base", body)
			})
		})
	}
}

func TestSessionCookieOverPlainHTTP(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	a := newApp(t, client(t, topo), false, httpsession.WithPersistentCookie(false), httpsession.WithSecure(false),
		httpsession.WithCookieName("sid"), httpsession.WithCookiePath("/"), httpsession.WithSameSite(http.SameSiteStrictMode))
	c := a.user(t)

	resp, _ := a.get(t, c, "/set?k=theme&v=dark")
	ck := a.sessionCookie(resp)
	require.NotNil(t, ck)
	require.Equal(t, "sid", ck.Name)
	require.False(t, ck.Secure)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.Zero(t, ck.MaxAge)
	require.True(t, ck.Expires.IsZero())
	require.NotContains(t, resp.Header.Get("Set-Cookie"), "Expires")

	// The ID does not change: a session cookie is not sent again.
	resp, body := a.get(t, c, "/get?k=theme")
	require.Equal(t, "dark", body)
	require.Nil(t, a.sessionCookie(resp))
	require.Empty(t, resp.Header.Values("Cache-Control"))
	resp, _ = a.get(t, c, "/set?k=theme&v=light")
	require.Nil(t, a.sessionCookie(resp))
	_, body = a.get(t, c, "/get?k=theme")
	require.Equal(t, "light", body)

	// A new ID is.
	resp, _ = a.get(t, c, "/login?user=dave")
	rotated := a.sessionCookie(resp)
	require.NotNil(t, rotated)
	require.NotEqual(t, ck.Value, rotated.Value)
}
