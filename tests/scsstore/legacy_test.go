package scsstore_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/scsstore"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/legacy"
)

// legacyKinds are the topologies of the migration tests but the main one: a Sentinel
// topology adds nothing to moving a key that a single server does not show.
var legacyKinds = []cluster.Kind{cluster.KindStandalone, cluster.KindCluster}

func eachLegacyTopology(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	for _, kind := range legacyKinds {
		t.Run(string(kind), func(t *testing.T) {
			f(t, client(t, cluster.Shared(t, kind)))
		})
	}
}

// goredisStore returns scs's real goredisstore writing to rdb under prefix. goredisstore
// takes a *redis.Client, which a single server and a Sentinel-managed master have; a
// Cluster has none, so there each call goes to a goredisstore on the client of the
// master that owns the key's slot (ClusterClient.MasterForKey): the keys and values are
// exactly goredisstore's, on the node a Cluster client sends them to.
func goredisStore(t *testing.T, rdb redis.UniversalClient, prefix string) scs.Store {
	switch c := rdb.(type) {
	case *redis.Client:
		return goredisstore.NewWithPrefix(c, prefix)
	case *redis.ClusterClient:
		return perSlotGoredis{cc: c, prefix: prefix}
	}
	t.Fatalf("no goredisstore for a %T", rdb)
	return nil
}

type perSlotGoredis struct {
	cc     *redis.ClusterClient
	prefix string
}

func (p perSlotGoredis) store(ctx context.Context, token string) (*goredisstore.RedisStore, error) {
	c, err := p.cc.MasterForKey(ctx, p.prefix+token)
	if err != nil {
		return nil, err
	}
	return goredisstore.NewWithPrefix(c, p.prefix), nil
}

func (p perSlotGoredis) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	s, err := p.store(ctx, token)
	if err != nil {
		return nil, false, err
	}
	return s.FindCtx(ctx, token)
}

func (p perSlotGoredis) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	s, err := p.store(ctx, token)
	if err != nil {
		return err
	}
	return s.CommitCtx(ctx, token, b, expiry)
}

func (p perSlotGoredis) DeleteCtx(ctx context.Context, token string) error {
	s, err := p.store(ctx, token)
	if err != nil {
		return err
	}
	return s.DeleteCtx(ctx, token)
}

func (p perSlotGoredis) Find(token string) ([]byte, bool, error) {
	return p.FindCtx(context.Background(), token)
}

func (p perSlotGoredis) Commit(token string, b []byte, expiry time.Time) error {
	return p.CommitCtx(context.Background(), token, b, expiry)
}

func (p perSlotGoredis) Delete(token string) error { return p.DeleteCtx(context.Background(), token) }

// legacySession logs a user in through a SessionManager on goredisstore and returns the
// session's token and goredisstore's key.
func legacySession(t *testing.T, rdb redis.UniversalClient, prefix, user string) (token, key string) {
	t.Helper()
	old := scs.New()
	old.Store = goredisStore(t, rdb, prefix)
	old.Lifetime = time.Hour
	b := newBrowser(t, old)
	b.get("/put?v=" + url.QueryEscape(user))
	token = b.token()
	require.True(t, scsstore.ValidToken(token), "scs token %q", token)
	key = prefix + token
	ttl := rdb.PTTL(t.Context(), key).Val()
	require.Greater(t, ttl, 59*time.Minute, "goredisstore wrote %s with scs's expiry", key)
	return token, key
}

// migratingManager returns a SessionManager on the adapter with WithLegacy, where
// goredisstore and the adapter share the prefix (both defaults are "scs:session:").
func migratingManager(t *testing.T, rdb redis.UniversalClient, prefix string) (*scs.SessionManager, *scsstore.Store) {
	t.Helper()
	sm := scs.New()
	ad := newAdapter(t, rdb, scsstore.WithPrefix(prefix), scsstore.WithLegacy(prefix, sm.Codec))
	sm.Store = ad
	sm.Lifetime = time.Hour
	return sm, ad
}

// getAs requests path from b's server with the session cookie token, outside b's jar,
// and returns the body and the status.
func (b *browser) getAs(token, path string) (string, int) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, b.srv.URL+path, nil)
	require.NoError(b.t, err)
	req.AddCookie(&http.Cookie{Name: b.sm.Cookie.Name, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Error(err)
		return "", 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Error(err)
	}
	return string(body), resp.StatusCode
}

func TestLegacyReadThroughKeepsUsersLoggedIn(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		const prefix = "scs:legacy:"
		token, legacyKey := legacySession(t, rdb, prefix, "ada-logged-in")
		legacyTTL := rdb.PTTL(ctx, legacyKey).Val()

		sm, ad := migratingManager(t, rdb, prefix)
		b := newBrowser(t, sm)
		body, status := b.getAs(token, "/get")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "ada-logged-in", body, "the user stays logged in")

		newKey, err := ad.Key(token)
		require.NoError(t, err)
		ttl := rdb.PTTL(ctx, newKey).Val()
		require.Greater(t, ttl, legacyTTL-time.Minute, "the session keeps the TTL it had left")
		require.LessOrEqual(t, ttl, legacyTTL)
		require.EqualValues(t, 0, rdb.Exists(ctx, legacyKey).Val(), "goredisstore's key is gone")
		require.Equal(t, scsstore.LegacyStats{Imported: 1}, ad.LegacyStats())

		body, _ = b.getAs(token, "/get")
		require.Equal(t, "ada-logged-in", body, "the next request reads the adapter's key")
		require.Equal(t, scsstore.LegacyStats{Imported: 1}, ad.LegacyStats())
	})
}

func TestLegacyConcurrentRequestsMigrateOnce(t *testing.T) {
	eachLegacyTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		const prefix = "scs:legacyconc:"
		token, legacyKey := legacySession(t, rdb, prefix, "grace")
		sm, ad := migratingManager(t, rdb, prefix)
		b := newBrowser(t, sm)

		const n = 20
		start := make(chan struct{})
		bodies := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				bodies[i], _ = b.getAs(token, "/get")
			})
		}
		close(start)
		wg.Wait()
		for i, body := range bodies {
			require.Equal(t, "grace", body, "request %d sees the session", i)
		}
		require.Equal(t, scsstore.LegacyStats{Imported: 1}, ad.LegacyStats(), "exactly one request moved it")
		require.EqualValues(t, 0, rdb.Exists(ctx, legacyKey).Val(), "goredisstore's key is gone")
	})
}

func TestLegacyCorruptSessionIsLeftAndCounted(t *testing.T) {
	eachLegacyTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		const prefix = "scs:legacycorrupt:"
		sm, ad := migratingManager(t, rdb, prefix)
		b := newBrowser(t, sm)

		garbled, wrongType := scsToken(), scsToken()
		require.NoError(t, rdb.Set(ctx, prefix+garbled, "\x25not a gob", time.Hour).Err())
		require.NoError(t, rdb.HSet(ctx, prefix+wrongType, "Deadline", "soon", "user", "ada").Err())
		before := map[string]string{}
		for _, tok := range []string{garbled, wrongType} {
			before[tok] = rdb.Dump(ctx, prefix+tok).Val()
		}

		for i, tok := range []string{garbled, wrongType} {
			body, status := b.getAs(tok, "/get")
			require.Equal(t, http.StatusOK, status, "a corrupt legacy session is no error")
			require.Empty(t, body, "the request gets a new session")
			require.Equal(t, before[tok], rdb.Dump(ctx, prefix+tok).Val(), "the legacy key is left byte-identical")
			newKey, err := ad.Key(tok)
			require.NoError(t, err)
			require.EqualValues(t, 0, rdb.Exists(ctx, newKey).Val())
			require.Equal(t, scsstore.LegacyStats{Corrupt: uint64(i + 1)}, ad.LegacyStats())
		}
		require.Greater(t, rdb.PTTL(ctx, prefix+garbled).Val(), 59*time.Minute, "its TTL too")
	})
}

// A request that read goredisstore's key before another request moved it must not write
// the session back after the user logged out (the move script meets the tombstone).
// The stale request is played by putting the bytes it read back at goredisstore's key.
func TestLegacyStaleMigrationDoesNotUndoALogout(t *testing.T) {
	eachLegacyTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		const prefix = "scs:legacystale:"
		token, legacyKey := legacySession(t, rdb, prefix, "ada-logged-in")
		stale, err := rdb.Get(ctx, legacyKey).Bytes()
		require.NoError(t, err)
		sm, ad := migratingManager(t, rdb, prefix)
		b := newBrowser(t, sm)

		body, _ := b.getAs(token, "/get")
		require.Equal(t, "ada-logged-in", body)
		_, status := b.getAs(token, "/destroy") // logout
		require.Equal(t, http.StatusOK, status)

		require.NoError(t, rdb.Set(ctx, legacyKey, stale, time.Hour).Err())
		body, _ = b.getAs(token, "/get")
		require.Empty(t, body, "the logout holds")
		newKey, err := ad.Key(token)
		require.NoError(t, err)
		require.EqualValues(t, 0, rdb.Exists(ctx, newKey).Val(), "the session is not written back")
		require.Equal(t, scsstore.LegacyStats{Imported: 1}, ad.LegacyStats())
		require.EqualValues(t, 0, rdb.Exists(ctx, legacyKey).Val(), "hasession has deleted the session: the stale copy goes")
	})
}

// The bulk path (the Layout): SCAN with Match finds only goredisstore's keys, a dry run
// writes nothing, and Move reports each key's outcome.
func TestLegacyMoveBatch(t *testing.T) {
	eachLegacyTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		const prefix = "scs:legacybatch:"
		_, ad := migratingManager(t, rdb, prefix)
		cfg := legacy.DefaultSCSConfig()
		cfg.LegacyPrefix, cfg.Prefix = prefix, prefix
		l, err := legacy.NewSCS(rdb, nil, cfg)
		require.NoError(t, err)

		_, good1 := legacySession(t, rdb, prefix, "one")
		_, good2 := legacySession(t, rdb, prefix, "two")
		corrupt := prefix + scsToken()
		require.NoError(t, rdb.Set(ctx, corrupt, "garbage", time.Hour).Err())
		moved := scsToken()
		require.NoError(t, ad.CommitCtx(ctx, moved, []byte("x"), time.Now().Add(time.Hour)))
		deleted := scsToken() // deleted in hasession, with a stale goredisstore copy
		require.NoError(t, ad.CommitCtx(ctx, deleted, []byte("x"), time.Now().Add(time.Hour)))
		require.NoError(t, ad.DeleteCtx(ctx, deleted))
		require.NoError(t, rdb.Set(ctx, prefix+deleted, rdb.Get(ctx, good1).Val(), time.Hour).Err())
		require.NoError(t, rdb.Set(ctx, prefix+scsToken()+"x", "not a token", time.Hour).Err())

		var found []string
		scan := func(ctx context.Context, c redis.UniversalClient) error {
			iter := c.Scan(ctx, 0, l.Match(), 0).Iterator()
			for iter.Next(ctx) {
				found = append(found, iter.Val())
			}
			return iter.Err()
		}
		if cc, ok := rdb.(*redis.ClusterClient); ok {
			var mu sync.Mutex
			require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				mu.Lock()
				defer mu.Unlock()
				return scan(ctx, c)
			}))
		} else {
			require.NoError(t, scan(ctx, rdb))
		}
		require.ElementsMatch(t, []string{good1, good2, corrupt, prefix + deleted}, found, "Match selects goredisstore's keys only")

		keys := []string{good1, good2, corrupt, prefix + deleted, prefix + "{" + moved + "}"}
		res, err := l.Move(ctx, keys, true)
		require.NoError(t, err)
		outcomes := func(res []legacy.Result) []legacy.Outcome {
			var o []legacy.Outcome
			for i, r := range res {
				require.Equal(t, keys[i], r.Key)
				o = append(o, r.Outcome)
			}
			return o
		}
		want := []legacy.Outcome{legacy.Imported, legacy.Imported, legacy.Corrupt, legacy.Skipped, legacy.Skipped}
		require.Equal(t, want, outcomes(res))
		require.EqualValues(t, 2, rdb.Exists(ctx, good1).Val()+rdb.Exists(ctx, good2).Val(), "a dry run writes nothing")
		require.Equal(t, legacy.SCSStats{}, l.Stats())

		res, err = l.Move(ctx, keys, false)
		require.NoError(t, err)
		require.Equal(t, want, outcomes(res))
		var ce *legacy.CorruptError
		require.ErrorAs(t, res[2].Err, &ce)
		require.Equal(t, corrupt, ce.Key)
		require.EqualValues(t, 0, rdb.Exists(ctx, good1).Val()+rdb.Exists(ctx, good2).Val(), "moved keys are gone")
		require.EqualValues(t, 1, rdb.Exists(ctx, corrupt).Val(), "a corrupt key stays")
		require.EqualValues(t, 0, rdb.Exists(ctx, prefix+deleted).Val(), "a stale copy of a deleted session goes")
		newKey, err := ad.Key(deleted)
		require.NoError(t, err)
		require.EqualValues(t, 0, rdb.Exists(ctx, newKey).Val(), "and is not written back")
		require.Equal(t, legacy.SCSStats{Imported: 2, Corrupt: 1}, l.Stats())

		res, err = l.Move(ctx, keys, false)
		require.NoError(t, err)
		require.Equal(t, []legacy.Outcome{legacy.Skipped, legacy.Skipped, legacy.Corrupt, legacy.Skipped, legacy.Skipped}, outcomes(res), "moving again is safe")
	})
}

// A legacy key written again between the read and the delete (a goredisstore still
// running, in a rolling deploy) is not deleted: only the bytes moved are.
func TestLegacyMoveKeepsAKeyChangedMeanwhile(t *testing.T) {
	eachLegacyTopology(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		const prefix = "scs:legacychanged:"
		_, key := legacySession(t, rdb, prefix, "before")
		_, newer := legacySession(t, rdb, prefix, "after")
		newerBytes := rdb.Get(ctx, newer).Val()
		cfg := legacy.DefaultSCSConfig()
		cfg.LegacyPrefix, cfg.Prefix = prefix, prefix
		l, err := legacy.NewSCS(rdb, func(ctx context.Context, name string, op func(context.Context) (any, error)) (any, error) {
			if name == "scs legacy delete" { // the key changes after it was moved
				if err := rdb.Set(ctx, key, newerBytes, time.Hour).Err(); err != nil {
					return nil, err
				}
			}
			return op(ctx)
		}, cfg)
		require.NoError(t, err)

		res, err := l.Move(ctx, []string{key}, false)
		require.NoError(t, err)
		require.Equal(t, legacy.Imported, res[0].Outcome)
		require.Equal(t, newerBytes, rdb.Get(ctx, key).Val(), "the newer value is kept")
	})
}
