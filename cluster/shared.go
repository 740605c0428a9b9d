package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kinds lists the three topology kinds, for tables of subtests.
var Kinds = []Kind{KindStandalone, KindSentinel, KindCluster}

// shared holds the topologies a test binary shares: one of each kind, started on first
// use with default options and removed by TestMain after the tests.
var shared = struct {
	sync.Mutex
	m   map[Kind]Topology
	err map[Kind]error
}{m: map[Kind]Topology{}, err: map[Kind]error{}}

// SharedTopology returns the test binary's shared topology of the kind, starting it on
// first use (default options). A start that failed is not tried again. [TestMain]
// removes shared topologies after the tests; don't Terminate them yourself.
func SharedTopology(kind Kind) (Topology, error) {
	shared.Lock()
	defer shared.Unlock()
	if topo, ok := shared.m[kind]; ok {
		return topo, nil
	}
	if err, ok := shared.err[kind]; ok {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := Run(ctx, kind)
	if err != nil {
		if topo != nil {
			_ = topo.Terminate(context.Background())
		}
		shared.err[kind] = err
		return nil, err
	}
	shared.m[kind] = topo
	return topo, nil
}

// Shared is SharedTopology for tests and benchmarks: it calls [RequireDocker] first and
// fails tb when the topology cannot start.
func Shared(tb testing.TB, kind Kind) Topology {
	tb.Helper()
	RequireDocker(tb)
	topo, err := SharedTopology(kind)
	if err != nil {
		tb.Fatalf("start shared %s topology: %v", kind, err)
	}
	return topo
}

// terminateShared removes the shared topologies.
func terminateShared(ctx context.Context) error {
	shared.Lock()
	defer shared.Unlock()
	var errs []error
	for k, topo := range shared.m {
		if err := topo.Terminate(ctx); err != nil {
			errs = append(errs, fmt.Errorf("terminate shared %s: %w", k, err))
		}
		delete(shared.m, k)
	}
	return errors.Join(errs...)
}

// Client returns a client of topo made by newClient (redis.NewUniversalClient when nil;
// store.NewFailoverClient for a failover-tuned one), closed when the test ends.
func Client(tb testing.TB, topo Topology, newClient func(*redis.UniversalOptions) redis.UniversalClient) redis.UniversalClient {
	tb.Helper()
	if newClient == nil {
		newClient = redis.NewUniversalClient
	}
	rdb := newClient(topo.UniversalOptions())
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// SharedAddrs returns the addresses of the shared topology of the kind, starting it if
// needed, for examples (which have no testing.TB): it panics if the topology cannot start.
func SharedAddrs(kind Kind) []string {
	topo, err := SharedTopology(kind)
	if err != nil {
		panic(err)
	}
	return topo.Addrs()
}
