package gorillastore_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// The package's tests share one topology of each kind, started on first use and removed
// after the last test.
var topos = struct {
	sync.Mutex
	m   map[cluster.Kind]cluster.Topology
	err map[cluster.Kind]error
}{m: map[cluster.Kind]cluster.Topology{}, err: map[cluster.Kind]error{}}

var kinds = []cluster.Kind{cluster.KindStandalone, cluster.KindSentinel, cluster.KindCluster}

// topology returns the shared topology of the kind, starting it if needed.
func topology(t testing.TB, kind cluster.Kind) cluster.Topology {
	t.Helper()
	cluster.RequireDocker(t)
	topo, err := shared(kind)
	if err != nil {
		t.Fatalf("start %s topology: %v", kind, err)
	}
	return topo
}

// shared starts the kind's topology once per test binary.
func shared(kind cluster.Kind) (cluster.Topology, error) {
	topos.Lock()
	defer topos.Unlock()
	if topo, ok := topos.m[kind]; ok {
		return topo, nil
	}
	if err, ok := topos.err[kind]; ok {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := cluster.Run(ctx, kind)
	if err != nil {
		if topo != nil {
			_ = topo.Terminate(context.Background())
		}
		topos.err[kind] = err
		return nil, err
	}
	topos.m[kind] = topo
	return topo, nil
}

// client returns a failover-tuned client for the topology, closed when the test ends.
func client(t testing.TB, topo cluster.Topology) redis.UniversalClient {
	t.Helper()
	rdb := store.NewFailoverClient(topo.UniversalOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

type runner struct{ m *testing.M }

func (r runner) Run() int {
	code := r.m.Run()
	topos.Lock()
	defer topos.Unlock()
	for k, topo := range topos.m {
		if err := topo.Terminate(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "terminate %s: %v\n", k, err)
			code = 1
		}
	}
	return code
}

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(runner{m}))
}
