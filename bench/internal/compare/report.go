package compare

import (
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
)

// Result is everything compare measured.
type Result struct {
	Config     Config  `json:"config"`
	DurationS  float64 `json:"duration_per_measurement_s"`
	GoMaxProcs int     `json:"gomaxprocs"`
	Cells      []*cell `json:"cells"`
	Memory     []mem   `json:"memory"`
	// CacheMemory is the app server's heap per session in hasession+cache's near-cache.
	CacheMemory []cacheMem `json:"cache_memory"`
	// CacheWorkload says what hasession+cache's rows measure.
	CacheWorkload string   `json:"cache_workload"`
	Targets       []target `json:"targets"`
}

// spread summarises the ops/s of a cell's runs.
type spread struct {
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	SpreadPct float64   `json:"spread_pct"` // (max − min) / median
	Samples   []float64 `json:"samples"`
}

// cell is one store's operation at one size and concurrency, over the repeats. The
// figures other than ops/s are the medians of the runs' figures.
type cell struct {
	Topology    string  `json:"topology"`
	Size        string  `json:"size"`
	Workers     int     `json:"workers"`
	Store       string  `json:"store"`
	Op          string  `json:"op"`
	Runs        int     `json:"runs"`
	OpsPerSec   spread  `json:"ops_per_s"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	CmdsPerOp   float64 `json:"redis_commands_per_op"`
	BytesPerOp  float64 `json:"bytes_sent_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	// FloorOp is the floor's operation this one is compared with; VsFloor its ratio of
	// median ops/s to the floor's (null when either is missing).
	FloorOp string   `json:"floor_op"`
	VsFloor *float64 `json:"vs_floor"`
	// PeerOp is the peers' operation this one is compared with; VsPeer the ratio of
	// median ops/s to each peer's (null when either is missing).
	PeerOp string              `json:"peer_op"`
	VsPeer map[string]*float64 `json:"vs_peer"`
	// VsBare is an HTTP request's ratio of median ops/s to the bare request's (null when
	// either is missing or the operation is not an HTTP request).
	VsBare *float64 `json:"vs_bare"`
	// For hasession+cache: the near-cache's hit ratio (median of the runs), the app
	// server's requests per timed one (untimed steps included) and Redis commands per
	// request of the app server, timed or not.
	HitRatio          *float64 `json:"hit_ratio,omitempty"`
	RequestsPerOp     float64  `json:"app_requests_per_op,omitempty"`
	CmdsPerAppRequest float64  `json:"redis_commands_per_app_request,omitempty"`
	// UntimedPct is the share of the workers' time left out of ops/s (the untimed steps);
	// ReadsPerWrite the read requests per write of the other app server (0: none), and
	// WritesDropped the writes its full queue dropped (medians of the runs).
	UntimedPct    float64  `json:"untimed_pct,omitempty"`
	ReadsPerWrite float64  `json:"reads_per_write,omitempty"`
	WritesDropped float64  `json:"writes_dropped,omitempty"`
	Errors        []string `json:"errors,omitempty"`

	samples []sample
}

// mem is Redis memory per typical session of one store.
type mem struct {
	Topology        string  `json:"topology"`
	Store           string  `json:"store"`
	Sessions        int     `json:"sessions"`
	Keys            int64   `json:"keys"`
	BytesPerSession float64 `json:"bytes_per_session"`
	Error           string  `json:"error,omitempty"`
}

// cacheMem is the app server's memory per session in the near-cache: the growth of the
// heap (HeapAlloc after a GC) over the entries added by loading Sessions sessions.
type cacheMem struct {
	Topology        string  `json:"topology"`
	Store           string  `json:"store"`
	Sessions        int     `json:"sessions"`
	Cached          int64   `json:"cached"`
	BytesPerSession float64 `json:"heap_bytes_per_cached_session"`
	Error           string  `json:"error,omitempty"`
}

// target is one target, evaluated on this run's figures.
type target struct {
	Topology string   `json:"topology"`
	Name     string   `json:"name"`
	Store    string   `json:"store"` // hasession or hasession+cache
	Size     string   `json:"size,omitempty"`
	Workers  int      `json:"workers,omitempty"`
	Peer     string   `json:"peer"`
	Ratio    *float64 `json:"ratio"` // store ÷ peer: ops/s, or bytes per session
	Want     string   `json:"want"`  // ">= 4", "<= 1"
	Status   string   `json:"status"`
}

func (r *Result) cell(topology, size string, workers int, store, op string) *cell {
	for _, c := range r.Cells {
		if c.Topology == topology && c.Size == size && c.Workers == workers && c.Store == store && c.Op == op {
			return c
		}
	}
	c := &cell{Topology: topology, Size: size, Workers: workers, Store: store, Op: op, FloorOp: floorOp(op), PeerOp: peerOp(op), VsPeer: map[string]*float64{}}
	r.Cells = append(r.Cells, c)
	return c
}

func (r *Result) find(topology, size string, workers int, store, op string) *cell {
	for _, c := range r.Cells {
		if c.Topology == topology && c.Size == size && c.Workers == workers && c.Store == store && c.Op == op {
			return c
		}
	}
	return nil
}

func (r *Result) failures() int {
	n := 0
	for _, c := range r.Cells {
		n += len(c.Errors)
	}
	for _, m := range r.Memory {
		if m.Error != "" {
			n++
		}
	}
	return n
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianOf(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	return median(v)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// ratio is a ÷ b, nil when either is missing.
func ratio(a, b *cell) *float64 {
	if a == nil || b == nil || a.Runs == 0 || b.Runs == 0 || b.OpsPerSec.Median == 0 {
		return nil
	}
	return report.Ptr(a.OpsPerSec.Median / b.OpsPerSec.Median)
}

// finish summarises the runs, computes the ratios and evaluates the targets.
func (r *Result) finish() {
	for _, c := range r.Cells {
		c.Runs = len(c.samples)
		if c.Runs == 0 {
			continue
		}
		ops := make([]float64, c.Runs)
		for i, s := range c.samples {
			ops[i] = s.OpsPerSec
		}
		med := median(ops)
		c.OpsPerSec = spread{Median: med, Min: slices.Min(ops), Max: slices.Max(ops), Samples: ops}
		if med > 0 {
			c.OpsPerSec.SpreadPct = (c.OpsPerSec.Max - c.OpsPerSec.Min) / med * 100
		}
		c.P50us = medianOf(c.samples, func(s sample) float64 { return micros(s.P50) })
		c.P99us = medianOf(c.samples, func(s sample) float64 { return micros(s.P99) })
		c.CmdsPerOp = medianOf(c.samples, func(s sample) float64 { return s.Cmds })
		c.BytesPerOp = medianOf(c.samples, func(s sample) float64 { return s.Bytes })
		c.AllocsPerOp = medianOf(c.samples, func(s sample) float64 { return s.Allocs })
		if c.Store == cacheName {
			c.HitRatio = report.Ptr(medianOf(c.samples, func(s sample) float64 {
				if s.Hits+s.Misses == 0 {
					return 0
				}
				return float64(s.Hits) / float64(s.Hits+s.Misses)
			}))
			c.RequestsPerOp = medianOf(c.samples, func(s sample) float64 { return float64(s.Ops+s.Extra) / float64(s.Ops) })
			c.CmdsPerAppRequest = medianOf(c.samples, func(s sample) float64 { return float64(s.CmdsTotal) / float64(s.Ops+s.Extra) })
			c.UntimedPct = medianOf(c.samples, func(s sample) float64 {
				return float64(s.Untimed) / (float64(s.Elapsed) * float64(c.Workers)) * 100
			})
			c.ReadsPerWrite = medianOf(c.samples, func(s sample) float64 {
				if s.Writes == 0 {
					return 0
				}
				return float64(s.Ops) / float64(s.Writes)
			})
			c.WritesDropped = medianOf(c.samples, func(s sample) float64 { return float64(s.Dropped) })
		}
	}
	for _, c := range r.Cells {
		c.VsFloor = ratio(c, r.find(c.Topology, c.Size, c.Workers, floorName, c.FloorOp))
		if c.Store != bareName && strings.HasPrefix(c.Op, "http-") {
			c.VsBare = ratio(c, r.find(c.Topology, c.Size, c.Workers, bareName, opHTTP))
		}
		for _, p := range peers {
			if p == c.Store {
				continue
			}
			if pc := r.find(c.Topology, c.Size, c.Workers, p, c.PeerOp); pc != nil {
				c.VsPeer[p] = ratio(c, pc)
			}
		}
	}
	r.Targets = r.evalTargets()
}

// goals are the throughput targets: hasession's HTTP cycle against each peer's (at every
// concurrency level, or at one), and the near-cache's read-only request against the bare
// request.
var goals = []struct {
	name, store, op, peer, peerOp string
	workers                       int // 0: every level
	want                          float64
}{
	{"read-only request with sliding expiry", hasessionName, opHTTPRead, scsName, opHTTPRead, 0, 4},
	{"request that modifies 2 attributes", hasessionName, opHTTPModify, scsName, opHTTPModify, 0, 2},
	{"request that modifies 2 attributes", hasessionName, opHTTPModify, rbName, opHTTPModify, 0, 2},
	{"request that modifies 2 attributes", hasessionName, opHTTPModify, bojName, opHTTPModify, 0, 3},
	{"read-only request, near-cache, 10 reads per write", cacheName, opHTTPRead, scsName, opHTTPRead, 1, 8},
	{"read-only request, near-cache, 10 reads per write", cacheName, opHTTPRead, scsName, opHTTPRead, 32, 10},
	{"request that modifies 2 attributes, near-cache, 10 reads per write", cacheName, opHTTPModify, scsName, opHTTPModify, 1, 2},
	{"read-only request, near-cache, 10 reads per write", cacheName, opHTTPRead, bareName, opHTTP, 32, 0.7},
}

func (r *Result) evalTargets() []target {
	var out []target
	type group struct {
		topology, size string
		workers        int
	}
	var groups []group
	for _, c := range r.Cells {
		g := group{c.Topology, c.Size, c.Workers}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	for _, goal := range goals {
		for _, g := range groups {
			if goal.workers != 0 && goal.workers != g.workers {
				continue
			}
			if goal.store == cacheName && r.Config.ReadsPerWrite != readsPerWrite {
				continue // set for the workload of readsPerWrite only
			}
			hs := r.find(g.topology, g.size, g.workers, goal.store, goal.op)
			peer := r.find(g.topology, g.size, g.workers, goal.peer, goal.peerOp)
			if hs == nil || peer == nil {
				continue // a store not measured on this topology
			}
			t := target{Topology: g.topology, Name: goal.name, Store: goal.store, Size: g.size, Workers: g.workers, Peer: goal.peer, Want: ">= " + strconv.FormatFloat(goal.want, 'g', -1, 64)}
			t.Ratio = ratio(hs, peer)
			t.Status = status(t.Ratio, func(v float64) bool { return v >= goal.want })
			out = append(out, t)
		}
	}
	for _, hs := range r.Memory {
		if hs.Store != hasessionName {
			continue
		}
		for _, p := range r.Memory {
			if p.Topology != hs.Topology || !slices.Contains(peers, p.Store) {
				continue
			}
			t := target{Topology: hs.Topology, Name: "memory per session", Store: hasessionName, Peer: p.Store, Want: "<= 1"}
			if hs.Error == "" && p.Error == "" && p.BytesPerSession > 0 {
				t.Ratio = report.Ptr(hs.BytesPerSession / p.BytesPerSession)
			}
			t.Status = status(t.Ratio, func(v float64) bool { return v <= 1 })
			out = append(out, t)
		}
	}
	return out
}

func status(ratio *float64, ok func(float64) bool) string {
	switch {
	case ratio == nil:
		return "N/A"
	case ok(*ratio):
		return "PASS"
	default:
		return "MISS"
	}
}

// fmtRatio formats a ratio as "2.41x", "-" when missing.
func fmtRatio(r *float64) string {
	if r == nil {
		return "-"
	}
	return strconv.FormatFloat(*r, 'f', 2, 64) + "x"
}

// fmtPct formats a ratio as a percentage, "-" when missing.
func fmtPct(r *float64) string {
	if r == nil {
		return "-"
	}
	return strconv.FormatFloat(*r*100, 'f', 1, 64) + "%"
}

func fmtUs(us float64) string {
	if us >= 1000 {
		return strconv.FormatFloat(us/1000, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(us, 'f', 0, 64) + "µs"
}

var short = map[string]string{scsName: "SCS", rbName: "RB", bojName: "BOJ"}

// writeTable prints one block per topology, size and concurrency, then memory per
// session and the targets.
func writeTable(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "median of %d run(s) of %s each; GOMAXPROCS=%d; ratios are of median ops/s (×FLOOR: to GET for reads, SET EX for changes; ×SCS, ×RB, ×BOJ: to that peer's HTTP cycle of the same kind)\n",
		r.Config.Repeat, r.Config.Duration, r.GoMaxProcs)
	fmt.Fprintln(w, "peers: SCS = scs+goredisstore, RB = gorilla+rbcervilla/redisstore, BOJ = gorilla+boj/redistore; ×BARE: to the bare HTTP request (no session store)")
	if r.CacheWorkload != "" {
		fmt.Fprintf(w, "hasession+cache (WithNearCache, defaults: 10,000 sessions, heartbeat 5ms, lease 50ms): %s\n", r.CacheWorkload)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	head := "STORE\tOP\tOPS/S\tSPREAD\tP50\tP99\tCMDS/OP\tB-SENT/OP\tALLOCS/OP\tHIT%\t×FLOOR"
	for _, p := range peers {
		head += "\t×" + short[p]
	}
	head += "\t×BARE"
	var last string
	for _, c := range r.Cells {
		if g := fmt.Sprintf("%s, %s session, %d worker(s)", c.Topology, c.Size, c.Workers); g != last {
			last = g
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "\n== %s\n", g)
			fmt.Fprintln(tw, head+"\t")
		}
		if c.Runs == 0 {
			fmt.Fprintf(tw, "%s\t%s\tfailed: %s\t\n", c.Store, c.Op, strings.Join(c.Errors, "; "))
			continue
		}
		line := fmt.Sprintf("%s\t%s\t%.0f\t%.0f%%\t%s\t%s\t%.2f\t%.0f\t%.0f\t%s\t%s",
			c.Store, c.Op, c.OpsPerSec.Median, c.OpsPerSec.SpreadPct, fmtUs(c.P50us), fmtUs(c.P99us),
			c.CmdsPerOp, c.BytesPerOp, c.AllocsPerOp, fmtPct(c.HitRatio), fmtRatio(c.VsFloor))
		for _, p := range peers {
			line += "\t" + fmtRatio(c.VsPeer[p])
		}
		line += "\t" + fmtRatio(c.VsBare)
		fmt.Fprintln(tw, line+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Memory) > 0 {
		fmt.Fprintln(w, "\n== Redis memory per typical session (INFO used_memory delta over the sessions, FLUSHALL between stores)")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "TOPOLOGY\tSTORE\tSESSIONS\tB/SESSION\t")
		for _, m := range r.Memory {
			if m.Error != "" {
				fmt.Fprintf(tw, "%s\t%s\t%d\tfailed: %s\t\n", m.Topology, m.Store, m.Sessions, m.Error)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t\n", m.Topology, m.Store, m.Sessions, m.BytesPerSession)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	var near []*cell
	for _, c := range r.Cells {
		if c.Store == cacheName && c.Runs > 0 {
			near = append(near, c)
		}
	}
	if len(near) > 0 || len(r.CacheMemory) > 0 {
		fmt.Fprintln(w, "\n== near-cache (hasession+cache): hit ratio and Redis commands of the app server, untimed requests of the workload included")
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "TOPOLOGY\tSIZE\tWORKERS\tOP\tOPS/S\tHIT%\tREADS/WRITE\tDROPPED\tUNTIMED%\tAPP-REQS/OP\tCMDS/APP-REQ\tCMDS/OP\t×BARE\t")
		for _, c := range near {
			rpw := "-"
			if c.ReadsPerWrite > 0 {
				rpw = strconv.FormatFloat(c.ReadsPerWrite, 'f', 1, 64)
			} else if c.Op == opHTTPModify {
				rpw = strconv.FormatFloat(c.RequestsPerOp-1, 'f', 1, 64)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.0f\t%s\t%s\t%.0f\t%.1f%%\t%.1f\t%.3f\t%.3f\t%s\t\n", c.Topology, c.Size, c.Workers, c.Op, c.OpsPerSec.Median,
				fmtPct(c.HitRatio), rpw, c.WritesDropped, c.UntimedPct, c.RequestsPerOp, c.CmdsPerAppRequest, c.CmdsPerOp, fmtRatio(c.VsBare))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, m := range r.CacheMemory {
			if m.Error != "" {
				fmt.Fprintf(w, "app-server memory per cached session (%s): failed: %s\n", m.Topology, m.Error)
				continue
			}
			fmt.Fprintf(w, "app-server memory per cached typical session (%s): %.0f B of heap (HeapAlloc after GC, before and after loading %d sessions twice; %d cached)\n",
				m.Topology, m.BytesPerSession, m.Sessions, m.Cached)
		}
	}

	fmt.Fprintln(w, "\n== targets (store ÷ peer, from this run's medians)")
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	pass, miss := 0, 0
	for _, t := range r.Targets {
		where := t.Topology
		if t.Size != "" {
			where += fmt.Sprintf(", %s, %d worker(s)", t.Size, t.Workers)
		}
		switch t.Status {
		case "PASS":
			pass++
		case "MISS":
			miss++
		}
		fmt.Fprintf(tw, "%s\t%s: %s vs %s\t%s\t%s\twant %s\t\n", t.Status, t.Store, t.Name, t.Peer, where, fmtRatio(t.Ratio), t.Want)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d PASS, %d MISS, %d N/A\n", pass, miss, len(r.Targets)-pass-miss)
	return nil
}

func writeJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// colors gives each store a colour in the chart.
var colors = map[string]string{
	floorName:     "#9e9e9e",
	hasessionName: "#1b7f3b",
	cacheName:     "#56c271",
	bareName:      "#424242",
	scsName:       "#3461b5",
	rbName:        "#c2612b",
	bojName:       "#8c3fa8",
}

// bar is one bar of a chart: a value with an optional min–max whisker.
type bar struct {
	label, store string
	value        float64
	lo, hi       float64
	text         string
}

// writeSVG draws a horizontal bar chart.
func writeSVG(b *strings.Builder, title string, bars []bar) {
	const labelW, barW, rowH, top = 230, 520, 20, 28
	maxV := 0.0
	for _, x := range bars {
		maxV = math.Max(maxV, math.Max(x.value, x.hi))
	}
	if maxV == 0 {
		maxV = 1
	}
	h := top + rowH*len(bars) + 10
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">`+"\n", labelW+barW+120, h, html.EscapeString(title))
	fmt.Fprintf(b, `<text x="0" y="16" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	for i, x := range bars {
		y := top + i*rowH
		w := x.value / maxV * barW
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+14, html.EscapeString(x.label))
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`, labelW, y+3, w, rowH-6, colors[x.store], html.EscapeString(x.label+": "+x.text))
		if x.hi > x.lo {
			x1, x2 := labelW+x.lo/maxV*barW, labelW+x.hi/maxV*barW
			fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#000"/>`, x1, x2, y+rowH/2, y+rowH/2)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", labelW+math.Max(w, x.hi/maxV*barW)+6, y+14, html.EscapeString(x.text))
	}
	b.WriteString("</svg>\n")
}

// writeHTML writes a self-contained page: one chart of ops/s per topology, size and
// concurrency (bars: median; whiskers: min–max of the runs), memory per session, the
// targets. No script, stylesheet or image is fetched.
func writeHTML(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hasession compare</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}svg{font-size:12px;display:block;margin:1.5em 0}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}.PASS{color:#1b7f3b}.MISS{color:#b00020;font-weight:bold}</style>
</head><body>
<h1>hasession against the stores people use today</h1>
`)
	fmt.Fprintf(&b, "<p>Median of %d run(s) of %s per measurement, GOMAXPROCS=%d. Bars: median ops/s; whiskers: min–max of the runs.</p>\n",
		r.Config.Repeat, html.EscapeString(r.Config.Duration.String()), r.GoMaxProcs)
	b.WriteString("<h2>Targets</h2>\n<table><tr><th>status</th><th>target</th><th>where</th><th>ratio</th><th>want</th></tr>\n")
	for _, t := range r.Targets {
		where := t.Topology
		if t.Size != "" {
			where += fmt.Sprintf(", %s, %d worker(s)", t.Size, t.Workers)
		}
		fmt.Fprintf(&b, "<tr><td class=%q>%s</td><td>%s: %s vs %s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			t.Status, t.Status, html.EscapeString(t.Store), html.EscapeString(t.Name), html.EscapeString(t.Peer), html.EscapeString(where), fmtRatio(t.Ratio), html.EscapeString(t.Want))
	}
	b.WriteString("</table>\n")

	if len(r.Memory) > 0 {
		var bars []bar
		for _, m := range r.Memory {
			if m.Error != "" {
				continue
			}
			bars = append(bars, bar{label: m.Topology + " " + m.Store, store: m.Store, value: m.BytesPerSession, text: fmt.Sprintf("%.0f B", m.BytesPerSession)})
		}
		b.WriteString("<h2>Redis memory per typical session</h2>\n")
		writeSVG(&b, "bytes per session (lower is better)", bars)
	}
	if len(r.CacheMemory) > 0 {
		var bars []bar
		for _, m := range r.CacheMemory {
			if m.Error != "" {
				continue
			}
			bars = append(bars, bar{label: m.Topology + " " + m.Store, store: m.Store, value: m.BytesPerSession, text: fmt.Sprintf("%.0f B (%d cached)", m.BytesPerSession, m.Cached)})
		}
		b.WriteString("<h2>App-server memory per cached typical session (near-cache)</h2>\n")
		writeSVG(&b, "heap bytes per cached session (lower is better)", bars)
	}
	if r.CacheWorkload != "" {
		fmt.Fprintf(&b, "<p>hasession+cache: %s.</p>\n", html.EscapeString(r.CacheWorkload))
	}

	b.WriteString("<h2>Throughput</h2>\n")
	var bars []bar
	var title string
	flush := func() {
		if len(bars) > 0 {
			writeSVG(&b, title, bars)
		}
		bars = nil
	}
	for _, c := range r.Cells {
		t := fmt.Sprintf("%s, %s session, %d worker(s): ops/s (higher is better)", c.Topology, c.Size, c.Workers)
		if t != title {
			flush()
			title = t
		}
		if c.Runs == 0 {
			continue
		}
		text := fmt.Sprintf("%.0f ops/s, p99 %s", c.OpsPerSec.Median, fmtUs(c.P99us))
		if c.HitRatio != nil {
			text += ", hits " + fmtPct(c.HitRatio)
		}
		bars = append(bars, bar{
			label: c.Store + " " + c.Op, store: c.Store, value: c.OpsPerSec.Median, lo: c.OpsPerSec.Min, hi: c.OpsPerSec.Max,
			text: text,
		})
	}
	flush()
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
