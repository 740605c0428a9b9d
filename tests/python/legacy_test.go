package python_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/internal/sid"
	"github.com/hasession/hasession/store"
)

// TestLegacyHashMigration: sessions a redis-py application keeps in one hash (HSET
// sessions ID DATA, no TTL), written by redis-py, are moved by the first request that
// brings their cookie — the user stays logged in, under a new ID the response's cookie
// carries — exactly once under concurrent requests on three app servers; a hash key of
// another type is an ErrLegacyCorrupt and is left untouched.
func TestLegacyHashMigration(t *testing.T) {
	interpreter(t)
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			ctx := t.Context()
			hash := "sessions:" + t.Name()
			rdb := cluster.Client(t, topo, nil)
			t.Cleanup(func() { rdb.Del(ctx, hash) })
			st := newStore(t, topo, store.WithLegacyHash(hash, "data"))

			mgr, err := httpsession.New(st, httpsession.WithCookieName("session"))
			require.NoError(t, err)
			srv := httptest.NewServer(mgr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				v, err := store.GetOr(httpsession.FromContext(r.Context()), "data", "")
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				_, _ = io.WriteString(w, v)
			})))
			t.Cleanup(srv.Close)
			get := func(cookie string) (body, setCookie string) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
				require.NoError(t, err)
				req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
				resp, err := srv.Client().Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
				for _, c := range resp.Cookies() {
					if c.Name == "session" {
						setCookie = c.Value
					}
				}
				return string(b), setCookie
			}

			for _, form := range []string{"token", "uuid4"} {
				t.Run(form, func(t *testing.T) {
					data := `{"user": "alice-` + form + `", "cart": [1, 2]}`
					old, _ := line(t, py(t, topo, kind, "legacy-write", hash, form, data), "python: legacy-write")["id"].(string)
					require.NotEmpty(t, old)

					body, cookie := get(old)
					assert.JSONEq(t, data, body, "the first request with the old cookie sees the session")
					require.True(t, sid.Valid(cookie), "the response carries the new session's ID: %q", cookie)
					assert.NotEqual(t, old, cookie)
					n, err := rdb.HExists(ctx, hash, old).Result()
					require.NoError(t, err)
					assert.False(t, n, "the legacy field is deleted")
					key, err := st.Key(cookie)
					require.NoError(t, err)
					ttl, err := rdb.PTTL(ctx, key).Result()
					require.NoError(t, err)
					assert.InDelta(t, st.IdleTimeout().Seconds(), ttl.Seconds(), 5, "the store's idle timeout applies")

					body, again := get(cookie)
					assert.JSONEq(t, data, body, "the user stays logged in with the new cookie")
					if again != "" {
						assert.Equal(t, cookie, again, "the session keeps its new ID")
					}
					body, _ = get(old)
					assert.JSONEq(t, data, body, "a request in flight with the old cookie lands in the new session")
				})
			}

			t.Run("ConcurrentRequestsMoveOnce", func(t *testing.T) {
				stores := []*store.Store{newStore(t, topo, store.WithLegacyHash(hash, "data")),
					newStore(t, topo, store.WithLegacyHash(hash, "data")), newStore(t, topo, store.WithLegacyHash(hash, "data"))}
				const n = 30
				for round := range 3 {
					old, _ := line(t, py(t, topo, kind, "legacy-write", hash, "token", `{"round": 1}`), "python: legacy-write")["id"].(string)
					before := int64(0)
					for _, s := range stores {
						before += s.Stats().LegacyImported
					}
					ids := make([]string, n)
					errs := make([]error, n)
					var wg sync.WaitGroup
					for i := range n {
						wg.Go(func() {
							s, err := stores[i%len(stores)].Load(ctx, old)
							errs[i] = err
							if err == nil {
								ids[i] = s.ID()
							}
						})
					}
					wg.Wait()
					for i := range n {
						require.NoError(t, errs[i], "round %d load %d", round, i)
						assert.Equal(t, ids[0], ids[i], "round %d: every request gets the one session", round)
					}
					after := int64(0)
					for _, s := range stores {
						after += s.Stats().LegacyImported
					}
					assert.EqualValues(t, 1, after-before, "round %d: the session is moved exactly once", round)
					s, err := st.Load(ctx, ids[0])
					require.NoError(t, err)
					v, err := store.Get[string](s, "data")
					require.NoError(t, err)
					assert.JSONEq(t, `{"round": 1}`, v)
				}
				t.Logf("%d rounds of %d concurrent loads of one legacy session on %d stores: each moved once", 3, n, len(stores))
			})

			t.Run("HashedIDsLeaveNoLiveIDInRedis", func(t *testing.T) {
				hashed := newStore(t, topo, store.WithLegacyHash(hash, "data"), store.WithHashedIDs(bytes.Repeat([]byte{7}, 32)))
				old, _ := line(t, py(t, topo, kind, "legacy-write", hash, "token", `{"hashed": true}`), "python: legacy-write")["id"].(string)
				s, err := hashed.Load(ctx, old)
				require.NoError(t, err)
				claims := scanKeys(t, rdb, "{*}:hs:moved:*")
				require.NotEmpty(t, claims)
				for _, k := range claims {
					assert.NotContains(t, k, old, "a claim key names no legacy ID")
					v, err := rdb.Get(ctx, k).Result()
					require.NoError(t, err)
					assert.NotContains(t, v, s.ID(), "a claim holds no live ID")
				}
				again, err := hashed.Load(ctx, old)
				require.NoError(t, err)
				assert.Equal(t, s.ID(), again.ID(), "the claim still leads to the session")
			})

			t.Run("WrongType", func(t *testing.T) {
				str := "sessions-string:" + t.Name()
				require.NoError(t, rdb.Set(ctx, str, "not a hash", 0).Err())
				t.Cleanup(func() { rdb.Del(ctx, str) })
				bad := newStore(t, topo, store.WithLegacyHash(str, "data"))
				_, err := bad.Load(ctx, "some-legacy-id")
				var le *store.LegacyError
				require.ErrorAs(t, err, &le)
				assert.ErrorIs(t, err, store.ErrLegacyCorrupt)
				assert.Equal(t, str, le.Key)
				v, err := rdb.Get(ctx, str).Result()
				require.NoError(t, err)
				assert.Equal(t, "not a hash", v, "left untouched")
				assert.EqualValues(t, 1, bad.Stats().LegacyCorrupt)
				ttl, err := rdb.PTTL(ctx, str).Result()
				require.NoError(t, err)
				assert.Equal(t, time.Duration(-1), ttl)
			})
		})
	}
}

// scanKeys returns the keys matching pattern on every master.
func scanKeys(t *testing.T, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, pattern, 100).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return it.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
			var mine []string
			it := c.Scan(ctx, 0, pattern, 100).Iterator()
			for it.Next(ctx) {
				mine = append(mine, it.Val())
			}
			mu.Lock()
			keys = append(keys, mine...)
			mu.Unlock()
			return it.Err()
		})
	} else {
		err = scan(t.Context(), rdb.(*redis.Client))
	}
	require.NoError(t, err)
	return keys
}
