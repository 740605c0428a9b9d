package drill

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hasession/hasession/bench/internal/report"
	"github.com/hasession/hasession/cluster/history"
	"github.com/hasession/hasession/store"
)

// bucket is the width of the chart's time buckets.
const bucket = 100 * time.Millisecond

// slow is the latency from which a request counts as slow for its user.
const slow = time.Second

// Report is what a drill measured: drill.json, the table and the chart.
type Report struct {
	Topology    string       `json:"topology"`
	Existing    bool         `json:"existing_deployment"`
	Fault       string       `json:"fault"`
	Faults      int          `json:"faults"`
	HoldS       float64      `json:"hold_s"`
	Clients     int          `json:"clients"`
	Inflight    int          `json:"inflight"`
	AckPolicy   string       `json:"ack_policy"`
	Users       int          `json:"users"`
	Rate        float64      `json:"rate"`
	DurationS   float64      `json:"duration_s"`
	WarmupS     float64      `json:"warmup_s"`
	RequestCap  int          `json:"request_cap"`
	NearCache   bool         `json:"near_cache"` // --cache: hasession's stores had the near-cache on
	Runs        []*runReport `json:"runs"`
	Passed      bool         `json:"passed"`
	Verdict     string       `json:"verdict"`
	GeneratedAt string       `json:"generated_at"`
}

// runReport is one store's run.
type runReport struct {
	Name  string `json:"name"`
	Store string `json:"store"` // hasession, scs or raw
	Wait  bool   `json:"wait"`
	Cache bool   `json:"near_cache"` // hasession with the near-cache (--cache)
	// AckPolicy is what a save WAIT could not confirm did: best-effort (accepted and
	// counted in UnackedSaves) or required (failed); "" without WAIT.
	AckPolicy string `json:"ack_policy,omitempty"`

	Requests int     `json:"requests"`
	OK       int     `json:"ok"`
	Errors   int     `json:"errors"`  // dropped requests included
	Dropped  int     `json:"dropped"` // never sent: --inflight requests were in flight
	LoadS    float64 `json:"load_s"`

	// Users: those who sent a request in the load, and of them those who saw an error
	// or a request slower than 1 s (latency from the request's scheduled start).
	Users         int `json:"users"`
	UsersAffected int `json:"users_affected"`
	UsersError    int `json:"users_error"`
	UsersSlow     int `json:"users_slow"`

	// Shards: requests counted on the shard serving the user's session when the
	// request started; Faulted is the shard the faults hit.
	Shards []*shard `json:"shards"`

	// UnackedSaves are the writes (saves, login index entries) accepted although no
	// replica confirmed them (AckPolicy best-effort): acknowledged to the user, with
	// the durability of a write without WAIT.
	UnackedSaves int64 `json:"saved_without_replica_ack"`

	Phases []phase `json:"phases"` // before, during, after the faults, and all

	Faults     []*faultEvent `json:"fault_events"`
	PromotionS *float64      `json:"promotion_s"` // the first fault's; null without one
	RecoveryS  *float64      `json:"recovery_s"`

	Sessions     int      `json:"sessions"`    // users whose session was read back (the probe included)
	AckedSaves   int      `json:"acked_saves"` // logins and updates the server acknowledged
	Verified     int      `json:"verified"`    // sessions found with every acknowledged save
	Lost         int      `json:"lost"`        // sessions missing, or behind an acknowledged save
	Regressed    int      `json:"regressed"`   // of them: a response showed the loss during the load
	VerifyErrors []string `json:"verify_errors,omitempty"`

	ErrorSamples []errorSample `json:"error_samples,omitempty"`
	StoreStats   any           `json:"store_stats,omitempty"`

	// NearCache: the counters of the load's store's near-cache (--cache);
	// CheckerNearCache: those of the history checker's stores, summed.
	NearCache        *nearCacheReport `json:"near_cache_stats,omitempty"`
	CheckerNearCache *nearCacheReport `json:"checker_near_cache_stats,omitempty"`

	// Checker is the history checker's verdict on this run (hasession runs, --check).
	Checker *checkReport `json:"checker,omitempty"`
	Series  series       `json:"series"`
}

// nearCacheReport is a near-cache's counters (store.Stats' Near…) at a run's end.
type nearCacheReport struct {
	Hits     int64    `json:"hits"`   // loads served from memory
	Misses   int64    `json:"misses"` // loads that read Redis
	HitRatio *float64 `json:"hit_ratio"`
	// Evictions by cause: an invalidation from Redis, a lapsed lease, a closed or
	// replaced connection (a failover, a reconnect), the size limit.
	EvictedInvalidated int64 `json:"evicted_invalidated"`
	EvictedLease       int64 `json:"evicted_lease"`
	EvictedReconnect   int64 `json:"evicted_reconnect"`
	EvictedCapacity    int64 `json:"evicted_capacity"`
	LeaseWaits         int64 `json:"lease_waits"` // revocations that waited the lease
	Connects           int64 `json:"connects"`    // tracking connections opened
	Fallbacks          int64 `json:"fallbacks"`   // misses read through the client
}

func nearCacheOf(s store.Stats) *nearCacheReport {
	r := &nearCacheReport{Hits: s.NearHits, Misses: s.NearMisses,
		EvictedInvalidated: s.NearEvictedInvalidated, EvictedLease: s.NearEvictedLease,
		EvictedReconnect: s.NearEvictedReconnect, EvictedCapacity: s.NearEvictedCapacity,
		LeaseWaits: s.NearLeaseWaits, Connects: s.NearConnects, Fallbacks: s.NearFallbacks}
	if n := r.Hits + r.Misses; n > 0 {
		r.HitRatio = report.Ptr(math.Round(1e4*float64(r.Hits)/float64(n)) / 1e4)
	}
	return r
}

// String is the counters in one line.
func (r *nearCacheReport) String() string {
	ratio := "–"
	if r.HitRatio != nil {
		ratio = fmt.Sprintf("%.1f%%", 100**r.HitRatio)
	}
	return fmt.Sprintf("%d hits, %d misses (hit ratio %s); evicted: %d invalidated, %d lease lapsed, %d reconnect, %d capacity; %d revocations waited the lease, %d tracking connections, %d fallbacks",
		r.Hits, r.Misses, ratio, r.EvictedInvalidated, r.EvictedLease, r.EvictedReconnect, r.EvictedCapacity, r.LeaseWaits, r.Connects, r.Fallbacks)
}

// shard is one shard's share of a run.
type shard struct {
	Name     string   `json:"name"`
	Faulted  bool     `json:"faulted"`
	Requests int      `json:"requests"`
	Errors   int      `json:"errors"`
	P99MS    *float64 `json:"p99_ms"`
	// From each fault's start until the topology was healthy again (100 ms buckets
	// wholly inside): the fewest requests the shard completed in any 500 ms (5
	// consecutive buckets; null without a fault), and the buckets in which it completed
	// none. A shard that stops serving shows 0; one that serves through the fault does
	// not, although a loaded machine can stall the whole process for a bucket or two.
	MinOK500ms   *int `json:"min_ok_per_500ms_during_faults"`
	EmptyBuckets int  `json:"empty_100ms_buckets_during_faults"`
	// MinOKUntilPromotion is the fewest requests the shard completed between a fault's
	// start and the promotion of a replica (the time the faulted shard has no master);
	// null without a promotion.
	MinOKUntilPromotion *int `json:"min_ok_until_promotion"`
}

// phase is the requests that started in one phase of a run.
type phase struct {
	Phase    string   `json:"phase"`
	FromS    float64  `json:"from_s"`
	ToS      float64  `json:"to_s"`
	Requests int      `json:"requests"`
	Errors   int      `json:"errors"`
	P50MS    *float64 `json:"p50_ms"`
	P99MS    *float64 `json:"p99_ms"`
	MaxMS    *float64 `json:"max_ms"`
}

// errorSample is one error message users saw, and how often.
type errorSample struct {
	Message string `json:"message"`
	Count   int    `json:"count"`
}

// series is the run per time bucket, by the requests' completion time.
type series struct {
	BucketMS int       `json:"bucket_ms"`
	OK       []int     `json:"ok"`
	Errors   []int     `json:"errors"`
	P99MS    []float64 `json:"p99_ms"`   // 0 for a bucket without requests
	ShardOK  [][]int   `json:"shard_ok"` // OK per shard (the order of Shards)
}

func newReport(c *Config) *Report {
	return &Report{
		Topology: string(c.topology), Existing: c.existing(), Fault: c.fault, Faults: c.faults,
		HoldS: report.Seconds(c.hold), Clients: c.clients, Inflight: c.inflight, AckPolicy: c.ack.String(), Users: c.users, Rate: c.rate,
		DurationS: report.Seconds(c.duration), WarmupS: report.Seconds(c.warmup), RequestCap: c.requests, NearCache: c.cache,
		Runs: []*runReport{}, GeneratedAt: time.Now().UTC().Format(time.RFC3339),
	}
}

// finish sets the verdict: hasession's runs must have no error and no lost session;
// comparison runs are reported only.
func (r *Report) finish() {
	var bad, unacked []string
	for _, run := range r.Runs {
		if run.Store != "hasession" {
			continue
		}
		if run.UnackedSaves > 0 {
			unacked = append(unacked, fmt.Sprintf("%s: %d saved without replica acknowledgement", run.Name, run.UnackedSaves))
		}
		var what []string
		if run.Errors > 0 {
			what = append(what, fmt.Sprintf("%d failed requests", run.Errors))
			if run.Dropped > 0 {
				what[len(what)-1] += fmt.Sprintf(" (%d dropped at the in-flight bound)", run.Dropped)
			}
		}
		if run.Lost > 0 {
			what = append(what, fmt.Sprintf("%d sessions lost", run.Lost))
		}
		for _, f := range run.Faults {
			if f.Error != "" {
				what = append(what, "fault: "+f.Error)
			}
		}
		if ch := run.Checker; ch != nil && len(ch.Violations) > 0 {
			what = append(what, fmt.Sprintf("the history checker found %d violations", len(ch.Violations)))
		}
		if len(what) > 0 {
			bad = append(bad, run.Name+": "+strings.Join(what, ", "))
		}
	}
	r.Passed = len(bad) == 0 && len(r.Runs) > 0
	switch {
	case len(r.Runs) == 0:
		r.Verdict = "nothing ran"
	case r.Passed:
		r.Verdict = "PASS: no request failed and every acknowledged save was read back"
		if r.checked() {
			r.Verdict += "; the history checker found every history consistent"
		}
	default:
		r.Verdict = "FAIL: " + strings.Join(bad, "; ")
	}
	if len(r.Runs) > 0 && len(unacked) > 0 {
		r.Verdict += " (" + strings.Join(unacked, "; ") + ")"
	}
}

// checked reports whether every hasession run's history was checked and found
// consistent (none undecided).
func (r *Report) checked() bool {
	n := 0
	for _, run := range r.Runs {
		if run.Store != "hasession" {
			continue
		}
		if run.Checker == nil || !run.Checker.Consistent {
			return false
		}
		n++
	}
	return n > 0
}

func (r *Report) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// build fills the run's figures from its records.
func (run *runReport) build(recs []requestRecord, errMsgs map[string]int, probeOK []time.Time, t0 time.Time, loadTime time.Duration) {
	run.LoadS = report.Seconds(loadTime)
	run.Requests = len(recs)
	for _, r := range recs {
		if r.ok {
			run.OK++
		}
		if r.dropped {
			run.Dropped++
		}
	}
	run.Errors = run.Requests - run.OK

	// Users who saw an error or a slow request.
	type seen struct{ any, err, slow bool }
	users := map[int32]*seen{}
	for _, r := range recs {
		u := users[r.user]
		if u == nil {
			u = &seen{}
			users[r.user] = u
		}
		u.any = true
		u.err = u.err || !r.ok
		u.slow = u.slow || r.end-r.start > slow
	}
	for _, u := range users {
		run.Users++
		if u.err {
			run.UsersError++
		}
		if u.slow {
			run.UsersSlow++
		}
		if u.err || u.slow {
			run.UsersAffected++
		}
	}

	// Phases: requests that ended before the first fault, requests that overlapped the
	// time from it until the topology was healthy after the last one, and requests that
	// started after that.
	type span struct {
		name     string
		from, to time.Duration
	}
	var bounds []span
	if len(run.Faults) > 0 {
		first := run.Faults[0].start.Sub(t0)
		last := run.Faults[len(run.Faults)-1].healthy.Sub(t0)
		bounds = append(bounds, span{"before", 0, first}, span{"during", first, last}, span{"after", last, loadTime})
	}
	bounds = append(bounds, span{"all", 0, loadTime})
	for _, b := range bounds {
		ph := phase{Phase: b.name, FromS: report.Seconds(b.from), ToS: report.Seconds(b.to)}
		var lat []time.Duration
		for _, r := range recs {
			if b.name != "all" && phaseOf(r, bounds[0].to, bounds[1].to) != b.name {
				continue
			}
			ph.Requests++
			if !r.ok {
				ph.Errors++
			}
			lat = append(lat, r.end-r.start)
		}
		ph.P50MS, ph.P99MS, ph.MaxMS = latencies(lat)
		run.Phases = append(run.Phases, ph)
	}

	// Each fault's window runs from its start to the next fault's start. Recovery: the
	// end of the probe's longest gap between acknowledged updates that ends in the
	// window (the gap that spans the fault's start included); none when the probe saved
	// nothing between the fault and the next one.
	slices.SortFunc(probeOK, func(a, b time.Time) int { return a.Compare(b) })
	for i, f := range run.Faults {
		until := t0.Add(loadTime)
		if i+1 < len(run.Faults) {
			until = run.Faults[i+1].start
		}
		f.WindowEndS = report.Seconds(until.Sub(t0))
		from, to := f.start.Sub(t0), until.Sub(t0)
		var lat []time.Duration
		for _, r := range recs {
			if r.start >= from && r.start < to {
				f.Requests++
				if !r.ok {
					f.Errors++
				}
				lat = append(lat, r.end-r.start)
			}
		}
		_, f.P99MS, _ = latencies(lat)
		var best time.Duration
		var end time.Time
		for j := 1; j < len(probeOK); j++ {
			if probeOK[j].Before(f.start) || !probeOK[j].Before(until) {
				continue
			}
			if gap := probeOK[j].Sub(probeOK[j-1]); gap > best {
				best, end = gap, probeOK[j]
			}
		}
		if !end.IsZero() {
			f.RecoveryS = report.Ptr(report.Seconds(end.Sub(f.start)))
		}
	}
	if len(run.Faults) > 0 {
		run.PromotionS, run.RecoveryS = run.Faults[0].PromotedS, run.Faults[0].RecoveryS
	}

	for m, n := range errMsgs {
		run.ErrorSamples = append(run.ErrorSamples, errorSample{Message: m, Count: n})
	}
	slices.SortFunc(run.ErrorSamples, func(a, b errorSample) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Message, b.Message))
	})
	if len(run.ErrorSamples) > 5 {
		run.ErrorSamples = run.ErrorSamples[:5]
	}

	// The series, by completion time, in all and per shard.
	n := int(loadTime/bucket) + 1
	s := series{BucketMS: int(bucket / time.Millisecond), OK: make([]int, n), Errors: make([]int, n), P99MS: make([]float64, n)}
	for range run.Shards {
		s.ShardOK = append(s.ShardOK, make([]int, n))
	}
	lat := make([][]time.Duration, n)
	shardLat := make([][]time.Duration, len(run.Shards))
	for _, r := range recs {
		i := min(max(int(r.end/bucket), 0), n-1)
		if r.ok {
			s.OK[i]++
		} else {
			s.Errors[i]++
		}
		lat[i] = append(lat[i], r.end-r.start)
		if r.shard >= 0 && int(r.shard) < len(run.Shards) {
			sh := run.Shards[r.shard]
			sh.Requests++
			if r.ok {
				s.ShardOK[r.shard][i]++
			} else {
				sh.Errors++
			}
			shardLat[r.shard] = append(shardLat[r.shard], r.end-r.start)
		}
	}
	for i, l := range lat {
		if len(l) > 0 {
			slices.Sort(l)
			s.P99MS[i] = millis(quantile(l, 0.99))
		}
	}
	for _, f := range run.Faults {
		if f.PromotedS == nil {
			continue
		}
		from, to := f.start.Sub(t0), f.start.Sub(t0)+time.Duration(*f.PromotedS*float64(time.Second))
		counts := make([]int, len(run.Shards))
		for _, r := range recs {
			if r.ok && r.shard >= 0 && int(r.shard) < len(counts) && r.end >= from && r.end < to {
				counts[r.shard]++
			}
		}
		for i, sh := range run.Shards {
			if sh.MinOKUntilPromotion == nil || counts[i] < *sh.MinOKUntilPromotion {
				sh.MinOKUntilPromotion = &counts[i]
			}
		}
	}
	for i, sh := range run.Shards {
		_, sh.P99MS, _ = latencies(shardLat[i])
		ok := s.ShardOK[i]
		for _, f := range run.Faults {
			from, to := max(int(f.start.Sub(t0)/bucket)+1, 0), min(int(f.healthy.Sub(t0)/bucket), n) // buckets wholly inside
			for b := from; b < to; b++ {
				if ok[b] == 0 {
					sh.EmptyBuckets++
				}
			}
			for b := from; b < to && (b == from || b+5 <= to); b++ { // a fault shorter than 500 ms is one window
				v := 0
				for _, c := range ok[b:min(b+5, to)] {
					v += c
				}
				if sh.MinOK500ms == nil || v < *sh.MinOK500ms {
					sh.MinOK500ms = &v
				}
			}
		}
	}
	run.Series = s
}

// latencies returns the median, p99 and maximum of lat in milliseconds (nil for no
// samples); it sorts lat.
func latencies(lat []time.Duration) (p50, p99, maxMS *float64) {
	if len(lat) == 0 {
		return nil, nil, nil
	}
	slices.Sort(lat)
	return report.Ptr(millis(quantile(lat, 0.50))), report.Ptr(millis(quantile(lat, 0.99))), report.Ptr(millis(lat[len(lat)-1]))
}

// phaseOf returns the phase of a request: before (it ended before the fault),
// after (it started once the topology was healthy again) or during.
func phaseOf(r requestRecord, faultStart, healthy time.Duration) string {
	switch {
	case r.end < faultStart:
		return "before"
	case r.start >= healthy:
		return "after"
	}
	return "during"
}

// quantile returns the q-quantile of sorted samples (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := max(int(math.Ceil(q*float64(len(sorted))))-1, 0)
	return sorted[min(i, len(sorted)-1)]
}

func millis(d time.Duration) float64 { return math.Round(float64(d)/1e5) / 10 }

// fmtMS formats milliseconds for the table: "–" for none.
func fmtMS(v *float64) string {
	switch {
	case v == nil:
		return "–"
	case *v >= 1000:
		return strconv.FormatFloat(*v/1000, 'f', 2, 64) + "s"
	case *v >= 100:
		return strconv.FormatFloat(*v, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64) + "ms"
}

func fmtS(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64) + "s"
}

// writeTable prints the report as tables.
func writeTable(w io.Writer, r *Report) error {
	where := "a containerized " + r.Topology
	if r.Existing {
		where = "an existing " + r.Topology + " deployment"
	}
	faults := "no fault"
	if r.Faults > 0 {
		faults = fmt.Sprintf("%d × %s", r.Faults, r.Fault)
	}
	rate := "unlimited"
	if r.Rate > 0 {
		rate = strconv.FormatFloat(r.Rate, 'f', -1, 64) + " req/s"
	}
	load := fmt.Sprintf("open loop at %s, at most %d in flight", rate, r.Inflight)
	if r.Rate == 0 {
		load = fmt.Sprintf("%d clients as fast as they go", r.Clients)
	}
	cache := ""
	if r.NearCache {
		cache = fmt.Sprintf(", near-cache on (lease %s; the checker allows a load %s of staleness)",
			store.DefaultNearCacheLease, history.NearCacheStaleness(store.NearCache{}))
	}
	fmt.Fprintf(w, "drill: %s, %s, %d users, %s, %.0fs of load per run (warm-up %.0fs), WAIT shortfall: %s%s\n\n",
		where, faults, r.Users, load, r.DurationS, r.WarmupS, r.AckPolicy, cache)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPHASE\tFROM\tTO\tREQUESTS\tERRORS\tP50\tP99\tMAX")
	for _, run := range r.Runs {
		for i, ph := range run.Phases {
			name := ""
			if i == 0 {
				name = run.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%.1fs\t%d\t%d\t%s\t%s\t%s\n", name, ph.Phase, ph.FromS, ph.ToS, ph.Requests, ph.Errors, fmtMS(ph.P50MS), fmtMS(ph.P99MS), fmtMS(ph.MaxMS))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSHARD\tREQUESTS\tERRORS\tP99\tDURING FAULTS: MIN OK/500MS\tEMPTY 100MS\tOK UNTIL PROMOTION")
	for _, run := range r.Runs {
		for i, sh := range run.Shards {
			name := ""
			if i == 0 {
				name = run.Name
			}
			minOK, empty, untilPromotion := "–", "–", "–"
			if sh.MinOK500ms != nil {
				minOK, empty = strconv.Itoa(*sh.MinOK500ms), strconv.Itoa(sh.EmptyBuckets)
			}
			if sh.MinOKUntilPromotion != nil {
				untilPromotion = strconv.Itoa(*sh.MinOKUntilPromotion)
			}
			fmt.Fprintf(tw, "%s\t%s%s\t%d\t%d\t%s\t%s\t%s\t%s\n", name, sh.Name, map[bool]string{true: " (faulted)"}[sh.Faulted], sh.Requests, sh.Errors, fmtMS(sh.P99MS), minOK, empty, untilPromotion)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tFAULTED\tPROMOTED\tPROMOTION\tRECOVERY\tSESSIONS\tACKED SAVES\tVERIFIED\tLOST")
	for _, run := range r.Runs {
		faulted, promoted := "–", "–"
		if len(run.Faults) > 0 {
			faulted = run.Faults[0].Node
			promoted = cmp.Or(run.Faults[0].Promoted, "–")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", run.Name, faulted, promoted, fmtS(run.PromotionS), fmtS(run.RecoveryS), run.Sessions, run.AckedSaves, run.Verified, run.Lost)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, run := range r.Runs {
		fmt.Fprintf(w, "%s: users affected: %d of %d (%.1f%%) saw an error or a request slower than %s (%d an error, %d a slow request)\n",
			run.Name, run.UsersAffected, run.Users, 100*float64(run.UsersAffected)/float64(max(run.Users, 1)), slow, run.UsersError, run.UsersSlow)
		fmt.Fprintf(w, "%s: dropped at the in-flight bound (counted as failed): %d\n", run.Name, run.Dropped)
		if run.Wait {
			fmt.Fprintf(w, "%s: saved without replica acknowledgement (WAIT shortfall %s): %d\n", run.Name, cmp.Or(run.AckPolicy, "–"), run.UnackedSaves)
		}
		if run.NearCache != nil {
			fmt.Fprintf(w, "%s: near-cache: %s\n", run.Name, run.NearCache)
		}
		if run.CheckerNearCache != nil {
			fmt.Fprintf(w, "%s: near-cache of the history checker's stores: %s\n", run.Name, run.CheckerNearCache)
		}
	}
	for _, run := range r.Runs {
		for i, f := range run.Faults {
			if len(run.Faults) > 1 || f.Error != "" {
				fmt.Fprintf(w, "%s: fault %d: %s %s at %.1fs (window to %.1fs: %d requests, %d errors, p99 %s), promoted %s after %s, recovery %s",
					run.Name, i+1, f.Kind, f.Node, f.StartS, f.WindowEndS, f.Requests, f.Errors, fmtMS(f.P99MS), cmp.Or(f.Promoted, "–"), fmtS(f.PromotedS), fmtS(f.RecoveryS))
				if f.Error != "" {
					fmt.Fprintf(w, ", error: %s", f.Error)
				}
				fmt.Fprintln(w)
			}
		}
		for _, e := range run.ErrorSamples {
			fmt.Fprintf(w, "%s: %d × %s\n", run.Name, e.Count, e.Message)
		}
		for _, e := range run.VerifyErrors {
			fmt.Fprintf(w, "%s: read back: %s\n", run.Name, e)
		}
	}
	for _, run := range r.Runs {
		ch := run.Checker
		if ch == nil {
			continue
		}
		fmt.Fprintf(w, "%s: history checker: consistent: %s, %d operations (%d with an unknown outcome) of %d users, %d violations",
			run.Name, ch.Verdict, ch.Ops, ch.Unknown, ch.Partitions, len(ch.Violations))
		if ch.Undecided > 0 {
			fmt.Fprintf(w, ", %d users undecided (search timed out)", ch.Undecided)
		}
		fmt.Fprintln(w)
		for _, v := range ch.Violations {
			fmt.Fprintf(w, "%s:   violation: %s\n", run.Name, v)
		}
		for _, h := range ch.HTML {
			fmt.Fprintf(w, "%s:   history: %s\n", run.Name, h)
		}
		if ch.Error != "" {
			fmt.Fprintf(w, "%s:   %s\n", run.Name, ch.Error)
		}
	}
	fmt.Fprintf(w, "\n%s\n", r.Verdict)
	return nil
}

// writeHTML writes a self-contained page: per run, throughput, errors and p99 per
// bucket as inline SVG, with the faults marked.
func writeHTML(w *strings.Builder, r *Report) {
	e := html.EscapeString
	fmt.Fprintf(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hasession drill: %s, %s</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #ddd}
th:first-child,td:first-child{text-align:left}
.pass{color:#1a7f37}.fail{color:#cf222e}
svg text{font:11px system-ui,sans-serif;fill:#444}
.legend span{display:inline-block;margin-right:16px}
</style></head><body>
`, e(r.Topology), e(r.Fault))
	fmt.Fprintf(w, "<h1>hasession failover drill</h1>\n<p>%s topology%s, fault: %s × %d, %d clients, %d users, rate %s, %.0fs of load per run. Generated %s.</p>\n",
		e(r.Topology), map[bool]string{true: " (existing deployment)", false: " (containerized)"}[r.Existing], e(r.Fault), r.Faults, r.Clients, r.Users,
		map[bool]string{true: "unlimited", false: strconv.FormatFloat(r.Rate, 'f', -1, 64) + " req/s"}[r.Rate == 0], r.DurationS, e(r.GeneratedAt))
	cls := "fail"
	if r.Passed {
		cls = "pass"
	}
	fmt.Fprintf(w, "<p class=%q><b>%s</b></p>\n", cls, e(r.Verdict))
	fmt.Fprint(w, "<table><tr><th>run</th><th>requests</th><th>errors</th><th>p99 before</th><th>p99 during</th><th>p99 after</th><th>max</th><th>promotion</th><th>recovery</th><th>sessions</th><th>lost</th><th>dropped</th><th>users affected</th><th>saved without replica ack</th></tr>\n")
	for _, run := range r.Runs {
		p99 := map[string]string{}
		var maxMS *float64
		for _, ph := range run.Phases {
			p99[ph.Phase] = fmtMS(ph.P99MS)
			if ph.Phase == "all" {
				maxMS = ph.MaxMS
			}
		}
		fmt.Fprintf(w, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d of %d</td><td>%d</td></tr>\n",
			e(run.Name), run.Requests, run.Errors, cmp.Or(p99["before"], "–"), cmp.Or(p99["during"], "–"), cmp.Or(p99["after"], "–"), fmtMS(maxMS), fmtS(run.PromotionS), fmtS(run.RecoveryS), run.Sessions, run.Lost,
			run.Dropped, run.UsersAffected, run.Users, run.UnackedSaves)
	}
	fmt.Fprint(w, "</table>\n")
	fmt.Fprintf(w, `<p class="legend"><span style="color:#2f6fde">■ completed requests/s</span><span style="color:#bc4c00">┄ on the faulted shard</span><span style="color:#57606a">┄ on each other shard</span><span style="color:#cf222e">■ errors per %d ms</span><span style="color:#8250df">■ p99 latency per %d ms</span><span style="color:#cf222e">┆ fault</span><span style="color:#bf8700">┆ promotion</span><span style="color:#1a7f37">┆ healthy again</span></p>`+"\n", bucket/time.Millisecond, bucket/time.Millisecond)
	for _, run := range r.Runs {
		fmt.Fprintf(w, "<h2>%s</h2>\n", e(run.Name))
		writeSVG(w, run)
	}
	fmt.Fprint(w, "</body></html>\n")
}

// writeSVG draws three panels sharing the time axis.
func writeSVG(w *strings.Builder, run *runReport) {
	const (
		width, left, right = 960, 60, 20
		panelH, gap, top   = 110, 34, 10
	)
	s := run.Series
	n := max(len(s.OK), 1)
	bucketS := float64(s.BucketMS) / 1000
	spanS := float64(n) * bucketS
	plotW := float64(width - left - right)
	x := func(sec float64) float64 { return left + plotW*sec/spanS }
	height := top + 3*(panelH+gap) + 10

	thr := make([]float64, n)
	errs := make([]float64, n)
	for i := range s.OK {
		thr[i] = float64(s.OK[i]) / bucketS
		errs[i] = float64(s.Errors[i])
	}
	panels := []struct {
		title, color, unit string
		vals               []float64
		bars               bool
	}{
		{"completed requests/s", "#2f6fde", "/s", thr, false},
		{fmt.Sprintf("errors per %d ms", s.BucketMS), "#cf222e", "", errs, true},
		{fmt.Sprintf("p99 latency per %d ms", s.BucketMS), "#8250df", "ms", s.P99MS, false},
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`+"\n",
		width, height, width, height, html.EscapeString(run.Name))
	for pi, p := range panels {
		y0 := float64(top + pi*(panelH+gap) + 14)
		yb := y0 + panelH
		peak := 0.0
		for _, v := range p.vals {
			peak = max(peak, v)
		}
		scale := niceCeil(peak)
		y := func(v float64) float64 { return yb - panelH*v/scale }
		fmt.Fprintf(w, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-4, p.title)
		fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="#fafafa" stroke="#ccc"/>`+"\n", left, y0, plotW, panelH)
		for _, f := range []float64{0, 0.5, 1} {
			fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s%s</text>`+"\n", left-4, y(f*scale)+4, strconv.FormatFloat(f*scale, 'g', 4, 64), p.unit)
			if f > 0 {
				fmt.Fprintf(w, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, left+plotW, y(f*scale), y(f*scale))
			}
		}
		// Fault marks.
		for _, f := range run.Faults {
			fx := x(f.StartS)
			if f.HealthyS != nil {
				fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="#cf222e" fill-opacity="0.07"/>`+"\n", fx, y0, max(x(f.StartS+*f.HealthyS)-fx, 1), panelH)
			}
			mark(w, fx, y0, yb, "#cf222e", pi == 0, f.Kind+" "+f.Node)
			if f.PromotedS != nil {
				mark(w, x(f.StartS+*f.PromotedS), y0, yb, "#bf8700", pi == 0, "promoted")
			}
			if f.HealthyS != nil {
				mark(w, x(f.StartS+*f.HealthyS), y0, yb, "#1a7f37", pi == 0, "healthy")
			}
		}
		if p.bars {
			bw := max(plotW/float64(n), 1)
			for i, v := range p.vals {
				if v > 0 {
					fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x(float64(i)*bucketS), y(v), bw, yb-y(v), p.color)
				}
			}
		} else {
			var pts strings.Builder
			for i, v := range p.vals {
				fmt.Fprintf(&pts, "%.1f,%.1f ", x((float64(i)+0.5)*bucketS), y(v))
			}
			fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1.3" points="%s"/>`+"\n", p.color, strings.TrimSpace(pts.String()))
		}
		if pi == 0 && len(s.ShardOK) > 1 {
			for si, ok := range s.ShardOK {
				color := "#57606a"
				if si < len(run.Shards) && run.Shards[si].Faulted {
					color = "#bc4c00"
				}
				var pts strings.Builder
				for i, v := range ok {
					fmt.Fprintf(&pts, "%.1f,%.1f ", x((float64(i)+0.5)*bucketS), y(float64(v)/bucketS))
				}
				fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1" stroke-dasharray="3 2" points="%s"/>`+"\n", color, strings.TrimSpace(pts.String()))
			}
		}
		// Time axis.
		step := niceCeil(spanS / 10)
		for t := 0.0; t <= spanS+1e-9; t += step {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%ss</text>`+"\n", x(t), yb+13, strconv.FormatFloat(t, 'g', 4, 64))
		}
	}
	fmt.Fprint(w, "</svg>\n")
}

func mark(w *strings.Builder, x, y0, y1 float64, color string, label bool, text string) {
	fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3" stroke-width="1.2"/>`+"\n", x, x, y0, y1, color)
	if label {
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="%s" style="fill:%s">%s</text>`+"\n", x+3, y0+11, color, color, html.EscapeString(text))
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
