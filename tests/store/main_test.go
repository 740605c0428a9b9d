package store_test

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
)

// The package's tests share one topology of each kind (cluster.Shared), started on first
// use and removed by cluster.TestMain after the last test.
var kinds = cluster.Kinds

// topology returns the shared topology of the kind, starting it if needed.
func topology(t testing.TB, kind cluster.Kind) cluster.Topology {
	t.Helper()
	return cluster.Shared(t, kind)
}

// exampleAddrs returns the addresses of the shared topology of the kind, for the
// examples.
func exampleAddrs(kind cluster.Kind) []string {
	topo, err := cluster.SharedTopology(kind)
	if err != nil {
		panic(err)
	}
	return topo.Addrs()
}

// client returns a new client for the topology, closed when the test ends.
func client(t testing.TB, topo cluster.Topology) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewUniversalClient(topo.UniversalOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }
