package scsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/scsstore"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// eachTopology runs f once per topology kind, as a subtest, with a failover-tuned client.
func eachTopology(t *testing.T, f func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient)) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			f(t, topo, client(t, topo))
		})
	}
}

func newAdapter(t *testing.T, rdb redis.UniversalClient, opts ...scsstore.Option) *scsstore.Store {
	t.Helper()
	st, err := store.New(rdb)
	require.NoError(t, err)
	ad, err := scsstore.New(st, opts...)
	require.NoError(t, err)
	return ad
}

// scsToken returns a token as scs makes one.
func scsToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// browser is an HTTP client with a cookie jar, talking to a SessionManager's
// LoadAndSave in front of a few handlers.
type browser struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
	sm  *scs.SessionManager
}

func newBrowser(t *testing.T, sm *scs.SessionManager) *browser {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "msg", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, sm.GetString(r.Context(), "msg"))
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	sm.ErrorFunc = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, srv: srv, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}, sm: sm}
}

// get requests path and returns the body; the status must be 200.
func (b *browser) get(path string) string {
	b.t.Helper()
	resp, err := b.c.Get(b.srv.URL + path)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	require.Equal(b.t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
	return string(body)
}

// token returns the session cookie the browser holds, or "".
func (b *browser) token() string {
	u, _ := url.Parse(b.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == b.sm.Cookie.Name {
			return c.Value
		}
	}
	return ""
}

func TestSessionManagerPutGetRenewIterateDestroy(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:flows:"))
		sm := scs.New()
		sm.Store = ad
		b := newBrowser(t, sm)

		require.Empty(t, b.get("/get"))
		require.Empty(t, b.token(), "an untouched new session is not committed")

		b.get("/put?v=hello")
		tok := b.token()
		require.True(t, scsstore.ValidToken(tok), "scs token %q", tok)
		require.Equal(t, "hello", b.get("/get"))
		key, err := ad.Key(tok)
		require.NoError(t, err)
		require.Equal(t, "scs:flows:{"+tok+"}", key)
		require.EqualValues(t, 1, rdb.Exists(ctx, key).Val(), "stored under the hash-tagged key")
		ttl := rdb.PTTL(ctx, key).Val()
		require.Greater(t, ttl, 23*time.Hour, "TTL from scs's 24 h lifetime")
		require.LessOrEqual(t, ttl, 24*time.Hour)

		b.get("/renew")
		renewed := b.token()
		require.True(t, scsstore.ValidToken(renewed))
		require.NotEqual(t, tok, renewed, "RenewToken gives a new token")
		require.Equal(t, "hello", b.get("/get"), "and keeps the data")
		_, found, err := ad.FindCtx(ctx, tok)
		require.NoError(t, err)
		require.False(t, found, "the old token is deleted")

		var seen []string
		require.NoError(t, sm.Iterate(ctx, func(ctx context.Context) error {
			seen = append(seen, sm.Token(ctx)+"="+sm.GetString(ctx, "msg"))
			return nil
		}))
		require.Equal(t, []string{renewed + "=hello"}, seen, "Iterate sees the live session")

		b.get("/destroy")
		require.Empty(t, b.token(), "Destroy expires the cookie")
		_, found, err = ad.FindCtx(ctx, renewed)
		require.NoError(t, err)
		require.False(t, found, "Destroy deletes the session")
		require.Empty(t, b.get("/get"))
		all, err := ad.AllCtx(ctx)
		require.NoError(t, err)
		require.NotNil(t, all)
		require.Empty(t, all)
	})
}

func TestExpiryIsHonoured(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:expiry:"))
		sm := scs.New()
		sm.Store = ad
		sm.Lifetime = 1500 * time.Millisecond
		b := newBrowser(t, sm)

		b.get("/put?v=short")
		key, err := ad.Key(b.token())
		require.NoError(t, err)
		ttl := rdb.PTTL(ctx, key).Val()
		require.Greater(t, ttl, time.Duration(0))
		require.LessOrEqual(t, ttl, 1500*time.Millisecond, "TTL from scs's expiry")
		require.Equal(t, "short", b.get("/get"))
		require.Eventually(t, func() bool { return rdb.Exists(ctx, key).Val() == 0 }, 10*time.Second, 50*time.Millisecond,
			"Redis drops the session at its expiry")
		require.Empty(t, b.get("/get"))

		t.Run("an idle timeout slides the expiry", func(t *testing.T) {
			sm.Lifetime = time.Hour
			sm.IdleTimeout = 2 * time.Second
			b.get("/put?v=idle")
			key, err := ad.Key(b.token())
			require.NoError(t, err)
			ttl := rdb.PTTL(ctx, key).Val()
			require.Greater(t, ttl, time.Duration(0))
			require.LessOrEqual(t, ttl, 2*time.Second)
		})

		t.Run("an expiry in the past deletes", func(t *testing.T) {
			tok := scsToken()
			require.NoError(t, ad.CommitCtx(ctx, tok, []byte("data"), time.Now().Add(time.Hour)))
			got, found, err := ad.FindCtx(ctx, tok)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, []byte("data"), got)
			require.NoError(t, ad.CommitCtx(ctx, tok, []byte("data"), time.Now().Add(-time.Second)))
			_, found, err = ad.FindCtx(ctx, tok)
			require.NoError(t, err)
			require.False(t, found)
			key, _ := ad.Key(tok)
			require.EqualValues(t, 0, rdb.Exists(ctx, key).Val())
		})
	})
}

func TestMalformedTokenSendsNothing(t *testing.T) {
	long := scsToken()
	last := long[:scsstore.TokenLen-1] + "B" // non-zero padding bits: not canonical
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:malformed:"))
		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		for _, tok := range []string{
			"", "abc", long + "A", long[:42], "{" + long[2:] + "}", long[:42] + " ",
			long[:42] + "+", long[:42] + "/", long[:42] + "=", long[:20] + "*" + long[21:],
			long[:20] + "\x00" + long[21:], last,
		} {
			b, found, err := ad.FindCtx(ctx, tok)
			require.NoError(t, err, "%q", tok)
			require.False(t, found)
			require.Nil(t, b)
			require.NoError(t, ad.DeleteCtx(ctx, tok))
			require.ErrorIs(t, ad.CommitCtx(ctx, tok, []byte("x"), time.Now().Add(time.Hour)), scsstore.ErrInvalidToken)
			_, err = ad.Key(tok)
			require.ErrorIs(t, err, scsstore.ErrInvalidToken)
		}
		require.Zero(t, n.Load(), "no command reached Redis")

		// Through the SessionManager: a forged cookie is a new session, nothing sent.
		sm := scs.New()
		sm.Store = ad
		h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, sm.GetString(r.Context(), "msg"))
		}))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: "{" + long[2:] + "}"})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Empty(t, rec.Body.String())
		require.Zero(t, n.Load(), "no command reached Redis")
	})
}

func TestAllScansEveryMaster(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:all:"))
		other := newAdapter(t, rdb, scsstore.WithPrefix("scs:other:"))
		want := make(map[string][]byte)
		masters := make(map[string]bool)
		for i := range 60 {
			tok := scsToken()
			want[tok] = []byte("session " + strconv.Itoa(i))
			require.NoError(t, ad.CommitCtx(ctx, tok, want[tok], time.Now().Add(time.Hour)))
			key, _ := ad.Key(tok)
			m, err := topo.MasterForKey(ctx, key)
			require.NoError(t, err)
			masters[m.Name] = true
		}
		require.NoError(t, other.CommitCtx(ctx, scsToken(), []byte("not ours"), time.Now().Add(time.Hour)))
		// Keys under the prefix that hold no scs token are ignored.
		require.NoError(t, rdb.Set(ctx, "scs:all:{not-a-token}", "x", time.Hour).Err())
		require.NoError(t, rdb.Set(ctx, "scs:all:plain", "x", time.Hour).Err())
		if topo.Kind() == cluster.KindCluster {
			require.Greater(t, len(masters), 1, "the sessions are spread over several masters")
		}

		got, err := ad.AllCtx(ctx)
		require.NoError(t, err)
		require.Equal(t, want, got)

		// An expired session is left out.
		var gone string
		for tok := range want {
			gone = tok
			break
		}
		require.NoError(t, ad.CommitCtx(ctx, gone, nil, time.Now().Add(-time.Second)))
		delete(want, gone)
		got, err = ad.AllCtx(ctx)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}

func TestNonContextMethodsWork(t *testing.T) {
	rdb := client(t, cluster.Shared(t, cluster.KindStandalone))
	ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:noctx:"))
	tok := scsToken()
	require.NoError(t, ad.Commit(tok, []byte("v"), time.Now().Add(time.Minute)))
	b, found, err := ad.Find(tok)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, []byte("v"), b)
	all, err := ad.All()
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{tok: []byte("v")}, all)
	require.NoError(t, ad.Delete(tok))
	_, found, err = ad.Find(tok)
	require.NoError(t, err)
	require.False(t, found)
}

func TestHashTokenInStore(t *testing.T) {
	rdb := client(t, cluster.Shared(t, cluster.KindStandalone))
	ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:hashed:"))
	sm := scs.New()
	sm.Store = ad
	sm.HashTokenInStore = true
	b := newBrowser(t, sm)
	b.get("/put?v=hashed")
	require.Equal(t, "hashed", b.get("/get"))
	all, err := ad.AllCtx(t.Context())
	require.NoError(t, err)
	require.Len(t, all, 1)
	for stored := range all {
		require.NotEqual(t, b.token(), stored, "only the token's hash reaches Redis")
		require.True(t, scsstore.ValidToken(stored))
	}
}
