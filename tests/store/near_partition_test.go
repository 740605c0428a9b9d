package store_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// holeProxy is a TCP proxy on loopback in front of one Redis node that can turn into a
// black hole: connections stay open, and no byte goes through either way.
type holeProxy struct {
	ln     net.Listener
	target string
	hole   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newHoleProxy(t *testing.T, target string) *holeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &holeProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *holeProxy) addr() string { return p.ln.Addr().String() }

func (p *holeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies from src to dst, dropping what it reads while the proxy is a black hole.
func (p *holeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.hole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = dst.Close()
			}
			return
		}
	}
}

func (p *holeProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// partitionResult is what cutOff saw on the app server cut off.
type partitionResult struct {
	lastHit    time.Duration // the last hit's invocation, after the cut
	hitsAfter  int           // hits invoked Lease or more after the cut
	violations int           // loads invoked after the Destroy returned that returned the session
	loads      int
}

// cutOff caches a session on app server c, which reaches Redis through a proxy, turns
// the proxy into a black hole, destroys the session on app server a, and loads it on c
// in a loop (each load with a short deadline) until well past the lease.
func cutOff(t *testing.T, lease time.Duration) partitionResult {
	t.Helper()
	topo := cluster.Shared(t, cluster.KindStandalone)
	prefix := uniquePrefix(t)
	opts := []store.Option{store.WithPrefix(prefix), store.WithNearCache(store.NearCache{Lease: lease})}
	a := newStore(t, client(t, topo), opts...)
	t.Cleanup(func() { _ = a.Close() })
	proxy := newHoleProxy(t, topo.UniversalOptions().Addrs[0])
	crdb := cluster.Client(t, topo, func(o *redis.UniversalOptions) redis.UniversalClient {
		o.Addrs = []string{proxy.addr()}
		o.MaxRetries = -1
		return redis.NewUniversalClient(o)
	})
	c := newStore(t, crdb, opts...)
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	s, err := a.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("n", 1))
	require.NoError(t, a.Save(ctx, s))
	loadHit(t, c, s.ID())

	var destroyed atomic.Pointer[time.Time]
	cut := time.Now()
	proxy.hole.Store(true)
	go func() {
		if err := a.Destroy(context.WithoutCancel(ctx), s.ID()); err != nil {
			t.Error(err)
			return
		}
		now := time.Now()
		destroyed.Store(&now)
	}()
	var r partitionResult
	end := cut.Add(lease + 300*time.Millisecond)
	for time.Now().Before(end) || destroyed.Load() == nil {
		require.True(t, time.Now().Before(cut.Add(30*time.Second)), "the Destroy returns")
		before := c.Stats().NearHits
		inv := time.Now()
		lctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err := c.Load(lctx, s.ID())
		cancel()
		r.loads++
		if c.Stats().NearHits > before {
			r.lastHit = inv.Sub(cut)
			if inv.Sub(cut) >= lease {
				r.hitsAfter++
			}
		}
		if at := destroyed.Load(); at != nil && inv.After(*at) && err == nil {
			r.violations++
		}
	}
	return r
}

// An app server cut off from Redis (a black hole, not a close) stops serving hits within
// the lease, and serves no revoked session.
func TestNearCachePartition(t *testing.T) {
	lease := store.DefaultNearCacheLease
	r := cutOff(t, lease)
	t.Logf("cut off: last hit invoked %s after the cut (lease %s); %d loads, %d hits at or past the lease, %d revoked sessions served",
		r.lastHit.Round(10*time.Microsecond), lease, r.loads, r.hitsAfter, r.violations)
	require.Zero(t, r.hitsAfter)
	require.Zero(t, r.violations)
}

// The partition test finds the hole in a build that serves entries whatever the lease.
func TestNearCachePartitionBrokenIgnoreLease(t *testing.T) {
	testhook.NearIgnoreLease.Store(true)
	defer testhook.NearIgnoreLease.Store(false)
	r := cutOff(t, store.DefaultNearCacheLease)
	t.Logf("ignoring the lease: %d loads, %d hits at or past the lease, %d revoked sessions served", r.loads, r.hitsAfter, r.violations)
	require.Positive(t, r.violations)
}

// How stale a cached session can be: app server a saves a session again and again, app
// server b (which has it cached) loads it in a loop; for each save, the latest invocation
// (after the save returned) of a load on b that still returned the older version: the
// staleness seen. No load invoked a lease or more after the save returned may see it.
func TestNearCacheStaleness(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, _ redis.UniversalClient) {
		prefix := uniquePrefix(t)
		a, b := nearStore(t, topo, prefix), nearStore(t, topo, prefix)
		ctx := t.Context()
		s, err := a.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("n", -1))
		require.NoError(t, a.Save(ctx, s))
		loadHit(t, b, s.ID())
		lease := store.DefaultNearCacheLease
		const saves = 1000
		var stale []time.Duration
		late, withStale := 0, 0
		for i := range saves {
			require.NoError(t, s.Set("n", i))
			require.NoError(t, a.Save(ctx, s))
			saved := time.Now()
			var last time.Duration
			for {
				inv := time.Now()
				got, err := b.Load(ctx, s.ID())
				require.NoError(t, err)
				if got.Version() >= s.Version() {
					break
				}
				last = inv.Sub(saved)
				if last >= lease {
					late++
				}
				require.Less(t, last, 10*time.Second, "b sees the save")
			}
			if last > 0 {
				withStale++
			}
			stale = append(stale, last)
			loadHit(t, b, s.ID()) // cached again before the next save
		}
		sort.Slice(stale, func(i, j int) bool { return stale[i] < stale[j] })
		q := func(p float64) time.Duration { return stale[int(p*float64(len(stale)-1))].Round(time.Microsecond) }
		t.Logf("%s: staleness of a cached session after another app server's save: p50 %s, p99 %s, max %s (%d saves, %d with a stale load; lease %s)",
			topo.Kind(), q(0.5), q(0.99), q(1), saves, withStale, lease)
		require.Zero(t, late, "loads invoked a lease after the save that saw the older version")
	})
}
