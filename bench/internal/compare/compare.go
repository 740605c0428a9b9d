// Package compare is the compare command: hasession measured beside scs and
// gorilla/sessions stores and the raw GET/SET floor on one Redis, with the targets'
// PASS or MISS.
package compare

import (
	"context"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/boj/redistore"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/google/uuid"
	"github.com/gorilla/sessions"
	"github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/bench/internal/cli"
	"github.com/hasession/hasession/bench/internal/report"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/internal/benchshape"
	"github.com/hasession/hasession/internal/format"
	"github.com/hasession/hasession/store"
)

// Stores, as they are named in the table, the JSON and the chart.
const (
	floorName     = "floor"              // go-redis GET / SET EX of the session's bytes
	bareName      = "bare"               // the HTTP request with no session store at all
	hasessionName = "hasession"          // store and httpsession
	cacheName     = "hasession+cache"    // the same with WithNearCache, on a workload of ~10 reads per write
	scsName       = "scs"                // alexedwards/scs v2 + goredisstore
	rbName        = "gorilla+rbcervilla" // gorilla/sessions + rbcervilla/redisstore
	bojName       = "gorilla+redistore"  // gorilla/sessions + boj/redistore (redigo)
)

// peers are the stores hasession is compared with, in the order of the ratio columns.
var peers = []string{scsName, rbName, bojName}

// Operations. Each is one request's worth of session work.
const (
	opGet        = "get"         // floor: GET of the whole session
	opSet        = "set"         // floor: SET EX of the whole session
	opLoad       = "load"        // hasession: Store.Load (touch not due: one HGETALL)
	opRead       = "read"        // hasession: Load and read 2 attributes (sliding expiry by touch)
	opModify     = "modify"      // hasession: Load, read 2 attributes, set 2, Save
	opHTTP       = "http"        // bare: the HTTP request alone, no session store
	opHTTPRead   = "http-read"   // through the library's middleware: read 2 attributes
	opHTTPModify = "http-modify" // through the library's middleware: read 2, set 2
)

// writes tells the operations that change the session; the others only read it
// (sliding expiry aside).
func writes(op string) bool { return op == opSet || op == opModify || op == opHTTPModify }

// floorOp is the floor an operation is compared with: GET for reads, SET for changes.
func floorOp(op string) string {
	if writes(op) {
		return opSet
	}
	return opGet
}

// peerOp is the peers' operation an operation is compared with: their HTTP cycle of
// the same kind (the peers have no lighter way to do a request with sliding expiry).
func peerOp(op string) string {
	if writes(op) {
		return opHTTPModify
	}
	return opHTTPRead
}

// Config holds the compare command's settings.
type Config struct {
	Repeat   int           `json:"repeat"`
	Duration time.Duration `json:"-"`
	MaxOps   int64         `json:"max_ops_per_cell"`
	Sessions int           `json:"sessions"`
	// ReadsPerWrite is hasession+cache's workload: reads of a session per write of it
	// (cacheWorkload). The near-cache's targets are set for readsPerWrite.
	ReadsPerWrite int      `json:"reads_per_write"`
	Workers       []int    `json:"workers"`
	Sizes         []string `json:"sizes"`
	Stores        []string `json:"stores"`
	Cluster       bool     `json:"cluster"`
	Out           string   `json:"-"`
	JSON          bool     `json:"-"`
}

// Run is the compare command: parse, measure, report.
func Run(ctx context.Context, args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(progress)
	cfg := Config{}
	fs.IntVar(&cfg.Repeat, "repeat", 3, "runs of every measurement; the table shows their median and spread")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Second, "length of one measurement (one store, operation, size and concurrency)")
	fs.Int64Var(&cfg.MaxOps, "max-ops", 2_000_000, "bound on the operations of one measurement")
	fs.IntVar(&cfg.Sessions, "sessions", 100_000, "sessions stored per store for the memory measurement (0: skip it)")
	fs.IntVar(&cfg.ReadsPerWrite, "reads-per-write", readsPerWrite, "hasession+cache's workload: reads of a session per write of it (0: none written; the near-cache's targets are judged at 10 only)")
	workers := fs.String("workers", "1,8,32", "comma-separated concurrency levels (goroutines issuing requests)")
	sizes := fs.String("sizes", "typical,large", "comma-separated session sizes: typical (~300 B, 6 attributes), large (~8 KB)")
	stores := fs.String("stores", strings.Join([]string{floorName, bareName, hasessionName, cacheName, scsName, rbName, bojName}, ","), "comma-separated stores to measure")
	fs.BoolVar(&cfg.Cluster, "cluster", false, "also measure on a Redis Cluster (3 masters, 3 replicas): floor, hasession and gorilla+rbcervilla")
	fs.StringVar(&cfg.Out, "out", "compare-out", `directory for the chart (compare.html) and compare.json ("": none)`)
	fs.BoolVar(&cfg.JSON, "json", false, "print the results as JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: go run ./bench compare [--repeat N] [--duration D] [--sessions N] [--workers LIST]
                            [--sizes LIST] [--stores LIST] [--reads-per-write N] [--cluster]
                            [--out DIR] [--json]

Measures, against one containerized standalone Redis (and a Redis Cluster with --cluster),
side by side: the go-redis floor (GET / SET EX of the session's bytes), the bare HTTP
request (the same request through the same handler path with no session store: the
limit), hasession (load; read-only request with sliding expiry; request that changes 2
attributes; the same two through the httpsession middleware), hasession+cache (the two
HTTP requests with WithNearCache, on a workload of about 10 reads per write, see below),
scs + goredisstore (LoadAndSave, IdleTimeout set), gorilla/sessions +
rbcervilla/redisstore and gorilla/sessions + boj/redistore (Get and Save on every request,
for sliding expiry), for each session size and concurrency level.

hasession+cache's workload (`+cacheWorkloadOf(readsPerWrite)+`)

Reports ops/s (median of --repeat runs and their spread), p50/p99 latency, Redis commands
and bytes sent per request, client allocations per request, Redis memory per session, the
near-cache's hit ratio and app-server memory per cached session, the ratios to the floor,
to each peer and to the bare request, and the targets with PASS or MISS. Progress goes to
stderr, the table (or JSON) to stdout; the chart and the JSON are written to --out.

flags:
`)
		fs.PrintDefaults()
	}
	if ok, err := cli.ParseFlags(fs, args); !ok {
		return err
	}
	switch {
	case cfg.Repeat < 1:
		return fmt.Errorf("--repeat must be at least 1, got %d", cfg.Repeat)
	case cfg.Duration <= 0:
		return fmt.Errorf("--duration must be positive, got %s", cfg.Duration)
	case cfg.MaxOps < 1:
		return fmt.Errorf("--max-ops must be at least 1, got %d", cfg.MaxOps)
	case cfg.Sessions < 0:
		return fmt.Errorf("--sessions must not be negative, got %d", cfg.Sessions)
	case cfg.ReadsPerWrite < 0 || cfg.ReadsPerWrite > 1000:
		return fmt.Errorf("--reads-per-write must be from 0 to 1000, got %d", cfg.ReadsPerWrite)
	}
	var err error
	if cfg.Workers, err = cli.ParseList(*workers, parseWorkers); err != nil {
		return err
	}
	if cfg.Sizes, err = cli.ParseList(*sizes, parseOneOf("size", "typical", "large")); err != nil {
		return err
	}
	if cfg.Stores, err = cli.ParseList(*stores, parseOneOf("store", floorName, bareName, hasessionName, cacheName, scsName, rbName, bojName)); err != nil {
		return err
	}
	if len(cfg.Workers) == 0 || len(cfg.Sizes) == 0 || len(cfg.Stores) == 0 {
		return errors.New("--workers, --sizes and --stores must each name at least one")
	}
	redis.SetLogger(cli.QuietRedis{})

	res, err := compare(ctx, cfg, progress)
	if res != nil {
		if werr := writeOutputs(cfg, res, out, progress); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: the figures above are partial (%w)", ctx.Err())
	}
	if n := res.failures(); n > 0 {
		return fmt.Errorf("%d measurement(s) failed (see above)", n)
	}
	return nil
}

func parseWorkers(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1024 {
		return 0, fmt.Errorf("bad concurrency level %q: want an integer from 1 to 1024", s)
	}
	return n, nil
}

func parseOneOf(what string, valid ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		if !slices.Contains(valid, s) {
			return "", fmt.Errorf("unknown %s %q (want one of %s)", what, s, strings.Join(valid, ", "))
		}
		return s, nil
	}
}

// writeOutputs prints the table or the JSON and writes the chart and the JSON to cfg.Out.
func writeOutputs(cfg Config, res *Result, out, progress io.Writer) error {
	var err error
	if cfg.JSON {
		err = writeJSON(out, res)
	} else {
		err = writeTable(out, res)
	}
	if err != nil || cfg.Out == "" {
		return err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer, *Result) error{
		"compare.html": writeHTML,
		"compare.json": writeJSON,
	} {
		f, err := os.Create(filepath.Join(cfg.Out, name))
		if err != nil {
			return err
		}
		err = write(f, res)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(progress, "wrote %s and %s\n", filepath.Join(cfg.Out, "compare.html"), filepath.Join(cfg.Out, "compare.json"))
	return nil
}

// compare starts the topologies, measures and returns what it measured, also when it
// was interrupted or something failed (then with what was measured so far).
func compare(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	if n, err := cluster.Sweep(ctx); err == nil && n > 0 {
		logf("removed %d containers/networks left behind by earlier runs", n)
	}
	img, err := cluster.EnsureImage(ctx)
	if err != nil {
		return nil, err
	}
	kinds := []cluster.Kind{cluster.KindStandalone}
	if cfg.Cluster {
		kinds = append(kinds, cluster.KindCluster)
	}
	res := &Result{Config: cfg, DurationS: cfg.Duration.Seconds(), GoMaxProcs: runtime.GOMAXPROCS(0)}
	if slices.Contains(cfg.Stores, cacheName) {
		res.CacheWorkload = cacheWorkloadOf(cfg.ReadsPerWrite)
	}
	defer res.finish() // also for what an interrupted or failed run measured
	for _, kind := range kinds {
		if ctx.Err() != nil {
			break
		}
		if err := measureTopology(ctx, cfg, kind, img, res, logf); err != nil {
			return res, err
		}
	}
	return res, nil
}

// measureTopology runs the measurements on one topology, removed at the end whatever happens.
func measureTopology(ctx context.Context, cfg Config, kind cluster.Kind, img string, res *Result, logf func(string, ...any)) error {
	logf("starting a %s Redis…", kind)
	t0 := time.Now()
	topo, err := cluster.Run(ctx, kind, cluster.WithImage(img))
	defer func() {
		if topo == nil {
			return
		}
		d, err := cli.Remove(topo)
		if err != nil {
			logf("remove %s: %v", kind, err)
			return
		}
		logf("removed the %s Redis (%s)", kind, report.Secs(d))
	}()
	if err != nil {
		return fmt.Errorf("start %s: %w", kind, err)
	}
	logf("%s Redis healthy after %s", kind, report.Secs(time.Since(t0)))

	admin := topo.Client()
	var stores []*sessionStore
	defer func() {
		for _, s := range stores {
			s.close()
		}
	}()
	for _, name := range cfg.Stores {
		if kind == cluster.KindCluster && (name == scsName || name == bojName) {
			logf("%s: %s skipped (it needs a single Redis server)", kind, name)
			continue
		}
		s, err := newSessionStore(ctx, name, topo, cfg.ReadsPerWrite)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		stores = append(stores, s)
	}

	// Memory first, on an empty server each time: Redis's per session (not for the bare
	// request, nor for hasession+cache, whose sessions are hasession's), then the app
	// server's per session cached.
	if cfg.Sessions > 0 {
		for _, s := range stores {
			if ctx.Err() != nil {
				return nil
			}
			if s.name == bareName || s.name == cacheName {
				continue
			}
			m, err := memory(ctx, admin, s, cfg.Sessions, logf)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				logf("[%s memory %s] failed: %v", kind, s.name, err)
				res.Memory = append(res.Memory, mem{Topology: string(kind), Store: s.name, Sessions: cfg.Sessions, Error: err.Error()})
				continue
			}
			m.Topology = string(kind)
			res.Memory = append(res.Memory, m)
		}
		for _, s := range stores {
			if s.name != cacheName || ctx.Err() != nil {
				continue
			}
			m, err := appMemory(ctx, s, cfg.Sessions, logf)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				logf("[%s app memory %s] failed: %v", kind, s.name, err)
				m = cacheMem{Store: s.name, Error: err.Error()}
			}
			m.Topology = string(kind)
			res.CacheMemory = append(res.CacheMemory, m)
			if err := flush(ctx, admin); err != nil {
				return err
			}
		}
	}
	if err := flush(ctx, admin); err != nil {
		return err
	}

	// Seed the sessions the requests work on, one set per size.
	for _, size := range cfg.Sizes {
		for _, s := range stores {
			if err := s.prepare(ctx, size); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("%s: seed %s sessions: %w", s.name, size, err)
			}
		}
	}

	// The repeats go round the whole matrix, so a noisy moment hits one run of many cells
	// rather than every run of one.
	ncell := 0
	for _, s := range stores {
		ncell += len(s.ops)
	}
	total := cfg.Repeat * len(cfg.Sizes) * len(cfg.Workers) * ncell
	done := 0
	started := time.Now()
	for r := 1; r <= cfg.Repeat; r++ {
		for _, size := range cfg.Sizes {
			for _, w := range cfg.Workers {
				for _, s := range stores {
					for _, op := range s.ops {
						if ctx.Err() != nil {
							return nil
						}
						done++
						cell := res.cell(string(kind), size, w, s.name, op)
						smp, err := measure(ctx, cfg, s, size, op, w)
						label := fmt.Sprintf("[%d/%d %s run %d/%d] %s %s %s w=%d", done, total, kind, r, cfg.Repeat, size, s.name, op, w)
						if err != nil {
							if ctx.Err() != nil {
								return nil
							}
							cell.Errors = append(cell.Errors, err.Error())
							logf("%s failed: %v", label, err)
							continue
						}
						cell.samples = append(cell.samples, smp)
						eta := time.Duration(float64(time.Since(started)) / float64(done) * float64(total-done)).Round(time.Second)
						logf("%s %.0f ops/s p99 %s (eta %s)", label, smp.OpsPerSec, smp.P99.Round(time.Microsecond), eta)
					}
				}
			}
		}
	}
	return nil
}

// counter counts what a client sends to Redis: bytes, and commands (RESP arrays at
// the top level of the stream).
type counter struct {
	bytes, cmds atomic.Int64
}

func (c *counter) reset()                    { c.bytes.Store(0); c.cmds.Store(0) }
func (c *counter) read() (bytes, cmds int64) { return c.bytes.Load(), c.cmds.Load() }

// countingConn is a net.Conn whose writes are counted by a counter. It follows the RESP
// stream it writes (array headers and bulk strings, which is all clients send) across
// writes, so a command split over two writes is counted once.
type countingConn struct {
	netConn
	c    *counter
	mu   sync.Mutex
	skip int    // bytes of a bulk string (and its CRLF) still to come
	line []byte // a header line not yet complete
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.netConn.Write(p)
	c.c.bytes.Add(int64(n))
	c.mu.Lock()
	c.c.cmds.Add(int64(c.scan(p[:n])))
	c.mu.Unlock()
	return n, err
}

// scan follows the RESP stream through p and returns how many commands start in it. It
// does not allocate (but for a header line split across writes), so that it stays out
// of the allocation figures.
func (c *countingConn) scan(p []byte) int {
	cmds := 0
	for len(p) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(p))
			c.skip -= k
			p = p[k:]
			continue
		}
		i := slices.Index(p, '\n')
		if i < 0 {
			c.line = append(c.line, p...)
			break
		}
		line := p[:i]
		if len(c.line) > 0 {
			c.line = append(c.line, line...)
			line = c.line
		}
		p = p[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > 0 {
			switch line[0] {
			case '*':
				cmds++
			case '$':
				if n, ok := atoi(line[1:]); ok {
					c.skip = n + 2
				}
			}
		}
		c.line = c.line[:0]
	}
	return cmds
}

// atoi parses a RESP length: decimal digits, or -1 (a null bulk string: nothing follows).
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

// hist is a latency histogram: exact below 32 ns, then 32 buckets per power of two
// (within about 3%), no allocation per sample.
type hist [histBuckets]uint32

const histBuckets = 60 * 32

func bucket(ns uint64) int {
	if ns < 32 {
		return int(ns)
	}
	e := bits.Len64(ns) // ≥ 6
	return (e-5)*32 + int(ns>>(e-6)-32)
}

// bucketValue is the middle of a bucket's range.
func bucketValue(i int) time.Duration {
	if i < 32 {
		return time.Duration(i)
	}
	e := i/32 + 5
	lo := uint64(i%32+32) << (e - 6)
	return time.Duration(lo + (uint64(1)<<(e-6))/2)
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h[min(bucket(uint64(d)), histBuckets-1)]++
}

func (h *hist) merge(o *hist) {
	for i, n := range o {
		h[i] += n
	}
}

// quantile returns the q-quantile (0 < q ≤ 1) of the samples, 0 without any.
func (h *hist) quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h {
		total += uint64(n)
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, n := range h {
		seen += uint64(n)
		if seen >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(histBuckets - 1)
}

// sample is one run of one cell.
type sample struct {
	Ops       int64
	Elapsed   time.Duration
	OpsPerSec float64
	P50, P99  time.Duration
	Cmds      float64 // per op
	Bytes     float64 // sent per op
	Allocs    float64 // per op
	// With untimed steps (hasession+cache's workload): their time summed over the
	// workers, and the requests of this app server they made.
	Untimed time.Duration
	Extra   int64
	// The near-cache's loads served from memory and from Redis during the run
	// (hasession+cache; both 0 for the others).
	Hits, Misses int64
	CmdsTotal    int64 // commands sent during the run
	// The other app server's writes done for the run, and those dropped because its
	// queue was full (hasession+cache's read-only requests).
	Writes, Dropped int64
}

// measure runs one operation of a store with w workers for cfg.Duration or
// cfg.MaxOps operations, whichever ends first. A workload's untimed steps (between) run
// before each operation; their time is left out of the worker's: ops/s is then the sum
// over the workers of operations / (run time − the worker's untimed time), and the
// figures per op (commands, bytes, allocations) are those of the whole run, untimed
// steps included, over the timed operations.
func measure(ctx context.Context, cfg Config, s *sessionStore, size, op string, w int) (sample, error) {
	newWorker, err := s.worker(size, op, w)
	if err != nil {
		return sample{}, err
	}
	fns := make([]workerFns, w)
	for i := range fns {
		fns[i] = newWorker(i)
	}
	hists := make([]hist, w)
	untimed := make([]time.Duration, w)
	extra := make([]int64, w)
	// Warm up: one op per worker, outside the figures (connections, script cache).
	for _, f := range fns {
		if f.between != nil {
			if _, err := f.between(ctx); err != nil {
				return sample{}, err
			}
		}
		if err := f.op(ctx); err != nil {
			return sample{}, err
		}
	}
	runtime.GC()
	// The operations run on ctx, not on a context that ends with the measurement: a
	// request cut off at the end would be an error in the libraries' logs, not a figure.
	var ops atomic.Int64
	var stop atomic.Bool
	var firstErr atomic.Pointer[error]
	var m0, m1 runtime.MemStats
	var st0, st1 store.Stats
	var wr0, wr1 writerCounts
	if s.writer != nil {
		if err := s.writer.quiesce(ctx); err != nil {
			return sample{}, err
		}
		wr0 = s.writer.counts()
	}
	s.counter.reset()
	if s.hs != nil {
		st0 = s.hs.Stats()
	}
	runtime.ReadMemStats(&m0)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for i, f := range fns {
		h := &hists[i]
		wg.Go(func() {
			for !stop.Load() && ops.Add(1) <= cfg.MaxOps {
				t := time.Now()
				if !t.Before(deadline) {
					break
				}
				if f.between != nil {
					k, err := f.between(ctx)
					if err != nil {
						if ctx.Err() == nil {
							firstErr.CompareAndSwap(nil, &err)
						}
						stop.Store(true)
						return
					}
					extra[i] += int64(k)
					t1 := time.Now()
					untimed[i] += t1.Sub(t)
					t = t1
				}
				if err := f.op(ctx); err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, &err)
					}
					stop.Store(true)
					return
				}
				h.add(time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	bytes, cmds := s.counter.read()
	if s.hs != nil {
		st1 = s.hs.Stats()
	}
	if s.writer != nil {
		// The writes queued during the run, done before the next measurement starts.
		if err := s.writer.quiesce(ctx); err != nil && firstErr.Load() == nil {
			firstErr.Store(&err)
		}
		wr1 = s.writer.counts()
	}
	if p := firstErr.Load(); p != nil {
		return sample{}, *p
	}
	if ctx.Err() != nil {
		return sample{}, ctx.Err()
	}
	var all hist
	var n, ext int64
	var rate float64
	var idle time.Duration
	for i := range hists {
		all.merge(&hists[i])
		var ni int64
		for _, c := range hists[i] {
			ni += int64(c)
		}
		n += ni
		ext += extra[i]
		idle += untimed[i]
		if timed := elapsed - untimed[i]; timed > 0 {
			rate += float64(ni) / timed.Seconds()
		}
	}
	if n == 0 {
		return sample{}, errors.New("no operation completed")
	}
	f := float64(n)
	return sample{
		Ops:       n,
		Elapsed:   elapsed,
		OpsPerSec: rate,
		P50:       all.quantile(0.50),
		P99:       all.quantile(0.99),
		Cmds:      float64(cmds) / f,
		Bytes:     float64(bytes) / f,
		Allocs:    float64(m1.Mallocs-m0.Mallocs) / f,
		Untimed:   idle,
		Extra:     ext,
		Hits:      st1.NearHits - st0.NearHits,
		Misses:    st1.NearMisses - st0.NearMisses,
		CmdsTotal: cmds,
		Writes:    wr1.done - wr0.done,
		Dropped:   wr1.dropped - wr0.dropped,
	}, nil
}

// memory stores n typical sessions in an empty Redis and returns the growth of
// used_memory per session.
func memory(ctx context.Context, admin redis.UniversalClient, s *sessionStore, n int, logf func(string, ...any)) (mem, error) {
	if err := flush(ctx, admin); err != nil {
		return mem{}, err
	}
	before, err := usedMemory(ctx, admin)
	if err != nil {
		return mem{}, err
	}
	logf("[memory %s] storing %d typical sessions…", s.name, n)
	t0 := time.Now()
	seed := s.seeder("typical")
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for ctx.Err() == nil && failed.Load() == nil && next.Add(1) <= int64(n) {
				if _, err := seed(ctx); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return mem{}, *p
	}
	if err := ctx.Err(); err != nil {
		return mem{}, err
	}
	keys, err := dbSize(ctx, admin)
	if err != nil {
		return mem{}, err
	}
	if keys < int64(n) {
		return mem{}, fmt.Errorf("%d keys after storing %d sessions", keys, n)
	}
	after, err := usedMemory(ctx, admin)
	if err != nil {
		return mem{}, err
	}
	m := mem{Store: s.name, Sessions: n, Keys: keys, BytesPerSession: float64(after-before) / float64(n)}
	logf("[memory %s] %.0f B per session (%d keys, %s)", s.name, m.BytesPerSession, keys, report.Secs(time.Since(t0)))
	return m, flush(ctx, admin)
}

// eachMaster runs f on the standalone server or on every master of a Cluster.
func eachMaster(ctx context.Context, admin redis.UniversalClient, f func(context.Context, *redis.Client) error) error {
	switch c := admin.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, f)
	case *redis.Client:
		return f(ctx, c)
	default:
		return fmt.Errorf("unexpected client %T", admin)
	}
}

func flush(ctx context.Context, admin redis.UniversalClient) error {
	return eachMaster(ctx, admin, func(ctx context.Context, c *redis.Client) error {
		return c.FlushAll(ctx).Err()
	})
}

func dbSize(ctx context.Context, admin redis.UniversalClient) (int64, error) {
	var total atomic.Int64
	err := eachMaster(ctx, admin, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		total.Add(n)
		return err
	})
	return total.Load(), err
}

// usedMemory is INFO memory's used_memory, summed over the masters.
func usedMemory(ctx context.Context, admin redis.UniversalClient) (int64, error) {
	var total atomic.Int64
	err := eachMaster(ctx, admin, func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return fmt.Errorf("used_memory %q: %w", v, err)
				}
				total.Add(n)
				return nil
			}
		}
		return errors.New("no used_memory in INFO memory")
	})
	return total.Load(), err
}

// netConn is the connection a countingConn wraps.
type netConn = net.Conn

// dialer returns a dial function whose connections count what they send in c.
func dialer(c *counter) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{netConn: conn, c: c}, nil
	}
}

// idle is the sliding expiry every store is given.
const idle = 30 * time.Minute

// shape returns the attributes of a typical (~300 B, 6 attributes) or large (~8 KB)
// session: the same as the store's benchmarks.
func shape(size string) map[string]any { return benchshape.Session(size) }

// nameAttr is the "name" attribute every request reads and checks.
const nameAttr = benchshape.Name

var gobOnce sync.Once

// registerGob registers the attribute types with encoding/gob, which scs and both
// gorilla stores use to encode a session.
func registerGob() {
	gobOnce.Do(func() {
		gob.Register([]string(nil))
		gob.Register(map[string]string(nil))
		gob.Register(map[string]any(nil))
	})
}

// opFunc does one operation on the session a handle names (an ID, a key or a Cookie
// header); n counts the worker's operations.
type opFunc func(ctx context.Context, handle string, n int) error

// sessionStore is one store under test.
type sessionStore struct {
	name    string
	ops     []string
	counter *counter
	impl    map[string]opFunc
	seed    func(ctx context.Context, size string) (string, error) // a new session of the shape; its handle
	handles map[string][]string                                    // per size, the sessions the workers use
	convert map[string]func(string) string                         // per operation, the handle it takes instead
	// between are, per operation, the untimed steps of its workload (hasession+cache):
	// run before each operation of a worker, with the operation's handle and count; it
	// returns how many requests of this app server it made.
	between map[string]betweenFunc
	// spread are the operations whose workers share the seeded sessions out (worker i of
	// w takes sessions i, i+w, …) and go round them, rather than each working on one.
	spread  map[string]bool
	hs      *store.Store // hasession's store (nil for the others)
	writer  *writerPool  // hasession+cache's other app server (nil for the others)
	closers []func()
}

// betweenFunc is an untimed step of a workload, run before an operation of a worker: n
// counts the worker's operations on that session, this one included.
type betweenFunc func(ctx context.Context, handle string, n int) (requests int, err error)

func (s *sessionStore) close() {
	for _, c := range slices.Backward(s.closers) {
		c()
	}
}

func (s *sessionStore) seeder(size string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return s.seed(ctx, size) }
}

// seeded is how many sessions of each size a store keeps for the workers: worker i
// works on session i mod seeded.
const seeded = 64

func (s *sessionStore) prepare(ctx context.Context, size string) error {
	if s.handles == nil {
		s.handles = map[string][]string{}
	}
	hs := make([]string, seeded)
	for i := range hs {
		h, err := s.seed(ctx, size)
		if err != nil {
			return err
		}
		hs[i] = h
	}
	s.handles[size] = hs
	return nil
}

// workerFns are one worker's operation and the untimed step before each (nil: none).
type workerFns struct {
	between func(context.Context) (int, error)
	op      func(context.Context) error
}

// worker returns a function that makes worker i's operation (of w workers).
func (s *sessionStore) worker(size, op string, w int) (func(i int) workerFns, error) {
	f, ok := s.impl[op]
	if !ok {
		return nil, fmt.Errorf("%s has no operation %q", s.name, op)
	}
	hs := s.handles[size]
	if len(hs) == 0 {
		return nil, fmt.Errorf("%s: no %s session seeded", s.name, size)
	}
	b, spread := s.between[op], s.spread[op]
	return func(i int) workerFns {
		mine := []string{hs[i%len(hs)]}
		if spread {
			for j := i + w; j < len(hs); j += w {
				mine = append(mine, hs[j])
			}
		}
		if conv := s.convert[op]; conv != nil {
			for k, h := range mine {
				mine[k] = conv(h) // once per worker, not per operation
			}
		}
		counts := make([]int, len(mine))
		k := 0 // the session of the next operation
		wf := workerFns{op: func(ctx context.Context) error {
			counts[k]++
			err := f(ctx, mine[k], counts[k])
			k = (k + 1) % len(mine)
			return err
		}}
		if b != nil {
			wf.between = func(ctx context.Context) (int, error) { return b(ctx, mine[k], counts[k]+1) }
		}
		return wf
	}, nil
}

// newSessionStore builds a store on the topology, with clients that count what they send.
func newSessionStore(ctx context.Context, name string, topo cluster.Topology, readsPerWrite int) (*sessionStore, error) {
	registerGob()
	s := &sessionStore{name: name, counter: &counter{}, impl: map[string]opFunc{}}
	universalWith := func(ctr *counter) redis.UniversalClient {
		o := topo.UniversalOptions()
		o.PoolSize = 64
		o.Dialer = dialer(ctr)
		c := redis.NewUniversalClient(o)
		s.closers = append(s.closers, func() { _ = c.Close() })
		return c
	}
	universal := func() redis.UniversalClient { return universalWith(s.counter) }
	var err error
	switch name {
	case floorName:
		err = floorStore(s, universal())
	case bareName:
		bareStore(s)
	case hasessionName:
		err = hasessionStore(s, universal())
	case cacheName:
		// The writer, another app server, counts on a counter of its own: its commands
		// are not this store's.
		err = cacheStore(s, universal(), universalWith(&counter{}), readsPerWrite)
	case scsName:
		c := redis.NewClient(&redis.Options{Addr: topo.Addrs()[0], PoolSize: 64, Dialer: dialer(s.counter)})
		s.closers = append(s.closers, func() { _ = c.Close() })
		err = scsStore(s, c)
	case rbName:
		err = rbStore(ctx, s, universal())
	case bojName:
		err = bojStore(s, topo.Addrs()[0])
	default:
		err = fmt.Errorf("unknown store %q", name)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	for op := range s.impl {
		s.ops = append(s.ops, op)
	}
	slices.SortFunc(s.ops, func(a, b string) int { return opOrder(a) - opOrder(b) })
	return s, nil
}

// ops lists the operations in the order they are shown.
var ops = []string{opGet, opSet, opHTTP, opLoad, opRead, opModify, opHTTPRead, opHTTPModify}

func opOrder(op string) int { return slices.Index(ops, op) }

func floorStore(s *sessionStore, rdb redis.UniversalClient) error {
	vals := map[string][]byte{}
	for _, size := range []string{"typical", "large"} {
		v, err := codec.MsgPack.Marshal(shape(size))
		if err != nil {
			return err
		}
		vals[size] = v
	}
	s.seed = func(ctx context.Context, size string) (string, error) {
		key := "floor:{" + uuid.NewString() + "}"
		return key + " " + size, rdb.Set(ctx, key, vals[size], idle).Err()
	}
	s.impl[opGet] = func(ctx context.Context, h string, _ int) error {
		key, _, _ := strings.Cut(h, " ")
		_, err := rdb.Get(ctx, key).Bytes()
		return err
	}
	s.impl[opSet] = func(ctx context.Context, h string, _ int) error {
		key, size, _ := strings.Cut(h, " ")
		return rdb.Set(ctx, key, vals[size], idle).Err()
	}
	return nil
}

// hasessionStore sets up hasession's operations on rdb; opts are added to the store's
// options (the split benchmark compares auto-pipelining on and off).
func hasessionStore(s *sessionStore, rdb redis.UniversalClient, opts ...store.Option) error {
	// Errors reach the figures as errors (or statuses): the libraries' logs stay quiet.
	quiet := slog.New(slog.DiscardHandler)
	st, err := store.New(rdb, append([]store.Option{store.WithIdleTimeout(idle), store.WithLogger(quiet)}, opts...)...)
	if err != nil {
		return err
	}
	s.hs = st
	s.closers = append(s.closers, func() { _ = st.Close() })
	hm, err := httpsession.New(st, httpsession.WithLogger(quiet))
	if err != nil {
		return err
	}
	s.seed = func(ctx context.Context, size string) (string, error) {
		sess, err := st.NewSession()
		if err != nil {
			return "", err
		}
		for k, v := range shape(size) {
			if err := sess.Set(k, v); err != nil {
				return "", err
			}
		}
		return sess.ID(), st.Save(ctx, sess)
	}
	read := func(sess interface{ Get(string, any) error }) error {
		var name, last string
		if err := sess.Get("name", &name); err != nil {
			return err
		}
		if err := sess.Get("last", &last); err != nil {
			return err
		}
		if name != nameAttr {
			return fmt.Errorf("name is %q", name)
		}
		return nil
	}
	s.impl[opLoad] = func(ctx context.Context, id string, _ int) error {
		_, err := st.Load(ctx, id)
		return err
	}
	s.impl[opRead] = func(ctx context.Context, id string, _ int) error {
		sess, err := st.Load(ctx, id)
		if err != nil {
			return err
		}
		return read(sess)
	}
	s.impl[opModify] = func(ctx context.Context, id string, n int) error {
		sess, err := st.Load(ctx, id)
		if err != nil {
			return err
		}
		if err := read(sess); err != nil {
			return err
		}
		_ = sess.Set("last", "/page/"+strconv.Itoa(n))
		_ = sess.Set("csrf", "token-"+strconv.Itoa(n))
		return st.Save(ctx, sess)
	}
	handler := func(modify bool) http.Handler {
		return hm.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess := httpsession.FromContext(r.Context())
			if err := read(sess); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if modify {
				n := next()
				_ = sess.Set("last", "/page/"+n)
				_ = sess.Set("csrf", "token-"+n)
			}
			_, _ = io.WriteString(w, nameAttr)
		}))
	}
	cookie := func(id string) string { return hm.CookieName() + "=" + id }
	s.convert = map[string]func(string) string{opHTTPRead: cookie, opHTTPModify: cookie}
	s.impl[opHTTPRead] = httpOp(handler(false))
	s.impl[opHTTPModify] = httpOp(handler(true))
	return nil
}

func scsStore(s *sessionStore, rdb *redis.Client) error {
	sm := scs.New()
	sm.Store = goredisstore.New(rdb)
	sm.IdleTimeout = idle
	sm.Lifetime = 24 * time.Hour
	sm.Cookie.Name = "scs"
	sm.ErrorFunc = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusInternalServerError) // without scs's log line
	}
	seed := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range shape(r.URL.Query().Get("size")) {
			sm.Put(r.Context(), k, v)
		}
	}))
	handler := func(modify bool) http.Handler {
		return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			name, _ := sm.GetString(ctx, "name"), sm.GetString(ctx, "last")
			if name != nameAttr {
				http.Error(w, "name is "+strconv.Quote(name), http.StatusInternalServerError)
				return
			}
			if modify {
				n := next()
				sm.Put(ctx, "last", "/page/"+n)
				sm.Put(ctx, "csrf", "token-"+n)
			}
			_, _ = io.WriteString(w, nameAttr)
		}))
	}
	s.seed = httpSeed(seed, sm.Cookie.Name)
	s.impl[opHTTPRead] = httpOp(handler(false))
	s.impl[opHTTPModify] = httpOp(handler(true))
	return nil
}

// gorillaStore sets up a gorilla/sessions store: Get, and Save on every request
// (sliding expiry needs it: a session not saved keeps its first TTL).
func gorillaStore(s *sessionStore, gs sessions.Store) {
	const name = "gorilla"
	s.seed = httpSeed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := gs.Get(r, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for k, v := range shape(r.URL.Query().Get("size")) {
			sess.Values[k] = v
		}
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}), name)
	handler := func(modify bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess, err := gs.Get(r, name)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			v, _ := sess.Values["name"].(string)
			_, _ = sess.Values["last"].(string)
			if v != nameAttr {
				http.Error(w, "name is "+strconv.Quote(v), http.StatusInternalServerError)
				return
			}
			if modify {
				n := next()
				sess.Values["last"] = "/page/" + n
				sess.Values["csrf"] = "token-" + n
			}
			if err := sess.Save(r, w); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, nameAttr)
		})
	}
	s.impl[opHTTPRead] = httpOp(handler(false))
	s.impl[opHTTPModify] = httpOp(handler(true))
}

func rbStore(ctx context.Context, s *sessionStore, rdb redis.UniversalClient) error {
	rs, err := redisstore.NewRedisStore(ctx, rdb)
	if err != nil {
		return err
	}
	rs.Options(sessions.Options{Path: "/", MaxAge: int(idle.Seconds()), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	gorillaStore(s, rs)
	return nil
}

// bojStore sets up boj/redistore on a redigo pool like the one NewRediStore builds
// (idle connections checked with a PING when borrowed), dialled through the counter.
func bojStore(s *sessionStore, addr string) error {
	dial := dialer(s.counter)
	pool := &redigo.Pool{
		MaxIdle:     64,
		IdleTimeout: 240 * time.Second,
		TestOnBorrow: func(c redigo.Conn, _ time.Time) error {
			_, err := c.Do("PING")
			return err
		},
		Dial: func() (redigo.Conn, error) {
			return redigo.Dial("tcp", addr, redigo.DialNetDial(func(network, addr string) (net.Conn, error) {
				return dial(context.Background(), network, addr)
			}))
		},
	}
	s.closers = append(s.closers, func() { _ = pool.Close() })
	rs, err := redistore.NewRediStoreWithPool(pool, []byte("compare-hash-key-0123456789abcdef"))
	if err != nil {
		return err
	}
	rs.SetMaxLength(64 << 10) // the default, 4096 B, refuses the large session
	rs.SetMaxAge(int(idle.Seconds()))
	rs.Options.HttpOnly, rs.Options.Secure, rs.Options.SameSite = true, true, http.SameSiteLaxMode
	gorillaStore(s, rs)
	return nil
}

var seq atomic.Int64

// next is a new value for the attributes the modifying handlers change.
func next() string { return strconv.FormatInt(seq.Add(1), 10) }

// httpOp serves one GET / through h, the handle as the Cookie header.
func httpOp(h http.Handler) opFunc {
	return func(ctx context.Context, handle string, _ int) error {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		req.Header.Set("Cookie", handle)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("status %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
		}
		return nil
	}
}

// httpSeed creates a session through a seeding handler (which reads the size from the
// query) and returns the Cookie header that names it.
func httpSeed(h http.Handler, cookie string) func(ctx context.Context, size string) (string, error) {
	return func(ctx context.Context, size string) (string, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/?size="+size, nil))
		if rec.Code != http.StatusOK {
			return "", fmt.Errorf("seed: status %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == cookie && c.Value != "" {
				return c.Name + "=" + c.Value, nil
			}
		}
		return "", fmt.Errorf("seed: no %s cookie in the response", cookie)
	}
}

// readsPerWrite is hasession+cache's workload by default (--reads-per-write): each session
// is read this many times per write. The near-cache's targets are set for it.
const readsPerWrite = 10

// nearCache is the near-cache hasession+cache is given: the defaults (10,000 sessions,
// heartbeat 5 ms, lease 50 ms).
var nearCache = store.NearCache{}

// cacheWorkloadOf says what hasession+cache's rows measure, with n reads per write.
func cacheWorkloadOf(n int) string {
	var w string
	if n == 0 {
		w = `no session is written between reads (--reads-per-write 0). http-read: the 64 sessions
seeded are shared out among the workers, each going round its own. http-modify: each
worker on a session of its own, nothing between its modifying requests (each load reads
Redis: the Save before it dropped the entry).` + cacheWorkloadCommon
	} else {
		w = strings.NewReplacer("{N}", strconv.Itoa(n), "{Nth}", ordinal(n)).Replace(cacheWorkload) + cacheWorkloadCommon
	}
	return strings.Join(strings.Fields(w), " ")
}

// ordinal writes n as 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, …, 21st.
func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}

// cacheWorkload says what hasession+cache's rows measure, with {N} reads per write.
const cacheWorkload = `each session is read about {N} times per write. http-read: the 64
sessions seeded are shared out among the workers, each going round its own; after every
{Nth} read request of a session, a write of it is queued to another writer: an HSET of
one attribute (codec-encoded as the store does), on a client of its own, 2 goroutines
sending what is queued in pipelines of up to 256, a queue of 4096. Redis then
invalidates the cached entry, as on any write by another app server, and the next read
of it refills it. The writer's time is not the workers' and its Redis commands are not
counted, but it shares the machine's 2 cores (its CPU and Redis's work are in the row); a
write that finds the queue full is dropped and counted, and READS/WRITE says what the run
did. http-modify: each worker on a session of its own; before every modifying request,
{N} read requests of the same session through the same app server, not timed (the Save
drops the entry, the first of the next reads refills it, the others and the modify's own
load hit); ops/s is then the sum over the workers of their requests / (run time − their
untimed time), and UNTIMED% says how much that left out.`

// cacheWorkloadCommon ends every workload's text.
const cacheWorkloadCommon = ` CMDS/OP, B-SENT/OP and ALLOCS/OP are those of the whole
run (untimed steps included: an overstatement) over the timed requests. HIT% is
NearHits / (NearHits + NearMisses) over all the app server's loads in the run`

// cacheStore sets up hasession with the near-cache: the two HTTP requests, on the
// workload cacheWorkload describes. writer is the other app server's client.
func cacheStore(s *sessionStore, rdb, writer redis.UniversalClient, readsPerWrite int) error {
	if err := hasessionStore(s, rdb, store.WithNearCache(nearCache)); err != nil {
		return err
	}
	for _, op := range []string{opLoad, opRead, opModify} {
		delete(s.impl, op)
	}
	wp := newWriterPool(s.hs, writer)
	s.writer = wp
	s.closers = append(s.closers, wp.close)
	read := s.impl[opHTTPRead]
	s.spread = map[string]bool{opHTTPRead: true}
	s.between = map[string]betweenFunc{
		opHTTPRead: func(_ context.Context, cookie string, n int) (int, error) {
			if readsPerWrite > 0 && n%readsPerWrite == 0 {
				_, id, _ := strings.Cut(cookie, "=")
				wp.enqueue(id)
			}
			return 0, nil
		},
		opHTTPModify: func(ctx context.Context, cookie string, n int) (int, error) {
			for range readsPerWrite {
				if err := read(ctx, cookie, n); err != nil {
					return 0, err
				}
			}
			return readsPerWrite, nil
		},
	}
	return nil
}

// bareStore is the HTTP request with no session store: the same request (with a cookie
// of a session ID's length) through the same handler path, answering what the others'
// handlers answer.
func bareStore(s *sessionStore) {
	s.seed = func(context.Context, string) (string, error) {
		return "bare=" + strings.Repeat("x", 43), nil
	}
	s.impl[opHTTP] = httpOp(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, nameAttr)
	}))
}

// appMemory fills n typical sessions into hasession+cache's near-cache (at most its size)
// and returns the growth of the app server's heap (runtime HeapAlloc after a GC) per
// entry cached.
func appMemory(ctx context.Context, s *sessionStore, n int, logf func(string, ...any)) (cacheMem, error) {
	size := nearCache.Size
	if size == 0 {
		size = store.DefaultNearCacheSize
	}
	n = min(n, size-seeded) // room for the warm-up's sessions
	logf("[app memory %s] seeding %d typical sessions…", s.name, n+seeded)
	t0 := time.Now()
	ids := make([]string, n+seeded)
	var nextI atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil && failed.Load() == nil {
				i := nextI.Add(1) - 1
				if i >= int64(len(ids)) {
					return
				}
				id, err := s.seed(ctx, "typical")
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return cacheMem{}, *p
	}
	if err := ctx.Err(); err != nil {
		return cacheMem{}, err
	}
	warm, ids := ids[:seeded], ids[seeded:]
	// The tracking connections first (a load before it is up is read through the client,
	// not cached): load the warm-up sessions until all are cached, bounded.
	for try := 0; ; try++ {
		for _, id := range warm {
			if _, err := s.hs.Load(ctx, id); err != nil {
				return cacheMem{}, err
			}
		}
		if s.hs.Stats().NearCached >= int64(len(warm)) {
			break
		}
		if try == 100 {
			return cacheMem{}, errors.New("the near-cache did not fill within 100 passes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	c0 := s.hs.Stats().NearCached
	// Each loaded twice: the first load caches the reply, the second is a hit and the
	// entry keeps the session it parsed, as an entry read more than once does.
	for range 2 {
		for _, id := range ids {
			if _, err := s.hs.Load(ctx, id); err != nil {
				return cacheMem{}, err
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	st := s.hs.Stats()
	cached := st.NearCached - c0
	if cached < int64(n)*9/10 {
		return cacheMem{}, fmt.Errorf("%d of %d sessions cached (%+v)", cached, n, st)
	}
	m := cacheMem{Store: s.name, Sessions: n, Cached: cached, BytesPerSession: float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(cached)}
	runtime.KeepAlive(ids)
	logf("[app memory %s] %.0f B of heap per cached session (%d cached, %s)", s.name, m.BytesPerSession, cached, report.Secs(time.Since(t0)))
	return m, nil
}

// writerPool is hasession+cache's other writer: it changes the sessions the read-only
// requests read, one write per session queued: an HSET of one attribute (the csrf
// token, codec-encoded as the store does) on a client of its own, the writes queued
// meanwhile sent in one pipeline. That is the cheapest write that makes Redis invalidate
// the entry (what a Save by another app server does to the cache, at a fraction of its
// CPU, which here shares the machine with the workers).
type writerPool struct {
	st      *store.Store // for the keys
	rdb     redis.UniversalClient
	q       chan string
	wg      sync.WaitGroup
	pending atomic.Int64 // queued or being written
	done    atomic.Int64
	dropped atomic.Int64
	err     atomic.Pointer[error]
}

// writers, writerBatch and writerQueue bound the pool: its goroutines, the writes of one
// pipeline, the writes waiting.
const (
	writers     = 2
	writerBatch = 256
	writerQueue = 4096
)

type writerCounts struct{ done, dropped int64 }

func newWriterPool(st *store.Store, rdb redis.UniversalClient) *writerPool {
	wp := &writerPool{st: st, rdb: rdb, q: make(chan string, writerQueue)}
	for range writers {
		wp.wg.Go(func() {
			batch := make([]string, 0, writerBatch)
			for id := range wp.q {
				batch = append(batch[:0], id)
			more:
				for len(batch) < writerBatch {
					select {
					case id, ok := <-wp.q:
						if !ok {
							break more
						}
						batch = append(batch, id)
					default:
						break more
					}
				}
				if err := wp.write(batch); err != nil {
					wp.err.CompareAndSwap(nil, &err)
				}
				wp.done.Add(int64(len(batch)))
				wp.pending.Add(-int64(len(batch)))
			}
		})
	}
	return wp
}

func (wp *writerPool) write(ids []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmds := make([]*redis.IntCmd, len(ids))
	_, err := wp.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			key, err := wp.st.Key(id)
			if err != nil {
				return err
			}
			v, err := codec.MsgPack.Marshal("token-" + next())
			if err != nil {
				return err
			}
			cmds[i] = p.HSet(ctx, key, format.AttrPrefix+"csrf", v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	for _, c := range cmds {
		if n, err := c.Result(); err != nil || n != 0 { // 0: the field was there, replaced
			return fmt.Errorf("writer: HSET answered %d, %v", n, err)
		}
	}
	return nil
}

// enqueue queues a write of the session, or drops it (counted) when the queue is full.
func (wp *writerPool) enqueue(id string) {
	wp.pending.Add(1)
	select {
	case wp.q <- id:
	default:
		wp.pending.Add(-1)
		wp.dropped.Add(1)
	}
}

// quiesce waits, 30 s at most, until the writes queued are done, and returns the first
// write's error since the last call.
func (wp *writerPool) quiesce(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for wp.pending.Load() > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("writer: %d writes still pending after 30s", wp.pending.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if p := wp.err.Swap(nil); p != nil {
		return *p
	}
	return nil
}

func (wp *writerPool) counts() writerCounts {
	return writerCounts{done: wp.done.Load(), dropped: wp.dropped.Load()}
}

func (wp *writerPool) close() {
	close(wp.q)
	wp.wg.Wait()
}
