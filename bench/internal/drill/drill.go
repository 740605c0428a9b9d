// Package drill is the drill command: live HTTP session traffic through a failover, and
// a report of what users saw and whether any acknowledged save was lost.
package drill

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/bench/internal/cli"
	"github.com/hasession/hasession/bench/internal/report"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	hasessionotel "github.com/hasession/hasession/otel"
	"github.com/hasession/hasession/store"
)

const usage = `usage: go run ./bench drill [flags]

Runs live HTTP session traffic through hasession's middleware (logins that rotate the
session and set its user, page views, updates) against a Redis topology, breaks the
master that serves a probe session, and reports what users saw: requests, errors,
latency before, during and after the fault, time to promotion and to recovery, and
every acknowledged save read back through the store afterwards.

With no flags it starts a containerized Redis Cluster (3 masters, 3 replicas), runs the
load twice, with WAIT 1 on every save and without, kills one master after a warm-up in
each run, and removes everything it started at the end (also on Ctrl-C). It takes about
a minute.

The load is open-loop: requests start on a fixed schedule (--rate) whatever happened to
earlier ones, up to --inflight requests in flight (a request due beyond that is dropped
and counted as failed), and each latency is measured from the request's scheduled start.
A user sends one request at a time: a request due while the user's previous one is in
flight waits for it, and that wait is part of its latency. The report gives the share of
users who saw an error or a request slower than 1s, and requests, errors and p99 of the
shard the faults hit beside the other shards.

The WAIT 1 run accepts a save that no replica confirmed (--ack best-effort: a master
just promoted has no replica for seconds) and reports how many; --ack required fails
those saves instead.

Against a deployment you own (--addrs, with --sentinel-master for Sentinel) it uses only
graceful faults (failover: CLUSTER FAILOVER on the master's replica, SENTINEL FAILOVER),
needs --yes, and never kills anything. Its sessions use their own key prefixes and are
deleted at the end.

With --cache the hasession runs' stores, and the history checker's, have the near-cache
on (store.WithNearCache at its defaults: loads served from memory, stale by at most the
50 ms lease, revocations waiting it); the checker allows a load that staleness and no
more, and the report shows the cache's hits, misses and evictions.

With --metrics ADDR the hasession runs' stores report OpenTelemetry metrics (the
hasessionotel module), served in Prometheus format at http://ADDR/metrics while the
drill runs, for a Prometheus or a dashboard of your own to scrape; the report then ends
with the metrics to alert on and their totals.

Progress goes to stderr; the report table (or --json) to stdout; drill.json and
drill.html (a self-contained chart) to --out. The exit status is 1 when a hasession run
lost an acknowledged save or a request failed, so a pipeline can gate on it; comparison
runs (--compare) are reported but do not fail the drill.

flags:
`

// Config is what one drill does; flags fill it.
type Config struct {
	topology       cluster.Kind
	fault          string // kill, stop, pause, partition, failover or none
	faults         int
	hold           time.Duration
	clients        int
	inflight       int
	ack            store.AckPolicy
	waitTimeout    time.Duration
	users          int
	rate           float64
	duration       time.Duration
	warmup         time.Duration
	requests       int
	wait           string // both, on or off
	compare        string // none, scs or raw
	out            string
	json           bool
	addrs          []string
	sentinelMaster string
	yes            bool
	check          bool   // the history checker runs beside each hasession run
	cache          bool   // --cache: the hasession stores have the near-cache on
	metrics        string // --metrics: where to serve the store's metrics ("": nowhere)

	// observer, when set, is given to the hasession runs' stores (--metrics).
	observer store.Observer

	// topo, when set (tests), is a topology the caller started and removes: the drill
	// injects faults into it but does not terminate it.
	topo cluster.Topology
}

// Drill limits.
const (
	requestTimeout   = 10 * time.Second // every HTTP request
	sessionTimeout   = 8 * time.Second  // hasession's own load and save, under it
	promotionTimeout = 30 * time.Second
	healTimeout      = 60 * time.Second
	overrun          = 90 * time.Second // how much longer than --duration the load may run
	probeInterval    = 50 * time.Millisecond
	afterMin         = 3 * time.Second // load after the last fault healed, at least
)

// errFailed is returned after the report when a hasession run lost sessions or
// saw errors.
var errFailed = errors.New("drill failed")

func parseFlags(args []string, stderr io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &Config{}
	topology := fs.String("topology", "cluster", "cluster, sentinel or standalone (the kind of --addrs, when given)")
	fs.StringVar(&c.fault, "fault", "kill", "kill, stop, pause, partition, failover (CLUSTER FAILOVER / SENTINEL FAILOVER) or none")
	fs.IntVar(&c.faults, "faults", 1, "faults per run, one after the other, each on the master serving the probe session")
	fs.DurationVar(&c.hold, "hold", 0, "how long a fault lasts before it is healed (0: until a replica is promoted; standalone: 3s)")
	fs.IntVar(&c.clients, "clients", 8, "concurrent HTTP clients logging users in and reading sessions back, and sending the load with --rate 0")
	fs.IntVar(&c.inflight, "inflight", 1000, "with --rate: requests in flight at most; one due beyond that is dropped and counted as failed")
	fs.DurationVar(&c.waitTimeout, "wait-timeout", 250*time.Millisecond, "WAIT 1 run: how long a save waits for its replica (a master with no replica waits this long on every save)")
	ack := fs.String("ack", "best-effort", "WAIT 1 run: a save no replica confirmed is accepted and counted (best-effort) or fails (required)")
	fs.IntVar(&c.users, "users", 200, "simulated users (one session and cookie jar each), logged in before the load starts")
	fs.Float64Var(&c.rate, "rate", 200, "requests per second of all users together, each sent when due (open loop); 0: --clients clients as fast as they go (closed loop)")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "load per run; it runs longer only to see the faults heal")
	fs.DurationVar(&c.warmup, "warmup", 5*time.Second, "load before the first fault")
	fs.IntVar(&c.requests, "requests", 0, "stop a run after this many requests (0: rate × (duration + 90s), or 1000000 without a rate)")
	fs.StringVar(&c.wait, "wait", "both", "hasession runs with WAIT 1 on every save (on), without (off), or one of each (both)")
	fs.StringVar(&c.compare, "compare", "none", "also run the drill with scs + goredisstore (scs) or a hand-written go-redis store (raw), both on go-redis defaults; none")
	fs.StringVar(&c.out, "out", "drill-out", "directory for drill.json and drill.html")
	fs.BoolVar(&c.json, "json", false, "print drill.json to stdout instead of the table")
	addrs := fs.String("addrs", "", "comma-separated addresses of an existing deployment (sentinels with --sentinel-master); nothing is started")
	fs.StringVar(&c.sentinelMaster, "sentinel-master", "", "with --addrs: the master name the sentinels monitor")
	fs.BoolVar(&c.yes, "yes", false, "with --addrs: confirm that the drill may send load and a graceful failover to that deployment")
	fs.StringVar(&c.metrics, "metrics", "", "serve the hasession runs' store metrics (OpenTelemetry, Prometheus format) at http://ADDR/metrics during the drill, e.g. 127.0.0.1:9464; the report then shows the metrics to alert on")
	fs.BoolVar(&c.cache, "cache", false, "hasession runs (and the history checker's stores) with the near-cache on (store.WithNearCache at its defaults): loads of cached sessions cost no round trip and may be stale by the 50 ms lease, revocations wait it; the checker allows that staleness, and the report shows the cache's counters")
	fs.BoolVar(&c.check, "check", true, "beside each hasession run, three more app servers (stores on clients of their own) record a history of concurrent loads, saves, rotations, destroys and revokes of a few users' sessions; porcupine checks it against the store's documented consistency, and a violation fails the drill")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	kind, err := cluster.ParseKind(*topology)
	if err != nil {
		return nil, err
	}
	c.topology = kind
	switch *ack {
	case "best-effort":
		c.ack = store.AckBestEffort
	case "required":
		c.ack = store.AckRequired
	default:
		return nil, fmt.Errorf("--ack: want best-effort or required, got %q", *ack)
	}
	for a := range strings.SplitSeq(*addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.addrs = append(c.addrs, a)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.sentinelMaster != "" && !set["topology"] {
		c.topology = cluster.KindSentinel
	}
	return c, c.validate(set)
}

func (c *Config) validate(set map[string]bool) error {
	switch c.fault {
	case "kill", "stop", "pause", "partition", "failover", "none":
	default:
		return fmt.Errorf("--fault: unknown fault %q (want kill, stop, pause, partition, failover or none)", c.fault)
	}
	switch c.wait {
	case "both", "on", "off":
	default:
		return fmt.Errorf("--wait: want both, on or off, got %q", c.wait)
	}
	switch c.compare {
	case "none", "scs", "raw":
	default:
		return fmt.Errorf("--compare: want scs, raw or none, got %q", c.compare)
	}
	switch {
	case c.faults < 0 || c.faults > 10:
		return fmt.Errorf("--faults must be in [0, 10], got %d", c.faults)
	case c.clients < 1 || c.clients > 1000:
		return fmt.Errorf("--clients must be in [1, 1000], got %d", c.clients)
	case c.waitTimeout <= 0 || c.waitTimeout >= time.Second:
		return fmt.Errorf("--wait-timeout must be in (0, 1s) (the client's read timeout), got %s", c.waitTimeout)
	case c.inflight < 1 || c.inflight > 100000:
		return fmt.Errorf("--inflight must be in [1, 100000], got %d", c.inflight)
	case c.users < c.clients || c.users > 100000:
		return fmt.Errorf("--users must be in [--clients, 100000], got %d", c.users)
	case c.rate < 0:
		return fmt.Errorf("--rate must not be negative, got %g", c.rate)
	case c.duration <= 0 || c.duration > time.Hour:
		return fmt.Errorf("--duration must be in (0, 1h], got %s", c.duration)
	case c.warmup < 0 || c.warmup >= c.duration:
		return fmt.Errorf("--warmup must be in [0, --duration), got %s", c.warmup)
	case c.hold < 0 || c.hold > cluster.MaxFaultDuration:
		return fmt.Errorf("--hold must be in [0, %s], got %s", cluster.MaxFaultDuration, c.hold)
	case c.requests < 0:
		return fmt.Errorf("--requests must not be negative, got %d", c.requests)
	case c.out == "":
		return errors.New("--out is empty")
	}
	if c.fault == "none" {
		c.faults = 0
	}
	if c.faults == 0 {
		c.fault = "none"
	}
	if c.topology == cluster.KindStandalone {
		if c.fault == "failover" {
			return errors.New("--fault failover needs a replica: use --topology cluster or sentinel")
		}
		if c.wait == "on" {
			return errors.New("--wait on needs a replica: use --topology cluster or sentinel")
		}
		c.wait = "off"
	}
	if c.requests == 0 {
		c.requests = 1000000
		if c.rate > 0 {
			// Never binding before the time bound: the load may run up to
			// overrun longer than --duration to see the faults heal.
			c.requests = int(c.rate*(c.duration+overrun).Seconds()) + 100
		}
	}
	if c.sentinelMaster != "" && len(c.addrs) == 0 {
		return errors.New("--sentinel-master needs --addrs (the sentinels' addresses)")
	}
	if c.sentinelMaster != "" && c.topology != cluster.KindSentinel {
		return fmt.Errorf("--sentinel-master with --topology %s", c.topology)
	}
	if len(c.addrs) > 0 {
		if c.topology == cluster.KindSentinel && c.sentinelMaster == "" {
			return errors.New("--addrs with --topology sentinel needs --sentinel-master")
		}
		if c.fault != "failover" && c.fault != "none" {
			return fmt.Errorf("--fault %s is refused against an existing deployment (--addrs): only failover (graceful) or none", c.fault)
		}
		if c.fault == "failover" && c.topology == cluster.KindStandalone {
			return errors.New("--fault failover needs a replica: give --topology cluster or --sentinel-master")
		}
		if !c.yes {
			return fmt.Errorf("--addrs %s: this sends session traffic and %s to a deployment the drill did not start; add --yes to confirm",
				strings.Join(c.addrs, ","), map[bool]string{true: "no fault", false: "a graceful failover"}[c.fault == "none"])
		}
	} else if set["yes"] {
		return errors.New("--yes is for --addrs only: the drill's own topology needs no confirmation")
	}
	return nil
}

// existing reports whether the drill runs against a deployment it did not start.
func (c *Config) existing() bool { return len(c.addrs) > 0 }

// runSpec is one run of the load: a store and its settings.
type runSpec struct {
	Name        string          // shown in the report
	Store       string          // hasession, scs or raw
	Wait        bool            // hasession: WAIT 1 after every save
	WaitTimeout time.Duration   // with Wait: WAIT's timeout
	Ack         store.AckPolicy // with Wait: what a save WAIT cannot confirm does
	Cache       bool            // hasession: the near-cache on (--cache)
	observer    store.Observer  // hasession: the store's observer (--metrics), or nil
}

func (c *Config) runs() []runSpec {
	var out []runSpec
	suffix := ""
	if c.cache {
		suffix = " + cache"
	}
	if c.wait == "on" || c.wait == "both" {
		out = append(out, runSpec{Name: "hasession WAIT 1" + suffix, Store: "hasession", Wait: true, WaitTimeout: c.waitTimeout, Ack: c.ack, Cache: c.cache, observer: c.observer})
	}
	if c.wait == "off" || c.wait == "both" {
		out = append(out, runSpec{Name: "hasession" + suffix, Store: "hasession", Cache: c.cache, observer: c.observer})
	}
	switch c.compare {
	case "scs":
		out = append(out, runSpec{Name: "scs+goredisstore", Store: "scs"})
	case "raw":
		out = append(out, runSpec{Name: "raw go-redis", Store: "raw"})
	}
	return out
}

// Run is the drill command: parse, run, report.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var metrics *metricsServer
	if c.metrics != "" {
		if metrics, err = startMetrics(c.metrics); err != nil {
			return err
		}
		defer metrics.close()
		c.observer = metrics.obs
		fmt.Fprintf(stderr, "drill: store metrics at http://%s/metrics\n", metrics.addr)
	}
	rep, err := runAll(ctx, c, stderr)
	if rep != nil {
		if werr := writeOutputs(c, rep, stdout, stderr); werr != nil {
			err = errors.Join(err, werr)
		}
		if metrics != nil && !c.json {
			err = errors.Join(err, metrics.writeMetrics(stdout))
		}
	}
	if err != nil {
		return err
	}
	if !rep.Passed {
		return fmt.Errorf("%w: %s", errFailed, rep.Verdict)
	}
	return nil
}

// runAll sets up the target, runs every run spec and returns the report (nil only when
// nothing ran).
func runAll(ctx context.Context, c *Config, progress io.Writer) (*Report, error) {
	// go-redis logs every failed dial; those to a node a fault took down are expected.
	redis.SetLogger(cli.QuietRedis{})
	p := &progressLog{w: progress}

	var tgt target
	switch {
	case c.existing():
		tgt = newExistingTarget(c)
		p.logf("existing %s deployment at %s (graceful faults only)", c.topology, strings.Join(c.addrs, ","))
	case c.topo != nil:
		tgt = &ownTarget{topo: c.topo}
	default:
		// Whatever happens below, nothing this process started outlives it.
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), cli.RemoveTimeout)
			defer cancel()
			p.logf("removing the %s topology…", c.topology)
			if err := cluster.TerminateAll(cctx); err != nil {
				p.logf("remove: %v", err)
			} else {
				p.logf("removed: no container or network of this drill is left")
			}
		}()
		if n, err := cluster.Sweep(ctx); err == nil && n > 0 {
			p.logf("removed %d containers/networks left behind by earlier runs", n)
		}
		p.logf("starting a %s topology…", c.topology)
		start := time.Now()
		topo, err := cluster.Run(ctx, c.topology)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", c.topology, err)
		}
		p.logf("%s healthy after %s", c.topology, time.Since(start).Round(time.Millisecond))
		tgt = &ownTarget{topo: topo}
	}

	rep := newReport(c)
	var runErr error
	for i, spec := range c.runs() {
		if ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
		if i > 0 && c.faults > 0 {
			hctx, cancel := context.WithTimeout(ctx, healTimeout)
			err := tgt.waitHealthy(hctx)
			cancel()
			if err != nil {
				runErr = fmt.Errorf("health gate before %s: %w", spec.Name, err)
				break
			}
		}
		res, err := runOne(ctx, c, tgt, spec, p)
		if res != nil {
			rep.Runs = append(rep.Runs, res)
		}
		if err != nil {
			runErr = fmt.Errorf("%s: %w", spec.Name, err)
			break
		}
	}
	rep.finish()
	if len(rep.Runs) == 0 {
		return nil, runErr
	}
	if runErr != nil {
		rep.Passed = false
		rep.Verdict = "incomplete: " + runErr.Error()
	}
	return rep, runErr
}

// progressLog writes progress lines to stderr.
type progressLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *progressLog) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "drill: "+format+"\n", args...)
}

// writeOutputs writes drill.json and drill.html to the output directory and the
// table (or the JSON) to stdout.
func writeOutputs(c *Config, rep *Report, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	js, err := rep.marshal()
	if err != nil {
		return err
	}
	jsonPath, htmlPath := c.out+string(os.PathSeparator)+"drill.json", c.out+string(os.PathSeparator)+"drill.html"
	if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
		return err
	}
	var html strings.Builder
	writeHTML(&html, rep)
	if err := os.WriteFile(htmlPath, []byte(html.String()), 0o644); err != nil {
		return err
	}
	if c.json {
		_, err = stdout.Write(js)
	} else {
		err = writeTable(stdout, rep)
	}
	fmt.Fprintf(stderr, "drill: wrote %s and %s\n", jsonPath, htmlPath)
	return err
}

// target is where the load goes and the faults happen: a topology the drill (or a
// test) started, or an existing deployment.
type target interface {
	kind() cluster.Kind
	options() *redis.UniversalOptions
	// inject applies one fault to the master that serves key and returns once a replica
	// was promoted, the fault healed and the topology is healthy again (or on error).
	inject(ctx context.Context, fault string, key string, hold time.Duration, ev *faultEvent, p *progressLog) error
	waitHealthy(ctx context.Context) error
}

// faultEvent is what happened to one fault, in seconds from the run's start.
type faultEvent struct {
	Kind      string   `json:"kind"`
	Node      string   `json:"node"`
	Promoted  string   `json:"promoted,omitempty"`
	StartS    float64  `json:"start_s"`
	PromotedS *float64 `json:"promotion_s"` // from the fault's start; null without a promotion
	HealedS   *float64 `json:"healed_s"`    // from the fault's start
	HealthyS  *float64 `json:"healthy_s"`   // from the fault's start
	RecoveryS *float64 `json:"recovery_s"`  // from the fault's start to the probe's first save after its longest gap in the window
	Error     string   `json:"error,omitempty"`

	// The fault's window: from its start to the next fault's start (the last: to the
	// end of the load). Every figure of the fault comes from it.
	WindowEndS float64  `json:"window_end_s"`
	Requests   int      `json:"requests"` // due in the window
	Errors     int      `json:"errors"`
	P99MS      *float64 `json:"p99_ms"`

	start, healthy time.Time
}

func since(t time.Time) *float64 { return report.Ptr(report.Seconds(time.Since(t))) }

// ownTarget is a topology the drill or a test started: every fault is allowed.
type ownTarget struct{ topo cluster.Topology }

func (t *ownTarget) kind() cluster.Kind               { return t.topo.Kind() }
func (t *ownTarget) options() *redis.UniversalOptions { return t.topo.UniversalOptions() }
func (t *ownTarget) waitHealthy(ctx context.Context) error {
	return t.topo.WaitHealthy(ctx)
}

func (t *ownTarget) inject(ctx context.Context, fault, key string, hold time.Duration, ev *faultEvent, p *progressLog) error {
	ev.Kind = fault
	ep, err := cluster.RunEpisode(ctx, t.topo, cluster.FaultKind(fault), cluster.EpisodeOptions{
		Key: key, Hold: hold, PromotionTimeout: promotionTimeout, HealTimeout: healTimeout, Logf: p.logf,
	})
	if ep == nil {
		return err
	}
	ev.Node, ev.start = ep.Master.Name, ep.Start
	if ep.Promoted != nil {
		ev.Promoted, ev.PromotedS = ep.Promoted.Name, report.Ptr(report.Seconds(ep.Promotion))
	}
	if ep.Healed > 0 {
		ev.HealedS = report.Ptr(report.Seconds(ep.Healed))
	}
	if !ep.HealthyAt.IsZero() {
		ev.healthy, ev.HealthyS = ep.HealthyAt, report.Ptr(report.Seconds(ep.Healthy))
	}
	return err
}

// existingTarget is a deployment the operator owns: graceful failovers only, nothing is
// killed, paused or cut off.
type existingTarget struct {
	k    cluster.Kind
	opts *redis.UniversalOptions
}

func newExistingTarget(c *Config) *existingTarget {
	o := &redis.UniversalOptions{Addrs: c.addrs, MasterName: c.sentinelMaster, IsClusterMode: c.topology == cluster.KindCluster}
	return &existingTarget{k: c.topology, opts: o}
}

func (t *existingTarget) kind() cluster.Kind { return t.k }
func (t *existingTarget) options() *redis.UniversalOptions {
	o := *t.opts
	o.Addrs = append([]string(nil), t.opts.Addrs...)
	return &o
}

// waitHealthy waits until the master serving a probe key answers as master and has a
// replica with its link up.
func (t *existingTarget) waitHealthy(ctx context.Context) error {
	return cluster.Poll(ctx, 100*time.Millisecond, func() error {
		m, err := cluster.MasterAddr(ctx, t.k, t.opts, "drill:{health}")
		if err != nil {
			return err
		}
		return hasReplica(ctx, m)
	})
}

func (t *existingTarget) inject(ctx context.Context, fault, key string, _ time.Duration, ev *faultEvent, p *progressLog) error {
	if fault != "failover" {
		return fmt.Errorf("fault %s refused on a deployment the drill did not start", fault)
	}
	old, err := cluster.MasterAddr(ctx, t.k, t.opts, key)
	if err != nil {
		return err
	}
	ev.Kind, ev.Node = fault, old
	if err := cluster.Failover(ctx, t.k, t.opts, old); err != nil {
		return err
	}
	ev.start = time.Now()
	p.logf("failover of %s requested", old)
	pctx, cancel := context.WithTimeout(ctx, promotionTimeout)
	defer cancel()
	var promoted string
	err = cluster.Poll(pctx, 25*time.Millisecond, func() error {
		m, err := cluster.MasterAddr(pctx, t.k, t.opts, key)
		if err != nil {
			return err
		}
		if m == old {
			return fmt.Errorf("%s still serves the key", old)
		}
		if r, err := cluster.NodeRole(pctx, &redis.Options{Addr: m}); err != nil || r.Role != cluster.RoleMaster {
			return fmt.Errorf("%s serves the key but is %q (%v)", m, r.Role, err)
		}
		promoted = m
		return nil
	})
	if err != nil {
		return fmt.Errorf("no promotion: %w", err)
	}
	ev.Promoted, ev.PromotedS = promoted, since(ev.start)
	p.logf("%s promoted after %.2fs", promoted, *ev.PromotedS)
	hctx, cancel2 := context.WithTimeout(ctx, healTimeout)
	defer cancel2()
	err = cluster.Poll(hctx, 50*time.Millisecond, func() error {
		r, err := cluster.NodeRole(hctx, &redis.Options{Addr: old})
		if err != nil {
			return err
		}
		if r.Role != cluster.RoleReplica || !r.LinkUp {
			return fmt.Errorf("%s is not a connected replica yet: %s of %q, link up %v", old, r.Role, r.MasterAddr, r.LinkUp)
		}
		return nil
	})
	ev.healthy = time.Now()
	ev.HealthyS = since(ev.start)
	return err
}

// hasReplica returns nil when the master at addr has a replica whose link is up.
func hasReplica(ctx context.Context, addr string) error {
	c := cluster.NodeClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "role:master") {
		return fmt.Errorf("%s is not a master", addr)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "state=online") {
			return nil
		}
	}
	return fmt.Errorf("%s has no online replica", addr)
}

// backend is one session store behind the same HTTP application.
type backend interface {
	// wrap puts the store's middleware around the application.
	wrap(h http.Handler) http.Handler
	// session returns the request's session.
	session(r *http.Request) session
	cookieName() string
	// key returns the Redis key of the session with this cookie value.
	key(id string) string
	// read reads the session back through the store: its state, and whether it exists.
	read(ctx context.Context, id string) (state, bool, error)
	remove(ctx context.Context, id string) error
	stats() any
	close() error
}

// session is what the application does with a session.
type session interface {
	state() state
	setState(st state) error
	login(ctx context.Context, user string) error
}

const (
	sessionIdle     = 10 * time.Minute // the drill's sessions expire soon after it
	sessionLifetime = time.Hour
)

// newBackend builds the store of a run. onError answers a request whose session
// failed, with the error in the body.
func newBackend(spec runSpec, o *redis.UniversalOptions) (backend, error) {
	switch spec.Store {
	case "hasession":
		return newHasessionBackend(spec, o)
	case "scs":
		return newSCSBackend(o), nil
	case "raw":
		return &rawBackend{rdb: redis.NewUniversalClient(o)}, nil
	}
	return nil, fmt.Errorf("unknown store %q", spec.Store)
}

func answerError(w http.ResponseWriter, _ *http.Request, err error) {
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// hasessionBackend is hasession's middleware on a store with a client tuned for failover.
type hasessionBackend struct {
	rdb  redis.UniversalClient
	st   *store.Store
	m    *httpsession.Manager
	stop func() // ends the near-cache's metrics (--metrics with --cache), or nil
}

func newHasessionBackend(spec runSpec, o *redis.UniversalOptions) (*hasessionBackend, error) {
	rdb := store.NewFailoverClient(o)
	opts := []store.Option{store.WithPrefix("hs:drill:"), store.WithIdleTimeout(sessionIdle), store.WithLifetime(sessionLifetime)}
	if spec.Wait {
		opts = append(opts, store.WithWriteAck(1, spec.WaitTimeout), store.WithWriteAckPolicy(spec.Ack))
	}
	if spec.observer != nil {
		opts = append(opts, store.WithObserver(spec.observer))
	}
	if spec.Cache {
		opts = append(opts, store.WithNearCache(store.NearCache{}))
	}
	st, err := store.New(rdb, opts...)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	m, err := httpsession.New(st,
		httpsession.WithSecure(false), // plain HTTP on loopback
		httpsession.WithTimeout(sessionTimeout),
		httpsession.WithErrorHandler(answerError),
		httpsession.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		_ = st.Close()
		_ = rdb.Close()
		return nil, err
	}
	b := &hasessionBackend{rdb: rdb, st: st, m: m}
	if obs, ok := spec.observer.(*hasessionotel.Observer); ok && spec.Cache {
		b.stop = obs.ObserveNearCache(st)
	}
	return b, nil
}

func (b *hasessionBackend) wrap(h http.Handler) http.Handler { return b.m.Handler(h) }
func (b *hasessionBackend) cookieName() string               { return httpsession.DefaultCookieName }
func (b *hasessionBackend) key(id string) string {
	k, _ := b.st.Key(id)
	return k
}
func (b *hasessionBackend) session(r *http.Request) session {
	return hasessionSession{httpsession.FromContext(r.Context())}
}
func (b *hasessionBackend) read(ctx context.Context, id string) (state, bool, error) {
	s, err := b.st.Load(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	var st state
	for k, dst := range map[string]any{"n": &st.N, "origin": &st.Origin} {
		if err := s.Get(k, dst); err != nil && !errors.Is(err, store.ErrNoAttribute) {
			return st, true, err
		}
	}
	return st, true, nil
}
func (b *hasessionBackend) remove(ctx context.Context, id string) error {
	return b.st.Destroy(ctx, id)
}
func (b *hasessionBackend) stats() any { return b.st.Stats() }
func (b *hasessionBackend) close() error {
	_ = b.st.Close()
	if b.stop != nil {
		b.stop() // after the store's close: the near-cache's last counts are in
	}
	return b.rdb.Close()
}

type hasessionSession struct{ s *httpsession.Session }

func (s hasessionSession) state() state {
	var st state
	_ = s.s.Get("n", &st.N)
	_ = s.s.Get("origin", &st.Origin)
	return st
}
func (s hasessionSession) setState(st state) error {
	return errors.Join(s.s.Set("n", st.N), s.s.Set("origin", st.Origin))
}
func (s hasessionSession) login(ctx context.Context, user string) error {
	if err := s.s.SetUser(user); err != nil {
		return err
	}
	return s.s.Rotate(ctx)
}

// scsBackend is alexedwards/scs's SessionManager with goredisstore on a go-redis client
// with its defaults, as its README sets it up. goredisstore takes a *redis.Client; on a
// Cluster the same three commands run on a ClusterClient (scsClusterStore).
type scsBackend struct {
	rdb redis.UniversalClient
	sm  *scs.SessionManager
	cs  scs.CtxStore
}

const scsPrefix = "scs:drill:"

func newSCSBackend(o *redis.UniversalOptions) *scsBackend {
	rdb := redis.NewUniversalClient(o)
	sm := scs.New()
	sm.IdleTimeout, sm.Lifetime = sessionIdle, sessionLifetime
	sm.Cookie.Secure = false
	sm.ErrorFunc = answerError
	var cs scs.CtxStore
	if c, ok := rdb.(*redis.Client); ok {
		cs = goredisstore.NewWithPrefix(c, scsPrefix)
	} else {
		cs = scsClusterStore{rdb}
	}
	sm.Store = cs
	return &scsBackend{rdb: rdb, sm: sm, cs: cs}
}

func (b *scsBackend) wrap(h http.Handler) http.Handler { return b.sm.LoadAndSave(h) }
func (b *scsBackend) cookieName() string               { return b.sm.Cookie.Name }
func (b *scsBackend) key(id string) string             { return scsPrefix + id }
func (b *scsBackend) session(r *http.Request) session {
	return scsSession{b.sm, r.Context()}
}
func (b *scsBackend) read(ctx context.Context, id string) (state, bool, error) {
	raw, found, err := b.cs.FindCtx(ctx, id)
	if err != nil || !found {
		return state{}, found, err
	}
	_, values, err := b.sm.Codec.Decode(raw)
	if err != nil {
		return state{}, true, err
	}
	n, _ := values["n"].(int64)
	origin, _ := values["origin"].(string)
	return state{N: n, Origin: origin}, true, nil
}
func (b *scsBackend) remove(ctx context.Context, id string) error {
	return b.cs.DeleteCtx(ctx, id)
}
func (b *scsBackend) stats() any   { return nil }
func (b *scsBackend) close() error { return b.rdb.Close() }

type scsSession struct {
	sm  *scs.SessionManager
	ctx context.Context
}

func (s scsSession) state() state {
	return state{N: s.sm.GetInt64(s.ctx, "n"), Origin: s.sm.GetString(s.ctx, "origin")}
}
func (s scsSession) setState(st state) error {
	s.sm.Put(s.ctx, "n", st.N)
	s.sm.Put(s.ctx, "origin", st.Origin)
	return nil
}
func (s scsSession) login(_ context.Context, user string) error {
	if err := s.sm.RenewToken(s.ctx); err != nil {
		return err
	}
	s.sm.Put(s.ctx, "user", user)
	return nil
}

// scsClusterStore is goredisstore's FindCtx, CommitCtx and DeleteCtx on any go-redis
// client (goredisstore itself takes only a *redis.Client).
type scsClusterStore struct{ rdb redis.UniversalClient }

func (s scsClusterStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}
func (s scsClusterStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}
func (s scsClusterStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}
func (s scsClusterStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	b, err := s.rdb.Get(ctx, scsPrefix+token).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}
func (s scsClusterStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	return s.rdb.Set(ctx, scsPrefix+token, b, time.Until(expiry)).Err()
}
func (s scsClusterStore) DeleteCtx(ctx context.Context, token string) error {
	return s.rdb.Del(ctx, scsPrefix+token).Err()
}

// rawBackend is the session store many applications write by hand: a JSON blob per
// session under one key, GET on the way in, SET with a TTL on the way out, on a go-redis
// client with its defaults and no retry of its own.
type rawBackend struct{ rdb redis.UniversalClient }

const (
	rawPrefix = "raw:drill:"
	rawCookie = "rawsession"
)

type rawData struct {
	state
	User string `json:"user,omitempty"`
}

type rawSession struct {
	b        *rawBackend
	id       string
	data     rawData
	modified bool
	oldID    string // set by login: deleted once the new ID is saved
}

type rawCtxKey struct{}

func (b *rawBackend) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &rawSession{b: b}
		if c, err := r.Cookie(rawCookie); err == nil && c.Value != "" {
			raw, err := b.rdb.Get(r.Context(), rawPrefix+c.Value).Bytes()
			switch {
			case err == nil:
				s.id = c.Value
				if err := json.Unmarshal(raw, &s.data); err != nil {
					answerError(w, r, err)
					return
				}
			case !errors.Is(err, redis.Nil):
				answerError(w, r, err)
				return
			}
		}
		if s.id == "" {
			s.id = rand.Text()
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), rawCtxKey{}, s)))
		if s.modified {
			raw, _ := json.Marshal(s.data)
			if err := b.rdb.Set(r.Context(), rawPrefix+s.id, raw, sessionIdle).Err(); err != nil {
				answerError(w, r, err)
				return
			}
			if s.oldID != "" {
				_ = b.rdb.Del(r.Context(), rawPrefix+s.oldID).Err()
			}
			http.SetCookie(w, &http.Cookie{Name: rawCookie, Value: s.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}
func (b *rawBackend) session(r *http.Request) session {
	s, _ := r.Context().Value(rawCtxKey{}).(*rawSession)
	return s
}
func (b *rawBackend) cookieName() string   { return rawCookie }
func (b *rawBackend) key(id string) string { return rawPrefix + id }
func (b *rawBackend) read(ctx context.Context, id string) (state, bool, error) {
	raw, err := b.rdb.Get(ctx, rawPrefix+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	var d rawData
	err = json.Unmarshal(raw, &d)
	return d.state, true, err
}
func (b *rawBackend) remove(ctx context.Context, id string) error {
	return b.rdb.Del(ctx, rawPrefix+id).Err()
}
func (b *rawBackend) stats() any   { return nil }
func (b *rawBackend) close() error { return b.rdb.Close() }

func (s *rawSession) state() state { return s.data.state }
func (s *rawSession) setState(st state) error {
	s.data.state, s.modified = st, true
	return nil
}
func (s *rawSession) login(_ context.Context, user string) error {
	if s.oldID == "" {
		s.oldID = s.id
	}
	s.id, s.data.User, s.modified = rand.Text(), user, true
	return nil
}

// state is what the application keeps in a session: a counter, and a random
// origin set when the session is first written, so that a session lost and created
// anew is told from the one the user had.
type state struct {
	N      int64  `json:"n"`
	Origin string `json:"origin"`
}

// String is the answer's body: "<counter> <origin>" (no origin: the session is new).
func (st state) String() string { return strconv.FormatInt(st.N, 10) + " " + st.Origin }

func parseState(s string) (state, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return state{}, fmt.Errorf("bad answer %q", s)
	}
	v, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return state{}, fmt.Errorf("bad answer %q", s)
	}
	st := state{N: v}
	if len(f) == 2 {
		st.Origin = f[1]
	}
	return st, nil
}

// app is the application under load: /login rotates the session and sets its user,
// /view reads the session, /update increments its counter. Logins and updates give a
// session without an origin one. Each answers with the session's state.
func app(b backend) http.Handler {
	write := func(w http.ResponseWriter, r *http.Request, s session, st state) {
		if st.Origin == "" {
			st.Origin = rand.Text()
		}
		if err := s.setState(st); err != nil {
			answerError(w, r, err)
			return
		}
		fmt.Fprint(w, st)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := b.session(r)
		if err := s.login(r.Context(), r.URL.Query().Get("user")); err != nil {
			answerError(w, r, err)
			return
		}
		write(w, r, s, s.state())
	})
	mux.HandleFunc("GET /view", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, b.session(r).state())
	})
	mux.HandleFunc("POST /update", func(w http.ResponseWriter, r *http.Request) {
		s := b.session(r)
		st := s.state()
		st.N++
		write(w, r, s, st)
	})
	return b.wrap(mux)
}

// Request kinds.
const (
	opLogin = iota
	opView
	opUpdate
)

var opPath = [...]struct{ method, path string }{
	opLogin:  {http.MethodPost, "/login"},
	opView:   {http.MethodGet, "/view"},
	opUpdate: {http.MethodPost, "/update"},
}

// requestRecord is one request of the load, in time since the run's start. start is when
// it was scheduled (open loop), so its latency includes any wait before it was sent.
type requestRecord struct {
	start, end time.Duration
	user       int32 // index of the user; the probe is the last
	shard      int8  // the shard serving the user's session when the request started
	op         uint8
	ok         bool
	dropped    bool // never sent: too many requests in flight
}

// user is one simulated user: a cookie jar, and what the server acknowledged. A
// user has one request in flight at a time (turn); the fields below turn are owned by
// the request holding it.
type user struct {
	idx    int
	name   string
	client *http.Client
	turn   chan struct{}

	acked     int64  // the highest counter an acknowledged response carried
	saves     int    // acknowledged writes (logins and updates)
	origin    string // the session's origin, from the first acknowledged write
	regressed bool   // a response showed an acknowledged save lost
}

// load drives one run's HTTP load and records what the users saw.
type load struct {
	c    *Config
	b    backend
	base string
	url  *url.URL
	t0   time.Time

	requests, errors atomic.Int64
	phase            atomic.Value // string
	shards           *shardMap

	mu      sync.Mutex
	recs    []requestRecord
	errMsgs map[string]int
	probeOK []time.Time // completions of the probe's acknowledged updates
}

// do sends one request for u, due at sched (since the run's start; negative: now), and
// records it unless record is false (the population step). It waits for u's previous
// request first; the request is given up requestTimeout after it was due. It
// reports whether the server acknowledged it.
func (l *load) do(ctx context.Context, u *user, op uint8, sched time.Duration, record bool) bool {
	if sched < 0 {
		sched = time.Since(l.t0)
	}
	ctx, cancel := context.WithDeadline(ctx, l.t0.Add(sched+requestTimeout))
	defer cancel()
	select {
	case u.turn <- struct{}{}:
		defer func() { <-u.turn }()
	case <-ctx.Done():
		if record {
			l.record(requestRecord{start: sched, end: time.Since(l.t0), user: int32(u.idx), shard: -1, op: op},
				"gave up waiting for the user's previous request")
		}
		return false
	}
	shard := l.shards.of(l.b, l.id(u))
	target := l.base + opPath[op].path
	if op == opLogin {
		target += "?user=" + url.QueryEscape(u.name)
	}
	req, err := http.NewRequestWithContext(ctx, opPath[op].method, target, nil)
	if err != nil {
		return false
	}
	resp, err := u.client.Do(req)
	var st state
	var msg string
	ok := false
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		msg = err.Error()
	} else {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		text := strings.TrimSpace(string(body))
		switch {
		case rerr != nil:
			msg = rerr.Error()
		case resp.StatusCode != http.StatusOK:
			line, _, _ := strings.Cut(text, "\n")
			msg = fmt.Sprintf("%d %s", resp.StatusCode, line)
		default:
			if st, err = parseState(text); err != nil {
				msg = err.Error()
			} else {
				ok = true
			}
		}
	}
	end := time.Since(l.t0)
	if ok {
		prev := st.N
		if op == opUpdate {
			prev--
		}
		if prev < u.acked || (u.origin != "" && st.Origin != u.origin) {
			u.regressed = true
		}
		if op != opView {
			u.acked = max(u.acked, st.N)
			if u.origin == "" {
				u.origin = st.Origin
			}
			u.saves++
		}
	}
	if !record {
		return ok
	}
	// Here every request of the load has its outcome: the user, the operation, when it
	// was due and ended, and the state the server answered (st). A history checker of
	// the run hooks in at this point.
	l.record(requestRecord{start: sched, end: end, user: int32(u.idx), shard: shard, op: op, ok: ok}, msg)
	return ok
}

// record adds one request of the load; msg is its error ("" when ok).
func (l *load) record(r requestRecord, msg string) {
	l.requests.Add(1)
	if !r.ok {
		l.errors.Add(1)
	}
	l.mu.Lock()
	l.recs = append(l.recs, r)
	if !r.ok {
		l.errMsgs[msg]++
	}
	l.mu.Unlock()
}

// shardMap maps a session's key to the shard that serves it: Cluster slot ranges,
// one per master, as they were when the run started (a failover keeps a shard's slots);
// one shard otherwise.
type shardMap struct {
	names []string // "slots 0-5460", …
	slot  []int8   // shard of each slot; nil: one shard
}

// of returns the shard of the session with this cookie value (-1: none yet).
func (m *shardMap) of(b backend, id string) int8 {
	if id == "" {
		return -1
	}
	if m.slot == nil {
		return 0
	}
	return m.slot[cluster.Slot(b.key(id))]
}

// readShards reads the shards of the target.
func readShards(ctx context.Context, k cluster.Kind, o *redis.UniversalOptions) (*shardMap, error) {
	if k != cluster.KindCluster {
		return &shardMap{names: []string{"all (one master)"}}, nil
	}
	var errs []error
	for _, a := range o.Addrs {
		c := cluster.NodeClient(&redis.Options{Addr: a})
		s, err := c.ClusterNodes(ctx).Result()
		_ = c.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		nodes, err := cluster.ParseClusterNodes(s)
		if err != nil {
			return nil, err
		}
		m := &shardMap{slot: make([]int8, cluster.SlotCount)}
		for i := range m.slot {
			m.slot[i] = -1
		}
		var masters []cluster.ClusterNode
		for _, n := range nodes {
			if n.Has("master") && len(n.Slots) > 0 {
				masters = append(masters, n)
			}
		}
		slices.SortFunc(masters, func(a, b cluster.ClusterNode) int { return cmp.Compare(a.Slots[0][0], b.Slots[0][0]) })
		if len(masters) > 100 {
			return nil, fmt.Errorf("%d shards: the drill reports at most 100", len(masters))
		}
		for i, n := range masters {
			var ranges []string
			for _, r := range n.Slots {
				for s := r[0]; s <= r[1] && s < cluster.SlotCount; s++ {
					m.slot[s] = int8(i)
				}
				ranges = append(ranges, fmt.Sprintf("%d-%d", r[0], r[1]))
			}
			m.names = append(m.names, "slots "+strings.Join(ranges, ","))
		}
		return m, nil
	}
	return nil, fmt.Errorf("cluster nodes: %w", errors.Join(errs...))
}

// id returns the session ID in u's cookie jar.
func (l *load) id(u *user) string {
	for _, c := range u.client.Jar.Cookies(l.url) {
		if c.Name == l.b.cookieName() {
			return c.Value
		}
	}
	return ""
}

// runOne runs the load of one store against the target: population, warm-up,
// faults, load after them, then every session read back.
func runOne(ctx context.Context, c *Config, tgt target, spec runSpec, p *progressLog) (*runReport, error) {
	b, err := newBackend(spec, tgt.options())
	if err != nil {
		return nil, err
	}
	defer b.close()
	srv := httptest.NewServer(app(b)) // 127.0.0.1, a free port
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		return nil, err
	}
	shards, err := readShards(ctx, tgt.kind(), tgt.options())
	if err != nil {
		return nil, err
	}
	l := &load{c: c, b: b, base: srv.URL, url: u, errMsgs: map[string]int{}, shards: shards}
	l.phase.Store("populate")
	idle := c.clients + 4
	if c.rate > 0 {
		idle = min(c.inflight, 1000) + 4
	}
	tr := &http.Transport{MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	users := make([]*user, c.users+1) // the last one is the probe
	for i := range users {
		jar, _ := cookiejar.New(nil)
		users[i] = &user{idx: i, name: fmt.Sprintf("user%d", i), turn: make(chan struct{}, 1),
			client: &http.Client{Jar: jar, Transport: tr, Timeout: requestTimeout}}
	}
	probe := users[c.users]
	probe.name = "probe"

	// The population: every user logs in once, before the clock starts.
	p.logf("[%s] logging in %d users…", spec.Name, len(users))
	l.t0 = time.Now()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := range c.clients {
		wg.Go(func() {
			for i := w; i < len(users) && ctx.Err() == nil; i += c.clients {
				if !l.do(ctx, users[i], opLogin, -1, false) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n := failed.Load(); n > 0 {
		return nil, fmt.Errorf("%d of %d logins failed before any fault", n, len(users))
	}

	// The load.
	run := &runReport{Name: spec.Name, Store: spec.Store, Wait: spec.Wait, Cache: spec.Cache}
	if spec.Wait {
		run.AckPolicy = spec.Ack.String()
	}
	faulted := shards.of(b, l.id(probe))
	for i, name := range shards.names {
		run.Shards = append(run.Shards, &shard{Name: name, Faulted: int8(i) == faulted})
	}
	l.t0 = time.Now()
	l.phase.Store("before")
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	var chk *checker
	if c.check && spec.Store == "hasession" {
		if chk, err = startCheck(ctx, c, tgt, spec, stop); err != nil {
			return nil, err
		}
		defer chk.close()
		p.logf("[%s] history checker: %d app servers on %d users beside the load", spec.Name, checkApps, checkUsers)
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		case <-ctx.Done():
			return true
		default:
		}
		if l.requests.Load() >= int64(c.requests) {
			halt()
			return true
		}
		return false
	}
	pick := func(rng *mrand.Rand, from []*user) (*user, uint8) {
		op := uint8(opView)
		switch r := rng.IntN(100); {
		case r < 10:
			op = opLogin
		case r >= 70:
			op = opUpdate
		}
		return from[rng.IntN(len(from))], op
	}
	if c.rate > 0 {
		// Open loop: request i is due at i/rate, sent then whatever happened to the
		// earlier ones, unless c.inflight are in flight: then it is dropped, and failed.
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(1, uint64(l.t0.UnixNano())))
			inflight := make(chan struct{}, c.inflight)
			var sent sync.WaitGroup
			defer sent.Wait()
			for i := 0; !stopped(); i++ {
				due := time.Duration(float64(i) / c.rate * float64(time.Second))
				if d := time.Until(l.t0.Add(due)); d > 0 {
					select {
					case <-time.After(d):
					case <-stop:
						return
					case <-ctx.Done():
						return
					}
				}
				u, op := pick(rng, users[:c.users])
				select {
				case inflight <- struct{}{}:
				default:
					now := time.Since(l.t0)
					l.record(requestRecord{start: due, end: now, user: int32(u.idx), shard: shards.of(b, l.id(u)), op: op, dropped: true},
						fmt.Sprintf("dropped: %d requests in flight (--inflight)", c.inflight))
					continue
				}
				sent.Go(func() {
					defer func() { <-inflight }()
					l.do(ctx, u, op, due, true)
				})
			}
		})
	} else {
		// Closed loop, as fast as c.clients clients go.
		for w := range c.clients {
			wg.Go(func() {
				rng := mrand.New(mrand.NewPCG(uint64(w), uint64(l.t0.UnixNano())))
				var own []*user
				for i := w; i < c.users; i += c.clients {
					own = append(own, users[i])
				}
				for !stopped() {
					u, op := pick(rng, own)
					l.do(ctx, u, op, -1, true)
				}
			})
		}
	}
	// The probe updates its session continuously: its master is the one the faults hit,
	// and the gaps between its acknowledged updates time the recovery.
	wg.Go(func() {
		tk := time.NewTicker(probeInterval)
		defer tk.Stop()
		for !stopped() {
			if l.do(ctx, probe, opUpdate, -1, true) {
				l.mu.Lock()
				l.probeOK = append(l.probeOK, time.Now())
				l.mu.Unlock()
			}
			select {
			case <-tk.C:
			case <-stop:
			case <-ctx.Done():
			}
		}
	})
	// Progress, every second.
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				p.logf("[%s] %-8s %6.1fs  requests %6d  errors %4d", spec.Name, l.phase.Load(), time.Since(l.t0).Seconds(), l.requests.Load(), l.errors.Load())
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()

	sleepUntil := func(t time.Time) {
		select {
		case <-time.After(time.Until(t)):
		case <-stop:
		case <-ctx.Done():
		}
	}
	var faultErr error
	last := l.t0
	sleepUntil(l.t0.Add(c.warmup))
	for i := 0; i < c.faults && ctx.Err() == nil && !stopped(); i++ {
		if i > 0 {
			sleepUntil(time.Now().Add(afterMin))
		}
		l.phase.Store("during")
		ev := &faultEvent{Kind: c.fault}
		err := tgt.inject(ctx, c.fault, b.key(l.id(probe)), c.hold, ev, p)
		if ev.start.IsZero() {
			ev.start = time.Now()
		}
		ev.StartS = report.Seconds(ev.start.Sub(l.t0))
		if ev.healthy.IsZero() {
			ev.healthy = time.Now()
		}
		last = ev.healthy
		run.Faults = append(run.Faults, ev)
		if err != nil {
			ev.Error = err.Error()
			faultErr = fmt.Errorf("fault %d (%s): %w", i+1, c.fault, err)
			break
		}
	}
	if c.faults > 0 {
		l.phase.Store("after")
	}
	end := l.t0.Add(c.duration)
	if c.faults > 0 && last.Add(afterMin).After(end) {
		end = last.Add(afterMin)
	}
	end = minTime(end, l.t0.Add(c.duration+overrun))
	if faultErr == nil {
		sleepUntil(end)
	}
	halt()
	wg.Wait()
	<-progressDone
	loadTime := time.Since(l.t0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if chk != nil {
		p.logf("[%s] checking the history of %d operations…", spec.Name, chk.w.Recorder().Len())
		run.Checker = chk.check(c.out, spec.Name)
	}

	// Every session read back through the store.
	l.phase.Store("verify")
	p.logf("[%s] %d requests, %d errors; reading %d sessions back…", spec.Name, l.requests.Load(), l.errors.Load(), len(users))
	var verified, lost, regressed, saves atomic.Int64
	var verifyErrs sync.Map
	for w := range c.clients {
		wg.Go(func() {
			for i := w; i < len(users); i += c.clients {
				u := users[i]
				saves.Add(int64(u.saves))
				vctx, cancel := context.WithTimeout(ctx, requestTimeout)
				st, found, err := b.read(vctx, l.id(u))
				cancel()
				if err != nil {
					verifyErrs.Store(err.Error(), true)
				}
				if u.regressed {
					regressed.Add(1)
				}
				if err != nil || !found || st.N < u.acked || st.Origin != u.origin || u.regressed {
					lost.Add(1)
				} else {
					verified.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// The drill's sessions are removed (they would expire on their own).
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	for w := range c.clients {
		wg.Go(func() {
			for i := w; i < len(users) && cctx.Err() == nil; i += c.clients {
				_ = b.remove(cctx, l.id(users[i]))
			}
		})
	}
	wg.Wait()
	cancel()

	run.Sessions = len(users)
	run.Verified, run.Lost, run.Regressed, run.AckedSaves = int(verified.Load()), int(lost.Load()), int(regressed.Load()), int(saves.Load())
	verifyErrs.Range(func(k, _ any) bool {
		run.VerifyErrors = append(run.VerifyErrors, k.(string))
		return true
	})
	run.StoreStats = b.stats()
	if st, ok := run.StoreStats.(store.Stats); ok {
		run.UnackedSaves = st.AcceptedUnacknowledged
		if spec.Cache {
			run.NearCache = nearCacheOf(st)
		}
	}
	if chk != nil && spec.Cache {
		run.CheckerNearCache = nearCacheOf(chk.stats())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	run.build(l.recs, l.errMsgs, l.probeOK, l.t0, loadTime)
	return run, faultErr
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
