package hasession_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// The kill drills over TLS, with the store logged in as the least-privilege user of
// store.ACLRules: every connection (clients, replication, the Cluster bus, the sentinels)
// is TLS, and the harness (health gate, faults, master lookup) keeps the default user.

const tlsUser, tlsPassword = "hasession", "drill-secret"

// runTLSACL starts a topology of the kind over TLS with the store's user.
func runTLSACL(t *testing.T, kind cluster.Kind) cluster.Topology {
	t.Helper()
	cluster.RequireDocker(t)
	start := time.Now()
	topo, err := cluster.Run(t.Context(), kind, cluster.WithTLS(true),
		cluster.WithACLUser(tlsUser, tlsPassword, store.ACLRules(store.DefaultPrefix)...))
	cluster.Cleanup(t, topo)
	require.NoError(t, err)
	t.Logf("%s over TLS with an ACL user: Run to healthy in %s", kind, time.Since(start).Round(time.Millisecond))
	return topo
}

// requireRestricted checks that rdb reaches the topology over TLS as the restricted user:
// the topology has no plaintext port, and a key outside the store's prefix is refused.
func requireRestricted(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
	t.Helper()
	ctx := t.Context()
	require.NotNil(t, topo.UniversalOptions().TLSConfig)
	require.Equal(t, tlsUser, topo.UniversalOptions().Username)
	err := rdb.Set(ctx, "not-a-session", 1, time.Minute).Err()
	require.True(t, redis.HasErrorPrefix(err, "NOPERM"), "a key outside the prefix: %v", err)
	plain := redis.NewClient(&redis.Options{Addr: topo.Addrs()[0], MaxRetries: -1, DialTimeout: time.Second})
	defer plain.Close()
	require.Error(t, plain.Ping(ctx).Err(), "a plaintext connection")
	forEachRedisNode(t, topo, func(n *cluster.Node, c *redis.Client) {
		require.NoError(t, c.Do(ctx, "ACL", "LOG", "RESET").Err(), "%s: clear the refusal just provoked", n.Name)
	})
}

// forEachRedisNode calls f with a client of every Redis node, as the default user.
func forEachRedisNode(t *testing.T, topo cluster.Topology, f func(n *cluster.Node, c *redis.Client)) {
	t.Helper()
	for _, n := range topo.Nodes() {
		if n.Kind != cluster.NodeRedis {
			continue
		}
		c := redis.NewClient(topo.NodeOptions(n))
		f(n, c)
		_ = c.Close()
	}
}

// requireNoRefusal checks that no Redis node logged a refused command (ACL LOG). A node
// that was killed lost its log when it restarted; the drill's callers saw no error either
// way, and a refusal reaches the caller at once (*store.PermissionError).
func requireNoRefusal(t *testing.T, topo cluster.Topology) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	forEachRedisNode(t, topo, func(n *cluster.Node, c *redis.Client) {
		log, err := c.Do(ctx, "ACL", "LOG").Slice()
		require.NoError(t, err, n.Name)
		require.Empty(t, log, "%s refused a command", n.Name)
	})
}

// 1 over TLS with the least-privilege user: SIGKILL the master owning live sessions of a
// Cluster; no caller-visible error, and operations succeed again within promotion + 1 s.
func TestFailoverClusterKillTLSACL(t *testing.T) {
	c := runTLSACL(t, cluster.KindCluster)
	rdb := tunedClient(t, c)
	requireRestricted(t, c, rdb)
	st, err := store.New(rdb)
	require.NoError(t, err)
	res := runDrill(t, c, st, cluster.FaultKill, 0)
	require.Empty(t, res.errors, "caller-visible errors")
	require.LessOrEqual(t, res.recovery, res.promotion+time.Second, "operations succeed again within promotion + 1 s")
	requireNoRefusal(t, c)
}

// 11 over TLS with the least-privilege user: kill a Sentinel topology's master; no
// caller-visible error, no WAIT-acknowledged save lost.
func TestFailoverSentinelKillTLSACL(t *testing.T) {
	s := runTLSACL(t, cluster.KindSentinel)
	rdb := tunedClient(t, s)
	requireRestricted(t, s, rdb)
	st, err := store.New(rdb, store.WithWriteAck(1, 500*time.Millisecond))
	require.NoError(t, err)
	res := runDrill(t, s, st, cluster.FaultKill, 0)
	require.Empty(t, res.errors, "caller-visible errors")
	require.Zero(t, res.lost, "WAIT-acknowledged saves lost")
	require.Zero(t, res.backwards, "a load saw a counter below an acknowledged save")
	requireNoRefusal(t, s)
}
