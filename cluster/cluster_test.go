package cluster_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	os.Exit(cluster.TestMain(m))
}

// writeRead writes a key through the client and reads it back, retrying until ctx ends
// (a client may need a moment to follow a new master).
func writeRead(ctx context.Context, rdb redis.UniversalClient, key, val string) error {
	var last error
	for ctx.Err() == nil {
		last = rdb.Set(ctx, key, val, time.Minute).Err()
		if last == nil {
			var got string
			got, last = rdb.Get(ctx, key).Result()
			if last == nil && got != val {
				return fmt.Errorf("read %q, wrote %q", got, val)
			}
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
}

func TestTopologiesBootHealthyAndServe(t *testing.T) {
	cluster.RequireDocker(t)
	for _, kind := range []cluster.Kind{cluster.KindStandalone, cluster.KindSentinel, cluster.KindCluster} {
		t.Run(string(kind), func(t *testing.T) {
			ctx := t.Context()
			start := time.Now()
			topo, err := cluster.Run(ctx, kind)
			cluster.Cleanup(t, topo)
			require.NoError(t, err)
			t.Logf("%s: Run to healthy in %s", kind, time.Since(start).Round(time.Millisecond))

			require.NoError(t, topo.Healthy(ctx), "health gate right after Run")
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			require.NoError(t, writeRead(wctx, topo.Client(), "hello:{x}", "world"))

			st, err := topo.Status(ctx)
			require.NoError(t, err)
			roles := map[cluster.Role]int{}
			for _, s := range st {
				require.Equal(t, "running", s.State, s.Name)
				roles[s.Role]++
				require.Contains(t, topo.Subnet().String()[:7], s.IP[:7], "node on the topology's subnet")
			}
			switch kind {
			case cluster.KindStandalone:
				require.Equal(t, map[cluster.Role]int{cluster.RoleMaster: 1}, roles)
			case cluster.KindSentinel:
				require.Equal(t, map[cluster.Role]int{cluster.RoleMaster: 1, cluster.RoleReplica: 2, cluster.RoleSentinel: 3}, roles)
			case cluster.KindCluster:
				require.Equal(t, map[cluster.Role]int{cluster.RoleMaster: 3, cluster.RoleReplica: 3}, roles)
				// The client agrees with the topology on the key's master.
				m, err := topo.MasterForKey(ctx, "hello:{x}")
				require.NoError(t, err)
				cc := topo.Client().(*redis.ClusterClient)
				served, err := cc.MasterForKey(ctx, "hello:{x}")
				require.NoError(t, err)
				require.Equal(t, m.Addr(), served.Options().Addr)
			}
		})
	}
}

func TestClusterCountsAreConfigurable(t *testing.T) {
	cluster.RequireDocker(t)
	ctx := t.Context()
	c, err := cluster.RunCluster(ctx, cluster.WithMasters(2), cluster.WithReplicas(0))
	cluster.Cleanup(t, c)
	require.NoError(t, err)
	require.Len(t, c.Nodes(), 2)
	ms, err := c.Masters(ctx)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range 20 {
		require.NoError(t, writeRead(wctx, c.Client(), fmt.Sprintf("k%d", i), "v"))
	}
}

// failoverCase kills, freezes or cuts off the master that owns a key, waits for a replica
// to be promoted, heals the fault and waits for the old master to rejoin as a replica.
func failoverCase(t *testing.T, topo cluster.Topology, kind cluster.FaultKind, key string) {
	ctx := t.Context()
	require.NoError(t, topo.WaitHealthy(ctx))
	old, err := topo.MasterForKey(ctx, key)
	require.NoError(t, err)

	f, err := topo.Inject(ctx, kind, old, time.Minute)
	require.NoError(t, err)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	promoted, err := topo.WaitPromotion(pctx, key, old)
	require.NoError(t, err, "a replica is promoted")
	require.NotEqual(t, old.Name, promoted.Name)
	t.Logf("%s %s: %s promoted after %s", kind, old.Name, promoted.Name, time.Since(f.Start).Round(time.Millisecond))

	// The client follows the new master.
	wctx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	require.NoError(t, writeRead(wctx, topo.Client(), key, "after-"+string(kind)))

	require.NoError(t, f.Heal(ctx))
	rctx, cancel3 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel3()
	require.NoError(t, topo.WaitRole(rctx, old, cluster.RoleReplica), "the old master rejoins as a replica")
	require.NoError(t, topo.WaitHealthy(rctx))
	m, err := topo.MasterForKey(ctx, key)
	require.NoError(t, err)
	require.Equal(t, promoted.Name, m.Name, "the promoted node keeps the slot")
	t.Logf("%s %s: rejoined as a replica %s after the fault began", kind, old.Name, time.Since(f.Start).Round(time.Millisecond))
}

func TestClusterFailover(t *testing.T) {
	cluster.RequireDocker(t)
	c, err := cluster.RunCluster(t.Context())
	cluster.Cleanup(t, c)
	require.NoError(t, err)
	for _, kind := range []cluster.FaultKind{cluster.FaultKill, cluster.FaultPause, cluster.FaultPartition, cluster.FaultStop} {
		t.Run(string(kind)+" the master that owns a key", func(t *testing.T) {
			failoverCase(t, c, kind, "session:{"+string(kind)+"}")
		})
	}
}

func TestSentinelFailover(t *testing.T) {
	cluster.RequireDocker(t)
	s, err := cluster.RunSentinel(t.Context(), cluster.WithMasterName("sessions"))
	cluster.Cleanup(t, s)
	require.NoError(t, err)
	require.Equal(t, "sessions", s.MasterName())
	for _, kind := range []cluster.FaultKind{cluster.FaultKill, cluster.FaultPartition} {
		t.Run(string(kind)+" the master", func(t *testing.T) {
			failoverCase(t, s, kind, "any")
		})
	}
}

func TestFaultHealsItselfWhenItsDurationEnds(t *testing.T) {
	ctx := t.Context()
	s := cluster.StandaloneForTest(t)
	n := s.Nodes()[0]
	f, err := s.Inject(ctx, cluster.FaultPause, n, 300*time.Millisecond)
	require.NoError(t, err)
	select {
	case <-f.Healed():
	case <-time.After(30 * time.Second):
		t.Fatal("the pause did not heal itself")
	}
	require.NoError(t, s.WaitHealthy(ctx))
	require.Error(t, func() error { _, err := s.Inject(ctx, cluster.FaultKill, n, 0); return err }(), "unbounded fault refused")
}

func TestTerminateRemovesEverything(t *testing.T) {
	cluster.RequireDocker(t)
	ctx := t.Context()
	s, err := cluster.RunSentinel(ctx, cluster.WithReplicas(1), cluster.WithSentinels(1))
	cluster.Cleanup(t, s)
	require.NoError(t, err)
	// A paused and a disconnected node must not stop the removal.
	require.NoError(t, s.Pause(ctx, s.Nodes()[1]))
	require.NoError(t, s.Disconnect(ctx, s.Nodes()[0]))
	require.NoError(t, s.Terminate(ctx))
	left, err := cluster.Leftovers(ctx, "")
	require.NoError(t, err)
	for _, l := range left {
		require.NotContains(t, l.Name, s.ID(), "left behind: %s %s", l.Type, l.Name)
	}
	require.NoError(t, s.Terminate(ctx), "terminate twice")
}

// Pause and Unpause end in the state they name: a call that finds the node already there
// (as after an attempt whose answer failed while the freezer settled) succeeds, and the
// node answers again after Unpause.
func TestPauseAndUnpauseReachTheirState(t *testing.T) {
	s := cluster.Shared(t, cluster.KindStandalone)
	ctx := t.Context()
	n := s.Nodes()[0]
	require.NoError(t, s.Pause(ctx, n))
	defer func() { _ = s.Unpause(context.Background(), n) }()
	require.NoError(t, s.Pause(ctx, n), "pause of a paused node")
	st, err := s.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "paused", st[0].State)
	require.NoError(t, s.Unpause(ctx, n))
	require.NoError(t, s.Unpause(ctx, n), "unpause of a running node")
	require.NoError(t, s.WaitHealthy(ctx))
}

// RunEpisode on a standalone server: the fault is held (no replica to promote), healed,
// and the server answers again; the episode's times are in order. A graceful failover has
// nothing to fail over to.
func TestRunEpisodeStandalone(t *testing.T) {
	s := cluster.Shared(t, cluster.KindStandalone)
	ctx := t.Context()
	var lines []string
	ep, err := cluster.RunEpisode(ctx, s, cluster.FaultKill, cluster.EpisodeOptions{
		Hold: 500 * time.Millisecond,
		Logf: func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) },
	})
	require.NoError(t, err)
	require.Equal(t, s.Nodes()[0].Name, ep.Master.Name)
	require.Nil(t, ep.Promoted, "a standalone server has no replica")
	require.GreaterOrEqual(t, ep.Healed, 500*time.Millisecond, "held for Hold")
	require.GreaterOrEqual(t, ep.Healthy, ep.Healed)
	require.Equal(t, []string{"kill " + ep.Master.Name}, lines)
	require.NoError(t, s.Client().Ping(ctx).Err(), "the server answers after the episode")

	_, err = cluster.RunEpisode(ctx, s, cluster.FaultFailover, cluster.EpisodeOptions{})
	require.ErrorContains(t, err, "no replica")
}
