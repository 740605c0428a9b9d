package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// without returns rules without the rule drop.
func without(rules []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(rules), func(r string) bool { return r == drop })
}

// aclStandalone starts a TLS server with the store's user and users that lack one rule.
func aclStandalone(t *testing.T) *cluster.Standalone {
	rules := store.ACLRules(store.DefaultPrefix)
	return cluster.StandaloneForTest(t, cluster.WithTLS(true),
		cluster.WithACLUser("noevalsha", "pw-noevalsha", without(rules, "+evalsha")...),
		cluster.WithACLUser("nohset", "pw-nohset", without(rules, "+hset")...),
		cluster.WithACLUser("hasession", "pw-hasession", rules...))
}

// userClient returns a client of s that logs in as user, counting the scripts it sends
// (EVALSHA and EVAL; not the commands go-redis sends to set a connection up).
func userClient(t *testing.T, s *cluster.Standalone, user, password string, n *atomic.Int64) redis.UniversalClient {
	o := s.UniversalOptions()
	o.Username, o.Password = user, password
	rdb := redis.NewUniversalClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	if n != nil {
		rdb.AddHook(scriptCounter{n})
	}
	return rdb
}

// scriptCounter is a go-redis hook that counts EVALSHA and EVAL commands.
type scriptCounter struct{ n *atomic.Int64 }

func (h scriptCounter) count(cmd redis.Cmder) {
	if name := cmd.Name(); name == "evalsha" || name == "eval" {
		h.n.Add(1)
	}
}

func (h scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return next(ctx, cmds)
	}
}

// Every operation of the store runs as the least-privilege user of ACLRules, and Redis
// logs no refusal; the user is really restricted.
func TestACLStoreRunsAsTheLeastPrivilegeUser(t *testing.T) {
	s := aclStandalone(t)
	ctx := t.Context()
	admin := s.Client()
	rdb := userClient(t, s, "hasession", "pw-hasession", nil)
	require.True(t, redis.HasErrorPrefix(rdb.Set(ctx, "other", 1, 0).Err(), "NOPERM"), "a key outside the prefix")
	require.True(t, redis.HasErrorPrefix(rdb.FlushAll(ctx).Err(), "NOPERM"), "a command outside the list")
	require.NoError(t, admin.Do(ctx, "ACL", "LOG", "RESET").Err())

	st, err := store.New(rdb, store.WithTouchInterval(0))
	require.NoError(t, err)
	sess, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, sess.Set("cart", []string{"book"}))
	sess.SetUser("ada")
	require.NoError(t, st.Save(ctx, sess))
	require.NoError(t, admin.ScriptFlush(ctx).Err(), "NOSCRIPT: the EVAL fallback")
	got, err := st.Load(ctx, sess.ID()) // touch due on every load
	require.NoError(t, err)
	require.NoError(t, got.Set("n", 1))
	require.NoError(t, st.Save(ctx, got))
	oldID := got.ID()
	require.NoError(t, st.Rotate(ctx, got))
	_, err = st.Load(ctx, oldID)
	require.NoError(t, err, "forward pointer")
	infos, err := st.Sessions(ctx, "ada")
	require.NoError(t, err)
	require.Len(t, infos, 1)
	other, _ := st.NewSession()
	other.SetUser("ada")
	require.NoError(t, st.Save(ctx, other))
	require.NoError(t, st.Revoke(ctx, "ada", other.ID()))
	require.NoError(t, st.RevokeAll(ctx, "ada"))
	_, err = st.Load(ctx, got.ID())
	require.ErrorIs(t, err, store.ErrNotFound)
	third, _ := st.NewSession()
	require.NoError(t, st.Save(ctx, third))
	require.NoError(t, st.Destroy(ctx, third.ID()))

	// Write acknowledgement: EVALSHA and WAIT in a pipeline, SCRIPT LOAD after NOSCRIPT.
	acked, err := store.New(rdb, store.WithWriteAck(1, 50*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, admin.ScriptFlush(ctx).Err())
	fourth, _ := acked.NewSession()
	fourth.SetUser("bob")
	err = acked.Save(ctx, fourth)
	require.ErrorIs(t, err, store.ErrNotAcknowledged, "a server without replicas acknowledges nothing")
	require.NotErrorIs(t, err, store.ErrPermission)
	err = acked.RevokeAll(ctx, "bob")
	require.ErrorIs(t, err, store.ErrNotAcknowledged)
	require.NotErrorIs(t, err, store.ErrPermission)

	log, err := admin.Do(ctx, "ACL", "LOG").Slice()
	require.NoError(t, err)
	require.Empty(t, log, "Redis refused a command of the store")
}

// A user without EVALSHA: the save fails at once, with one command sent and no retry,
// with a *PermissionError naming evalsha; the server saw one refused call.
func TestACLMissingCommandIsTypedAndNotRetried(t *testing.T) {
	s := aclStandalone(t)
	ctx := t.Context()
	admin := s.Client()
	require.NoError(t, admin.ConfigResetStat(ctx).Err())
	var sent atomic.Int64
	st, err := store.New(userClient(t, s, "noevalsha", "pw-noevalsha", &sent))
	require.NoError(t, err)
	sess, _ := st.NewSession()
	require.NoError(t, sess.Set("a", 1))
	start := time.Now()
	err = st.Save(ctx, sess)
	took := time.Since(start)
	t.Logf("save as a user without EVALSHA: %v after %s, %d script command(s) sent, stats %+v", err, took, sent.Load(), st.Stats())
	var pe *store.PermissionError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "evalsha", pe.Command)
	require.False(t, pe.InScript)
	require.ErrorIs(t, err, store.ErrPermission)
	require.Contains(t, err.Error(), "evalsha")
	require.True(t, redis.HasErrorPrefix(err, "NOPERM"), "the Redis error is wrapped")
	require.Zero(t, st.Stats().Retries, "retries")
	require.EqualValues(t, 1, sent.Load(), "scripts sent")
	require.Less(t, took, time.Second)
	info, err := admin.Info(ctx, "commandstats").Result()
	require.NoError(t, err)
	require.Regexp(t, `cmdstat_evalsha:calls=0,.*rejected_calls=1,`, info, "the server saw one attempt")
}

// A user without HSET: the save script is refused inside, and that too is a
// *PermissionError, returned at once.
func TestACLCommandRefusedInScriptIsTyped(t *testing.T) {
	s := aclStandalone(t)
	ctx := t.Context()
	var sent atomic.Int64
	st, err := store.New(userClient(t, s, "nohset", "pw-nohset", &sent))
	require.NoError(t, err)
	sess, _ := st.NewSession()
	require.NoError(t, sess.Set("a", 1))
	err = st.Save(ctx, sess)
	t.Logf("save as a user without HSET: %v", err)
	var pe *store.PermissionError
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.InScript)
	require.Zero(t, st.Stats().Retries)
	require.EqualValues(t, 2, sent.Load(), "scripts sent: EVALSHA (NOSCRIPT on a new server), then EVAL, refused")

	// A key outside the user's pattern: refused, typed, no command named.
	ost, err := store.New(userClient(t, s, "hasession", "pw-hasession", nil), store.WithPrefix("other:"))
	require.NoError(t, err)
	_, err = ost.Load(ctx, sess.ID())
	t.Logf("load under another prefix: %v", err)
	require.ErrorAs(t, err, &pe)
	require.Empty(t, pe.Command)
	require.False(t, errors.Is(err, store.ErrNotFound))
}

// The near-cache works over TLS as a least-privilege user given ACLNearCacheCommands
// too; a user without them loads as without the cache (the tracking connection is
// refused), with no hit.
func TestACLNearCache(t *testing.T) {
	rules := store.ACLRules(store.DefaultPrefix)
	s := cluster.StandaloneForTest(t, cluster.WithTLS(true),
		cluster.WithACLUser("plain", "pw-plain", rules...),
		cluster.WithACLUser("near", "pw-near", append(rules, strings.Fields(store.ACLNearCacheCommands)...)...))
	ctx := t.Context()
	for _, tc := range []struct {
		user string
		hits bool
	}{{"near", true}, {"plain", false}} {
		st, err := store.New(userClient(t, s, tc.user, "pw-"+tc.user, nil), store.WithNearCache(store.NearCache{}))
		require.NoError(t, err)
		sess, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, sess.Set("a", 1))
		require.NoError(t, st.Save(ctx, sess))
		if tc.hits {
			loadHit(t, st, sess.ID())
		} else {
			for range 20 {
				_, err := st.Load(ctx, sess.ID())
				require.NoError(t, err)
			}
			require.Zero(t, st.Stats().NearHits, "%s: %+v", tc.user, st.Stats())
			require.Zero(t, st.Stats().NearConnects)
		}
		require.NoError(t, st.Close())
	}
}
