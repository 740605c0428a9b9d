package scsstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/scsstore"
	"github.com/hasession/hasession/cluster"
)

// keysHolding returns the keys under prefix whose string value contains value, on every
// master.
func keysHolding(t *testing.T, rdb redis.UniversalClient, prefix, value string) []string {
	t.Helper()
	var mu sync.Mutex
	var found []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			if v, err := c.Get(ctx, iter.Val()).Result(); err == nil && strings.Contains(v, value) {
				mu.Lock()
				found = append(found, iter.Val())
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		require.NoError(t, cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) }))
	} else {
		require.NoError(t, scan(t.Context(), rdb))
	}
	return found
}

// A request in flight while the session is destroyed (logout) or gets a new token
// (login) elsewhere must not write the old session back with its commit.
func TestCommitAfterDeleteWritesNothing(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		for _, end := range []string{"/destroy", "/renew"} {
			t.Run(end, func(t *testing.T) {
				ctx := t.Context()
				prefix := "scs:deleted" + strings.TrimPrefix(end, "/") + ":"
				ad := newAdapter(t, rdb, scsstore.WithPrefix(prefix))
				sm := scs.New()
				sm.Store = ad
				loaded, release := make(chan struct{}), make(chan struct{})
				commitErr := make(chan error, 1)
				mux := http.NewServeMux()
				mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
					sm.Put(r.Context(), "user", "ada-logged-in")
				})
				mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
					close(loaded)
					<-release
					sm.Put(r.Context(), "cart", "book")
				})
				mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
					if err := sm.Destroy(r.Context()); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
					}
				})
				mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
					if err := sm.RenewToken(r.Context()); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
					}
				})
				sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
					if r.URL.Path == "/slow" {
						commitErr <- err
					}
					http.Error(w, err.Error(), http.StatusConflict)
				}
				srv := httptest.NewServer(sm.LoadAndSave(mux))
				t.Cleanup(srv.Close)
				jar, err := cookiejar.New(nil)
				require.NoError(t, err)
				c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
				get := func(path string) int {
					resp, err := c.Get(srv.URL + path)
					if err != nil {
						t.Error(err)
						return 0
					}
					defer resp.Body.Close()
					_, _ = io.Copy(io.Discard, resp.Body)
					return resp.StatusCode
				}

				require.Equal(t, http.StatusOK, get("/login"))
				slow := make(chan int, 1)
				go func() { slow <- get("/slow") }()
				<-loaded
				require.Equal(t, http.StatusOK, get(end)) // meanwhile, in another tab
				close(release)
				status := <-slow
				require.Empty(t, keysHolding(t, rdb, prefix, "book"), "the in-flight change is not written")
				require.Equal(t, http.StatusConflict, status)
				require.ErrorIs(t, <-commitErr, scsstore.ErrDeleted)

				holding := keysHolding(t, rdb, prefix, "ada-logged-in")
				if end == "/destroy" {
					require.Empty(t, holding, "the login is not back")
				} else {
					require.Len(t, holding, 1, "only the renewed session holds the login")
					_, found, err := ad.FindCtx(ctx, strings.TrimSuffix(strings.TrimPrefix(holding[0], prefix+"{"), "}"))
					require.NoError(t, err)
					require.True(t, found)
				}
			})
		}
	})
}

func TestDeleteLeavesATombstone(t *testing.T) {
	rdb := client(t, cluster.Shared(t, cluster.KindStandalone))
	ctx := t.Context()
	ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:tomb:"))
	tok := scsToken()
	require.NoError(t, ad.CommitCtx(ctx, tok, []byte("v1"), time.Now().Add(time.Hour)))
	require.NoError(t, ad.DeleteCtx(ctx, tok))

	err := ad.CommitCtx(ctx, tok, []byte("v2"), time.Now().Add(time.Hour))
	require.ErrorIs(t, err, scsstore.ErrDeleted)
	_, found, err := ad.FindCtx(ctx, tok)
	require.NoError(t, err)
	require.False(t, found)
	require.NoError(t, ad.CommitCtx(ctx, tok, nil, time.Now().Add(-time.Second)), "an expired commit of a deleted session deletes nothing more")
	all, err := ad.AllCtx(ctx)
	require.NoError(t, err)
	require.Empty(t, all, "a tombstone is not a session")

	key, err := ad.Key(tok)
	require.NoError(t, err)
	ttl := rdb.PTTL(ctx, key+":deleted").Val()
	require.Greater(t, ttl, 59*time.Minute, "the tombstone lasts as long as the session would have")

	fresh := scsToken()
	require.NoError(t, ad.CommitCtx(ctx, fresh, []byte("new"), time.Now().Add(time.Hour)), "a new token is not affected")
	require.NoError(t, ad.DeleteCtx(ctx, fresh))
	require.NoError(t, ad.DeleteCtx(ctx, fresh), "deleting twice is fine")
}
