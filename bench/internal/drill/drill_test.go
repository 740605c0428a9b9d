package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/bench/internal/cli"
	"github.com/hasession/hasession/bench/internal/report"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

func TestDrillFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.topology != cluster.KindCluster || c.fault != "kill" || c.faults != 1 || c.compare != "none" || c.out != "drill-out" {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.runs(); len(got) != 2 || !got[0].Wait || got[1].Wait || got[0].Ack != store.AckBestEffort {
		t.Errorf("default runs: %+v, want hasession with WAIT (best-effort) and without", got)
	}
	if c.inflight != 1000 {
		t.Errorf("default in-flight bound %d", c.inflight)
	}
	c, err = parseFlags([]string{"--ack", "required", "--inflight", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.runs(); got[0].Ack != store.AckRequired || c.inflight != 5 {
		t.Errorf("--ack required --inflight 5: %+v, %d", got, c.inflight)
	}
	if c.requests < int(c.rate*c.duration.Seconds()) {
		t.Errorf("request cap %d", c.requests)
	}

	c, err = parseFlags([]string{"--topology", "standalone", "--compare", "scs"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.runs(); len(got) != 2 || got[0].Wait || got[1].Store != "scs" {
		t.Errorf("standalone runs: %+v, want hasession without WAIT, then scs", got)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--addrs", "127.0.0.1:6379", "--fault", "failover"}, "--yes"},
		{[]string{"--addrs", "127.0.0.1:6379", "--fault", "none"}, "--yes"},
		{[]string{"--addrs", "127.0.0.1:7000", "--fault", "kill", "--yes"}, "refused"},
		{[]string{"--addrs", "127.0.0.1:7000", "--fault", "pause", "--yes"}, "refused"},
		{[]string{"--addrs", "127.0.0.1:26379", "--topology", "sentinel", "--fault", "failover", "--yes"}, "--sentinel-master"},
		{[]string{"--addrs", "127.0.0.1:6379", "--topology", "standalone", "--fault", "failover", "--yes"}, "replica"},
		{[]string{"--yes"}, "--addrs only"},
		{[]string{"--topology", "standalone", "--fault", "failover"}, "replica"},
		{[]string{"--topology", "standalone", "--wait", "on"}, "replica"},
		{[]string{"--fault", "explode"}, "unknown fault"},
		{[]string{"--compare", "gorilla"}, "--compare"},
		{[]string{"--warmup", "20s"}, "--warmup"},
		{[]string{"--users", "2"}, "--users"},
		{[]string{"--ack", "maybe"}, "--ack"},
		{[]string{"--inflight", "0"}, "--inflight"},
		{[]string{"extra"}, "unexpected"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}

	c, err = parseFlags([]string{"--addrs", "10.0.0.1:26379,10.0.0.2:26379", "--sentinel-master", "mymaster", "--fault", "failover", "--yes"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.existing() || c.topology != cluster.KindSentinel || len(c.addrs) != 2 {
		t.Errorf("existing sentinel: %+v", c)
	}
}

func TestDrillRunBuild(t *testing.T) {
	t0 := time.Now()
	s := func(d float64) time.Duration { return time.Duration(d * float64(time.Second)) }
	f := &faultEvent{Kind: "kill", Node: "redis-0", start: t0.Add(s(2)), healthy: t0.Add(s(4))}
	f.PromotedS = report.Ptr(1.5)
	run := &runReport{Name: "x", Store: "hasession", Faults: []*faultEvent{f}, Sessions: 3, Verified: 3}
	recs := []requestRecord{
		{start: s(0.5), end: s(0.51), ok: true},
		{start: s(1.0), end: s(1.02), ok: true},
		{start: s(2.1), end: s(3.6), ok: true},
		{start: s(2.2), end: s(2.3), ok: false},
		{start: s(5.0), end: s(5.01), ok: true},
	}
	probe := []time.Time{t0.Add(s(1.9)), t0.Add(s(3.7)), t0.Add(s(3.8))}
	run.build(recs, map[string]int{"500 boom": 1}, probe, t0, s(6))
	if run.Requests != 5 || run.OK != 4 || run.Errors != 1 {
		t.Errorf("counts %d/%d/%d", run.Requests, run.OK, run.Errors)
	}
	want := map[string]int{"before": 2, "during": 2, "after": 1, "all": 5}
	for _, ph := range run.Phases {
		if ph.Requests != want[ph.Phase] {
			t.Errorf("phase %s: %d requests, want %d", ph.Phase, ph.Requests, want[ph.Phase])
		}
	}
	if got := run.Phases[1]; got.Errors != 1 || *got.MaxMS != 1500 {
		t.Errorf("during: %+v", got)
	}
	if run.RecoveryS == nil || *run.RecoveryS != 1.7 {
		t.Errorf("recovery %v, want 1.7", run.RecoveryS)
	}
	if run.PromotionS == nil || *run.PromotionS != 1.5 {
		t.Errorf("promotion %v", run.PromotionS)
	}
	if n := len(run.Series.OK); n != 61 {
		t.Errorf("%d buckets, want 61", n)
	}
	if run.Series.Errors[23] != 1 || run.Series.OK[36] != 1 || run.Series.P99MS[36] != 1500 {
		t.Errorf("series around the fault: errors %v ok %v", run.Series.Errors[20:40], run.Series.OK[20:40])
	}

	rep := &Report{Topology: "cluster", Fault: "kill", Faults: 1, Runs: []*runReport{run}}
	rep.finish()
	if rep.Passed || !strings.Contains(rep.Verdict, "1 failed requests") {
		t.Errorf("verdict %q (passed %v)", rep.Verdict, rep.Passed)
	}
	var table, page bytes.Buffer
	if err := writeTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"during", "1.50s", "1.70s", "500 boom", "FAIL"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var sb strings.Builder
	writeHTML(&sb, rep)
	page.WriteString(sb.String())
	for _, want := range []string{"<svg", "kill redis-0", "promoted", "</html>"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "<link", "@import"} {
		if strings.Contains(strings.ReplaceAll(page.String(), `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("page is not self-contained: has %q", bad)
		}
	}
}

// TestDrillFaultWindows: three faults, the second with the longest outage. Each fault's
// recovery and counts come from its own window (its start to the next fault's start);
// the second fault's gap is never charged to the first.
func TestDrillFaultWindows(t *testing.T) {
	t0 := time.Now()
	s := func(d float64) time.Duration { return time.Duration(d * float64(time.Second)) }
	var faults []*faultEvent
	for _, at := range []float64{5, 10, 20} {
		f := &faultEvent{Kind: "kill", Node: "redis-0", start: t0.Add(s(at)), healthy: t0.Add(s(at + 2))}
		f.StartS = at
		faults = append(faults, f)
	}
	// The probe saves every 50 ms but for the outages [5, 8), [10, 18) and [20, 21).
	outages := [][2]float64{{5, 8}, {10, 18}, {20, 21}}
	var probe []time.Time
	var recs []requestRecord
	for ms := 0; ms < 25000; ms += 50 {
		at := float64(ms) / 1000
		down := false
		for _, o := range outages {
			down = down || (at >= o[0] && at < o[1])
		}
		if !down {
			probe = append(probe, t0.Add(s(at)))
		}
		recs = append(recs, requestRecord{start: s(at), end: s(at + 0.01), ok: !down, user: int32(ms / 50 % 7)})
	}
	run := &runReport{Name: "x", Store: "hasession", Faults: faults}
	run.build(recs, map[string]int{}, probe, t0, s(25))
	for i, want := range []struct {
		recovery, windowEnd float64
		requests, errors    int
	}{{3, 10, 100, 60}, {8, 20, 200, 160}, {1, 25, 100, 20}} {
		f := run.Faults[i]
		if f.RecoveryS == nil || *f.RecoveryS != want.recovery {
			t.Errorf("fault %d: recovery %s, want %.2fs", i+1, fmtS(f.RecoveryS), want.recovery)
		}
		if f.WindowEndS != want.windowEnd || f.Requests != want.requests || f.Errors != want.errors {
			t.Errorf("fault %d: window to %.1fs, %d requests, %d errors; want to %.1fs, %d, %d", i+1, f.WindowEndS, f.Requests, f.Errors, want.windowEnd, want.requests, want.errors)
		}
	}
	if run.RecoveryS == nil || *run.RecoveryS != 3 {
		t.Errorf("the run's recovery (the first fault's) %s, want 3.00s", fmtS(run.RecoveryS))
	}
	// A fault after which the probe saved nothing before the next one has no recovery.
	run = &runReport{Name: "y", Store: "hasession", Faults: []*faultEvent{
		{start: t0.Add(s(5)), healthy: t0.Add(s(6))}, {start: t0.Add(s(7)), healthy: t0.Add(s(8))},
	}}
	run.build(nil, map[string]int{}, []time.Time{t0.Add(s(4.9)), t0.Add(s(9))}, t0, s(10))
	if run.Faults[0].RecoveryS != nil || run.Faults[1].RecoveryS == nil || *run.Faults[1].RecoveryS != 2 {
		t.Errorf("recoveries %s and %s, want – and 2.00s", fmtS(run.Faults[0].RecoveryS), fmtS(run.Faults[1].RecoveryS))
	}
}

// TestDrillUsersAndShards: the users who saw an error or a slow request, dropped
// requests, and per shard requests, errors, p99 and the fewest completions per bucket
// during the fault.
func TestDrillUsersAndShards(t *testing.T) {
	t0 := time.Now()
	s := func(d float64) time.Duration { return time.Duration(d * float64(time.Second)) }
	f := &faultEvent{Kind: "kill", Node: "redis-0", start: t0.Add(s(1)), healthy: t0.Add(s(2)), PromotedS: report.Ptr(0.5)}
	run := &runReport{Name: "x", Store: "hasession", Wait: true, AckPolicy: "best-effort", UnackedSaves: 4, Faults: []*faultEvent{f},
		Shards: []*shard{{Name: "slots 0-8191", Faulted: true}, {Name: "slots 8192-16383"}}}
	var recs []requestRecord
	for ms := 0; ms < 3000; ms += 10 {
		// user 0: shard 0, slow during the fault; user 1: shard 1, always fine.
		lat := 0.005
		if ms >= 1000 && ms < 2000 {
			lat = 1.5
		}
		recs = append(recs, requestRecord{start: s(float64(ms) / 1000), end: s(float64(ms)/1000 + lat), ok: true, user: 0, shard: 0})
		recs = append(recs, requestRecord{start: s(float64(ms) / 1000), end: s(float64(ms)/1000 + 0.005), ok: true, user: 1, shard: 1})
	}
	recs = append(recs, requestRecord{start: s(1.5), end: s(1.5), user: 2, shard: 0, dropped: true})
	run.build(recs, map[string]int{"dropped: 1 requests in flight (--inflight)": 1}, nil, t0, s(3))
	if run.Users != 3 || run.UsersAffected != 2 || run.UsersError != 1 || run.UsersSlow != 1 {
		t.Errorf("users %d, affected %d (error %d, slow %d); want 3, 2 (1, 1)", run.Users, run.UsersAffected, run.UsersError, run.UsersSlow)
	}
	if run.Dropped != 1 || run.Errors != 1 {
		t.Errorf("dropped %d, errors %d", run.Dropped, run.Errors)
	}
	faulted, other := run.Shards[0], run.Shards[1]
	if faulted.Requests != 301 || faulted.Errors != 1 || *faulted.P99MS != 1500 {
		t.Errorf("faulted shard: %d requests, %d errors, p99 %s", faulted.Requests, faulted.Errors, fmtMS(faulted.P99MS))
	}
	if other.Requests != 300 || other.Errors != 0 || *other.P99MS != 5 {
		t.Errorf("other shard: %d requests, %d errors, p99 %s", other.Requests, other.Errors, fmtMS(other.P99MS))
	}
	// During the fault (buckets 11-19) the slow requests of shard 0 complete 1.5 s
	// later: it completes none; shard 1 completes 10 per bucket.
	if *faulted.MinOKUntilPromotion != 0 || *other.MinOKUntilPromotion != 50 { // completed in [1, 1.5)
		t.Errorf("completed until the promotion: faulted %d, other %d; want 0 and 50", *faulted.MinOKUntilPromotion, *other.MinOKUntilPromotion)
	}
	if faulted.MinOK500ms == nil || *faulted.MinOK500ms != 0 || faulted.EmptyBuckets != 9 || other.MinOK500ms == nil || *other.MinOK500ms != 50 || other.EmptyBuckets != 0 {
		t.Errorf("during the fault: faulted %v per 500 ms, %d empty buckets; other %v, %d; want 0, 9 and 50, 0",
			*faulted.MinOK500ms, faulted.EmptyBuckets, *other.MinOK500ms, other.EmptyBuckets)
	}
	rep := &Report{Topology: "cluster", Fault: "kill", Faults: 1, Rate: 200, Inflight: 1, AckPolicy: "best-effort", Runs: []*runReport{run}}
	rep.finish()
	var table bytes.Buffer
	if err := writeTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"slots 0-8191 (faulted)", "users affected: 2 of 3 (66.7%)", "dropped at the in-flight bound (counted as failed): 1",
		"saved without replica acknowledgement (WAIT shortfall best-effort): 4", "1 failed requests (1 dropped at the in-flight bound)", "x: 4 saved without replica acknowledgement"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var page strings.Builder
	writeHTML(&page, rep)
	if !strings.Contains(page.String(), "on the faulted shard") || strings.Count(page.String(), `stroke-dasharray="3 2"`) != 2 {
		t.Error("the chart lacks the per-shard series")
	}
}

// checkJSON checks drill.json: every field present and the numbers consistent.
func checkJSON(t *testing.T, data []byte, wantRuns int, wantPromotion bool) *Report {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("drill.json: %v\n%s", err, data)
	}
	for _, k := range []string{"topology", "fault", "faults", "clients", "rate", "runs", "passed", "verdict"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("drill.json lacks %q", k)
		}
	}
	runs, _ := raw["runs"].([]any)
	for _, r := range runs {
		m, _ := r.(map[string]any)
		for _, k := range []string{"name", "requests", "ok", "errors", "phases", "fault_events", "promotion_s", "recovery_s", "sessions", "acked_saves", "verified", "lost", "series",
			"dropped", "users", "users_affected", "shards", "saved_without_replica_ack"} {
			if _, ok := m[k]; !ok {
				t.Errorf("run %v lacks %q", m["name"], k)
			}
		}
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != wantRuns {
		t.Fatalf("%d runs, want %d", len(rep.Runs), wantRuns)
	}
	for _, run := range rep.Runs {
		t.Logf("%s: %d requests, %d errors, promotion %s, recovery %s, %d sessions, %d acked saves, %d verified, %d lost; errors %v",
			run.Name, run.Requests, run.Errors, fmtS(run.PromotionS), fmtS(run.RecoveryS), run.Sessions, run.AckedSaves, run.Verified, run.Lost, run.ErrorSamples)
		if run.Requests == 0 || run.Requests != run.OK+run.Errors {
			t.Errorf("%s: requests %d != ok %d + errors %d", run.Name, run.Requests, run.OK, run.Errors)
		}
		if run.Lost > run.AckedSaves || run.Lost+run.Verified != run.Sessions {
			t.Errorf("%s: lost %d, verified %d, sessions %d, acked saves %d", run.Name, run.Lost, run.Verified, run.Sessions, run.AckedSaves)
		}
		sum, all := 0, -1
		for _, ph := range run.Phases {
			if ph.Phase == "all" {
				all = ph.Requests
			} else {
				sum += ph.Requests
			}
		}
		if all != run.Requests || (len(run.Phases) > 1 && sum != all) {
			t.Errorf("%s: phases hold %d and %d requests, want %d", run.Name, sum, all, run.Requests)
		}
		ok, errs := 0, 0
		for i := range run.Series.OK {
			ok += run.Series.OK[i]
			errs += run.Series.Errors[i]
		}
		if ok != run.OK || errs != run.Errors {
			t.Errorf("%s: series holds %d ok and %d errors, want %d and %d", run.Name, ok, errs, run.OK, run.Errors)
		}
		shardReqs, faulted := 0, 0
		for _, sh := range run.Shards {
			shardReqs += sh.Requests
			if sh.Faulted {
				faulted++
			}
		}
		if faulted != 1 || shardReqs > run.Requests || shardReqs < run.Requests*9/10 {
			t.Errorf("%s: %d faulted shards, shards hold %d of %d requests", run.Name, faulted, shardReqs, run.Requests)
		}
		if run.Users == 0 || run.UsersAffected > run.Users || run.Dropped > run.Errors {
			t.Errorf("%s: %d users, %d affected; %d dropped of %d errors", run.Name, run.Users, run.UsersAffected, run.Dropped, run.Errors)
		}
		for i, f := range run.Faults {
			if i+1 < len(run.Faults) && f.WindowEndS != run.Faults[i+1].StartS {
				t.Errorf("%s: fault %d's window ends at %.2fs, the next fault starts at %.2fs", run.Name, i+1, f.WindowEndS, run.Faults[i+1].StartS)
			}
		}
		if wantPromotion && (run.PromotionS == nil || *run.PromotionS <= 0) {
			t.Errorf("%s: no promotion time", run.Name)
		}
	}
	wantPassed := true
	for _, run := range rep.Runs {
		if run.Store == "hasession" && (run.Errors > 0 || run.Lost > 0) {
			wantPassed = false
		}
	}
	if rep.Passed != wantPassed {
		t.Errorf("passed = %v with %q", rep.Passed, rep.Verdict)
	}
	return &rep
}

// TestDrillCluster runs short drills against a Cluster the test starts: a kill through
// the drill's own fault path (hasession with WAIT, then scs + goredisstore), then the existing-deployment mode (a graceful failover,
// confirmed with --yes) aimed at the same Cluster.
func TestDrillCluster(t *testing.T) {
	cluster.RequireDocker(t)
	c, err := cluster.RunCluster(t.Context())
	cluster.Cleanup(t, c)
	if err != nil {
		t.Fatal(err)
	}
	short := []string{"--duration", "6s", "--warmup", "2s", "--clients", "4", "--users", "40", "--rate", "100"}

	t.Run("kill", func(t *testing.T) {
		// 200 users at 50 req/s: a user sends one request at a time, and one stuck on
		// the faulted shard (a login whose index or new session lives there) holds that
		// user's next requests; with few users most would be held within seconds.
		cfg, err := parseFlags(append(short, "--users", "200", "--rate", "50", "--wait", "on", "--compare", "scs", "--out", t.TempDir(), "--json"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg.topo = c
		var progress bytes.Buffer
		rep, err := runAll(t.Context(), cfg, &progress)
		t.Log(progress.String())
		if err != nil {
			t.Fatal(err)
		}
		var stdout bytes.Buffer
		if err := writeOutputs(cfg, rep, &stdout, io.Discard); err != nil {
			t.Fatal(err)
		}
		got := checkJSON(t, stdout.Bytes(), 2, true)
		for _, run := range got.Runs {
			if f := run.Faults; len(f) != 1 || f[0].Kind != "kill" || f[0].Promoted == "" || f[0].Promoted == f[0].Node {
				t.Errorf("%s: fault events %+v", run.Name, f)
			}
		}
		if got.Runs[1].Store != "scs" {
			t.Errorf("second run is %q, want scs", got.Runs[1].Store)
		}
		// One shard down: the others serve through the failover. From the kill until the
		// promotion, when the faulted shard has no master, each other shard completed
		// requests. (That they did in every 500 ms until the topology was healthy again
		// is logged: on a machine overloaded by other work, under -race, the whole
		// process can stall for a second.)
		for _, run := range got.Runs {
			if len(run.Shards) != 3 {
				t.Fatalf("%s: %d shards, want 3", run.Name, len(run.Shards))
			}
			for _, sh := range run.Shards {
				if sh.MinOK500ms == nil {
					t.Fatalf("%s: %s: no figure for the fault", run.Name, sh.Name)
				}
				if sh.MinOKUntilPromotion == nil {
					t.Fatalf("%s: %s: no figure until the promotion", run.Name, sh.Name)
				}
				t.Logf("%s: %s faulted %v: %d requests, %d errors, p99 %s; during the fault: %d completed until the promotion, at least %d per 500 ms, %d empty 100 ms buckets",
					run.Name, sh.Name, sh.Faulted, sh.Requests, sh.Errors, fmtMS(sh.P99MS), *sh.MinOKUntilPromotion, *sh.MinOK500ms, sh.EmptyBuckets)
				if !sh.Faulted && *sh.MinOKUntilPromotion == 0 {
					t.Errorf("%s: shard %s completed no request between the kill and the promotion", run.Name, sh.Name)
				}
			}
		}
		file, err := os.ReadFile(filepath.Join(cfg.out, "drill.json"))
		if err != nil || !bytes.Equal(file, stdout.Bytes()) {
			t.Errorf("drill.json differs from --json's output (%v)", err)
		}
		if !strings.Contains(progress.String(), "during") {
			t.Errorf("no progress line during the fault:\n%s", progress.String())
		}
	})

	t.Run("existing deployment, failover", func(t *testing.T) {
		hctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := c.WaitHealthy(hctx); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		args := append(short, "--addrs", strings.Join(c.Addrs(), ","), "--fault", "failover", "--yes", "--wait", "off", "--out", out)
		var stdout, stderr bytes.Buffer
		err := Run(t.Context(), args, &stdout, &stderr)
		t.Logf("drill: %v\n%s\n%s", err, stderr.String(), stdout.String())
		data, rerr := os.ReadFile(filepath.Join(out, "drill.json"))
		if rerr != nil {
			t.Fatal(rerr)
		}
		rep := checkJSON(t, data, 1, true)
		if !rep.Existing {
			t.Error("existing_deployment is false")
		}
		if (err == nil) != rep.Passed || (err != nil && !errors.Is(err, errFailed)) {
			t.Errorf("error %v with passed %v", err, rep.Passed)
		}
		for _, want := range []string{"RUN", "PROMOTION", "LOST"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("table lacks %q", want)
			}
		}
		if _, err := os.Stat(filepath.Join(out, "drill.html")); err != nil {
			t.Error(err)
		}
	})
}

// TestDrillSentinel runs the drill against a Sentinel deployment the test starts: a
// master kill in one run of hasession with WAIT 1. (On a loaded machine a fault on
// Sentinel takes 25-40 s to heal — the old master must resynchronise as a replica — so
// one fault: several in a row are TestDrillFaultWindows's.)
func TestDrillSentinel(t *testing.T) {
	cluster.RequireDocker(t)
	s, err := cluster.RunSentinel(t.Context())
	cluster.Cleanup(t, s)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--topology", "sentinel", "--fault", "kill", "--faults", "1", "--wait", "on", "--duration", "6s", "--warmup", "2s",
		"--clients", "4", "--users", "40", "--rate", "100", "--out", t.TempDir(), "--json"}
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.topo = s
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := runAll(ctx, cfg, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := writeOutputs(cfg, rep, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := checkJSON(t, stdout.Bytes(), 1, true)
	run := got.Runs[0]
	if len(run.Faults) != 1 {
		t.Fatalf("%d faults, want 1", len(run.Faults))
	}
	for i, f := range run.Faults {
		t.Logf("fault %d: %s %s at %.2fs, promoted %s after %s, window to %.2fs: %d requests, %d errors; recovery %s",
			i+1, f.Kind, f.Node, f.StartS, f.Promoted, fmtS(f.PromotedS), f.WindowEndS, f.Requests, f.Errors, fmtS(f.RecoveryS))
		if f.Kind != "kill" || f.Promoted == "" || f.Promoted == f.Node {
			t.Errorf("fault %d: %s promoted after the %s of %s", i+1, f.Promoted, f.Kind, f.Node)
		}
		if f.RecoveryS != nil && f.StartS+*f.RecoveryS > f.WindowEndS {
			t.Errorf("fault %d: recovery at %.2fs, after its window's end %.2fs", i+1, f.StartS+*f.RecoveryS, f.WindowEndS)
		}
	}
	if len(run.Shards) != 1 || !run.Shards[0].Faulted {
		t.Errorf("shards %+v, want the one master", run.Shards)
	}
}

// TestDrillStandalone runs the drill end to end as the CLI does: it starts its own
// standalone server, kills it for a second in each run (hasession, then the raw go-redis
// store) and removes it.
func TestDrillStandalone(t *testing.T) {
	cluster.RequireDocker(t)
	out := t.TempDir()
	args := []string{"--topology", "standalone", "--compare", "raw", "--duration", "5s", "--warmup", "1s", "--hold", "1s", "--clients", "4", "--users", "20", "--rate", "100", "--out", out, "--json"}
	var stdout, stderr bytes.Buffer
	err := Run(t.Context(), args, &stdout, &stderr)
	t.Log(stderr.String())
	rep := checkJSON(t, stdout.Bytes(), 2, false)
	if (err == nil) != rep.Passed {
		t.Errorf("error %v with passed %v", err, rep.Passed)
	}
	// A standalone server keeps nothing on disk here: the kill loses every session.
	for _, run := range rep.Runs {
		t.Logf("%s, standalone kill: %d of %d sessions lost", run.Name, run.Lost, run.Sessions)
	}
	if rep.Runs[1].Store != "raw" {
		t.Errorf("second run is %q, want raw", rep.Runs[1].Store)
	}
	if !strings.Contains(stderr.String(), "removed: no container or network of this drill is left") {
		t.Error("the drill did not report removing its topology")
	}
}

// --cache turns the near-cache on in the hasession runs and in the history checker's
// stores, the checker allows loads the cache's staleness, and the report says so and
// shows the counters. No Redis: a load through a store whose server is unreachable is
// a miss of its near-cache, and a store without it counts none.
func TestDrillCacheFlag(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.cache {
		t.Fatal("the near-cache is on by default")
	}
	for _, spec := range c.runs() {
		if spec.Cache || strings.Contains(spec.Name, "cache") {
			t.Errorf("default run %+v has the cache", spec)
		}
	}
	if _, cfg := checkSetup(c, c.runs()[0]); cfg.LoadStaleness != 0 {
		t.Errorf("checker without the cache: staleness %s", cfg.LoadStaleness)
	}

	c, err = parseFlags([]string{"--cache"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	runs := c.runs()
	if !c.cache || len(runs) != 2 || runs[0].Name != "hasession WAIT 1 + cache" || runs[1].Name != "hasession + cache" {
		t.Fatalf("--cache runs: %+v", runs)
	}
	redis.SetLogger(cli.QuietRedis{}) // as the drill does: every dial fails here
	dead := &redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}, MaxRetries: -1, DialTimeout: 200 * time.Millisecond}
	misses := func(st *store.Store) int64 {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := st.Load(ctx, "11111111-1111-4111-8111-111111111111")
		if err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a load from an unreachable server: %v", err)
		}
		return st.Stats().NearMisses
	}
	for _, cache := range []bool{true, false} {
		spec := runs[0]
		spec.Cache = cache
		b, err := newHasessionBackend(spec, dead)
		if err != nil {
			t.Fatal(err)
		}
		if n := misses(b.st); (n > 0) != cache {
			t.Errorf("the run's store with cache %t: %d near-cache misses", cache, n)
		}
		_ = b.close()

		opts, cfg := checkSetup(c, spec)
		if want := map[bool]time.Duration{true: 56 * time.Millisecond}[cache]; cfg.LoadStaleness != want {
			t.Errorf("checker with cache %t: staleness %s, want %s (the lease 50 ms + 5 ms + 1 ms)", cache, cfg.LoadStaleness, want)
		}
		rdb := store.NewFailoverClient(dead)
		st, err := store.New(rdb, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if n := misses(st); (n > 0) != cache {
			t.Errorf("the checker's store with cache %t: %d near-cache misses", cache, n)
		}
		_ = st.Close()
		_ = rdb.Close()
	}

	rep := newReport(c)
	run := &runReport{Name: runs[0].Name, Store: "hasession", Cache: true,
		NearCache: nearCacheOf(store.Stats{NearHits: 900, NearMisses: 100, NearEvictedInvalidated: 7, NearEvictedReconnect: 3})}
	rep.Runs = append(rep.Runs, run)
	rep.finish()
	var out bytes.Buffer
	if err := writeTable(&out, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"near-cache on (lease 50ms; the checker allows a load 56ms of staleness)", "hasession WAIT 1 + cache: near-cache: 900 hits, 100 misses (hit ratio 90.0%); evicted: 7 invalidated, 0 lease lapsed, 3 reconnect, 0 capacity"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	js, err := rep.marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		NearCache bool `json:"near_cache"`
		Runs      []struct {
			Stats struct {
				HitRatio float64 `json:"hit_ratio"`
			} `json:"near_cache_stats"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(js, &got); err != nil || !got.NearCache || len(got.Runs) != 1 || got.Runs[0].Stats.HitRatio != 0.9 {
		t.Errorf("drill.json: %+v (%v)", got, err)
	}
}
