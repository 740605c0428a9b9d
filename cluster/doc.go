// Package cluster runs real Redis topologies in containers — a standalone server, a
// Sentinel deployment (1 master, 2 replicas, 3 sentinels) and a Redis Cluster (3 masters, 3
// replicas) — and breaks them on purpose, so that high-availability behaviour is shown
// against real failovers rather than mocks. It is built on testcontainers-go and is meant
// for tests, drills and benchmarks; the session store never imports it.
//
// A test starts a topology, registers its cleanup before checking the error, and uses the
// client it hands out:
//
//	c, err := cluster.RunCluster(t.Context())
//	cluster.Cleanup(t, c)
//	if err != nil {
//		t.Fatal(err)
//	}
//	rdb := c.Client() // a *redis.ClusterClient behind redis.UniversalClient
//	m, _ := c.MasterForKey(ctx, "session:{abc}")
//	f, _ := c.Inject(ctx, cluster.FaultKill, m, 30*time.Second) // heals itself after 30 s
//	newMaster, _ := c.WaitPromotion(ctx, "session:{abc}", m)
//	_ = f.Heal(ctx) // start it again: it rejoins as a replica
//	_ = c.WaitHealthy(ctx)
//
// # Network
//
// Each topology creates a bridge network with a random /24 in 10.213.0.0/16 and gives
// every node a static IP on it, so a node that is restarted or reconnected keeps its
// address; Cluster nodes announce those IPs. Clients on the Docker host reach the nodes
// directly at those addresses; no port is published.
//
// # Timings
//
// cluster-node-timeout and Sentinel's down-after-milliseconds are 1000 ms,
// cluster-replica-validity-factor 0 (any replica may be promoted), diskless replication
// without delay, Sentinel failover-timeout 3 s and a TILT period of 5 s. Nodes keep no
// data on disk: a killed node comes back empty and resynchronises from its master.
// cluster-require-full-coverage is off, so a shard that is down does not stop the others.
//
// # Faults
//
// Kill (SIGKILL), Stop/Start, Pause/Unpause (freeze) and Disconnect/Reconnect (cut off the
// network, back with the same IP) act at once; Inject applies one of them with a bound:
// it heals itself when its duration ends unless [Fault.Heal] healed it first.
//
// [RunEpisode] is the whole of one failover as the failover tests and the drill run it:
// on the master that serves a key, a fault (or a graceful failover: CLUSTER FAILOVER,
// SENTINEL FAILOVER), the promotion of a replica, the heal, the old master back as a
// replica and a healthy topology, with the time of each step.
//
// # TLS and ACL users
//
// [WithTLS] runs a topology over TLS only: it generates a CA and a certificate per node
// (the node's IP as SAN, also presented as client certificate) when it starts, copies
// them into the containers, and runs clients, replication, the Cluster bus and the
// sentinels over TLS, with client certificates required. TLSConfig returns what a
// client needs; UniversalOptions and NodeOptions carry it. [WithACLUser] adds an ACL user
// to every Redis node, which UniversalOptions then log in as; the topology's own health
// checks, faults, Client and NodeOptions keep the default user.
//
// # Cleanup
//
// Every container and network carries the labels [LabelProject] and [LabelOwner]
// ("<hostname>:<pid>:<start time>": a later process with the same PID is another owner).
// Terminate removes a topology; [Cleanup] registers that with testing.TB; [Sweep] removes
// what processes that no longer run left behind, force-disconnecting a network Docker
// says "has active endpoints", and reports what it still could not remove ([NotRemoved])
// without stopping; [TestMain] wraps a package's tests with a sweep before and a leftover
// check after, and a leftover of another run never fails this one.
//
// # Image
//
// The Redis image is built offline, FROM scratch, out of Debian's redis-tools package
// (see docker/build-image.sh, `make image`); [EnsureImage] builds it on first use. Set
// REDIS_IMAGE to use another image. testcontainers' reaper is not used
// (TESTCONTAINERS_RYUK_DISABLED=true): no image is pulled.
//
// Tests that need Docker call [RequireDocker]: they skip without an engine, unless CI is
// set, where they fail.
package cluster
