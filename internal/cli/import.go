package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/legacy"
	"github.com/hasession/hasession/store"
)

// ErrInterrupted is returned by import when its context ended (Ctrl-C) before the SCAN
// did: it printed the counts so far. What was moved stays moved; running the command
// again goes on from there.
var ErrInterrupted = errors.New("interrupted: the counts are those so far; run the command again to go on")

// newLayout builds a legacy layout whose sessions are moved through st's client (and
// retry policy), with the import flags of e (--legacy-prefix, --adapter-prefix). Its
// error is about those flags: a usage error.
type newLayout func(st *store.Store, e *env) (legacy.Layout, error)

// layouts are the legacy layouts import moves sessions from, by their --from name.
var layouts = map[string]newLayout{
	"scs": newSCS,
}

// newSCS returns the layout of scs's goredisstore, moving to the scs adapter's keys, with
// the store's retry policy; --legacy-prefix and --adapter-prefix override the default
// prefixes (both scs:session:). Values are checked with scs's default codec (gob).
func newSCS(st *store.Store, e *env) (legacy.Layout, error) {
	cfg := legacy.DefaultSCSConfig()
	if e.legacyPrefix != nil {
		cfg.LegacyPrefix = *e.legacyPrefix
	}
	if e.adapterPrefix != nil {
		cfg.Prefix = *e.adapterPrefix
	}
	retry := func(ctx context.Context, name string, op func(context.Context) (any, error)) (any, error) {
		return store.RetryValue(ctx, st, name, op)
	}
	return legacy.NewSCS(st.Client(), retry, cfg)
}

// layoutNames returns the names of the registered layouts, sorted.
func layoutNames() []string { return slices.Sorted(maps.Keys(layouts)) }

// Import's limits.
const (
	defaultBatch    = 1000             // --batch: keys per SCAN call and per Move
	defaultWorkers  = 4                // --workers: batches moved at once
	maxWorkers      = 64               // --workers at most
	maxBatch        = 100_000          // --batch at most
	maxRestarts     = 5                // scans of one master started over after a failover
	failoverWait    = 30 * time.Second // time for a new master to take over
	failoverPoll    = 250 * time.Millisecond
	corruptExamples = 10 // corrupt keys listed by name and reason
)

// nodeImport is what import did on one master.
type nodeImport struct {
	Addr     string `json:"addr"`
	Legacy   int64  `json:"legacy_keys"` // the first SCAN pass's count
	Scanned  int64  `json:"scanned"`
	Imported int64  `json:"imported"`
	Skipped  int64  `json:"skipped"`
	Corrupt  int64  `json:"corrupt"`
	Restarts int    `json:"restarts,omitempty"` // scans started over after a failover
	Error    string `json:"error,omitempty"`
}

// corruptKey is a legacy key left as it is, and why.
type corruptKey struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// importJSON is import's --json output.
type importJSON struct {
	Deployment  string       `json:"deployment"`
	From        string       `json:"from"`
	DryRun      bool         `json:"dry_run"`
	Legacy      int64        `json:"legacy_keys"`
	Scanned     int64        `json:"scanned"`
	Imported    int64        `json:"imported"`
	Skipped     int64        `json:"skipped"`
	Corrupt     int64        `json:"corrupt"`
	CorruptKeys []corruptKey `json:"corrupt_keys"` // the first few
	Seconds     float64      `json:"seconds"`
	PerSecond   float64      `json:"sessions_per_second"`
	Interrupted bool         `json:"interrupted,omitempty"`
	Error       string       `json:"error,omitempty"`
	Nodes       []nodeImport `json:"nodes"`
}

// checkImport checks import's flags before anything is sent.
func (e *env) checkImport() error {
	switch _, ok := layouts[e.from]; {
	case len(layouts) == 0:
		return &UsageError{Msg: "no legacy layout is built in"}
	case e.from == "":
		return &UsageError{Msg: fmt.Sprintf("give --from NAME, one of %s", strings.Join(layoutNames(), ", "))}
	case !ok:
		return &UsageError{Msg: fmt.Sprintf("unknown layout --from %q: want one of %s", e.from, strings.Join(layoutNames(), ", "))}
	}
	if e.workers <= 0 || e.workers > maxWorkers {
		return &UsageError{Msg: fmt.Sprintf("--workers %d: want 1 to %d", e.workers, maxWorkers)}
	}
	if e.batch <= 0 || e.batch > maxBatch {
		return &UsageError{Msg: fmt.Sprintf("--batch %d: want 1 to %d", e.batch, maxBatch)}
	}
	return nil
}

func runImport(ctx context.Context, e *env) error {
	if err := e.checkImport(); err != nil {
		return err
	}
	st, err := e.newStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st)
	layout, err := layouts[e.from](st, e)
	if err != nil {
		// A layout's constructor checks its flags only (a prefix it cannot use).
		return &UsageError{Msg: fmt.Sprintf("--from %s: %v", e.from, err)}
	}
	kind, err := e.kind(ctx)
	if err != nil {
		return err
	}
	targets, err := e.targets(ctx, kind)
	if err != nil {
		return err
	}
	out := importJSON{Deployment: kind, From: layout.Name(), DryRun: e.dryRun, CorruptKeys: []corruptKey{}}
	nodes := make([]nodeImport, len(targets))
	for i, t := range targets {
		nodes[i].Addr = t.addr
	}

	// The total of the progress display: a first SCAN pass that only counts the keys
	// matching the layout's pattern (no values are read). It is the number of legacy
	// keys when the import starts; keys that expire or appear meanwhile, and keys a
	// SCAN returns twice, make the done count differ from it, and the display then
	// shows what was done.
	start := time.Now()
	fmt.Fprintf(e.stderr, "counting the %s sessions on %d master(s) (a SCAN pass that reads no values)...\n", layout.Name(), len(targets))
	for i, t := range targets {
		var n int64
		_, restarts, err := e.scanMaster(ctx, kind, t, layout.Match(), 1, func() { n = 0 },
			func(_ context.Context, keys []string) error { n += int64(len(keys)); return nil })
		nodes[i].Legacy, nodes[i].Restarts = n, restarts
		out.Legacy += n
		if err != nil {
			return e.importFailed(ctx, &out, nodes, start, fmt.Errorf("count on %s: %w", t.addr, err))
		}
	}
	fmt.Fprintf(e.stderr, "%d %s session key(s) in %s\n", out.Legacy, layout.Name(), time.Since(start).Round(time.Millisecond))

	label := "import " + layout.Name()
	if e.dryRun {
		label += " (dry run)"
	}
	pr := startProgress(e.stderr, isTerminal(e.stderr), label, out.Legacy)
	start = time.Now()
	var mu sync.Mutex            // guards the counts, from the workers of scanMaster
	corrupt := map[string]bool{} // a key SCAN returns twice is counted once
	var failed error
	for i, t := range targets {
		n := &nodes[i]
		last, restarts, err := e.scanMaster(ctx, kind, t, layout.Match(), e.workers, func() {}, func(ctx context.Context, keys []string) error {
			res, err := call(ctx, e, func(ctx context.Context) ([]legacy.Result, error) { return layout.Move(ctx, keys, e.dryRun) })
			if err != nil {
				return fmt.Errorf("move: %w", err)
			}
			mu.Lock()
			defer mu.Unlock()
			n.Scanned += int64(len(keys))
			for _, r := range res {
				switch r.Outcome {
				case legacy.Imported:
					n.Imported++
				case legacy.Skipped:
					n.Skipped++
				case legacy.Corrupt:
					if corrupt[r.Key] {
						continue
					}
					corrupt[r.Key] = true
					n.Corrupt++
					if len(out.CorruptKeys) < corruptExamples {
						reason := "corrupt"
						var ce *legacy.CorruptError
						switch {
						case errors.As(r.Err, &ce) && ce.Err != nil:
							reason = ce.Err.Error() // the key is shown apart
						case r.Err != nil:
							reason = r.Err.Error()
						}
						out.CorruptKeys = append(out.CorruptKeys, corruptKey{r.Key, reason})
					}
				}
			}
			pr.add(int64(len(keys)))
			return nil
		})
		n.Addr = last.addr
		n.Restarts += restarts
		out.Scanned += n.Scanned
		out.Imported += n.Imported
		out.Skipped += n.Skipped
		out.Corrupt += n.Corrupt
		if err != nil {
			n.Error = err.Error()
			failed = fmt.Errorf("%s: %w", last.addr, err)
			break
		}
	}
	pr.stop()
	if failed != nil {
		return e.importFailed(ctx, &out, nodes, start, failed)
	}
	out.Nodes = nodes
	e.importTimes(&out, start)
	return e.printImport(&out)
}

// importTimes sets the import's duration and rate.
func (e *env) importTimes(out *importJSON, start time.Time) {
	d := time.Since(start)
	out.Seconds = d.Seconds()
	if d > 0 {
		out.PerSecond = float64(out.Scanned) / d.Seconds()
	}
}

// importFailed prints the counts so far and returns the error (ErrInterrupted when the
// context ended), marked as reported.
func (e *env) importFailed(ctx context.Context, out *importJSON, nodes []nodeImport, start time.Time, err error) error {
	if ctx.Err() != nil {
		out.Interrupted = true
		err = ErrInterrupted
	}
	out.Error = err.Error()
	out.Nodes = nodes
	e.importTimes(out, start)
	if perr := e.printImport(out); perr != nil {
		return perr
	}
	return &reportedError{err}
}

func (e *env) printImport(out *importJSON) error {
	if e.json {
		return writeJSON(e.stdout, out)
	}
	fmt.Fprintf(e.stdout, "import from %s (%s, %d master(s))", out.From, out.Deployment, len(out.Nodes))
	if out.DryRun {
		fmt.Fprint(e.stdout, ": dry run, nothing was written (imported: would be imported)")
	}
	fmt.Fprintln(e.stdout)
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MASTER\tLEGACY KEYS\tSCANNED\tIMPORTED\tSKIPPED\tCORRUPT\tNOTE")
	for _, n := range out.Nodes {
		note := n.Error
		if n.Restarts > 0 {
			note = strings.TrimSpace(fmt.Sprintf("scan started over %d time(s) after a failover %s", n.Restarts, note))
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", n.Addr, n.Legacy, n.Scanned, n.Imported, n.Skipped, n.Corrupt, note)
	}
	fmt.Fprintf(w, "total\t%d\t%d\t%d\t%d\t%d\t\n", out.Legacy, out.Scanned, out.Imported, out.Skipped, out.Corrupt)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "took %s, %s\n", time.Duration(out.Seconds*float64(time.Second)).Round(time.Millisecond),
		strings.Replace(formatRate(out.PerSecond), "/s", " sessions/s", 1))
	if out.Corrupt > 0 {
		fmt.Fprintf(e.stdout, "corrupt keys, left as they are (%d of %d):\n", len(out.CorruptKeys), out.Corrupt)
		w = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, c := range out.CorruptKeys {
			fmt.Fprintf(w, "  %s\t%s\n", c.Key, c.Reason)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if out.Interrupted {
		fmt.Fprintln(e.stdout, "interrupted: run the command again to go on (what was moved stays moved)")
	}
	return nil
}

// scanMaster SCANs one master for the keys matching pattern, --batch keys per call, and
// hands them to fn in batches of at least --batch keys (fewer at the end), from up to
// workers goroutines at once. begin is called before each scan. When a SCAN or fn fails
// on a Cluster or a Sentinel-managed master, scanMaster waits for a master to serve the
// target's slots (or for the sentinels to name one), and starts the scan over on it — a
// failover invalidates the cursor — at most maxRestarts times. It returns the target
// scanned last and the number of restarts.
func (e *env) scanMaster(ctx context.Context, kind string, t target, pattern string, workers int, begin func(), fn func(context.Context, []string) error) (target, int, error) {
	restarts := 0
	for {
		begin()
		err := e.scanNode(ctx, t.addr, pattern, workers, fn)
		if err == nil || ctx.Err() != nil || kind == kindStandalone {
			return t, restarts, err
		}
		if restarts == maxRestarts {
			return t, restarts, fmt.Errorf("%w (scan started over %d times)", err, restarts)
		}
		next, werr := e.successor(ctx, kind, t)
		if werr != nil {
			return t, restarts, fmt.Errorf("%w; then %w", err, werr)
		}
		t = next
		restarts++
	}
}

// scanNode SCANs one node for the keys matching pattern and hands them to fn in batches,
// from workers goroutines: the next SCAN runs while batches are moved. The first error
// stops the scan and the workers; scanNode returns when they are done.
func (e *env) scanNode(ctx context.Context, addr, pattern string, workers int, fn func(context.Context, []string) error) error {
	c := redis.NewClient(e.nodeOptions(addr))
	defer c.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range batches {
				if err := fn(ctx, b); err != nil {
					cancel(err) // the first cause is kept
				}
			}
		})
	}
	err := e.scanBatches(ctx, c, pattern, batches)
	close(batches)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // a worker's error: the SCAN's, if any, is its consequence
	}
	return err
}

// scanBatches SCANs c for the keys matching pattern and sends them on batches, at least
// --batch keys at a time (fewer at the end), until the SCAN ends or ctx does.
func (e *env) scanBatches(ctx context.Context, c *redis.Client, pattern string, batches chan<- []string) error {
	var cursor uint64
	var batch []string
	for {
		scan, err := call(ctx, e, func(ctx context.Context) (*redis.ScanCmd, error) {
			cmd := c.Scan(ctx, cursor, pattern, int64(e.batch))
			return cmd, cmd.Err()
		})
		if err != nil {
			return fmt.Errorf("SCAN: %w", err)
		}
		var keys []string
		keys, cursor = scan.Val()
		batch = append(batch, keys...)
		if len(batch) > 0 && (len(batch) >= e.batch || cursor == 0) {
			select {
			case batches <- batch:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			batch = nil
		}
		if cursor == 0 {
			return nil
		}
	}
}

// successor waits, polling up to failoverWait, for the master that now serves t's
// slot (a Cluster) or that the sentinels name (Sentinel), and returns it once it
// answers as a master.
func (e *env) successor(ctx context.Context, kind string, t target) (target, error) {
	deadline := time.Now().Add(failoverWait)
	tick := time.NewTicker(failoverPoll)
	defer tick.Stop()
	for {
		addr, err := e.currentMaster(ctx, kind, t)
		if err == nil {
			err = e.answersAsMaster(ctx, addr)
		}
		if err == nil {
			return target{addr: addr, slot: t.slot}, nil
		}
		if time.Now().After(deadline) {
			return t, fmt.Errorf("no master took over from %s within %s: %w", t.addr, failoverWait, err)
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-tick.C:
		}
	}
}

// currentMaster returns the address of the master that serves t's slot now (a Cluster)
// or that a majority of the sentinels names.
func (e *env) currentMaster(ctx context.Context, kind string, t target) (string, error) {
	if kind == kindSentinel {
		masters, err := e.masters(ctx, kind)
		if err != nil {
			return "", err
		}
		return masters[0], nil
	}
	shards, _, err := e.clusterShards(ctx)
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= t.slot && t.slot <= r.End {
				if m := shardMaster(sh); m != nil {
					return nodeAddr(*m), nil
				}
				return "", fmt.Errorf("slot %d: its shard has no master", t.slot)
			}
		}
	}
	return "", fmt.Errorf("slot %d: served by no shard", t.slot)
}

// answersAsMaster returns nil when the node at addr answers INFO as a master.
func (e *env) answersAsMaster(ctx context.Context, addr string) error {
	c := redis.NewClient(e.nodeOptions(addr))
	defer c.Close()
	info, err := call(ctx, e, func(ctx context.Context) (string, error) { return c.Info(ctx, "replication").Result() })
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if role := infoField(info, "role"); role != "master" {
		return fmt.Errorf("%s is a %s", addr, role)
	}
	return nil
}

// reportedError is an error whose command already printed its report (with --json, one
// JSON document that holds the error): Main prints it on stderr only.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }
