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
	Config     Config   `json:"config"`
	DurationS  float64  `json:"duration_per_measurement_s"`
	GoMaxProcs int      `json:"gomaxprocs"`
	Cells      []*cell  `json:"cells"`
	Memory     []mem    `json:"memory"`
	Targets    []target `json:"targets"`
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
	Errors []string            `json:"errors,omitempty"`

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

// target is one target, evaluated on this run's figures.
type target struct {
	Topology string   `json:"topology"`
	Name     string   `json:"name"`
	Size     string   `json:"size,omitempty"`
	Workers  int      `json:"workers,omitempty"`
	Peer     string   `json:"peer"`
	Ratio    *float64 `json:"ratio"` // hasession ÷ peer: ops/s, or bytes per session
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
	}
	for _, c := range r.Cells {
		c.VsFloor = ratio(c, r.find(c.Topology, c.Size, c.Workers, floorName, c.FloorOp))
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

// goals are the throughput targets: hasession's HTTP cycle against each peer's.
var goals = []struct {
	name, op, peer string
	want           float64
}{
	{"read-only request with sliding expiry", opHTTPRead, scsName, 4},
	{"request that modifies 2 attributes", opHTTPModify, scsName, 2},
	{"request that modifies 2 attributes", opHTTPModify, rbName, 2},
	{"request that modifies 2 attributes", opHTTPModify, bojName, 3},
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
			hs := r.find(g.topology, g.size, g.workers, hasessionName, goal.op)
			peer := r.find(g.topology, g.size, g.workers, goal.peer, goal.op)
			if hs == nil || peer == nil {
				continue // a store not measured on this topology
			}
			t := target{Topology: g.topology, Name: goal.name, Size: g.size, Workers: g.workers, Peer: goal.peer, Want: ">= " + strconv.FormatFloat(goal.want, 'g', -1, 64)}
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
			t := target{Topology: hs.Topology, Name: "memory per session", Peer: p.Store, Want: "<= 1"}
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
	fmt.Fprintln(w, "peers: SCS = scs+goredisstore, RB = gorilla+rbcervilla/redisstore, BOJ = gorilla+boj/redistore")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	head := "STORE\tOP\tOPS/S\tSPREAD\tP50\tP99\tCMDS/OP\tB-SENT/OP\tALLOCS/OP\t×FLOOR"
	for _, p := range peers {
		head += "\t×" + short[p]
	}
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
		line := fmt.Sprintf("%s\t%s\t%.0f\t%.0f%%\t%s\t%s\t%.1f\t%.0f\t%.0f\t%s",
			c.Store, c.Op, c.OpsPerSec.Median, c.OpsPerSec.SpreadPct, fmtUs(c.P50us), fmtUs(c.P99us),
			c.CmdsPerOp, c.BytesPerOp, c.AllocsPerOp, fmtRatio(c.VsFloor))
		for _, p := range peers {
			line += "\t" + fmtRatio(c.VsPeer[p])
		}
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

	fmt.Fprintln(w, "\n== targets (hasession ÷ peer, from this run's medians)")
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
		fmt.Fprintf(tw, "%s\t%s vs %s\t%s\t%s\twant %s\t\n", t.Status, t.Name, t.Peer, where, fmtRatio(t.Ratio), t.Want)
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
		fmt.Fprintf(&b, "<tr><td class=%q>%s</td><td>%s vs %s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			t.Status, t.Status, html.EscapeString(t.Name), html.EscapeString(t.Peer), html.EscapeString(where), fmtRatio(t.Ratio), html.EscapeString(t.Want))
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
		bars = append(bars, bar{
			label: c.Store + " " + c.Op, store: c.Store, value: c.OpsPerSec.Median, lo: c.OpsPerSec.Min, hi: c.OpsPerSec.Max,
			text: fmt.Sprintf("%.0f ops/s, p99 %s", c.OpsPerSec.Median, fmtUs(c.P99us)),
		})
	}
	flush()
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
