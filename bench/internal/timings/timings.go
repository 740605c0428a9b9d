// Package timings is the timings command: how long topologies take to start, to fail
// over and to rejoin (median, min and max of repeated runs).
package timings

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hasession/hasession/bench/internal/cli"
	"github.com/hasession/hasession/bench/internal/report"
	"github.com/hasession/hasession/cluster"
	"github.com/redis/go-redis/v9"
)

// timingsKey is the key whose master the fault runs break: on a Cluster it fixes the
// shard, on Sentinel any key names the one master.
const timingsKey = "timings:{bench}"

// Run is the timings command: parse, measure, report.
func Run(ctx context.Context, args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("timings", flag.ContinueOnError)
	fs.SetOutput(progress)
	repeat := fs.Int("repeat", 3, "runs per measure; the table shows their median, min and max")
	asJSON := fs.Bool("json", false, "print the figures as JSON (every sample and the median) instead of a table")
	topoList := fs.String("topologies", "standalone,sentinel,cluster", "comma-separated topologies to measure")
	faultList := fs.String("faults", "kill,pause,partition", `comma-separated faults to inject on sentinel and cluster ("" or none: start-up only)`)
	timeout := fs.Duration("timeout", 60*time.Second, "bound on every wait; starting a topology gets twice as long")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: go run ./bench timings [--repeat N] [--json] [--topologies LIST] [--faults LIST] [--timeout D]

Measures, for each topology, the time from cluster.Run to a healthy topology and the total
with its removal; for sentinel and cluster, for each fault, the time from the fault to the
promotion of a replica and to the old master's return as a replica with the topology
healthy again. Progress goes to stderr, the table (or JSON) to stdout.

flags:
`)
		fs.PrintDefaults()
	}
	if ok, err := cli.ParseFlags(fs, args); !ok {
		return err
	}
	if *repeat < 1 {
		return fmt.Errorf("--repeat must be at least 1, got %d", *repeat)
	}
	if *timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", *timeout)
	}
	kinds, err := cli.ParseList(*topoList, cluster.ParseKind)
	if err != nil {
		return err
	}
	if len(kinds) == 0 {
		return errors.New("--topologies names no topology")
	}
	faults, err := cli.ParseList(*faultList, cluster.ParseFaultKind)
	if err != nil {
		return err
	}
	// go-redis logs every failed dial; those to a node a fault took down are expected and
	// would bury the progress lines.
	redis.SetLogger(cli.QuietRedis{})

	// Whatever happens below, nothing this process started outlives it.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cli.RemoveTimeout)
		defer cancel()
		if err := cluster.TerminateAll(cctx); err != nil {
			fmt.Fprintf(progress, "remove: %v\n", err)
		}
	}()
	if n, err := cluster.Sweep(ctx); err == nil && n > 0 {
		fmt.Fprintf(progress, "removed %d containers/networks left behind by earlier runs\n", n)
	}
	// Resolve the image once, so that no sample includes looking it up (or building it).
	img, err := cluster.EnsureImage(ctx)
	if err != nil {
		return err
	}

	b := &timer{
		repeat:   *repeat,
		timeout:  *timeout,
		opts:     []cluster.Option{cluster.WithImage(img)},
		progress: progress,
		res:      &results{Repeat: *repeat},
	}
	for _, kind := range kinds {
		var kf []cluster.FaultKind
		if kind != cluster.KindStandalone {
			kf = faults
		}
		b.declare(kind, kf)
	}
	for _, kind := range kinds {
		if ctx.Err() != nil {
			break
		}
		var kf []cluster.FaultKind
		if kind != cluster.KindStandalone {
			kf = faults
		}
		b.measureKind(ctx, kind, kf)
	}

	if *asJSON {
		err = writeJSON(out, b.res)
	} else {
		err = writeTable(out, b.res)
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: the figures above are partial (%w)", ctx.Err())
	}
	if n := b.res.failures(); n > 0 {
		return fmt.Errorf("%d measurement(s) failed (see above)", n)
	}
	return nil
}

// Measure names.
const (
	measureHealthy = "run→healthy"
	measureRemoved = "run→removed" // Run until healthy plus Terminate
)

func measurePromoted(f cluster.FaultKind) string { return string(f) + "→promoted" }
func measureRejoined(f cluster.FaultKind) string { return string(f) + "→rejoined" }

// series holds the samples of one measure of one topology.
type series struct {
	Topology string
	Measure  string
	Samples  []time.Duration
	Errors   []string // one per failed attempt
}

// results holds every series in the order they are printed.
type results struct {
	Repeat int
	Series []*series
}

func (r *results) get(topology, measure string) *series {
	for _, s := range r.Series {
		if s.Topology == topology && s.Measure == measure {
			return s
		}
	}
	s := &series{Topology: topology, Measure: measure}
	r.Series = append(r.Series, s)
	return s
}

func (r *results) add(topology, measure string, d time.Duration) {
	s := r.get(topology, measure)
	s.Samples = append(s.Samples, d)
}

func (r *results) fail(topology, measure string, err error) {
	s := r.get(topology, measure)
	s.Errors = append(s.Errors, err.Error())
}

func (r *results) failures() int {
	n := 0
	for _, s := range r.Series {
		n += len(s.Errors)
	}
	return n
}

// stats summarises samples: their median (the mean of the two middle ones for an even
// count), min and max. N is 0 for no samples.
type stats struct {
	Median, Min, Max time.Duration
	N                int
}

func summarize(samples []time.Duration) stats {
	if len(samples) == 0 {
		return stats{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = s[n/2-1] + (s[n/2]-s[n/2-1])/2
	}
	return stats{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// writeTable prints one line per measure. RUNS is the number of samples, "ok/attempts"
// when some attempts failed; a measure without a sample shows "-".
func writeTable(w io.Writer, r *results) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPOLOGY\tMEASURE\tMEDIAN\tMIN\tMAX\tRUNS")
	for _, s := range r.Series {
		st := summarize(s.Samples)
		runs := strconv.Itoa(st.N)
		if len(s.Errors) > 0 {
			runs = fmt.Sprintf("%d/%d", st.N, st.N+len(s.Errors))
		}
		if st.N == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s\n", s.Topology, s.Measure, runs)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Topology, s.Measure, report.Secs(st.Median), report.Secs(st.Min), report.Secs(st.Max), runs)
	}
	return tw.Flush()
}

type jsonSeries struct {
	Topology string    `json:"topology"`
	Measure  string    `json:"measure"`
	Samples  []float64 `json:"samples_s"`
	Median   *float64  `json:"median_s"` // null without samples
	Min      *float64  `json:"min_s"`
	Max      *float64  `json:"max_s"`
	Runs     int       `json:"runs"`
	Failed   int       `json:"failed"`
	Errors   []string  `json:"errors,omitempty"`
}

type jsonReport struct {
	Repeat  int          `json:"repeat"`
	Results []jsonSeries `json:"results"`
}

// writeJSON prints the report as indented JSON: every sample in seconds (in the order
// measured) and the median, min and max.
func writeJSON(w io.Writer, r *results) error {
	jr := jsonReport{Repeat: r.Repeat, Results: make([]jsonSeries, 0, len(r.Series))}
	for _, s := range r.Series {
		st := summarize(s.Samples)
		js := jsonSeries{
			Topology: s.Topology,
			Measure:  s.Measure,
			Samples:  make([]float64, 0, len(s.Samples)),
			Runs:     st.N,
			Failed:   len(s.Errors),
			Errors:   s.Errors,
		}
		for _, d := range s.Samples {
			js.Samples = append(js.Samples, report.Seconds(d))
		}
		if st.N > 0 {
			js.Median, js.Min, js.Max = report.Ptr(report.Seconds(st.Median)), report.Ptr(report.Seconds(st.Min)), report.Ptr(report.Seconds(st.Max))
		}
		jr.Results = append(jr.Results, js)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jr)
}

// timer runs the measurements and collects them in res.
type timer struct {
	repeat   int
	timeout  time.Duration
	opts     []cluster.Option
	progress io.Writer
	res      *results
}

// declare creates the kind's series up front, so the table keeps its order whatever fails.
func (b *timer) declare(kind cluster.Kind, faults []cluster.FaultKind) {
	k := string(kind)
	b.res.get(k, measureHealthy)
	b.res.get(k, measureRemoved)
	for _, f := range faults {
		b.res.get(k, measurePromoted(f))
		b.res.get(k, measureRejoined(f))
	}
}

func (b *timer) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, format+"\n", args...)
}

// held is a running topology. sampled marks the one a start-up sample is still open for:
// its removal completes that sample's run→removed figure.
type held struct {
	topo    cluster.Topology
	healthy time.Duration
	sampled bool
	label   string
}

// start runs a topology of the kind, bounded by twice the timeout. It returns the
// topology even with an error (nil when nothing was created), and how long Run took.
func (b *timer) start(ctx context.Context, kind cluster.Kind) (cluster.Topology, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*b.timeout)
	defer cancel()
	t0 := time.Now()
	topo, err := cluster.Run(rctx, kind, b.opts...)
	return topo, time.Since(t0), err
}

// release removes h's topology, if any, and completes its open start-up sample.
func (b *timer) release(kind cluster.Kind, h *held) {
	if h.topo == nil {
		return
	}
	d, err := cli.Remove(h.topo)
	h.topo = nil
	if !h.sampled {
		if err != nil {
			b.logf("remove %s: %v", kind, err)
		}
		return
	}
	h.sampled = false
	if err != nil {
		b.res.fail(string(kind), measureRemoved, err)
		b.logf("%s remove failed: %v", h.label, err)
		return
	}
	b.res.add(string(kind), measureRemoved, h.healthy+d)
	b.logf("%s removed after %s (%s in all)", h.label, report.Secs(d), report.Secs(h.healthy+d))
}

// measureKind takes the start-up samples of a kind and then, on the topology of its last
// start-up run, the fault samples. That topology's removal, timed at the end, completes
// the last run→removed sample.
func (b *timer) measureKind(ctx context.Context, kind cluster.Kind, faults []cluster.FaultKind) {
	k := string(kind)
	h := &held{}
	defer b.release(kind, h)
	for i := 1; i <= b.repeat && ctx.Err() == nil; i++ {
		label := fmt.Sprintf("[%s run %d/%d]", kind, i, b.repeat)
		keep := len(faults) > 0 && i == b.repeat
		topo, d, err := b.start(ctx, kind)
		if err != nil {
			if topo != nil {
				if _, rerr := cli.Remove(topo); rerr != nil {
					b.logf("remove %s: %v", kind, rerr)
				}
			}
			if ctx.Err() != nil {
				return
			}
			b.res.fail(k, measureHealthy, err)
			b.res.fail(k, measureRemoved, err)
			b.logf("%s failed after %s: %v", label, report.Secs(d), err)
			continue
		}
		b.res.add(k, measureHealthy, d)
		*h = held{topo: topo, healthy: d, sampled: true, label: label}
		if keep {
			b.logf("%s healthy after %s; kept for the fault runs", label, report.Secs(d))
			break
		}
		b.logf("%s healthy after %s", label, report.Secs(d))
		b.release(kind, h)
	}
	if len(faults) == 0 || ctx.Err() != nil {
		return
	}
	for _, f := range faults {
		for i := 1; i <= b.repeat && ctx.Err() == nil; i++ {
			label := fmt.Sprintf("[%s %s %d/%d]", kind, f, i, b.repeat)
			if h.topo == nil {
				b.logf("%s starting a %s topology…", label, kind)
				topo, d, err := b.start(ctx, kind)
				if err != nil {
					if topo != nil {
						_, _ = cli.Remove(topo)
					}
					if ctx.Err() != nil {
						return
					}
					b.res.fail(k, measurePromoted(f), err)
					b.res.fail(k, measureRejoined(f), err)
					b.logf("%s could not start a topology: %v", label, err)
					continue
				}
				*h = held{topo: topo, healthy: d, label: label}
			}
			healthy := b.faultRun(ctx, h.topo, f, label)
			if ctx.Err() != nil {
				return
			}
			if !healthy {
				b.logf("%s the topology did not recover: replacing it", label)
				b.release(kind, h)
			}
		}
	}
}

// faultRun injects the fault on the master of timingsKey and records the time from the
// fault to the promotion of a replica and to the old master's return as a replica with
// the topology healthy. It reports whether the topology is healthy at the end.
func (b *timer) faultRun(ctx context.Context, topo cluster.Topology, f cluster.FaultKind, label string) (healthy bool) {
	k := string(topo.Kind())
	failBoth := func(err error) {
		if ctx.Err() != nil {
			return
		}
		b.res.fail(k, measurePromoted(f), err)
		b.res.fail(k, measureRejoined(f), err)
		b.logf("%s %v", label, err)
	}
	// bounded runs one wait under the timeout.
	bounded := func(fn func(context.Context) error) error {
		wctx, cancel := context.WithTimeout(ctx, b.timeout)
		defer cancel()
		return fn(wctx)
	}

	if err := bounded(topo.WaitHealthy); err != nil {
		failBoth(fmt.Errorf("not healthy before the fault: %w", err))
		return false
	}
	var old *cluster.Node
	if err := bounded(func(ctx context.Context) (err error) {
		old, err = topo.MasterForKey(ctx, timingsKey)
		return err
	}); err != nil {
		failBoth(fmt.Errorf("master of %s: %w", timingsKey, err))
		return true
	}
	var fault *cluster.Fault
	if err := bounded(func(ctx context.Context) (err error) {
		fault, err = topo.Inject(ctx, f, old, time.Minute)
		return err
	}); err != nil {
		failBoth(fmt.Errorf("inject %s on %s: %w", f, old.Name, err))
		return false
	}

	var promoted *cluster.Node
	perr := bounded(func(ctx context.Context) (err error) {
		promoted, err = topo.WaitPromotion(ctx, timingsKey, old)
		return err
	})
	if perr == nil {
		d := time.Since(fault.Start)
		b.res.add(k, measurePromoted(f), d)
		b.logf("%s %s %s; promoted %s after %s", label, f, old.Name, promoted.Name, report.Secs(d))
	} else if ctx.Err() == nil {
		perr = fmt.Errorf("no promotion after %s %s: %w", f, old.Name, perr)
		b.res.fail(k, measurePromoted(f), perr)
		b.logf("%s %v", label, perr)
	}

	// Heal in any case, then wait for the old master to follow as a replica.
	rerr := bounded(fault.Heal)
	if rerr != nil {
		rerr = fmt.Errorf("heal %s %s: %w", f, old.Name, rerr)
	} else if err := bounded(func(ctx context.Context) error { return topo.WaitRole(ctx, old, cluster.RoleReplica) }); err != nil {
		rerr = fmt.Errorf("%s did not rejoin as a replica: %w", old.Name, err)
	} else if err := bounded(topo.WaitHealthy); err != nil {
		rerr = fmt.Errorf("not healthy after %s rejoined: %w", old.Name, err)
	}
	if ctx.Err() != nil {
		return false
	}
	switch {
	case rerr != nil:
		b.res.fail(k, measureRejoined(f), rerr)
		b.logf("%s %v", label, rerr)
		return false
	case perr != nil:
		// Healthy again, but the figure would not measure a failover.
		b.res.fail(k, measureRejoined(f), errors.New("no promotion to rejoin after"))
		return true
	}
	d := time.Since(fault.Start)
	b.res.add(k, measureRejoined(f), d)
	b.logf("%s %s rejoined as a replica, healthy after %s", label, old.Name, report.Secs(d))
	return true
}
