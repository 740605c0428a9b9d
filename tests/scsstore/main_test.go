package scsstore_test

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// The package's tests share one topology of each kind (cluster.Shared), started on first
// use and removed by cluster.TestMain after the last test.
var kinds = cluster.Kinds

// client returns a failover-tuned client for the topology, closed when the test ends.
func client(t testing.TB, topo cluster.Topology) redis.UniversalClient {
	return cluster.Client(t, topo, store.NewFailoverClient)
}

func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }
