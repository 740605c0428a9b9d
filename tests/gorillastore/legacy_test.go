package gorillastore_test

import (
	"bytes"
	"encoding/base32"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boj/redistore"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/gorillastore"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// The sessions of a legacy store — boj/redistore or rbcervilla/redisstore, written by the
// library itself through gorilla's API — move into the hasession store at their first
// request: the user stays logged in, with a new session ID.

// legacyKinds are the topologies of the legacy tests: a single server, which every peer
// library talks to, and a Cluster.
var legacyKinds = []cluster.Kind{cluster.KindStandalone, cluster.KindCluster}

// The app's securecookie keys for redistore: a hash key and a block key.
var legacyKeys = [][]byte{[]byte("legacy-hash-key-0123456789abcdef"), []byte("legacy-block-key")}

// legacyCart is a value type the app registered with gob for its legacy store.
type legacyCart struct{ Items []string }

func init() { gob.Register(legacyCart{}) }

// legacyValues are the values a legacy session holds.
func legacyValues() map[any]any {
	return map[any]any{"user": "ada", "visits": 3, "cart": legacyCart{Items: []string{"book", "pen"}}}
}

// peer is a legacy store: how the app configures the adapter for it and how a session of
// it is written.
type peer struct {
	name   string
	prefix string
	option gorillastore.Option
	json   bool // redistore's JSONSerializer
	// write saves a session with values that lives maxAge seconds, as the peer does, and
	// returns the cookie value its response set and the session's ID.
	write func(t *testing.T, p peer, topo cluster.Topology, rdb redis.UniversalClient, values map[any]any, maxAge int) (cookie, id string)
}

func peers(prefix string) []peer {
	return []peer{
		{name: "redistore", prefix: prefix + "session_", option: gorillastore.WithLegacyRedistore(prefix+"session_", legacyKeys...), write: writeRedistore},
		{name: "redisstore", prefix: prefix + "session:", option: gorillastore.WithLegacyRedisstore(prefix + "session:"), write: writeRedisstore},
		{name: "redistore-json", prefix: prefix + "json_", option: gorillastore.WithLegacyRedistore(prefix+"json_", legacyKeys...), json: true, write: writeRedistore},
	}
}

// writeRedistore saves a session with boj/redistore. It talks to one Redis server
// (redigo): on a Cluster it cannot write, so there the test writes what it would — the
// gob of Values (its GobSerializer), SETEX at prefix+ID, an ID of its generator, and the
// cookie securecookie.EncodeMulti makes of the ID with the app's keys.
func writeRedistore(t *testing.T, p peer, topo cluster.Topology, rdb redis.UniversalClient, values map[any]any, maxAge int) (string, string) {
	t.Helper()
	if topo.Kind() == cluster.KindCluster {
		id := strings.TrimRight(base32.StdEncoding.EncodeToString(securecookie.GenerateRandomKey(32)), "=")
		var b bytes.Buffer
		if p.json {
			m := make(map[string]any)
			for k, v := range values {
				m[k.(string)] = v
			}
			require.NoError(t, json.NewEncoder(&b).Encode(m))
		} else {
			require.NoError(t, gob.NewEncoder(&b).Encode(values))
		}
		require.NoError(t, rdb.SetEx(t.Context(), p.prefix+id, b.Bytes(), time.Duration(maxAge)*time.Second).Err())
		cookie, err := securecookie.EncodeMulti(cookieName, id, securecookie.CodecsFromPairs(legacyKeys...)...)
		require.NoError(t, err)
		return cookie, id
	}
	o := topo.UniversalOptions()
	rs, err := redistore.NewRediStore(2, "tcp", topo.Addrs()[0], o.Username, o.Password, legacyKeys...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rs.Close() })
	rs.SetKeyPrefix(p.prefix)
	if p.json {
		rs.SetSerializer(redistore.JSONSerializer{})
	}
	return saveWith(t, rs, values, maxAge)
}

// writeRedisstore saves a session with rbcervilla/redisstore, on any topology (it takes a
// go-redis UniversalClient).
func writeRedisstore(t *testing.T, p peer, _ cluster.Topology, rdb redis.UniversalClient, values map[any]any, maxAge int) (string, string) {
	t.Helper()
	rs, err := redisstore.NewRedisStore(t.Context(), rdb)
	require.NoError(t, err)
	rs.KeyPrefix(p.prefix)
	return saveWith(t, rs, values, maxAge)
}

// saveWith saves a new session with values through gorilla's API on the legacy store.
func saveWith(t *testing.T, legacyStore sessions.Store, values map[any]any, maxAge int) (string, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	sess, err := legacyStore.Get(req, cookieName)
	require.NoError(t, err)
	require.True(t, sess.IsNew)
	for k, v := range values {
		sess.Values[k] = v
	}
	sess.Options.MaxAge = maxAge
	require.NoError(t, sess.Save(req, rec))
	for _, c := range rec.Result().Cookies() {
		if c.Name == cookieName {
			return c.Value, sess.ID
		}
	}
	t.Fatal("the legacy store set no cookie")
	return "", ""
}

// eachLegacyKind runs f once per legacy topology kind, as a subtest.
func eachLegacyKind(t *testing.T, f func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient)) {
	for _, kind := range legacyKinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			f(t, topo, client(t, topo))
		})
	}
}

func TestLegacySessionsMoveAtTheirFirstRequest(t *testing.T) {
	eachLegacyKind(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		for _, p := range peers("gs:legacy:move:") {
			t.Run(p.name, func(t *testing.T) {
				ctx := t.Context()
				opts := []gorillastore.Option{p.option, gorillastore.WithValueType("visits", 0), gorillastore.WithValueType("cart", legacyCart{})}
				want := map[any]any{"user": "ada", "visits": 3, "cart": legacyCart{Items: []string{"book", "pen"}}}
				if p.json {
					// JSON numbers are float64, as redistore's JSONSerializer gave them back.
					opts = []gorillastore.Option{p.option, gorillastore.WithLegacyJSON(), gorillastore.WithValueType("cart", legacyCart{})}
					want["visits"] = 3.0
				}
				st, gs := newStores(t, rdb, "gs:legacy:move:", opts...)
				cookie, id := p.write(t, p, topo, rdb, legacyValues(), 3600)
				legacyTTL, err := rdb.PTTL(ctx, p.prefix+id).Result()
				require.NoError(t, err)
				require.Greater(t, legacyTTL, 59*time.Minute)

				s := newSite(t, gs)
				u, err := url.Parse(s.srv.URL)
				require.NoError(t, err)
				s.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: cookie, Path: "/"}})

				var first sessions.Session
				resp, err := s.do(func(w http.ResponseWriter, r *http.Request, sess *sessions.Session) error {
					first = *sess
					return sess.Save(r, w) // nothing changed: the cookie is still sent
				})
				require.NoError(t, err)
				require.False(t, first.IsNew, "the user is still logged in")
				require.Equal(t, want, first.Values)
				require.True(t, st.ValidID(first.ID), "a hasession ID: %q", first.ID)
				c := setCookie(t, resp)
				require.Equal(t, first.ID, c.Value, "the response carries the new ID")
				require.NotEqual(t, cookie, c.Value)
				require.InDelta(t, legacyTTL.Seconds(), float64(c.MaxAge), 5, "the cookie lives what the session has left")

				var second sessions.Session
				_, err = s.do(func(_ http.ResponseWriter, _ *http.Request, sess *sessions.Session) error {
					second = *sess
					return nil
				})
				require.NoError(t, err)
				require.False(t, second.IsNew)
				require.Equal(t, first.ID, second.ID)
				require.Equal(t, want, second.Values)

				n, err := rdb.Exists(ctx, p.prefix+id).Result()
				require.NoError(t, err)
				require.Zero(t, n, "the legacy session is gone")
				lifetime, ttl := lifetimeInRedis(t, st, rdb, first.ID)
				require.InDelta(t, legacyTTL.Seconds(), lifetime.Seconds(), 5, "the new session lives what the legacy one had left")
				require.LessOrEqual(t, ttl, lifetime)
				require.Equal(t, int64(1), st.Stats().LegacyImported)
				require.Zero(t, st.Stats().LegacyCorrupt)
			})
		}
	})
}

// Many requests bring the same legacy cookie at once, to several app servers: one moves
// the session, and every request gets that one session.
func TestLegacySessionMovesOnceUnderConcurrentRequests(t *testing.T) {
	eachLegacyKind(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		p := peers("gs:legacy:conc:")[1] // redisstore: the library itself writes on every topology
		const servers, requests = 3, 20
		var sts []*store.Store
		var gss []*gorillastore.Store
		for range servers {
			st, gs := newStores(t, rdb, "gs:legacy:conc:", p.option)
			sts, gss = append(sts, st), append(gss, gs)
		}
		cookie, id := p.write(t, p, topo, rdb, map[any]any{"user": "grace-concurrent"}, 3600)

		ids := make([]string, requests)
		sent := make([]string, requests)
		errs := make([]error, requests)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range requests {
			wg.Go(func() {
				req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
				req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
				rec := httptest.NewRecorder()
				<-start
				sess, err := gss[i%servers].Get(req, cookieName)
				if err == nil && (sess.IsNew || sess.Values["user"] != "grace-concurrent") {
					err = fmt.Errorf("request %d got a new session or other values: %v", i, sess.Values)
				}
				if err == nil {
					err = sess.Save(req, rec)
				}
				ids[i], errs[i] = sess.ID, err
				for _, c := range rec.Result().Cookies() {
					if c.Name == cookieName {
						sent[i] = c.Value
					}
				}
			})
		}
		close(start)
		wg.Wait()
		for i := range requests {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i], "request %d", i)
			require.Equal(t, ids[0], sent[i], "request %d's cookie", i)
		}
		var imported int64
		for _, st := range sts {
			imported += st.Stats().LegacyImported
		}
		require.Equal(t, int64(1), imported)
		n, err := rdb.Exists(t.Context(), p.prefix+id).Result()
		require.NoError(t, err)
		require.Zero(t, n)
		require.Len(t, sessionsHolding(t, rdb, "gs:legacy:conc:", "grace-concurrent"), 1, "one session holds the values")
	})
}

// A legacy session that does not move — its value does not decode, its key is of another
// type, a key of its Values is not a string — is left byte for byte as it is, and the
// request gets a new session, no error: counted and logged.
func TestLegacyCorruptSessionsAreLeftUntouched(t *testing.T) {
	eachLegacyKind(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		p := peers("gs:legacy:corrupt:")[0]
		var logs syncBuffer
		st, gs := newStores(t, rdb, "gs:legacy:corrupt:", p.option,
			gorillastore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		var intKey bytes.Buffer
		require.NoError(t, gob.NewEncoder(&intKey).Encode(map[any]any{"user": "ada", 7: "seven"}))
		cases := map[string]func(key string) error{
			"a value that does not gob-decode": func(key string) error {
				return rdb.SetEx(ctx, key, "not gob at all", time.Hour).Err()
			},
			"a key of another type": func(key string) error {
				if err := rdb.HSet(ctx, key, "user", "ada").Err(); err != nil {
					return err
				}
				return rdb.Expire(ctx, key, time.Hour).Err()
			},
			"a key of Values that is not a string": func(key string) error {
				return rdb.SetEx(ctx, key, intKey.Bytes(), time.Hour).Err()
			},
		}
		corrupt := int64(0)
		for name, write := range cases {
			t.Run(name, func(t *testing.T) {
				id := strings.TrimRight(base32.StdEncoding.EncodeToString(securecookie.GenerateRandomKey(32)), "=")
				key := p.prefix + id
				require.NoError(t, write(key))
				before, err := rdb.Dump(ctx, key).Result()
				require.NoError(t, err)
				cookie, err := securecookie.EncodeMulti(cookieName, id, securecookie.CodecsFromPairs(legacyKeys...)...)
				require.NoError(t, err)

				req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
				req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
				sess, err := gs.Get(req, cookieName)
				require.NoError(t, err)
				require.True(t, sess.IsNew)
				require.Empty(t, sess.Values)
				require.Empty(t, sess.ID)

				after, err := rdb.Dump(ctx, key).Result()
				require.NoError(t, err)
				require.Equal(t, before, after, "the legacy session is byte-identical")
				ttl, err := rdb.PTTL(ctx, key).Result()
				require.NoError(t, err)
				require.Greater(t, ttl, 59*time.Minute, "and keeps its TTL")
				corrupt++
				require.Equal(t, corrupt, st.Stats().LegacyCorrupt)
				require.Zero(t, st.Stats().LegacyImported)
				require.Contains(t, logs.String(), "legacy session", "logged")
			})
		}
	})
}

// A cookie that is not a legacy store's — signed with other keys, or not an ID its
// generator makes — gets a new session, and nothing is sent to Redis for it.
func TestLegacyCookieThatDoesNotVerifySendsNothing(t *testing.T) {
	eachLegacyKind(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ps := peers("gs:legacy:badcookie:")
		cookie, id := ps[0].write(t, ps[0], topo, rdb, legacyValues(), 3600)
		otherKeys := gorillastore.WithLegacyRedistore(ps[0].prefix, []byte("another-hash-key-0123456789abcde"), legacyKeys[1])
		_, gsOther := newStores(t, rdb, "gs:legacy:badcookie:", otherKeys)
		_, gsPlain := newStores(t, rdb, "gs:legacy:badcookie:", ps[1].option)
		// redisstore's cookie holds the ID as it is: a redistore ID is not one of its own.
		tooShort := strings.TrimRight(base32.StdEncoding.EncodeToString(securecookie.GenerateRandomKey(32)), "=")

		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		for _, c := range []struct {
			gs     *gorillastore.Store
			cookie string
		}{{gsOther, cookie}, {gsPlain, cookie}, {gsPlain, tooShort}, {gsPlain, strings.ToLower(tooShort + tooShort)[:103]}} {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
			req.AddCookie(&http.Cookie{Name: cookieName, Value: c.cookie})
			sess, err := c.gs.Get(req, cookieName)
			require.NoError(t, err)
			require.True(t, sess.IsNew)
			require.Empty(t, sess.Values)
		}
		require.Zero(t, n.Load(), "nothing reached Redis")
		left, err := rdb.Exists(t.Context(), ps[0].prefix+id).Result()
		require.NoError(t, err)
		require.Equal(t, int64(1), left, "the legacy session is still there")
	})
}

// syncBuffer is a bytes.Buffer for a logger that concurrent requests may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
