package cli

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress display intervals: a terminal's line is redrawn often, a log (stderr not a
// terminal) gets a new line every second or so.
const (
	redrawEvery = 200 * time.Millisecond
	lineEvery   = time.Second
	barWidth    = 20
)

// progressState is a snapshot of a long command's progress.
type progressState struct {
	label   string
	done    int64         // items done
	total   int64         // items expected; 0 when unknown
	elapsed time.Duration // since the start
}

// rate returns the items done per second since the start, 0 before anything was timed.
func (p progressState) rate() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.done) / p.elapsed.Seconds()
}

// eta returns the time left at the average rate so far, and false when there is no
// estimate: nothing done yet, no total, or the total reached (done may pass the total,
// which is an estimate: the command says "done" rather than a negative time).
func (p progressState) eta() (time.Duration, bool) {
	r := p.rate()
	if r <= 0 || p.total <= 0 || p.done >= p.total {
		return 0, false
	}
	secs := float64(p.total-p.done) / r
	if secs > float64(math.MaxInt64/int64(time.Second)) {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)).Round(time.Second), true
}

// formatRate formats items per second: 3 significant digits below 100, whole numbers
// above, with a k for thousands from 10,000 on.
func formatRate(r float64) string {
	switch {
	case r <= 0 || math.IsNaN(r) || math.IsInf(r, 0):
		return "0/s"
	case r < 10:
		return fmt.Sprintf("%.2f/s", r)
	case r < 100:
		return fmt.Sprintf("%.1f/s", r)
	case r < 10_000:
		return fmt.Sprintf("%.0f/s", r)
	}
	return fmt.Sprintf("%.1fk/s", r/1000)
}

// formatETA formats a time, rounded: "45s", "3m05s", "2h07m".
func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// bar draws width cells, filled in proportion to done of total (at most full).
func bar(done, total int64, width int) string {
	filled := 0
	if total > 0 {
		filled = int(min(done, total) * int64(width) / total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

// formatProgress is the progress line: with a bar for a terminal (bar true), plain for
// a log. Done may pass the total (an estimate): the percentage then stops at 100 and the
// total shown is the done count, so the line never claims more than what was done.
func formatProgress(p progressState, withBar bool) string {
	var b strings.Builder
	b.WriteString(p.label)
	total := max(p.total, p.done)
	if withBar {
		b.WriteString(" ")
		b.WriteString(bar(p.done, total, barWidth))
	}
	if total > 0 {
		fmt.Fprintf(&b, " %d/%d (%d%%)", p.done, total, p.done*100/total)
	} else {
		fmt.Fprintf(&b, " %d", p.done)
	}
	fmt.Fprintf(&b, ", %s", formatRate(p.rate()))
	switch eta, ok := p.eta(); {
	case ok:
		fmt.Fprintf(&b, ", ETA %s", formatETA(eta))
	case p.done >= total:
		fmt.Fprintf(&b, ", %s elapsed", formatETA(p.elapsed))
	default:
		b.WriteString(", ETA -")
	}
	return b.String()
}

// progress shows a command's progress on w until stop is called: a line redrawn in
// place on a terminal, a new line every second otherwise, and a last line at the end.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	start time.Time
	done  atomic.Int64
	total atomic.Int64

	stopOnce sync.Once
	quit     chan struct{}
	exited   chan struct{}
	width    int // the longest line drawn, to blank on a redraw
}

// startProgress starts showing progress on w (a terminal when tty).
func startProgress(w io.Writer, tty bool, label string, total int64) *progress {
	p := &progress{w: w, tty: tty, label: label, start: time.Now(), quit: make(chan struct{}), exited: make(chan struct{})}
	p.total.Store(total)
	every := lineEvery
	if tty {
		every = redrawEvery
	}
	go func() {
		defer close(p.exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// add counts n more items done.
func (p *progress) add(n int64) { p.done.Add(n) }

func (p *progress) state() progressState {
	return progressState{label: p.label, done: p.done.Load(), total: p.total.Load(), elapsed: time.Since(p.start)}
}

// draw writes the line, in place on a terminal. Only the goroutine of startProgress
// and stop (after that goroutine exited) call it.
func (p *progress) draw() {
	line := formatProgress(p.state(), p.tty)
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(p.width-len(line), 0)
	p.width = max(p.width, len(line))
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// stop stops the display and draws the last line.
func (p *progress) stop() {
	p.stopOnce.Do(func() {
		close(p.quit)
		<-p.exited
		p.draw()
		if p.tty {
			fmt.Fprintln(p.w)
		}
	})
}
