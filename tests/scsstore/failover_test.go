package scsstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/scsstore"
	"github.com/hasession/hasession/cluster"
)

// Commits, finds and a scan of every master ride out the SIGKILL of the master that
// holds the session: each call's deadline outlasts the failover, and none fails.
func TestCallsRideOutAClusterMasterKill(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	rdb := client(t, topo)
	ad := newAdapter(t, rdb, scsstore.WithPrefix("scs:failover:"))
	ctx := t.Context()
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	require.NoError(t, topo.WaitHealthy(hctx), "health gate before the fault")
	cancel()

	tok := scsToken()
	key, err := ad.Key(tok)
	require.NoError(t, err)
	require.NoError(t, ad.CommitCtx(ctx, tok, []byte("start"), time.Now().Add(time.Hour)))
	master, err := topo.MasterForKey(ctx, key)
	require.NoError(t, err)

	f, err := topo.Inject(ctx, cluster.FaultKill, master, time.Minute)
	require.NoError(t, err)
	promoted := make(chan error, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := topo.WaitPromotion(pctx, key, master)
		promoted <- err
	}()

	ops, after := 0, 0
	var slowest, promotion time.Duration
	deadline := time.Now().Add(45 * time.Second)
	for after < 20 {
		require.True(t, time.Now().Before(deadline), "the loop is bounded")
		select {
		case err := <-promoted:
			require.NoError(t, err)
			promoted, promotion = nil, time.Since(f.Start)
		default:
		}
		if promoted == nil {
			after++
		}
		v := []byte(strconv.Itoa(ops))
		start := time.Now()
		octx, cancel := context.WithTimeout(ctx, 20*time.Second)
		require.NoError(t, ad.CommitCtx(octx, tok, v, time.Now().Add(time.Hour)), "commit %d", ops)
		got, found, err := ad.FindCtx(octx, tok)
		cancel()
		require.NoError(t, err, "find %d", ops)
		require.True(t, found)
		require.Equal(t, v, got)
		slowest = max(slowest, time.Since(start))
		ops++
	}
	t.Logf("%d commits and finds through the failover, none failed; the slowest pair took %s (promotion after the kill: %s)",
		ops, slowest.Round(time.Millisecond), promotion.Round(time.Millisecond))

	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	all, err := ad.AllCtx(actx)
	cancel()
	require.NoError(t, err)
	require.Equal(t, []byte(strconv.Itoa(ops-1)), all[tok], "the scan finds the session on the new master")

	require.NoError(t, f.Heal(ctx))
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, topo.WaitRole(rctx, master, cluster.RoleReplica), "the old master rejoins as a replica")
	require.NoError(t, topo.WaitHealthy(rctx))
}
