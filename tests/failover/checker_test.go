package hasession_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/cluster/history"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// History checks: three app servers (each a store on its own go-redis client) work
// concurrently on a few users' sessions while a fault hits the topology; every call is
// recorded and the history is checked with porcupine against the model of the store's
// documented consistency (store's package documentation, "Consistency"). Each fault runs
// three histories at once: one with WAIT, one without, and one with WAIT and the
// near-cache (its loads checked with bounded staleness). Run:
// go test -race -count=1 -p 1 -run TestChecker -v .

const (
	minCheckedOps = 20_000 // operations per history
	historyBound  = 90 * time.Second
)

func randHex() string {
	var b [4]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// variant is one history of a fault: the store options and the workload's shape.
type variant struct {
	name   string
	opts   []store.Option
	cfg    history.Config
	client func() redis.UniversalClient
}

// apps builds three app servers, each with its own client.
func apps(t *testing.T, v variant, prefix string) []history.App {
	var out []history.App
	for range 3 {
		rdb := v.client()
		t.Cleanup(func() { _ = rdb.Close() })
		base := append([]store.Option{store.WithPrefix(prefix), store.WithGracePeriod(5 * time.Minute)}, v.opts...)
		plain, err := store.New(rdb, base...)
		require.NoError(t, err)
		checked, err := store.New(rdb, append(base, store.WithVersionCheck(true))...)
		require.NoError(t, err)
		out = append(out, history.App{Plain: plain, Checked: checked})
	}
	return out
}

// table collects the rows the checker tests print at the end.
var table struct {
	sync.Mutex
	rows []string
}

func addRow(format string, args ...any) {
	table.Lock()
	table.rows = append(table.rows, fmt.Sprintf(format, args...))
	table.Unlock()
}

// checkHistories runs the variants' workloads at once; fault runs once their warm-up is
// done, then the load goes on until every history has minCheckedOps operations. It
// returns each history's result, logs it, and writes the visualisation of failing
// partitions.
func checkHistories(t *testing.T, label string, vs []variant, fault func(ctx context.Context)) []history.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), historyBound+3*time.Minute)
	defer cancel()
	var ws []*history.Workload
	var appsOf [][]history.App
	for i, v := range vs {
		cfg := v.cfg
		cfg.MaxOps = max(cfg.MaxOps, 3*minCheckedOps)
		cfg.MaxDuration = historyBound + 2*time.Minute // the fault's time on top
		cfg.Seed = uint64(i + 1)
		cfg.UserPrefix = fmt.Sprintf("%s-%d-", randHex(), i)
		as := apps(t, v, "chk-"+randHex()+":")
		appsOf = append(appsOf, as)
		ws = append(ws, history.NewWorkload(as, cfg))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { w.Run(ctx, stop) })
	}
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()
	enough := func(n int) func() bool {
		return func() bool {
			for _, w := range ws {
				if w.Recorder().Len() < n {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, enough(1000), 30*time.Second, 10*time.Millisecond, "warm-up load runs")
	start := time.Now()
	if fault != nil {
		fault(ctx)
	}
	faultTook := time.Since(start)
	require.Eventually(t, enough(minCheckedOps+minCheckedOps/10), historyBound+time.Minute, 20*time.Millisecond, "the load reaches %d operations per history", minCheckedOps)
	close(stop)
	wg.Wait()
	stopped = true

	var out []history.Result
	for i, w := range ws {
		cstart := time.Now()
		res := history.Check(w.Recorder().Ops())
		t.Logf("%s, %s: %s; fault took %s, check %s", label, vs[i].name, res.Summary(), faultTook.Round(time.Millisecond), time.Since(cstart).Round(time.Millisecond))
		if near := nearStats(appsOf[i]); near.NearHits+near.NearMisses > 0 {
			t.Logf("%s, %s: near-cache: %d hits, %d misses, evicted %d invalidated, %d lease, %d reconnect; %d lease waits, %d connects, %d fallbacks",
				label, vs[i].name, near.NearHits, near.NearMisses, near.NearEvictedInvalidated, near.NearEvictedLease,
				near.NearEvictedReconnect, near.NearLeaseWaits, near.NearConnects, near.NearFallbacks)
		}
		kinds := res.Kinds()
		addRow("%-44s | %-14s | %7d | %7d | %3d | %v | undecided %d", label, vs[i].name, res.Ops, res.Unknown, len(res.Violations), kinds, len(res.Undecided))
		for j, v := range res.Violations {
			if j == 10 {
				t.Logf("… %d more", len(res.Violations)-j)
				break
			}
			t.Logf("  %s", v)
		}
		if !res.Consistent {
			dir := filepath.Join(os.TempDir(), "hasession-history", fmt.Sprintf("%s-%s-%s", t.Name(), vs[i].name, randHex()))
			if paths, err := res.WriteHTML(dir, 5); err == nil && len(paths) > 0 {
				t.Logf("  visualisation: %s", dir)
			}
			for _, v := range res.Violations {
				_ = os.WriteFile(filepath.Join(dir, "history-"+v.Partition+".txt"), []byte(v.String()+"\n"+res.Dump(v.Partition)), 0o644)
			}
			for _, u := range res.Undecided {
				_ = os.WriteFile(filepath.Join(dir, "history-"+u+".txt"), []byte("undecided\n"+res.Dump(u)), 0o644)
			}
		}
		out = append(out, res)
	}
	return out
}

// nearStats sums the near-cache counters of the apps' stores.
func nearStats(as []history.App) store.Stats {
	var sum store.Stats
	for _, a := range as {
		sum = sum.Add(a.Plain.Stats()).Add(a.Checked.Stats())
	}
	return sum
}

// requireResults: the history without WAIT may lose acknowledged writes (counted in the
// table); a history with WAIT may show only a write that was not acknowledged, seen and
// then lost in the failover (documented); nothing else. Undecided partitions are logged
// and counted.
//
// (An acknowledged write lost with WAIT was once an open hole tolerated here, one per
// history: a rotation's forward step did not WAIT. Behind the reply-dropping proxy, saves
// that applied and were then answered "not found" after a revoke or rotation, Destroys
// cut short, and Revokes reaching further than Load were holes too. All are fixed; no
// bound is left.)
func requireResults(t *testing.T, label string, vs []variant, res []history.Result) {
	t.Helper()
	for i, r := range res {
		require.GreaterOrEqual(t, r.Ops, minCheckedOps, "%s: operations checked", vs[i].name)
		if len(r.Undecided) > 0 {
			t.Logf("%s: %d partitions undecided (search timed out): %v", vs[i].name, len(r.Undecided), r.Undecided)
		}
		wait := strings.HasPrefix(vs[i].name, "WAIT ") // with the near-cache too
		for _, v := range r.Violations {
			if vs[i].name == "no WAIT" && v.Kind != history.KindUnexpectedError {
				// Without WAIT a failover loses acknowledged writes, and what the callers
				// did next builds on the state it left: a lost write shows as any kind
				// (a rotation or a version-checked save applied on the older state, a
				// version the model cannot explain). Counted in the table; an error the
				// store should not return still fails.
				continue
			}
			if wait && (history.LostWriteKinds[v.Kind] || v.Kind == history.KindOther) && v.UnknownWriter {
				// The write was not acknowledged (WAIT fell short, or the call timed
				// out): it applied on the master, other callers saw it, and the
				// failover lost it. Documented (store, "Consistency").
				t.Logf("%s, %s: an unacknowledged write seen, then lost in the failover: %s", label, vs[i].name, v)
				continue
			}
			t.Errorf("%s, %s: violation: %s", label, vs[i].name, v)
		}
	}
}

// waitVariants: WAIT, no WAIT, and WAIT with the near-cache (store.WithNearCache at its
// defaults), whose loads may be stale by history.NearCacheStaleness and whose
// revocations are strict (history's "Bounded staleness"); it is held to what the WAIT
// variant is.
func waitVariants(topo cluster.Topology, wait int) []variant {
	client := func() redis.UniversalClient { return store.NewFailoverClient(topo.UniversalOptions()) }
	ack := store.WithWriteAck(wait, 500*time.Millisecond)
	return []variant{
		{name: fmt.Sprintf("WAIT %d", wait), opts: []store.Option{ack}, client: client},
		{name: "no WAIT", client: client},
		{name: fmt.Sprintf("WAIT %d + cache", wait), opts: []store.Option{ack, store.WithNearCache(store.NearCache{})},
			cfg: history.Config{LoadStaleness: history.NearCacheStaleness(store.NearCache{})}, client: client},
	}
}

// injectFault: the fault on the master of the first shard (a graceful failover with
// cluster.FaultFailover), held until a replica is promoted, or for hold; then healed,
// until the old master is a replica again and the topology healthy.
func injectFault(t *testing.T, topo cluster.Topology, kind cluster.FaultKind, hold time.Duration) func(ctx context.Context) {
	return func(ctx context.Context) {
		_, err := cluster.RunEpisode(ctx, topo, kind, cluster.EpisodeOptions{Key: "{checker}", Hold: hold, Logf: t.Logf})
		require.NoError(t, err)
	}
}

func TestCheckerCluster(t *testing.T) {
	c := sharedCluster(t)
	for _, tc := range []struct {
		name  string
		fault func(ctx context.Context)
	}{
		{"kill", injectFault(t, c, cluster.FaultKill, 0)},
		{"pause", injectFault(t, c, cluster.FaultPause, 5*time.Second)},
		{"partition", injectFault(t, c, cluster.FaultPartition, 0)},
		{"CLUSTER FAILOVER", injectFault(t, c, cluster.FaultFailover, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := waitVariants(c, 1)
			res := checkHistories(t, "cluster, "+tc.name, vs, tc.fault)
			requireResults(t, "cluster, "+tc.name, vs, res)
		})
	}
}

// On Sentinel, WAIT 1 is not enough across a SENTINEL FAILOVER (the old master keeps
// taking writes while a replica is promoted, and WAIT 1 can be met by the replica that
// resynchronises too); WAIT on every replica (2) is what the documentation gives as safe
// there. Kill and partition are checked with WAIT 1.
func TestCheckerSentinel(t *testing.T) {
	s := cluster.Shared(t, cluster.KindSentinel).(*cluster.Sentinel)
	for _, tc := range []struct {
		name  string
		wait  int
		fault func(ctx context.Context)
	}{
		{"kill", 1, injectFault(t, s, cluster.FaultKill, 0)},
		{"partition", 1, injectFault(t, s, cluster.FaultPartition, 0)},
		{"SENTINEL FAILOVER", 2, injectFault(t, s, cluster.FaultFailover, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := waitVariants(s, tc.wait)
			res := checkHistories(t, "sentinel, "+tc.name, vs, tc.fault)
			requireResults(t, "sentinel, "+tc.name, vs, res)
		})
	}
}

// replyProxy is a TCP proxy in front of one Redis server that loses replies: with
// probability drop a reply Redis sent (so the command was applied) is not passed on and
// the client's connection is closed; with probability delay it is held for hold first
// (longer than the store's attempt deadline, or than a short caller deadline), so the
// caller gives up on a command Redis applied and retries it or returns.
type replyProxy struct {
	ln          net.Listener
	upstream    string
	drop, delay float64
	hold        time.Duration
	dropped     atomic.Int64
	delayed     atomic.Int64
	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	wg          sync.WaitGroup
	closed      bool
	done        chan struct{} // closed by close: held replies are dropped at once
}

func startProxy(t *testing.T, upstream string, drop, delay float64, hold time.Duration) *replyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &replyProxy{ln: ln, upstream: upstream, drop: drop, delay: delay, hold: hold, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *replyProxy) Addr() string { return p.ln.Addr().String() }

func (p *replyProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *replyProxy) close() {
	p.mu.Lock()
	if !p.closed {
		close(p.done)
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *replyProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c) || !p.track(u) {
			_ = c.Close()
			_ = u.Close()
			return
		}
		p.wg.Go(func() { _, _ = io.Copy(u, c); _ = u.Close(); _ = c.Close() })
		p.wg.Go(func() { p.replies(u, c) })
	}
}

// replies passes Redis's replies to the client, losing some.
func (p *replyProxy) replies(u, c net.Conn) {
	defer func() { _ = u.Close(); _ = c.Close() }()
	rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
	buf := make([]byte, 64<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			switch x := rng.Float64(); {
			case x < p.drop:
				p.dropped.Add(1)
				return // the reply is lost; the client sees its connection close
			case x < p.drop+p.delay:
				p.delayed.Add(1)
				// The fault itself: a slow network holds the reply until the caller's
				// deadline has passed (a closing proxy drops it instead).
				t := time.NewTimer(p.hold)
				select {
				case <-t.C:
				case <-p.done:
					t.Stop()
					return
				}
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// proxied returns a variant whose clients reach the standalone server through a proxy.
func proxied(t *testing.T, name string, topo cluster.Topology, drop, delay float64, hold, deadline time.Duration) (variant, *replyProxy) {
	p := startProxy(t, topo.Addrs()[0], drop, delay, hold)
	return variant{
		name: name,
		cfg:  history.Config{OpTimeout: deadline},
		// An attempt gives up before a held reply arrives, and the store retries it.
		opts: []store.Option{store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 100, AttemptTimeout: 200 * time.Millisecond})},
		client: func() redis.UniversalClient {
			o := topo.UniversalOptions()
			o.Addrs = []string{p.Addr()}
			return store.NewFailoverClient(o)
		},
	}, p
}

// Lost replies and short deadlines, on a standalone server (no replica: no WAIT): a save
// whose reply was lost is retried with the same save ID and applied once.
func TestCheckerLostReplies(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	lost, lp := proxied(t, "lost replies", topo, 0.005, 0.01, 300*time.Millisecond, 5*time.Second)
	short, sp := proxied(t, "short deadlines", topo, 0.002, 0.01, 150*time.Millisecond, 100*time.Millisecond)
	vs := []variant{lost, short}
	res := checkHistories(t, "standalone, proxy", vs, nil)
	t.Logf("lost replies: %d replies dropped; short deadlines: %d dropped, %d held past the deadline",
		lp.dropped.Load(), sp.dropped.Load(), sp.delayed.Load())
	require.Positive(t, lp.dropped.Load())
	require.Positive(t, sp.delayed.Load())
	require.Positive(t, res[1].Unknown, "calls ended at their deadline")
	requireResults(t, "standalone, proxy", vs, res)
	lostRepliesTwice.Store(int64(retriedTwice(res[0])))
}

// lostRepliesTwice is what TestCheckerLostReplies counted as saves applied twice by the
// store as it is (-1: it did not run), for the broken build to compare with.
var lostRepliesTwice atomic.Int64

func init() { lostRepliesTwice.Store(-1) }

// retriedTwice counts the partitions where a save was applied twice, or a version-checked
// save conflicted with its own first application.
func retriedTwice(r history.Result) int {
	k := r.Kinds()
	return k[history.KindAppliedTwice] + k[history.KindConflict]
}

// A broken build: every attempt of a save carries a fresh save ID. Behind the proxy that
// loses replies, a save retried after its attempt deadline applies twice, and the
// checker must say so.
func TestCheckerBrokenFreshSaveID(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	testhook.FreshSaveID.Store(true)
	defer testhook.FreshSaveID.Store(false)
	v, p := proxied(t, "lost replies", topo, 0.005, 0.01, 300*time.Millisecond, 5*time.Second)
	res := checkHistories(t, "standalone, proxy, BROKEN: fresh save ID", []variant{v}, nil)
	t.Logf("proxy: %d replies dropped, %d held past the attempt deadline", p.dropped.Load(), p.delayed.Load())
	require.False(t, res[0].Consistent)
	// The store as it is applies no retried save twice (TestCheckerLostReplies, which
	// also fails on anything it reports); the broken build does it on every lost save
	// reply.
	// A version-checked save retried with a fresh ID conflicts with its own first
	// application instead ("spurious conflict").
	got := retriedTwice(res[0])
	require.GreaterOrEqual(t, got, 5, "the checker reports saves applied twice: %v", res[0].Kinds())
	if n := lostRepliesTwice.Load(); n >= 0 {
		t.Logf("saves applied twice or conflicting with themselves: %d partitions in the broken build, %d with the store as it is", got, n)
		require.Greater(t, int64(got), n, "the broken build shows more than the store as it is")
	}
}

// TestCheckerZTable prints the rows of every checker history that ran (it runs last).
func TestCheckerZTable(t *testing.T) {
	table.Lock()
	defer table.Unlock()
	if len(table.rows) == 0 {
		t.Skip("no checker history ran")
	}
	sort.Strings(table.rows)
	for _, r := range table.rows {
		t.Log(r)
	}
}

// The checker catches a store that ignores the version check: a version-checked save of
// a session that another save changed since its load is applied instead of refused.
func TestCheckerBrokenVersionCheck(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	testhook.IgnoreVersionCheck.Store(true)
	defer testhook.IgnoreVersionCheck.Store(false)
	res := checkHistories(t, "standalone, BROKEN: version check ignored", []variant{{
		name: "no WAIT", client: func() redis.UniversalClient { return store.NewFailoverClient(topo.UniversalOptions()) },
	}}, nil)
	require.False(t, res[0].Consistent)
	n := res[0].Kinds()[history.KindCheckIgnored]
	t.Logf("partitions whose first violation is a version check ignored: %d (%v)", n, res[0].Kinds())
	require.GreaterOrEqual(t, n, 3, "the checker reports version-checked saves applied over a concurrent save: %v", res[0].Kinds())
}
