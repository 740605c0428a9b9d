package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster/history"
	"github.com/hasession/hasession/store"
)

// The history checker beside a drill run: checkApps app servers, each a store on a
// go-redis client of its own, work on checkUsers users' sessions while the faults
// hit; every call is recorded and the history is checked with porcupine against the
// store's documented consistency (the store package's "Consistency").
const (
	checkApps    = 3
	checkUsers   = 32
	checkWorkers = 2 // callers per app server
	checkMaxOps  = 100_000
	checkHTML    = 10 // visualisations written at most
)

// checker is a running checker workload.
type checker struct {
	w      *history.Workload
	rdbs   []redis.UniversalClient
	stores []*store.Store
	done   chan struct{}
}

// stats sums the counters of the checker's stores (the near-cache's among them).
func (chk *checker) stats() store.Stats {
	var sum store.Stats
	for _, st := range chk.stores {
		sum = sum.Add(st.Stats())
	}
	return sum
}

// checkReport is the checker's verdict on one run, as the report shows it.
type checkReport struct {
	Consistent bool     `json:"consistent"`
	Verdict    string   `json:"verdict"` // yes, no, or undecided (a partition's search timed out)
	Ops        int      `json:"operations"`
	Unknown    int      `json:"unknown_outcome"`
	Partitions int      `json:"partitions"`
	Undecided  int      `json:"undecided"`
	Violations []string `json:"violations,omitempty"` // one line each
	HTML       []string `json:"html,omitempty"`       // porcupine's visualisation of failing partitions
	Error      string   `json:"error,omitempty"`
}

// startCheck starts the checker's workload on the run's target, with the run's
// write acknowledgement; it stops when stop closes, or at its bounds.
func startCheck(ctx context.Context, c *Config, tgt target, spec runSpec, stop <-chan struct{}) (*checker, error) {
	opts, cfg := checkSetup(c, spec)
	chk := &checker{done: make(chan struct{})}
	var apps []history.App
	for range checkApps {
		rdb := store.NewFailoverClient(tgt.options())
		chk.rdbs = append(chk.rdbs, rdb)
		plain, err := store.New(rdb, opts...)
		if err != nil {
			chk.close()
			return nil, err
		}
		checked, err := store.New(rdb, append(opts, store.WithVersionCheck(true))...)
		if err != nil {
			chk.close()
			return nil, err
		}
		apps = append(apps, history.App{Plain: plain, Checked: checked})
		chk.stores = append(chk.stores, plain, checked)
	}
	chk.w = history.NewWorkload(apps, cfg)
	go func() {
		defer close(chk.done)
		chk.w.Run(ctx, stop)
	}()
	return chk, nil
}

// checkSetup is the checker's store options and workload of a run: with the
// near-cache (--cache) its stores have it on, and its loads may be as stale as a
// revocation waits (history's "Bounded staleness").
func checkSetup(c *Config, spec runSpec) ([]store.Option, history.Config) {
	prefix := fmt.Sprintf("hs:drill-check:%d:", time.Now().UnixNano())
	opts := []store.Option{store.WithPrefix(prefix), store.WithIdleTimeout(sessionIdle), store.WithLifetime(sessionLifetime),
		store.WithGracePeriod(5 * time.Minute)} // forwards outlive the history
	if spec.Wait {
		opts = append(opts, store.WithWriteAck(1, spec.WaitTimeout), store.WithWriteAckPolicy(spec.Ack))
	}
	cfg := history.Config{
		Users:         checkUsers,
		WorkersPerApp: checkWorkers,
		MaxOps:        checkMaxOps,
		MaxDuration:   c.duration + overrun,
		OpTimeout:     sessionTimeout,
		Seed:          uint64(time.Now().UnixNano()),
	}
	if spec.Cache {
		near := store.NearCache{}
		opts = append(opts, store.WithNearCache(near))
		cfg.LoadStaleness = history.NearCacheStaleness(near)
	}
	return opts, cfg
}

// check waits for the workload to stop, checks its history and writes the visualisation
// of failing partitions under out.
func (chk *checker) check(out, run string) *checkReport {
	<-chk.done
	res := history.Check(chk.w.Recorder().Ops())
	r := &checkReport{Consistent: res.Consistent, Ops: res.Ops, Unknown: res.Unknown,
		Partitions: res.Partitions, Undecided: len(res.Undecided)}
	for _, v := range res.Violations {
		r.Violations = append(r.Violations, v.String())
	}
	switch {
	case len(res.Violations) > 0:
		r.Verdict = "no"
	case !res.Consistent:
		r.Verdict = "undecided"
	default:
		r.Verdict = "yes"
	}
	if !res.Consistent {
		dir := filepath.Join(out, "checker-"+slug(run))
		paths, err := res.WriteHTML(dir, checkHTML)
		r.HTML = paths
		if err != nil {
			r.Error = "visualisation: " + err.Error()
		}
	}
	return r
}

func (chk *checker) close() {
	for _, rdb := range chk.rdbs {
		_ = rdb.Close()
	}
}

// slug makes a run's name a file name: "hasession WAIT 1" → "hasession-wait-1".
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
