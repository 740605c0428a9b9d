package main

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

	"github.com/hasession/hasession/cluster"
)

func TestDrillFlags(t *testing.T) {
	c, err := parseDrillFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.topology != cluster.KindCluster || c.fault != "kill" || c.faults != 1 || c.compare != "none" || c.out != "drill-out" {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.runs(); len(got) != 2 || !got[0].Wait || got[1].Wait {
		t.Errorf("default runs: %+v, want hasession with and without WAIT", got)
	}
	if c.requests < int(c.rate*c.duration.Seconds()) {
		t.Errorf("request cap %d", c.requests)
	}

	c, err = parseDrillFlags([]string{"--topology", "standalone", "--compare", "scs"}, io.Discard)
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
		{[]string{"extra"}, "unexpected"},
	} {
		_, err := parseDrillFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}

	c, err = parseDrillFlags([]string{"--addrs", "10.0.0.1:26379,10.0.0.2:26379", "--sentinel-master", "mymaster", "--fault", "failover", "--yes"}, io.Discard)
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
	f := &drillFault{Kind: "kill", Node: "redis-0", start: t0.Add(s(2)), healthy: t0.Add(s(4))}
	f.PromotedS = ptr(1.5)
	run := &drillRun{Name: "x", Store: "hasession", Faults: []*drillFault{f}, Sessions: 3, Verified: 3}
	recs := []drillRecord{
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

	rep := &drillReport{Topology: "cluster", Fault: "kill", Faults: 1, Runs: []*drillRun{run}}
	rep.finish()
	if rep.Passed || !strings.Contains(rep.Verdict, "1 failed requests") {
		t.Errorf("verdict %q (passed %v)", rep.Verdict, rep.Passed)
	}
	var table, page bytes.Buffer
	if err := writeDrillTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"during", "1.50s", "1.70s", "500 boom", "FAIL"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var sb strings.Builder
	writeDrillHTML(&sb, rep)
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

// checkDrillJSON checks drill.json: every field present and the numbers consistent.
func checkDrillJSON(t *testing.T, data []byte, wantRuns int, wantPromotion bool) *drillReport {
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
		for _, k := range []string{"name", "requests", "ok", "errors", "phases", "fault_events", "promotion_s", "recovery_s", "sessions", "acked_saves", "verified", "lost", "series"} {
			if _, ok := m[k]; !ok {
				t.Errorf("run %v lacks %q", m["name"], k)
			}
		}
	}
	var rep drillReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != wantRuns {
		t.Fatalf("%d runs, want %d", len(rep.Runs), wantRuns)
	}
	for _, run := range rep.Runs {
		t.Logf("%s: %d requests, %d errors, promotion %s, recovery %s, %d sessions, %d acked saves, %d verified, %d lost; errors %v",
			run.Name, run.Requests, run.Errors, drillFmtS(run.PromotionS), drillFmtS(run.RecoveryS), run.Sessions, run.AckedSaves, run.Verified, run.Lost, run.ErrorSamples)
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
		cfg, err := parseDrillFlags(append(short, "--wait", "on", "--compare", "scs", "--out", t.TempDir(), "--json"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg.topo = c
		var progress bytes.Buffer
		rep, err := runDrill(t.Context(), cfg, &progress)
		t.Log(progress.String())
		if err != nil {
			t.Fatal(err)
		}
		var stdout bytes.Buffer
		if err := writeDrillOutputs(cfg, rep, &stdout, io.Discard); err != nil {
			t.Fatal(err)
		}
		got := checkDrillJSON(t, stdout.Bytes(), 2, true)
		for _, run := range got.Runs {
			if f := run.Faults; len(f) != 1 || f[0].Kind != "kill" || f[0].Promoted == "" || f[0].Promoted == f[0].Node {
				t.Errorf("%s: fault events %+v", run.Name, f)
			}
		}
		if got.Runs[1].Store != "scs" {
			t.Errorf("second run is %q, want scs", got.Runs[1].Store)
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
		err := runDrillCmd(t.Context(), args, &stdout, &stderr)
		t.Logf("drill: %v\n%s\n%s", err, stderr.String(), stdout.String())
		data, rerr := os.ReadFile(filepath.Join(out, "drill.json"))
		if rerr != nil {
			t.Fatal(rerr)
		}
		rep := checkDrillJSON(t, data, 1, true)
		if !rep.Existing {
			t.Error("existing_deployment is false")
		}
		if (err == nil) != rep.Passed || (err != nil && !errors.Is(err, errDrillFailed)) {
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

// TestDrillStandalone runs the drill end to end as the CLI does: it starts its own
// standalone server, kills it for a second in each run (hasession, then the raw go-redis
// store) and removes it.
func TestDrillStandalone(t *testing.T) {
	cluster.RequireDocker(t)
	out := t.TempDir()
	args := []string{"--topology", "standalone", "--compare", "raw", "--duration", "5s", "--warmup", "1s", "--hold", "1s", "--clients", "4", "--users", "20", "--rate", "100", "--out", out, "--json"}
	var stdout, stderr bytes.Buffer
	err := runDrillCmd(t.Context(), args, &stdout, &stderr)
	t.Log(stderr.String())
	rep := checkDrillJSON(t, stdout.Bytes(), 2, false)
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
