package store_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// While a session's slot migrates (Cluster resharding: MIGRATING on the node that holds
// it, IMPORTING on the other), its saves go on. A node answers TRYAGAIN to a script of
// two keys when one is missing there, as a session's save history mostly is: the save is
// sent again without the history. (Without that, every save of the slot failed until the
// migration ended.) Without retries, so that a refusal shows at once.
func TestSaveWhileItsSlotMigrates(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	ctx := t.Context()
	rdb := client(t, topo)
	noRetry := store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 0})
	checked := store.WithVersionCheck(true)
	for _, c := range []struct {
		name string
		opts []store.Option
	}{
		{"auto-pipelined", []store.Option{noRetry, checked}},
		{"with write acknowledgement", []store.Option{noRetry, checked, store.WithWriteAck(1, 2*time.Second)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := "migrating-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
			st := newStore(t, rdb, append(c.opts, store.WithPrefix(prefix))...)
			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("n", 0))
			require.NoError(t, st.Save(ctx, s))
			key, err := st.Key(s.ID())
			require.NoError(t, err)
			migrate(t, topo, key)

			for i := 1; i <= 20; i++ { // past 16: the history is written too
				require.NoError(t, s.Set("n", i))
				require.NoError(t, st.Save(ctx, s), "save %d while the slot migrates", i)
			}
			require.NoError(t, st.Update(ctx, s.ID(), func(s *store.Session) error {
				n, _ := store.GetOr(s, "n", 0)
				return s.Set("n", n+1)
			}), "update while the slot migrates")
			got, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
			n, _ := store.GetOr(got, "n", 0)
			require.Equal(t, 21, n)

			// A conflict is still one (the write answered TRYAGAIN ran nothing), unless
			// go-redis wrote the command again by itself first (its own TRYAGAIN retries):
			// then the cautious answer.
			stale, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
			require.NoError(t, got.Set("n", 22))
			require.NoError(t, st.Save(ctx, got))
			require.NoError(t, stale.Set("n", 0))
			if err := st.Save(ctx, stale); !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrOutcomeUnknown) {
				t.Fatalf("a stale save while the slot migrates: %v, want ErrConflict or ErrOutcomeUnknown", err)
			}

			// A logout while the slot migrates ends the session and leaves its tombstone
			// (it deleted the key and failed to write the tombstone: "non local key").
			require.NoError(t, st.Destroy(ctx, s.ID()), "destroy while the slot migrates")
			_, err = st.Load(ctx, s.ID())
			require.ErrorIs(t, err, store.ErrNotFound)
			fields, err := rdb.HKeys(ctx, key).Result()
			require.NoError(t, err)
			require.Contains(t, fields, "_r", "the logout's tombstone")
			require.NotContains(t, fields, "_v", "nothing of the session but what the tombstone keeps")
			require.NotContains(t, fields, ".n")
		})
	}
}

// migrate marks key's slot as migrating from its master to another master, until the
// test ends (then both are set STABLE again).
func migrate(t *testing.T, topo cluster.Topology, key string) {
	t.Helper()
	ctx := t.Context()
	src, err := topo.MasterForKey(ctx, key)
	require.NoError(t, err)
	status, err := topo.Status(ctx)
	require.NoError(t, err)
	var dst *cluster.Node
	for _, n := range status {
		if n.Role == cluster.RoleMaster && n.Name != src.Name {
			dst = n.Node
			break
		}
	}
	require.NotNil(t, dst, "another master")
	srcC, dstC := cluster.NodeClient(topo.NodeOptions(src)), cluster.NodeClient(topo.NodeOptions(dst))
	slot := cluster.Slot(key)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		for _, c := range []*redis.Client{srcC, dstC} {
			if err := c.Do(ctx, "CLUSTER", "SETSLOT", slot, "STABLE").Err(); err != nil {
				t.Errorf("slot %d back to stable: %v", slot, err)
			}
			_ = c.Close()
		}
	})
	srcID, err := srcC.Do(ctx, "CLUSTER", "MYID").Text()
	require.NoError(t, err)
	dstID, err := dstC.Do(ctx, "CLUSTER", "MYID").Text()
	require.NoError(t, err)
	require.NoError(t, dstC.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	require.NoError(t, srcC.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
}

// A rotation's forward step and a revoke write a pointer or a tombstone over a session
// whose slot migrates; they deleted the key first, then a node refused the write ("non
// local key"): the rotation failed with the old session gone, the revoke left no
// tombstone.
func TestRotateAndRevokeWhileTheSlotMigrates(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	ctx := t.Context()
	rdb := client(t, topo)
	st := newStore(t, rdb, store.WithPrefix("migrating-"+strconv.FormatInt(time.Now().UnixNano(), 36)+":"),
		store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 0}))
	login := func() (*store.Session, string) {
		s, err := st.NewSession()
		require.NoError(t, err)
		s.SetUser("alice")
		require.NoError(t, s.Set("n", 1))
		require.NoError(t, st.Save(ctx, s))
		key, err := st.Key(s.ID())
		require.NoError(t, err)
		return s, key
	}
	rotated, rkey := login()
	revoked, vkey := login()
	for cluster.Slot(vkey) == cluster.Slot(rkey) {
		revoked, vkey = login()
	}
	migrate(t, topo, rkey)
	migrate(t, topo, vkey)

	old := rotated.ID()
	require.NoError(t, st.Rotate(ctx, rotated), "rotate while the slot migrates")
	got, err := st.Load(ctx, old)
	require.NoError(t, err, "the old ID forwards")
	require.Equal(t, rotated.ID(), got.ID())
	fields, err := rdb.HKeys(ctx, rkey).Result()
	require.NoError(t, err)
	require.Contains(t, fields, "_f", "the forward pointer")
	require.NotContains(t, fields, "_v")

	require.NoError(t, st.Revoke(ctx, "alice", revoked.ID()), "revoke while the slot migrates")
	_, err = st.Load(ctx, revoked.ID())
	require.ErrorIs(t, err, store.ErrNotFound)
	fields, err = rdb.HKeys(ctx, vkey).Result()
	require.NoError(t, err)
	require.Contains(t, fields, "_r", "the revoke's tombstone")
	require.NotContains(t, fields, "_v")
	require.NotContains(t, fields, ".n")
}
