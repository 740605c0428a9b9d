package httpsession_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gorilla/sessions"
	"github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// contender is one session library behind net/http, as a handler that reads the
// attributes "a" and "b" and, with modify, sets "c".
type contender struct {
	name    string
	cookie  string                         // the session cookie's name
	handler func(modify bool) http.Handler // the middleware and the handler
	seed    http.Handler                   // stores a and b in a new session
}

var benchWant = []byte("alice en-GB")

// BenchmarkHTTPCycle measures one request through each library's middleware and handler
// (hasession also with its near-cache, where "read" is then served from memory),
// against the shared standalone Redis: load the session the cookie names, read two
// attributes, and in "modify" change one; the response writer is an
// httptest.ResponseRecorder, so the cost is the library's and Redis's, not a socket's.
// Each parallel worker has its own session and carries its cookie. Sliding expiry (30
// minutes) is on for all three:
//
//   - hasession: the store extends the TTL at most once per touch interval (1 minute),
//     so "read" is one HGETALL; "modify" adds the save script. The persistent cookie is
//     re-sent with each response.
//   - scs v2 with goredisstore and IdleTimeout: every request is a GET and a SET of the
//     whole session, and a Set-Cookie.
//   - gorilla/sessions with rbcervilla/redisstore: a GET; sliding expiry needs a Save
//     (a SET of the whole session, and a Set-Cookie) on every request.
func BenchmarkHTTPCycle(b *testing.B) {
	topo := cluster.Shared(b, cluster.KindStandalone)
	newClient := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: topo.Addrs()[0]})
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	const idle = 30 * time.Minute

	// hasession.
	st, err := store.New(newClient(), store.WithIdleTimeout(idle))
	if err != nil {
		b.Fatal(err)
	}
	hm, err := httpsession.New(st)
	if err != nil {
		b.Fatal(err)
	}
	hasession := hasessionContender("hasession", hm)

	// hasession with the near-cache: the same, its loads served from memory once cached.
	cst, err := store.New(newClient(), store.WithIdleTimeout(idle), store.WithNearCache(store.NearCache{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cst.Close() })
	chm, err := httpsession.New(cst)
	if err != nil {
		b.Fatal(err)
	}
	cached := hasessionContender("hasession+cache", chm)

	// scs v2 + goredisstore.
	sm := scs.New()
	sm.Store = goredisstore.New(newClient())
	sm.IdleTimeout = idle
	sm.Lifetime = 24 * time.Hour
	sm.Cookie.Name = "scs"
	scsC := contender{
		name:   "scs",
		cookie: sm.Cookie.Name,
		handler: func(modify bool) http.Handler {
			var n atomic.Int64
			return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				a, lang := sm.GetString(ctx, "a"), sm.GetString(ctx, "b")
				if modify {
					sm.Put(ctx, "c", n.Add(1))
				}
				writeBody(w, a, lang)
			}))
		},
		seed: sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sm.Put(r.Context(), "a", "alice")
			sm.Put(r.Context(), "b", "en-GB")
		})),
	}

	// gorilla/sessions + rbcervilla/redisstore.
	rs, err := redisstore.NewRedisStore(context.Background(), newClient())
	if err != nil {
		b.Fatal(err)
	}
	rs.Options(sessions.Options{Path: "/", MaxAge: int(idle.Seconds()), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	const gname = "gorilla"
	gorilla := contender{
		name:   "gorilla",
		cookie: gname,
		handler: func(modify bool) http.Handler {
			var n atomic.Int64
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := rs.Get(r, gname)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				a, _ := s.Values["a"].(string)
				lang, _ := s.Values["b"].(string)
				if modify {
					s.Values["c"] = n.Add(1)
				}
				if err := s.Save(r, w); err != nil { // sliding expiry: every request
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				writeBody(w, a, lang)
			})
		},
		seed: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := rs.Get(r, gname)
			s.Values["a"], s.Values["b"] = "alice", "en-GB"
			_ = s.Save(r, w)
		}),
	}

	for _, mode := range []string{"read", "modify"} {
		b.Run(mode, func(b *testing.B) {
			for _, c := range []contender{hasession, cached, scsC, gorilla} {
				b.Run(c.name, func(b *testing.B) {
					h := c.handler(mode == "modify")
					b.ReportAllocs()
					b.SetParallelism(4)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						cookie, err := seed(c)
						if err != nil {
							b.Error(err)
							return
						}
						for pb.Next() {
							req := httptest.NewRequest(http.MethodGet, "/", nil)
							req.Header.Set("Cookie", cookie)
							rec := httptest.NewRecorder()
							h.ServeHTTP(rec, req)
							if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), benchWant) {
								b.Errorf("%s: %d %q", c.name, rec.Code, rec.Body.Bytes())
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		})
	}
}

// hasessionContender is hasession behind the middleware m.
func hasessionContender(name string, m *httpsession.Manager) contender {
	return contender{
		name:   name,
		cookie: m.CookieName(),
		handler: func(modify bool) http.Handler {
			var n atomic.Int64
			return m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := httpsession.FromContext(r.Context())
				var a, lang string
				_ = s.Get("a", &a)
				_ = s.Get("b", &lang)
				if modify {
					_ = s.Set("c", n.Add(1))
				}
				writeBody(w, a, lang)
			}))
		},
		seed: m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := httpsession.FromContext(r.Context())
			_ = s.Set("a", "alice")
			_ = s.Set("b", "en-GB")
		})),
	}
}

// seed creates a session holding a and b and returns the Cookie header that names it.
func seed(c contender) (string, error) {
	rec := httptest.NewRecorder()
	c.seed.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == c.cookie && ck.Value != "" {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("%s: no session cookie after seeding (status %d)", c.name, rec.Code)
}

func writeBody(w http.ResponseWriter, a, lang string) {
	buf := make([]byte, 0, 32)
	buf = append(buf, a...)
	buf = append(buf, ' ')
	buf = append(buf, lang...)
	_, _ = w.Write(buf)
}
