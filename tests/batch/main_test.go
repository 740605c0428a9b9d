package batch_test

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
)

// The package's tests share one standalone Redis (cluster.Shared), started on first use
// and removed by cluster.TestMain after the last test.

// client returns a new client for the shared standalone Redis, closed when the test ends.
func client(t testing.TB) *redis.Client {
	t.Helper()
	topo := cluster.Shared(t, cluster.KindStandalone)
	rdb := redis.NewClient(topo.UniversalOptions().Simple())
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }
