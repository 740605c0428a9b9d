package compare

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hasession/hasession/cluster"
)

// TestCompare runs the compare command in-process with short settings and checks its JSON.
func TestCompare(t *testing.T) {
	cluster.RequireDocker(t)
	dir := t.TempDir()
	var out, progress bytes.Buffer
	err := Run(t.Context(), []string{
		"--repeat", "1", "--duration", "150ms", "--sessions", "300", "--workers", "1,4",
		"--out", dir, "--json",
	}, &out, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("decode JSON: %v", err)
	}

	// Every store, operation, size and concurrency level is measured once.
	want := map[string][]string{
		floorName:     {opGet, opSet},
		bareName:      {opHTTP},
		hasessionName: {opLoad, opRead, opModify, opHTTPRead, opHTTPModify},
		cacheName:     {opHTTPRead, opHTTPModify},
		scsName:       {opHTTPRead, opHTTPModify},
		rbName:        {opHTTPRead, opHTTPModify},
		bojName:       {opHTTPRead, opHTTPModify},
	}
	byKey := map[string]*cell{}
	key := func(size string, w int, store, op string) string {
		return size + "/" + string(rune('0'+w)) + "/" + store + "/" + op
	}
	for _, c := range res.Cells {
		byKey[key(c.Size, c.Workers, c.Store, c.Op)] = c
	}
	for _, size := range []string{"typical", "large"} {
		for _, w := range []int{1, 4} {
			for store, ops := range want {
				for _, op := range ops {
					c := byKey[key(size, w, store, op)]
					if c == nil {
						t.Errorf("%s %s %s w=%d: not measured", store, op, size, w)
						continue
					}
					if c.Runs != 1 || len(c.OpsPerSec.Samples) != 1 || len(c.Errors) > 0 {
						t.Errorf("%s %s %s w=%d: runs %d, samples %v, errors %v", store, op, size, w, c.Runs, c.OpsPerSec.Samples, c.Errors)
					}
					sends := store != bareName // the bare request sends nothing to Redis
					if c.OpsPerSec.Median <= 0 || c.P50us <= 0 || c.P99us < c.P50us || (c.CmdsPerOp <= 0) == sends || (c.BytesPerOp <= 0) == sends || c.AllocsPerOp <= 0 {
						t.Errorf("%s %s %s w=%d: implausible figures %+v", store, op, size, w, *c)
					}
					// An HTTP request's ratio to the bare one.
					if store != bareName && strings.HasPrefix(op, "http-") {
						checkRatio(t, c.Store+" "+c.Op+" vs bare", c.VsBare, c, byKey[key(size, w, bareName, opHTTP)])
					} else if c.VsBare != nil {
						t.Errorf("%s %s has a ratio to the bare request", store, op)
					}
					// The near-cache's figures: its workload of about 10 reads per write.
					if store == cacheName {
						if c.HitRatio == nil || *c.HitRatio < 0.5 || *c.HitRatio > 1 {
							t.Errorf("%s %s %s w=%d: hit ratio %v", store, op, size, w, c.HitRatio)
						}
						switch op {
						case opHTTPRead: // the writer's writes, one per 10 reads of a session, few dropped
							if c.ReadsPerWrite < 9 || c.RequestsPerOp != 1 {
								t.Errorf("%s %s %s w=%d: %.1f reads per write, %.1f requests per op", store, op, size, w, c.ReadsPerWrite, c.RequestsPerOp)
							}
						case opHTTPModify: // 10 untimed reads per modify
							if c.RequestsPerOp != 1+readsPerWrite || c.UntimedPct <= 0 || c.UntimedPct >= 100 {
								t.Errorf("%s %s %s w=%d: %.1f requests per op, %.1f%% untimed", store, op, size, w, c.RequestsPerOp, c.UntimedPct)
							}
						}
					} else if c.HitRatio != nil {
						t.Errorf("%s %s has a hit ratio", store, op)
					}
					// The ratios are those of the ops/s figures.
					floor := byKey[key(size, w, floorName, floorOp(op))]
					checkRatio(t, c.Store+" "+c.Op+" vs floor", c.VsFloor, c, floor)
					for _, p := range peers {
						if p == store {
							if _, ok := c.VsPeer[p]; ok {
								t.Errorf("%s %s has a ratio to itself", store, op)
							}
							continue
						}
						checkRatio(t, c.Store+" "+c.Op+" vs "+p, c.VsPeer[p], c, byKey[key(size, w, p, peerOp(op))])
					}
				}
			}
		}
	}

	// Commands per request follow from how each store works.
	for _, tc := range []struct {
		store, op string
		cmds      float64
	}{
		{floorName, opGet, 1},            // GET
		{floorName, opSet, 1},            // SET EX
		{hasessionName, opLoad, 1},       // HGETALL, touch not due
		{hasessionName, opRead, 1},       // HGETALL
		{hasessionName, opModify, 2},     // HGETALL, EVALSHA
		{hasessionName, opHTTPRead, 1},   // HGETALL
		{hasessionName, opHTTPModify, 2}, // HGETALL, EVALSHA
		{scsName, opHTTPRead, 2},         // GET, SET (IdleTimeout)
		{scsName, opHTTPModify, 2},       // GET, SET
		{rbName, opHTTPRead, 2},          // GET, SET
		{rbName, opHTTPModify, 2},        // GET, SET
		{bojName, opHTTPRead, 4},         // PING, GET, PING, SETEX
		{bojName, opHTTPModify, 4},       // PING, GET, PING, SETEX
	} {
		if c := byKey[key("typical", 1, tc.store, tc.op)]; c != nil && math.Abs(c.CmdsPerOp-tc.cmds) > 0.05 {
			t.Errorf("%s %s: %.2f commands per request, want %g", tc.store, tc.op, c.CmdsPerOp, tc.cmds)
		}
	}
	// With the near-cache, Redis sees a read-only request's session only when it changed
	// (a fill per write, and the heartbeat's ROLE); a modifying request, the Save and the
	// fill of the read after it (and heartbeats).
	if c := byKey[key("typical", 1, cacheName, opHTTPRead)]; c == nil || c.CmdsPerOp > 0.5 {
		t.Errorf("%s %s: commands per request %+v, want at most 0.5", cacheName, opHTTPRead, c)
	}
	if c := byKey[key("typical", 1, cacheName, opHTTPModify)]; c == nil || c.CmdsPerOp < 1.99 || c.CmdsPerOp > 2.5 {
		t.Errorf("%s %s: commands per request %+v, want 2 to 2.5", cacheName, opHTTPModify, c)
	}
	if c := byKey[key("typical", 1, bareName, opHTTP)]; c == nil || c.CmdsPerOp != 0 {
		t.Errorf("%s %s: commands per request %+v, want 0", bareName, opHTTP, c)
	}

	// Memory per session for every store.
	mem := map[string]mem{}
	for _, m := range res.Memory {
		mem[m.Store] = m
	}
	for store := range want {
		if store == bareName || store == cacheName {
			if _, ok := mem[store]; ok {
				t.Errorf("Redis memory measured for %s", store)
			}
			continue
		}
		m, ok := mem[store]
		if !ok || m.Error != "" || m.Sessions != 300 || m.Keys < 300 || m.BytesPerSession <= 0 {
			t.Errorf("memory of %s: %+v (measured: %v)", store, m, ok)
		}
	}

	// The app server's memory per cached session: every session loaded is cached, and
	// an entry holds at least its reply.
	if len(res.CacheMemory) != 1 {
		t.Errorf("app-server memory: %+v, want one", res.CacheMemory)
	}
	for _, m := range res.CacheMemory {
		if m.Error != "" || m.Store != cacheName || m.Sessions != 300 || m.Cached != 300 || m.BytesPerSession < 200 || m.BytesPerSession > 20000 {
			t.Errorf("app-server memory: %+v", m)
		}
	}

	// Targets: every one evaluated, its ratio that of the figures (the near-cache's at
	// one worker only here: two for each size).
	if n := len(res.Targets); n != 4*2*2+2*2+3 {
		t.Errorf("%d targets, want %d", n, 4*2*2+2*2+3)
	}
	for _, tg := range res.Targets {
		if tg.Ratio == nil || (tg.Status != "PASS" && tg.Status != "MISS") {
			t.Errorf("target %+v not evaluated", tg)
			continue
		}
		if tg.Size == "" {
			want := mem[hasessionName].BytesPerSession / mem[tg.Peer].BytesPerSession
			if math.Abs(*tg.Ratio-want) > 1e-9*want {
				t.Errorf("memory target vs %s: ratio %g, want %g", tg.Peer, *tg.Ratio, want)
			}
			if (*tg.Ratio <= 1) != (tg.Status == "PASS") {
				t.Errorf("memory target vs %s: %s with ratio %g", tg.Peer, tg.Status, *tg.Ratio)
			}
			continue
		}
		op := opHTTPRead
		if strings.Contains(tg.Name, "modif") {
			op = opHTTPModify
		}
		peerOp := op
		if tg.Peer == bareName {
			peerOp = opHTTP
		}
		checkRatio(t, "target "+tg.Store+" "+tg.Name+" vs "+tg.Peer, tg.Ratio, byKey[key(tg.Size, tg.Workers, tg.Store, op)], byKey[key(tg.Size, tg.Workers, tg.Peer, peerOp)])
	}

	// The files: the same JSON, and a page that fetches nothing.
	saved, err := os.ReadFile(filepath.Join(dir, "compare.json"))
	if err != nil {
		t.Fatal(err)
	}
	var again Result
	if err := json.Unmarshal(saved, &again); err != nil || len(again.Cells) != len(res.Cells) {
		t.Errorf("compare.json: %v, %d cells, want %d", err, len(again.Cells), len(res.Cells))
	}
	page, err := os.ReadFile(filepath.Join(dir, "compare.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<svg")) || bytes.Contains(page, []byte("src=")) || bytes.Contains(page, []byte("href=")) || bytes.Contains(page, []byte("<script")) {
		t.Errorf("compare.html is not a self-contained page with charts")
	}
}

// checkRatio checks that got is a's median ops/s over b's.
func checkRatio(t *testing.T, what string, got *float64, a, b *cell) {
	t.Helper()
	if a == nil || b == nil {
		t.Errorf("%s: a cell is missing", what)
		return
	}
	if got == nil {
		t.Errorf("%s: no ratio", what)
		return
	}
	want := a.OpsPerSec.Median / b.OpsPerSec.Median
	if math.Abs(*got-want) > 1e-9*want {
		t.Errorf("%s: ratio %g, want %g (%g / %g)", what, *got, want, a.OpsPerSec.Median, b.OpsPerSec.Median)
	}
}

// TestCmpConnCounts checks that commands are counted once however the writes split them.
func TestCmpConnCounts(t *testing.T) {
	stream := "*2\r\n$3\r\nGET\r\n$5\r\nk\r\n*x\r\n" + // a bulk string holding "\r\n*x"
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n" +
		"*1\r\n$4\r\nPING\r\n"
	for split := 1; split <= len(stream); split++ {
		a, b := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		var c counter
		conn := &countingConn{netConn: a, c: &c}
		for i := 0; i < len(stream); i += split {
			if _, err := conn.Write([]byte(stream[i:min(i+split, len(stream))])); err != nil {
				t.Fatal(err)
			}
		}
		_ = a.Close()
		if n, cmds := c.read(); n != int64(len(stream)) || cmds != 3 {
			t.Errorf("writes of %d B: %d B, %d commands; want %d B, 3 commands", split, n, cmds, len(stream))
		}
	}
}

func TestCmpHistQuantile(t *testing.T) {
	var h hist
	if h.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Microsecond, 0.99: 990 * time.Microsecond} {
		got := h.quantile(q)
		if math.Abs(float64(got-want)) > 0.04*float64(want) {
			t.Errorf("quantile(%g) = %s, want %s within 4%%", q, got, want)
		}
	}
	for ns := range uint64(1 << 20) {
		if i := bucket(ns); i < 0 || i >= histBuckets || (ns > 0 && bucket(ns-1) > i) {
			t.Fatalf("bucket(%d) = %d out of order", ns, i)
		}
	}
}

func TestCmpTargets(t *testing.T) {
	r := &Result{}
	set := func(store, op string, ops float64) {
		c := r.cell("standalone", "typical", 8, store, op)
		c.samples = []sample{{OpsPerSec: ops, Ops: 1}}
	}
	set(floorName, opGet, 50000)
	set(floorName, opSet, 40000)
	set(hasessionName, opHTTPRead, 20000)
	set(hasessionName, opHTTPModify, 12000)
	set(scsName, opHTTPRead, 6000) // 3.33x: a miss
	set(scsName, opHTTPModify, 5000)
	set(rbName, opHTTPRead, 7000)
	set(rbName, opHTTPModify, 7000) // 1.71x: a miss
	set(bojName, opHTTPRead, 3000)
	set(bojName, opHTTPModify, 3000)
	r.Memory = []mem{
		{Topology: "standalone", Store: hasessionName, BytesPerSession: 500},
		{Topology: "standalone", Store: scsName, BytesPerSession: 600},
		{Topology: "standalone", Store: rbName, BytesPerSession: 450},
	}
	r.finish()
	got := map[string]string{}
	for _, tg := range r.Targets {
		got[tg.Name+" vs "+tg.Peer] = tg.Status + " " + fmtRatio(tg.Ratio)
	}
	want := map[string]string{
		"read-only request with sliding expiry vs scs":             "MISS 3.33x",
		"request that modifies 2 attributes vs scs":                "PASS 2.40x",
		"request that modifies 2 attributes vs gorilla+rbcervilla": "MISS 1.71x",
		"request that modifies 2 attributes vs gorilla+redistore":  "PASS 4.00x",
		"memory per session vs scs":                                "PASS 0.83x",
		"memory per session vs gorilla+rbcervilla":                 "MISS 1.11x",
	}
	requireTargets(t, got, want)
	var buf bytes.Buffer
	if err := writeTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "MISS") || !strings.Contains(buf.String(), "3 PASS, 3 MISS, 0 N/A") {
		t.Errorf("table does not show the misses:\n%s", buf.String())
	}
}

func TestCmpConnDoesNotAllocate(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	conn := &countingConn{netConn: a, c: &counter{}}
	cmd := []byte("*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$5\r\nvalue\r\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = conn.Write(cmd) }); n > 0 {
		t.Errorf("%g allocations per write", n)
	}
}

// TestCmpCacheTargets checks the near-cache's targets (each at its concurrency level),
// the ratios to the bare request and the near-cache's figures from the runs' samples.
func TestCmpCacheTargets(t *testing.T) {
	r := &Result{Config: Config{ReadsPerWrite: readsPerWrite}}
	set := func(w int, store, op string, ops float64, smp sample) {
		c := r.cell("standalone", "typical", w, store, op)
		smp.OpsPerSec, smp.Ops, smp.Elapsed = ops, 1000, time.Second
		c.samples = []sample{smp}
	}
	for _, w := range []int{1, 8, 32} {
		set(w, bareName, opHTTP, 200000, sample{})
		set(w, scsName, opHTTPRead, 10000, sample{})
		set(w, scsName, opHTTPModify, 9000, sample{})
		set(w, cacheName, opHTTPRead, 90000, sample{Hits: 900, Misses: 100, Writes: 100, CmdsTotal: 100})
		set(w, cacheName, opHTTPModify, 15000, sample{Hits: 10000, Misses: 1000, Extra: 10000, CmdsTotal: 2000, Untimed: time.Duration(w) * time.Second / 2})
	}
	r.finish()
	got := map[string]string{}
	for _, tg := range r.Targets {
		got[fmt.Sprintf("%s %s vs %s w=%d", tg.Store, tg.Name, tg.Peer, tg.Workers)] = tg.Status + " " + fmtRatio(tg.Ratio)
	}
	want := map[string]string{
		"hasession+cache read-only request, near-cache, 10 reads per write vs scs w=1":                  "PASS 9.00x",
		"hasession+cache read-only request, near-cache, 10 reads per write vs scs w=32":                 "MISS 9.00x",
		"hasession+cache request that modifies 2 attributes, near-cache, 10 reads per write vs scs w=1": "MISS 1.67x",
		"hasession+cache read-only request, near-cache, 10 reads per write vs bare w=32":                "MISS 0.45x",
	}
	requireTargets(t, got, want)
	read, modify := r.find("standalone", "typical", 32, cacheName, opHTTPRead), r.find("standalone", "typical", 32, cacheName, opHTTPModify)
	if read.VsBare == nil || *read.VsBare != 0.45 || read.HitRatio == nil || *read.HitRatio != 0.9 || read.ReadsPerWrite != 10 || read.CmdsPerAppRequest != 0.1 {
		t.Errorf("read cell %+v", *read)
	}
	if modify.RequestsPerOp != 11 || modify.CmdsPerAppRequest != 2000.0/11000 || modify.UntimedPct != 50 || *modify.HitRatio != 10.0/11 {
		t.Errorf("modify cell %+v", *modify)
	}
	if c := r.find("standalone", "typical", 32, bareName, opHTTP); c.VsBare != nil || c.HitRatio != nil {
		t.Errorf("bare cell %+v", *c)
	}
	var buf bytes.Buffer
	if err := writeTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"×BARE", "== near-cache", "90.0%", "0.45x", "1 PASS, 3 MISS, 0 N/A"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, buf.String())
		}
	}
	// Another workload (--reads-per-write): the near-cache's targets, set for 10 reads
	// per write, are not judged.
	r.Config.ReadsPerWrite = 0
	r.Targets = r.evalTargets()
	for _, tg := range r.Targets {
		if tg.Store == cacheName {
			t.Errorf("with 0 reads per write, a near-cache target: %+v", tg)
		}
	}
}

// TestCmpWorkerSpread checks how the workers of an operation share the sessions out: each
// its own, gone round in turn, with the untimed step told the count of the session's
// operations.
func TestCmpWorkerSpread(t *testing.T) {
	var seen []string
	s := &sessionStore{
		name:    "x",
		impl:    map[string]opFunc{opHTTPRead: func(_ context.Context, h string, n int) error { seen = append(seen, fmt.Sprint(h, "#", n)); return nil }},
		handles: map[string][]string{"typical": {"a", "b", "c", "d", "e"}},
		convert: map[string]func(string) string{opHTTPRead: strings.ToUpper},
		spread:  map[string]bool{opHTTPRead: true},
		between: map[string]betweenFunc{opHTTPRead: func(_ context.Context, h string, n int) (int, error) {
			seen = append(seen, fmt.Sprint("before ", h, "#", n))
			return 1, nil
		}},
	}
	newWorker, err := s.worker("typical", opHTTPRead, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, want := range []string{"A#1 C#1 E#1 A#2", "B#1 D#1 B#2 D#2"} {
		seen = nil
		w := newWorker(i)
		var ops []string
		for range 4 {
			if _, err := w.between(ctx); err != nil {
				t.Fatal(err)
			}
			_ = w.op(ctx)
		}
		for j, x := range seen {
			if j%2 == 0 {
				if x != "before "+seen[j+1] {
					t.Errorf("worker %d: %q before %q", i, x, seen[j+1])
				}
				continue
			}
			ops = append(ops, x)
		}
		if got := strings.Join(ops, " "); got != want {
			t.Errorf("worker %d: %s, want %s", i, got, want)
		}
	}
	// Without spread, a worker works on one session.
	s.spread = nil
	newWorker, _ = s.worker("typical", opHTTPRead, 2)
	seen = nil
	w := newWorker(1)
	_, _ = w.between(ctx)
	_ = w.op(ctx)
	_ = w.op(ctx)
	if got := strings.Join(seen, " "); got != "before B#1 B#1 B#2" {
		t.Errorf("without spread: %s", got)
	}
}

// requireTargets checks the targets' verdicts, by name, against want: each one, and no
// other.
func requireTargets(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("targets %v, want %v", got, want)
	}
}

// The near-cache workload's text follows --reads-per-write.
func TestCmpCacheWorkloadText(t *testing.T) {
	for n, want := range map[int][]string{
		10: {"read about 10 times per write", "after every 10th read request", "10 read requests of the same session"},
		1:  {"after every 1st read request", "1 read requests"},
		2:  {"after every 2nd read request"},
		23: {"after every 23rd read request"},
		12: {"after every 12th read request"},
		0:  {"no session is written between reads", "nothing between its modifying requests", "HIT% is"},
	} {
		got := cacheWorkloadOf(n)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%d reads per write: the text lacks %q:\n%s", n, w, got)
			}
		}
		if n == 0 && strings.Contains(got, "0th") {
			t.Errorf("0 reads per write: %s", got)
		}
	}
}
