package hasession_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// Failover drills as tests: a topology, its health gate, live load through the store
// (a few goroutines creating, loading and saving sessions and remembering every
// acknowledged save), one fault, heal, then checks. Caller deadline 10 s.
// Run: go test -v -run Failover -count=1 .

func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }

const callerDeadline = 10 * time.Second

// session is one session of the load, with the counter value of its last acknowledged
// save.
type session struct {
	mu    sync.Mutex
	id    string
	acked int64 // value of "n" in the last acknowledged save
	saves int64 // acknowledged saves after the first one
}

// drill drives bounded load through a store and records what callers saw.
type drill struct {
	st       *store.Store
	workers  int
	sessions []*session
	ops      atomic.Int64
	errs     struct {
		sync.Mutex
		list []error
	}
	backwards atomic.Int64 // loads that saw a counter below an acknowledged save
	successes struct {
		sync.Mutex
		at []time.Time // completion times of successful saves on the probe session
	}
	probe *session
	pad   string // the "pad" attribute of every session ("": none)
}

func newDrill(t *testing.T, st *store.Store, workers, perWorker int) *drill {
	return newDrillPadded(t, st, workers, perWorker, 0)
}

// newDrillPadded is newDrill with sessions that also hold pad bytes in an attribute,
// which every load checks.
func newDrillPadded(t *testing.T, st *store.Store, workers, perWorker, pad int) *drill {
	t.Helper()
	d := &drill{st: st, workers: workers, pad: strings.Repeat("p", pad)}
	ctx := t.Context()
	for range workers * perWorker {
		s, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("n", int64(0)))
		if d.pad != "" {
			require.NoError(t, s.Set("pad", d.pad))
		}
		require.NoError(t, st.Save(ctx, s))
		d.sessions = append(d.sessions, &session{id: s.ID()})
	}
	return d
}

// useProbe makes worker 0 save the given session continuously, to time recovery.
func (d *drill) useProbe(id string) { d.probe = &session{id: id} }

func (d *drill) fail(err error) {
	d.errs.Lock()
	d.errs.list = append(d.errs.list, err)
	d.errs.Unlock()
}

// step loads a session, checks its counter never went below an acknowledged save, bumps
// it and saves. Each call has the caller deadline.
func (d *drill) step(s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callerDeadline)
	defer cancel()
	d.ops.Add(1)
	sess, err := d.st.Load(ctx, s.id)
	if err != nil {
		d.fail(fmt.Errorf("load %s: %w", s.id, err))
		return
	}
	var n int64
	if err := sess.Get("n", &n); err != nil {
		d.fail(err)
		return
	}
	if n < s.acked {
		d.backwards.Add(1)
	}
	if d.pad != "" {
		var pad string
		if err := sess.Get("pad", &pad); err != nil || pad != d.pad {
			d.fail(fmt.Errorf("load %s: pad of %d bytes (%v), want %d", s.id, len(pad), err, len(d.pad)))
			return
		}
	}
	if err := sess.Set("n", max(n, s.acked)+1); err != nil {
		d.fail(err)
		return
	}
	if err := d.st.Save(ctx, sess); err != nil {
		if !errors.Is(err, store.ErrNotAcknowledged) {
			d.fail(fmt.Errorf("save %s: %w", s.id, err))
		}
		return
	}
	s.acked = max(n, s.acked) + 1
	s.saves++
	if s == d.probe {
		d.successes.Lock()
		d.successes.at = append(d.successes.at, time.Now())
		d.successes.Unlock()
	}
}

// run drives the load until stop is closed or the bound passes.
func (d *drill) run(stop <-chan struct{}, bound time.Duration) {
	deadline := time.After(bound)
	var wg sync.WaitGroup
	for w := range d.workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				case <-deadline:
					return
				default:
				}
				if w == 0 && d.probe != nil {
					d.step(d.probe)
					continue
				}
				d.step(d.sessions[rng.IntN(len(d.sessions))])
			}
		})
	}
	wg.Wait()
}

// verify reads every session back and counts acknowledged saves that were lost, and
// sessions whose version differs from 1 + their acknowledged saves (a save applied twice,
// or one applied that its caller was told failed).
func (d *drill) verify(t *testing.T) (lost, versionMismatch int) {
	t.Helper()
	all := d.sessions
	if d.probe != nil {
		all = append(all, d.probe)
	}
	for _, s := range all {
		ctx, cancel := context.WithTimeout(context.Background(), callerDeadline)
		sess, err := d.st.Load(ctx, s.id)
		cancel()
		if errors.Is(err, store.ErrNotFound) {
			lost++
			continue
		}
		require.NoError(t, err)
		var n int64
		require.NoError(t, sess.Get("n", &n))
		if n < s.acked {
			lost++
		}
		if sess.Version() != 1+s.saves {
			versionMismatch++
		}
	}
	return lost, versionMismatch
}

func (d *drill) errors() []error {
	d.errs.Lock()
	defer d.errs.Unlock()
	return append([]error(nil), d.errs.list...)
}

// recovery returns when the probe's saves succeeded again after the fault began: the end
// of the longest gap between successful probe saves that spans the fault's start.
func (d *drill) recovery(faultStart, until time.Time) time.Duration {
	d.successes.Lock()
	defer d.successes.Unlock()
	at := d.successes.at
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	var best time.Duration
	var end time.Time
	for i := 1; i < len(at); i++ {
		if at[i].Before(faultStart) || at[i-1].After(until) {
			continue
		}
		if gap := at[i].Sub(at[i-1]); gap > best {
			best, end = gap, at[i]
		}
	}
	if end.IsZero() {
		return 0
	}
	return end.Sub(faultStart)
}

// sharedCluster returns the test binary's shared Cluster once its health gate passes.
func sharedCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	c := cluster.Shared(t, cluster.KindCluster).(*cluster.Cluster)
	hctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, c.WaitHealthy(hctx), "health gate before the fault")
	return c
}

func tunedClient(t *testing.T, topo cluster.Topology) redis.UniversalClient {
	rdb := store.NewFailoverClient(topo.UniversalOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func defaultClient(t *testing.T, topo cluster.Topology) redis.UniversalClient {
	rdb := redis.NewUniversalClient(topo.UniversalOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// drillResult is what one drill measured.
type drillResult struct {
	promotion, recovery time.Duration
	errors              []error
	lost                int
	versionMismatch     int
	ops                 int64
	backwards           int64
	rounds              []round
}

// round is one fault of a drill.
type round struct {
	master, promoted    *cluster.Node
	promotion, recovery time.Duration
}

// runDrill: load, fault the master that owns the probe session, wait for the promotion,
// heal (the old master rejoins as a replica), load on, stop, read every session back.
func runDrill(t *testing.T, topo cluster.Topology, st *store.Store, fault cluster.FaultKind, hold time.Duration) drillResult {
	return runDrillRounds(t, topo, st, fault, hold, 1)
}

// runDrillRounds is runDrill with several faults in a row, each on the master that owns
// the probe session at the time (after the first, the replica promoted before).
func runDrillRounds(t *testing.T, topo cluster.Topology, st *store.Store, fault cluster.FaultKind, hold time.Duration, rounds int) drillResult {
	return runDrillPadded(t, topo, st, fault, hold, rounds, 0)
}

// runDrillPadded is runDrillRounds with sessions that hold pad bytes more.
func runDrillPadded(t *testing.T, topo cluster.Topology, st *store.Store, fault cluster.FaultKind, hold time.Duration, rounds, pad int) drillResult {
	t.Helper()
	ctx := t.Context()
	d := newDrillPadded(t, st, 4, 25, pad)
	probe, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, probe.Set("n", int64(0)))
	if d.pad != "" {
		require.NoError(t, probe.Set("pad", d.pad))
	}
	require.NoError(t, st.Save(ctx, probe))
	d.useProbe(probe.ID())
	key, _ := st.Key(probe.ID())

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { d.run(stop, 30*time.Duration(rounds)*time.Second); close(done) }()
	require.Eventually(t, func() bool { return d.ops.Load() > 200 }, 10*time.Second, 10*time.Millisecond, "warm-up load runs")

	var res drillResult
	var starts []time.Time
	rctx, cancel2 := context.WithTimeout(ctx, time.Duration(rounds)*time.Minute)
	defer cancel2()
	for range rounds {
		ep, err := cluster.RunEpisode(ctx, topo, fault, cluster.EpisodeOptions{Key: key, Hold: hold, Logf: t.Logf})
		require.NoError(t, err)
		starts = append(starts, ep.Start)
		r := round{master: ep.Master, promoted: ep.Promoted, promotion: ep.Promotion}
		// Load on the healed topology for a moment.
		n := d.ops.Load()
		require.Eventually(t, func() bool { return d.ops.Load() > n+200 }, 20*time.Second, 10*time.Millisecond)
		res.rounds = append(res.rounds, r)
	}
	close(stop)
	<-done
	require.NoError(t, topo.WaitHealthy(rctx))
	for i := range res.rounds {
		until := time.Now()
		if i+1 < len(starts) {
			until = starts[i+1]
		}
		res.rounds[i].recovery = d.recovery(starts[i], until)
	}
	res.promotion, res.recovery = res.rounds[0].promotion, res.rounds[0].recovery
	res.errors = d.errors()
	res.lost, res.versionMismatch = d.verify(t)
	res.ops = d.ops.Load()
	res.backwards = d.backwards.Load()
	for i, r := range res.rounds {
		t.Logf("%s round %d: promotion %s, recovery %s", fault, i+1, r.promotion.Round(time.Millisecond), r.recovery.Round(time.Millisecond))
	}
	t.Logf("%s: %d operations, %d caller-visible errors, %d acknowledged saves lost, %d loads saw an older counter, %d sessions whose version is not 1 + acknowledged saves; store stats %+v",
		fault, res.ops, len(res.errors), res.lost, res.backwards, res.versionMismatch, st.Stats())
	for i, err := range res.errors {
		if i == 5 {
			break
		}
		t.Logf("error: %v", err)
	}
	return res
}

// 1. Cluster, SIGKILL the master owning live sessions: no caller-visible error, and
// operations succeed again within promotion + 1 s.
func TestFailoverClusterKill(t *testing.T) {
	c := sharedCluster(t)
	st, err := store.New(tunedClient(t, c))
	require.NoError(t, err)
	res := runDrill(t, c, st, cluster.FaultKill, 0)
	require.Empty(t, res.errors, "caller-visible errors")
	require.LessOrEqual(t, res.recovery, res.promotion+time.Second, "operations succeed again within promotion + 1 s")
}

// 2. The same with a go-redis client built with all defaults.
func TestFailoverClusterKillDefaultClient(t *testing.T) {
	c := sharedCluster(t)
	st, err := store.New(defaultClient(t, c))
	require.NoError(t, err)
	res := runDrill(t, c, st, cluster.FaultKill, 0)
	require.Empty(t, res.errors, "caller-visible errors with a default client")
}

// 2b. Kills 1 and 2 with 8 KB sessions, whose replies are read into buffers of their own
// by a command go-redis never retries (the store does): no caller-visible error, every
// load reads the whole session, nothing acknowledged is lost.
func TestFailoverClusterKillLargeSessions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		newClient func(*testing.T, cluster.Topology) redis.UniversalClient
		quick     bool // operations succeed again within promotion + 1 s, as in drill 1
	}{{"tuned client", tunedClient, true}, {"default client", defaultClient, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := sharedCluster(t)
			st, err := store.New(tc.newClient(t, c))
			require.NoError(t, err)
			res := runDrillPadded(t, c, st, cluster.FaultKill, 0, 1, 8<<10)
			require.Empty(t, res.errors, "caller-visible errors")
			require.Zero(t, res.lost, "acknowledged saves lost")
			if tc.quick {
				require.LessOrEqual(t, res.recovery, res.promotion+time.Second, "operations succeed again within promotion + 1 s")
			}
		})
	}
}

// 3. The new master has no script cache: saves succeed (NOSCRIPT handled), with and
// without pipelines (WAIT runs the save in a pipeline).
func TestFailoverScriptsAfterFailover(t *testing.T) {
	c := sharedCluster(t)
	ctx := t.Context()
	rdb := tunedClient(t, c)
	plain, err := store.New(rdb)
	require.NoError(t, err)
	acked, err := store.New(rdb, store.WithWriteAck(1, 500*time.Millisecond))
	require.NoError(t, err)

	s, _ := plain.NewSession()
	require.NoError(t, s.Set("a", 1))
	require.NoError(t, plain.Save(ctx, s))
	key, _ := plain.Key(s.ID())
	master, err := c.MasterForKey(ctx, key)
	require.NoError(t, err)
	f, err := c.Inject(ctx, cluster.FaultKill, master, time.Minute)
	require.NoError(t, err)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	promoted, err := c.WaitPromotion(pctx, key, master)
	require.NoError(t, err)

	node := redis.NewClient(&redis.Options{Addr: promoted.Addr()})
	defer node.Close()
	require.NoError(t, node.ScriptFlush(ctx).Err(), "an empty script cache, as on a new master")

	cctx, cancel2 := context.WithTimeout(ctx, callerDeadline)
	defer cancel2()
	require.NoError(t, s.Set("a", 2))
	require.NoError(t, plain.Save(cctx, s), "EVALSHA, NOSCRIPT, EVAL")
	require.NoError(t, node.ScriptFlush(ctx).Err())
	got, err := acked.Load(cctx, s.ID())
	require.NoError(t, err)
	require.NoError(t, got.Set("a", 3))
	err = acked.Save(cctx, got)
	if errors.Is(err, store.ErrNotAcknowledged) {
		t.Logf("saved, but WAIT saw no replica yet (the old master is down): %v", err)
	} else {
		require.NoError(t, err, "pipeline (EVALSHA + WAIT) after NOSCRIPT")
	}
	require.NoError(t, f.Heal(ctx))
	rctx, cancel3 := context.WithTimeout(ctx, time.Minute)
	defer cancel3()
	require.NoError(t, c.WaitRole(rctx, master, cluster.RoleReplica))
	require.NoError(t, c.WaitHealthy(rctx))
	// With the replica back, the pipelined save is acknowledged.
	require.NoError(t, node.ScriptFlush(ctx).Err())
	require.NoError(t, got.Set("a", 4))
	require.NoError(t, acked.Save(rctx, got))
	final, err := plain.Load(rctx, s.ID())
	require.NoError(t, err)
	var v int
	require.NoError(t, final.Get("a", &v))
	require.Equal(t, 4, v)
}

// 4. Pause the master 5 s (longer than the node timeout): no caller-visible error, the old
// master rejoins as a replica, and no load sees a counter below an acknowledged save made
// with WAIT.
func TestFailoverClusterPause(t *testing.T) {
	c := sharedCluster(t)
	st, err := store.New(tunedClient(t, c), store.WithWriteAck(1, 500*time.Millisecond))
	require.NoError(t, err)
	res := runDrill(t, c, st, cluster.FaultPause, 5*time.Second)
	require.Empty(t, res.errors, "caller-visible errors")
	require.Zero(t, res.backwards, "session counters never go backwards")
	require.Zero(t, res.lost, "acknowledged saves lost")
}

// 6. Kill right after acknowledged saves: with WAIT 1 none is lost; without WAIT the
// number lost is logged.
func TestFailoverClusterKillWithAndWithoutWait(t *testing.T) {
	c := sharedCluster(t)
	for _, withWait := range []bool{true, false} {
		t.Run(fmt.Sprintf("WAIT %v", withWait), func(t *testing.T) {
			opts := []store.Option{}
			if withWait {
				opts = append(opts, store.WithWriteAck(1, 500*time.Millisecond))
			}
			st, err := store.New(tunedClient(t, c), opts...)
			require.NoError(t, err)
			res := runDrill(t, sharedCluster(t), st, cluster.FaultKill, 0)
			require.Empty(t, res.errors)
			if withWait {
				require.Zero(t, res.lost, "acknowledged (WAIT 1) saves lost")
			} else {
				t.Logf("without WAIT: %d acknowledged saves lost, %d loads saw an older counter", res.lost, res.backwards)
			}
		})
	}
}

// 9. Kill a master and its replica (the shard is down): calls to it fail with a typed
// error within the deadline, no hang; the other shards keep serving.
func TestFailoverClusterShardDown(t *testing.T) {
	c := sharedCluster(t)
	ctx := t.Context()
	rdb := tunedClient(t, c)
	st, err := store.New(rdb)
	require.NoError(t, err)
	// Sessions on every shard.
	var ids []string
	for range 60 {
		s, _ := st.NewSession()
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(ctx, s))
		ids = append(ids, s.ID())
	}
	key0, _ := st.Key(ids[0])
	master, err := c.MasterForKey(ctx, key0)
	require.NoError(t, err)
	onDeadShard := map[string]bool{}
	for _, id := range ids {
		key, _ := st.Key(id)
		m, err := c.MasterForKey(ctx, key)
		require.NoError(t, err)
		onDeadShard[id] = m == master
	}
	var replica *cluster.Node
	status, err := c.Status(ctx)
	require.NoError(t, err)
	for _, n := range status {
		if n.Role == cluster.RoleReplica && n.MasterAddr == master.Addr() {
			replica = n.Node
		}
	}
	require.NotNil(t, replica, "the shard's replica")
	require.NoError(t, c.Kill(ctx, replica))
	require.NoError(t, c.Kill(ctx, master))
	defer func() {
		require.NoError(t, c.Start(ctx, master))
		require.NoError(t, c.Start(ctx, replica))
		hctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(t, c.WaitHealthy(hctx))
	}()
	// Wait until the cluster has marked the shard failed.
	require.Eventually(t, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := st.Load(cctx, ids[0])
		return err != nil
	}, 30*time.Second, 50*time.Millisecond)

	const deadline = 2 * time.Second
	down, up := 0, 0
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		_, err := st.Load(cctx, id)
		took := time.Since(start)
		cancel()
		if onDeadShard[id] {
			down++
			require.Error(t, err, "a session on the dead shard")
			var re *store.RetryError
			require.ErrorAs(t, err, &re, "a typed error")
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, took, deadline+50*time.Millisecond, "no hang past the deadline")
		} else {
			up++
			require.NoError(t, err, "the other shards keep serving")
		}
	}
	t.Logf("dead shard: %d sessions failed within %s each; other shards: %d sessions served", down, deadline, up)
	require.Positive(t, down)
	require.Positive(t, up)
}

// 11. Sentinel: kill the master: no caller-visible error, no WAIT-acknowledged save lost;
// recovery ≈ down-after + promotion. Manual SENTINEL FAILOVER: callers never see READONLY.
func TestFailoverSentinel(t *testing.T) {
	cluster.RequireDocker(t)
	s, err := cluster.RunSentinel(t.Context())
	cluster.Cleanup(t, s)
	require.NoError(t, err)

	t.Run("kill the master", func(t *testing.T) {
		st, err := store.New(tunedClient(t, s), store.WithWriteAck(1, 500*time.Millisecond))
		require.NoError(t, err)
		res := runDrill(t, s, st, cluster.FaultKill, 0)
		require.Empty(t, res.errors, "caller-visible errors")
		require.Zero(t, res.lost, "WAIT-acknowledged saves lost")
		require.Zero(t, res.backwards, "a load saw a counter below an acknowledged save")

		// The old master came back (empty, as a master until the sentinels demote it) and
		// the load went on: no client command ever reached it. Replicated writes arrive as
		// the scripts' effects, never as EVAL/EVALSHA or HGETALL.
		old := redis.NewClient(&redis.Options{Addr: res.rounds[0].master.Addr()})
		defer old.Close()
		info, err := old.Info(t.Context(), "commandstats").Result()
		require.NoError(t, err)
		for _, cmd := range []string{"cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_hgetall:"} {
			require.NotContains(t, info, cmd, "a session command landed on the returned old master")
		}
	})

	for _, wait := range []int{0, 2} {
		manualSentinelFailover(t, s, wait)
	}
}

// manualSentinelFailover: SENTINEL FAILOVER under load. The old master is demoted while
// clients still write to it; READONLY is retried by the store, never seen by callers.
// With WAIT equal to the number of replicas no acknowledged save is lost: a save the old
// master took after the promotion cannot reach every replica and fails instead.
func manualSentinelFailover(t *testing.T, s *cluster.Sentinel, wait int) {
	t.Run(fmt.Sprintf("manual SENTINEL FAILOVER, WAIT %d", wait), func(t *testing.T) {
		ctx := t.Context()
		hctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(t, s.WaitHealthy(hctx))
		var opts []store.Option
		if wait > 0 {
			opts = append(opts, store.WithWriteAck(wait, 500*time.Millisecond))
		}
		st, err := store.New(tunedClient(t, s), opts...)
		require.NoError(t, err)
		d := newDrill(t, st, 4, 25)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { d.run(stop, 30*time.Second); close(done) }()
		require.Eventually(t, func() bool { return d.ops.Load() > 200 }, 10*time.Second, 10*time.Millisecond)

		// SENTINEL FAILOVER, until the old master is demoted and the topology healthy.
		_, err = cluster.RunEpisode(ctx, s, cluster.FaultFailover, cluster.EpisodeOptions{Logf: t.Logf})
		require.NoError(t, err)
		n := d.ops.Load()
		require.Eventually(t, func() bool { return d.ops.Load() > n+500 }, 45*time.Second, 10*time.Millisecond)
		close(stop)
		<-done
		require.NoError(t, s.WaitHealthy(hctx))
		lost, _ := d.verify(t)
		t.Logf("manual failover: %d operations, %d caller-visible errors, %d acknowledged saves lost at the end, %d loads saw a counter below an acknowledged save; stats %+v",
			d.ops.Load(), len(d.errors()), lost, d.backwards.Load(), st.Stats())
		for _, err := range d.errors() {
			require.False(t, redis.IsReadOnlyError(err), "a caller saw READONLY: %v", err)
		}
		require.Empty(t, d.errors(), "caller-visible errors")
		if wait == 2 {
			require.Zero(t, d.backwards.Load(), "a load saw a counter below a save acknowledged by every replica")
			require.Zero(t, lost, "saves acknowledged by every replica lost")
		}
		// Below every replica, losses are not asserted: Sentinel does not stop writes to the
		// old master while it promotes a replica, so saves the old master acknowledged in
		// that window are lost when it resynchronises as a replica (WAIT 1 can be satisfied
		// by the other replica, which resynchronises too); later saves of the same session
		// may overwrite the loss, which is why loads that saw a counter go backwards are
		// counted too. Measured: about 190 such loads in 140,000 operations with WAIT 0 and
		// with WAIT 1. The drill (--topology sentinel --fault failover) shows it too.
	})
}

// 12. A caller deadline shorter than any failover: the call returns within deadline +
// 50 ms, with a default client too.
func TestFailoverShortDeadlineIsHonoured(t *testing.T) {
	c := sharedCluster(t)
	ctx := t.Context()
	for name, rdb := range map[string]redis.UniversalClient{"tuned": tunedClient(t, c), "default": defaultClient(t, c)} {
		t.Run(name+" client", func(t *testing.T) {
			require.NoError(t, c.WaitHealthy(ctx))
			st, err := store.New(rdb)
			require.NoError(t, err)
			s, _ := st.NewSession()
			require.NoError(t, s.Set("a", 1))
			require.NoError(t, st.Save(ctx, s))
			key, _ := st.Key(s.ID())
			master, err := c.MasterForKey(ctx, key)
			require.NoError(t, err)
			f, err := c.Inject(ctx, cluster.FaultPause, master, 20*time.Second)
			require.NoError(t, err)
			for _, d := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond} {
				cctx, cancel := context.WithTimeout(ctx, d)
				start := time.Now()
				_, err := st.Load(cctx, s.ID())
				took := time.Since(start)
				cancel()
				require.Error(t, err)
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.Less(t, took, d+50*time.Millisecond, "deadline %s", d)
				t.Logf("deadline %s: returned after %s: %v", d, took.Round(time.Millisecond), err)
			}
			require.NoError(t, f.Heal(ctx))
			hctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			require.NoError(t, c.WaitHealthy(hctx))
		})
	}
}

// 5. A short pause (shorter than a failover, longer than the client's 1 s read timeout):
// attempts time out and are retried with the same save ID. Every save is applied exactly
// once and the version check raises no spurious ErrConflict.
func TestFailoverClusterShortPause(t *testing.T) {
	c := sharedCluster(t)
	st, err := store.New(tunedClient(t, c), store.WithVersionCheck(true))
	require.NoError(t, err)
	ctx := t.Context()
	d := newDrill(t, st, 4, 25)
	probe, _ := st.NewSession()
	require.NoError(t, probe.Set("n", int64(0)))
	require.NoError(t, st.Save(ctx, probe))
	d.useProbe(probe.ID())
	key, _ := st.Key(probe.ID())
	master, err := c.MasterForKey(ctx, key)
	require.NoError(t, err)

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { d.run(stop, 30*time.Second); close(done) }()
	require.Eventually(t, func() bool { return d.ops.Load() > 200 }, 10*time.Second, 10*time.Millisecond)
	f, err := c.Inject(ctx, cluster.FaultPause, master, 1300*time.Millisecond)
	require.NoError(t, err)
	<-f.Healed()
	n := d.ops.Load()
	require.Eventually(t, func() bool { return d.ops.Load() > n+500 }, 20*time.Second, 10*time.Millisecond)
	close(stop)
	<-done
	lost, mismatch := d.verify(t)
	stats := st.Stats()
	t.Logf("short pause of %s: %d operations, %d errors, %d lost, %d version mismatches; stats %+v", f.Duration, d.ops.Load(), len(d.errors()), lost, mismatch, stats)
	require.Empty(t, d.errors(), "caller-visible errors")
	require.Zero(t, stats.Conflicts, "spurious conflicts")
	require.Zero(t, mismatch, "every save applied exactly once")
	require.Positive(t, stats.Retries, "the pause made attempts time out")
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, c.WaitHealthy(hctx))
}

// 7. Cut a master off the network for longer than the node timeout, heal: no
// WAIT-acknowledged save is lost, and it rejoins with the same IP as a replica.
func TestFailoverClusterPartition(t *testing.T) {
	c := sharedCluster(t)
	st, err := store.New(tunedClient(t, c), store.WithWriteAck(1, 500*time.Millisecond))
	require.NoError(t, err)
	res := runDrill(t, c, st, cluster.FaultPartition, 0)
	require.Empty(t, res.errors, "caller-visible errors")
	require.Zero(t, res.lost, "WAIT-acknowledged saves lost")
	require.Zero(t, res.backwards, "session counters never go backwards")
	old := res.rounds[0].master
	st2, err := c.Status(t.Context())
	require.NoError(t, err)
	for _, s := range st2 {
		if s.Name == old.Name {
			require.Equal(t, old.IP, s.IP, "same IP after the heal")
			require.Equal(t, cluster.RoleReplica, s.Role)
			require.True(t, s.Connected)
		}
	}
}

// 8. Kill, restart, then kill the new master: both failovers complete, no caller-visible
// error.
func TestFailoverClusterKillTwice(t *testing.T) {
	c := sharedCluster(t)
	st, err := store.New(tunedClient(t, c))
	require.NoError(t, err)
	res := runDrillRounds(t, c, st, cluster.FaultKill, 0, 2)
	require.Empty(t, res.errors, "caller-visible errors")
	require.Len(t, res.rounds, 2)
	require.Equal(t, res.rounds[0].promoted.Name, res.rounds[1].master.Name, "the second kill hits the master promoted by the first")
}

// 10. Rotate with the old key's master killed between the steps: the old or the new ID
// always resolves and nothing is lost; a rotation cut short by the caller's deadline
// leaves the old session intact, and a retry completes it.
func TestFailoverRotateAcrossSlots(t *testing.T) {
	c := sharedCluster(t)
	ctx := t.Context()
	st, err := store.New(tunedClient(t, c), store.WithGracePeriod(time.Minute))
	require.NoError(t, err)
	for _, deadline := range []time.Duration{callerDeadline, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("deadline %s", deadline), func(t *testing.T) {
			hctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			require.NoError(t, c.WaitHealthy(hctx))
			s, _ := st.NewSession()
			require.NoError(t, s.Set("cart", []string{"book", "pen"}))
			require.NoError(t, st.Save(ctx, s))
			oldID := s.ID()
			oldKey, _ := st.Key(oldID)
			master, err := c.MasterForKey(ctx, oldKey)
			require.NoError(t, err)

			// The old key's master dies: the rotation's first step (the new key, most
			// likely on another shard) can succeed, its second (the forward pointer at the
			// old key) must wait for the promotion.
			f, err := c.Inject(ctx, cluster.FaultKill, master, time.Minute)
			require.NoError(t, err)
			require.NoError(t, s.Set("role", "member"))
			rctx, cancel2 := context.WithTimeout(ctx, deadline)
			rotateErr := st.Rotate(rctx, s)
			cancel2()
			pctx, cancel3 := context.WithTimeout(ctx, 30*time.Second)
			_, err = c.WaitPromotion(pctx, oldKey, master)
			cancel3()
			require.NoError(t, err)

			lctx, cancel4 := context.WithTimeout(ctx, callerDeadline)
			defer cancel4()
			if rotateErr == nil {
				require.NotEqual(t, oldID, s.ID())
				viaOld, err := st.Load(lctx, oldID)
				require.NoError(t, err, "the old ID resolves (forward pointer)")
				require.Equal(t, s.ID(), viaOld.ID())
				var cart []string
				require.NoError(t, viaOld.Get("cart", &cart))
				require.Equal(t, []string{"book", "pen"}, cart)
			} else {
				t.Logf("rotation cut short by the %s deadline: %v", deadline, rotateErr)
				require.Equal(t, oldID, s.ID(), "a failed rotation keeps the old ID")
				old, err := st.Load(lctx, oldID)
				require.NoError(t, err, "the old session is intact")
				var cart []string
				require.NoError(t, old.Get("cart", &cart))
				require.Equal(t, []string{"book", "pen"}, cart)
				require.NoError(t, st.Rotate(lctx, s), "a retry completes the rotation")
				require.NotEqual(t, oldID, s.ID())
			}
			fresh, err := st.Load(lctx, s.ID())
			require.NoError(t, err)
			var role string
			require.NoError(t, fresh.Get("role", &role))
			require.Equal(t, "member", role)

			require.NoError(t, f.Heal(ctx))
			wctx, cancel5 := context.WithTimeout(ctx, time.Minute)
			defer cancel5()
			require.NoError(t, c.WaitRole(wctx, master, cluster.RoleReplica))
		})
	}
}

// 13. A user's sessions across the shards: RevokeAll while a master is down carries on
// through the promotion (or says which sessions it could not confirm, and a second call
// completes it); a RevokeAll acknowledged with WAIT is not undone when the master that
// deleted the sessions dies right after.
func TestFailoverRevokeAll(t *testing.T) {
	c := sharedCluster(t)
	ctx := t.Context()
	st, err := store.New(tunedClient(t, c), store.WithWriteAck(1, 500*time.Millisecond),
		store.WithPrefix("failover-revoke:"))
	require.NoError(t, err)
	login := func(user string, n int) []string {
		ids := make([]string, n)
		for i := range ids {
			s, _ := st.NewSession()
			require.NoError(t, s.Set("device", i))
			s.SetUser(user)
			require.NoError(t, st.Save(ctx, s))
			ids[i] = s.ID()
		}
		return ids
	}
	gone := func(ids []string) {
		t.Helper()
		lctx, cancel := context.WithTimeout(ctx, callerDeadline)
		defer cancel()
		for _, id := range ids {
			_, err := st.Load(lctx, id)
			require.ErrorIs(t, err, store.ErrNotFound, "session %s survived the revoke", id)
		}
	}
	heal := func(f *cluster.Fault, master *cluster.Node) {
		t.Helper()
		require.NoError(t, f.Heal(ctx))
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(t, c.WaitRole(wctx, master, cluster.RoleReplica))
		require.NoError(t, c.WaitHealthy(wctx))
	}

	// During the outage.
	ids := login("nora", 30)
	key, _ := st.Key(ids[0])
	master, err := c.MasterForKey(ctx, key)
	require.NoError(t, err)
	f, err := c.Inject(ctx, cluster.FaultKill, master, time.Minute)
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(ctx, callerDeadline)
	err = st.RevokeAll(rctx, "nora")
	cancel()
	var rerr *store.RevokeError
	if errors.As(err, &rerr) {
		// The promoted master has no replica until the old one rejoins: WAIT cannot
		// confirm its deletions.
		t.Logf("revoke during the outage: %d unconfirmed: %v", len(rerr.Failed), rerr.Err)
		require.ErrorIs(t, rerr, store.ErrNotAcknowledged)
	} else {
		require.NoError(t, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = c.WaitPromotion(pctx, key, master)
	cancel()
	require.NoError(t, err)
	gone(ids)
	heal(f, master)
	require.NoError(t, st.RevokeAll(ctx, "nora"), "a second call completes it")
	gone(ids)

	// Acknowledged, then the master dies.
	ids = login("omar", 30)
	require.NoError(t, st.RevokeAll(ctx, "omar"))
	key, _ = st.Key(ids[0])
	master, err = c.MasterForKey(ctx, key)
	require.NoError(t, err)
	f, err = c.Inject(ctx, cluster.FaultKill, master, time.Minute)
	require.NoError(t, err)
	pctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	_, err = c.WaitPromotion(pctx, key, master)
	cancel()
	require.NoError(t, err)
	gone(ids)
	lctx, cancel := context.WithTimeout(ctx, callerDeadline)
	infos, err := st.Sessions(lctx, "omar")
	cancel()
	require.NoError(t, err)
	require.Empty(t, infos)
	heal(f, master)
}

// 13. WAIT must be what keeps acknowledged saves: the replica is cut off the network, so
// the master acknowledges saves the replica never gets; the master is killed and the
// replica, reconnected at once, is promoted with the data it had before the cut. In the
// same scenario saves without WAIT are lost (the scenario bites) and saves with WAIT 1
// were refused with ErrNotAcknowledged or kept, never lost.
func TestFailoverClusterWaitStalledReplica(t *testing.T) {
	c := sharedCluster(t)
	ctx := t.Context()
	plain, err := store.New(tunedClient(t, c))
	require.NoError(t, err)
	acked, err := store.New(tunedClient(t, c), store.WithWriteAck(1, 300*time.Millisecond))
	require.NoError(t, err)

	// Sessions of both stores on one master, saved and replicated while the link is up.
	const perStore = 20
	var master *cluster.Node
	sessions := map[*store.Store][]*store.Session{}
	for tries := 0; len(sessions[plain]) < perStore || len(sessions[acked]) < perStore; tries++ {
		require.Less(t, tries, 40*perStore, "sessions on one master")
		for _, st := range []*store.Store{plain, acked} {
			s, err := st.NewSession()
			require.NoError(t, err)
			key, _ := st.Key(s.ID())
			m, err := c.MasterForKey(ctx, key)
			require.NoError(t, err)
			if master == nil {
				master = m
			}
			if m.Name != master.Name || len(sessions[st]) == perStore {
				continue
			}
			require.NoError(t, s.Set("n", int64(0)))
			require.NoError(t, st.Save(ctx, s), "saved (WAIT 1 confirmed) before the cut")
			sessions[st] = append(sessions[st], s)
		}
	}
	var replica *cluster.Node
	status, err := c.Status(ctx)
	require.NoError(t, err)
	for _, n := range status {
		if n.Role == cluster.RoleReplica && n.MasterAddr == master.Addr() {
			replica = n.Node
		}
	}
	require.NotNil(t, replica, "the master's replica")
	healed := false
	defer func() {
		// Whatever happened, the topology is whole again for the next test.
		hctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if !healed {
			_ = c.Reconnect(hctx, replica)
			_ = c.Start(hctx, master)
		}
		require.NoError(t, c.WaitHealthy(hctx))
	}()

	// The replica is cut off: what the master acknowledges now stays on the master.
	require.NoError(t, c.Disconnect(ctx, replica))
	saved := map[*store.Store]map[string]bool{plain: {}, acked: {}}
	refused := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for st, list := range sessions {
		for _, s := range list {
			wg.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, callerDeadline)
				defer cancel()
				if err := s.Set("n", int64(1)); err != nil {
					t.Error(err)
					return
				}
				err := st.Save(sctx, s)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					saved[st][s.ID()] = true
				case st == acked && errors.Is(err, store.ErrNotAcknowledged):
					refused++
				default:
					t.Errorf("save during the cut: %v", err)
				}
			})
		}
	}
	wg.Wait()
	require.Len(t, saved[plain], perStore, "saves without WAIT are acknowledged by the master alone")
	t.Logf("during the cut: without WAIT %d saves acknowledged; with WAIT 1 %d acknowledged, %d refused (ErrNotAcknowledged)",
		len(saved[plain]), len(saved[acked]), refused)

	// The master dies with them; the replica comes back and is promoted.
	key, _ := plain.Key(sessions[plain][0].ID())
	require.NoError(t, c.Kill(ctx, master))
	require.NoError(t, c.Reconnect(ctx, replica))
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	promoted, err := c.WaitPromotion(pctx, key, master)
	cancel()
	require.NoError(t, err)
	require.Equal(t, replica.Name, promoted.Name)

	lost := map[*store.Store]int{}
	for st, list := range sessions {
		for _, s := range list {
			if !saved[st][s.ID()] {
				continue
			}
			lctx, cancel := context.WithTimeout(ctx, callerDeadline)
			got, err := st.Load(lctx, s.ID())
			cancel()
			var n int64
			if err == nil {
				err = got.Get("n", &n)
			}
			if errors.Is(err, store.ErrNotFound) || (err == nil && n < 1) {
				lost[st]++
				continue
			}
			require.NoError(t, err)
		}
	}
	t.Logf("after the promotion of %s: without WAIT %d of %d acknowledged saves lost; with WAIT 1 %d of %d lost",
		promoted.Name, lost[plain], len(saved[plain]), lost[acked], len(saved[acked]))
	require.Positive(t, lost[plain], "the scenario bites: saves without WAIT are lost")
	require.Zero(t, lost[acked], "a save WAIT 1 acknowledged is lost")
	require.Equal(t, perStore, len(saved[acked])+refused, "every save with WAIT was acknowledged or refused")

	require.NoError(t, c.Start(ctx, master))
	healed = true
	rctx, cancel2 := context.WithTimeout(ctx, time.Minute)
	defer cancel2()
	require.NoError(t, c.WaitRole(rctx, master, cluster.RoleReplica), "the old master rejoins as a replica")
}
