package compare

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// BenchmarkModifySplit shows where the time of a modifying request goes at one worker,
// every alternative side by side in one run on one Redis: each iteration runs each
// variant once, in an order that rotates, so that a noisy moment hits all of them alike.
// It prints a table (p50 and mean latency of each variant, then a pass of each variant
// alone for its client CPU time and allocations) and Redis's own time per command
// (INFO commandstats, reset after the warm-up). "batched" is the store as it is built by
// default (auto-pipelining: a lone command goes alone from its caller's goroutine),
// "queued" the same with every command handed to the batcher's loops, "direct" the store
// without auto-pipelining, "cached" the store with the near-cache (a load, untimed, before
// each round's: the timed load hits, and the save's time includes what the invalidation
// Redis sends this store's own tracking connection costs; "cached save untracked" saves a
// session the cache holds no entry of, so that no invalidation is sent). It runs only
// with -bench:
//
//	go test -run '^$' -bench ModifySplit -benchtime 2000x ./internal/compare/
func BenchmarkModifySplit(b *testing.B) {
	ctx := context.Background()
	topo := cluster.StandaloneForTest(b)
	admin := topo.Client()

	newClient := func(c *counter) redis.UniversalClient {
		o := topo.UniversalOptions()
		o.PoolSize = 64
		o.Dialer = dialer(c)
		rdb := redis.NewUniversalClient(o)
		b.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
	// The stores as `compare` builds them (hasession also without auto-pipelining).
	build := func(name string, setup func(s *sessionStore, rdb redis.UniversalClient) error) *sessionStore {
		s := &sessionStore{name: name, counter: &counter{}, impl: map[string]opFunc{}}
		if err := setup(s, newClient(s.counter)); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.close)
		if err := s.prepare(ctx, "typical"); err != nil {
			b.Fatal(err)
		}
		return s
	}
	registerGob()
	floor := build(floorName, floorStore)
	has := build(hasessionName, func(s *sessionStore, rdb redis.UniversalClient) error { return hasessionStore(s, rdb) })
	hasDirect := build(hasessionName+"-direct", func(s *sessionStore, rdb redis.UniversalClient) error {
		return hasessionStore(s, rdb, store.WithAutoPipeline(false))
	})
	scsS := build(scsName, func(s *sessionStore, rdb redis.UniversalClient) error { return scsStore(s, rdb.(*redis.Client)) })

	// The store's Load and Save timed apart, with and without auto-pipelining.
	quiet := slog.New(slog.DiscardHandler)
	storeOf := func(ap bool, more ...store.Option) (*store.Store, string) {
		opts := append([]store.Option{store.WithIdleTimeout(idle), store.WithLogger(quiet), store.WithAutoPipeline(ap)}, more...)
		st, err := store.New(newClient(&counter{}), opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		s, _ := st.NewSession()
		for k, v := range shape("typical") {
			_ = s.Set(k, v)
		}
		if err := st.Save(ctx, s); err != nil {
			b.Fatal(err)
		}
		return st, s.ID()
	}

	type variant struct {
		name string
		run  func(n int) error
		h    hist
	}
	var vs []*variant
	add := func(name string, run func(n int) error) *variant {
		v := &variant{name: name, run: run}
		vs = append(vs, v)
		return v
	}
	op := func(s *sessionStore, op string) func(n int) error {
		w, err := s.worker("typical", op, 1)
		if err != nil {
			b.Fatal(err)
		}
		f := w(0).op
		return func(int) error { return f(ctx) }
	}
	// parts are timed within a run of another variant: no run of their own.
	var parts []*variant
	part := func(name string) *variant {
		v := &variant{name: name}
		parts = append(parts, v)
		return v
	}
	storeModify := func(name string, ap bool, more ...store.Option) {
		st, id := storeOf(ap, more...)
		cached := len(more) > 0
		load, save := part(name+" load"), part(name+" save")
		add(name+" load+save", func(n int) error {
			if cached {
				// Read before, untimed (as compare's hasession+cache workload does): the
				// save dropped the entry, this refills it, and the timed load hits.
				if _, err := st.Load(ctx, id); err != nil {
					return err
				}
			}
			t0 := time.Now()
			s, err := st.Load(ctx, id)
			if err != nil {
				return err
			}
			t1 := time.Now()
			load.h.add(t1.Sub(t0))
			_ = s.Set("last", "/page/"+strconv.Itoa(n))
			_ = s.Set("csrf", "token-"+strconv.Itoa(n))
			err = st.Save(ctx, s)
			save.h.add(time.Since(t1))
			return err
		})
	}

	add("floor GET", op(floor, opGet))
	add("floor SET EX", op(floor, opSet))
	rawKey := func() string {
		st, id := storeOf(false)
		k, _ := st.Key(id)
		return k
	}()
	rawRdb := newClient(&counter{})
	add("raw HGETALL (go-redis)", func(int) error { return rawRdb.Do(ctx, "hgetall", rawKey).Err() })
	// queued: every command through the batcher's loops, as before a lone command went
	// alone from its caller's goroutine.
	queued := func(v *variant) {
		run := v.run
		v.run = func(n int) error {
			testhook.QueueLoneCommands.Store(true)
			defer testhook.QueueLoneCommands.Store(false)
			return run(n)
		}
	}
	storeModify("store queued", true)
	queued(vs[len(vs)-1])
	storeModify("store batched", true)
	storeModify("store direct", false)
	storeModify("store cached", true, store.WithNearCache(nearCache))
	{
		st, id := storeOf(true, store.WithNearCache(nearCache))
		s, err := st.Load(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		add("store cached save untracked", func(n int) error {
			_ = s.Set("last", "/page/"+strconv.Itoa(n))
			return st.Save(ctx, s)
		})
	}
	queued(add("http hasession queued", op(has, opHTTPModify)))
	add("http hasession batched", op(has, opHTTPModify))
	add("http hasession direct", op(hasDirect, opHTTPModify))
	add("http scs", op(scsS, opHTTPModify))

	// Warm-up (connections, script cache), then Redis's counters from zero.
	for range 50 {
		for _, v := range vs {
			if err := v.run(0); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
		}
	}
	for _, v := range parts {
		v.h = hist{}
	}
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()

	means := make([]time.Duration, len(vs))
	n := 0
	for b.Loop() {
		n++
		for j := range vs {
			i := (j + n) % len(vs)
			v := vs[i]
			t := time.Now()
			if err := v.run(n); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			d := time.Since(t)
			v.h.add(d)
			means[i] += d
		}
	}
	b.StopTimer()
	stats, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}

	// Each variant alone: the process's CPU time and allocations per operation.
	const alone = 500
	type cost struct{ cpu, allocs, bytes float64 }
	costs := map[string]cost{}
	for _, v := range vs {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c0 := cpuTime()
		for k := range alone {
			if err := v.run(k); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
		}
		c1 := cpuTime()
		runtime.ReadMemStats(&m1)
		costs[v.name] = cost{
			cpu:    float64(c1-c0) / float64(time.Microsecond) / alone,
			allocs: float64(m1.Mallocs-m0.Mallocs) / alone,
			bytes:  float64(m1.TotalAlloc-m0.TotalAlloc) / alone,
		}
	}

	out := os.Stdout
	fmt.Fprintf(out, "\n%d rounds, every variant once a round (order rotating); GOMAXPROCS=%d\n", n, runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "%-30s %9s %9s %9s %12s %10s %10s\n", "VARIANT", "P50", "MEAN", "÷SCS P50", "CLIENT CPU", "ALLOCS/OP", "B/OP")
	var scsP50 time.Duration
	for _, v := range vs {
		if v.name == "http scs" {
			scsP50 = v.h.quantile(0.5)
		}
	}
	for i, v := range vs {
		c := costs[v.name]
		p50 := v.h.quantile(0.5)
		fmt.Fprintf(out, "%-30s %9s %9s %8.2fx %10.1fµs %10.1f %10.0f\n", v.name, us(p50), us(means[i]/time.Duration(n)),
			float64(p50)/float64(scsP50), c.cpu, c.allocs, c.bytes)
		b.ReportMetric(float64(p50)/1e3, "p50-µs/"+strings.ReplaceAll(v.name, " ", "_"))
	}
	for _, v := range parts {
		fmt.Fprintf(out, "%-30s %9s\n", "  "+v.name, us(v.h.quantile(0.5)))
	}
	fmt.Fprintf(out, "\nRedis time per call (INFO commandstats, this run):\n")
	for _, line := range commandStats(stats) {
		fmt.Fprintln(out, line)
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/1e3) }

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// commandStats returns "  cmd  calls  usec_per_call" lines of INFO commandstats, the
// busiest first.
func commandStats(info string) []string {
	type row struct {
		cmd   string
		calls int64
		per   string
	}
	var rows []row
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		r := row{cmd: strings.TrimPrefix(name, "cmdstat_")}
		for f := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "calls":
				r.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec_per_call":
				r.per = v
			}
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.calls - a.calls) })
	out := []string{fmt.Sprintf("  %-10s %8s %14s", "COMMAND", "CALLS", "µs PER CALL")}
	for _, r := range rows {
		out = append(out, fmt.Sprintf("  %-10s %8d %14s", r.cmd, r.calls, r.per))
	}
	return out
}
