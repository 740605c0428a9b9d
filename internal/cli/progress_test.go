package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFormatRate(t *testing.T) {
	for _, c := range []struct {
		rate float64
		want string
	}{
		{0, "0/s"},
		{-1, "0/s"},
		{0.5, "0.50/s"},
		{9.999, "10.00/s"},
		{42.42, "42.4/s"},
		{999.4, "999/s"},
		{9999, "9999/s"},
		{12_345, "12.3k/s"},
		{250_000, "250.0k/s"},
	} {
		require.Equal(t, c.want, formatRate(c.rate), "%v", c.rate)
	}
}

func TestFormatETA(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{400 * time.Millisecond, "0s"},
		{45 * time.Second, "45s"},
		{3*time.Minute + 5*time.Second, "3m05s"},
		{2*time.Hour + 7*time.Minute + 59*time.Second, "2h08m"},
		{100 * time.Hour, "100h00m"},
	} {
		require.Equal(t, c.want, formatETA(c.d), "%v", c.d)
	}
}

func TestProgressRateAndETA(t *testing.T) {
	p := progressState{done: 2500, total: 10_000, elapsed: 5 * time.Second}
	require.InDelta(t, 500, p.rate(), 1e-9)
	eta, ok := p.eta()
	require.True(t, ok)
	require.Equal(t, 15*time.Second, eta, "7500 left at 500/s")

	t.Run("no estimate before anything is done", func(t *testing.T) {
		_, ok := progressState{total: 10, elapsed: time.Second}.eta()
		require.False(t, ok)
		_, ok = progressState{total: 10}.eta()
		require.False(t, ok)
	})
	t.Run("no estimate without a total, or past it", func(t *testing.T) {
		_, ok := progressState{done: 5, elapsed: time.Second}.eta()
		require.False(t, ok)
		_, ok = progressState{done: 12, total: 10, elapsed: time.Second}.eta()
		require.False(t, ok)
	})
	t.Run("an estimate too far away is none", func(t *testing.T) {
		_, ok := progressState{done: 1, total: 1 << 62, elapsed: time.Hour}.eta()
		require.False(t, ok)
	})
}

func TestFormatProgress(t *testing.T) {
	p := progressState{label: "import scs", done: 2500, total: 10_000, elapsed: 5 * time.Second}
	require.Equal(t, "import scs [#####...............] 2500/10000 (25%), 500/s, ETA 15s", formatProgress(p, true))
	require.Equal(t, "import scs 2500/10000 (25%), 500/s, ETA 15s", formatProgress(p, false))

	t.Run("done", func(t *testing.T) {
		p := progressState{label: "x", done: 10, total: 10, elapsed: 2 * time.Second}
		require.Equal(t, "x [####################] 10/10 (100%), 5.00/s, 2s elapsed", formatProgress(p, true))
	})
	t.Run("past the estimated total it shows what was done, not more than 100%", func(t *testing.T) {
		p := progressState{label: "x", done: 12, total: 10, elapsed: 4 * time.Second}
		require.Equal(t, "x 12/12 (100%), 3.00/s, 4s elapsed", formatProgress(p, false))
	})
	t.Run("nothing done yet", func(t *testing.T) {
		p := progressState{label: "x", total: 10}
		require.Equal(t, "x [....................] 0/10 (0%), 0/s, ETA -", formatProgress(p, true))
	})
	t.Run("nothing to do", func(t *testing.T) {
		require.Equal(t, "x 0, 0/s, 0s elapsed", formatProgress(progressState{label: "x"}, false))
	})
}

func TestProgressDisplay(t *testing.T) {
	t.Run("a log gets lines, the last at the end", func(t *testing.T) {
		var b bytes.Buffer
		p := startProgress(&b, false, "x", 3)
		p.add(3)
		p.stop()
		p.stop() // a second stop does nothing
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		require.NotEmpty(t, lines)
		require.Regexp(t, `^x 3/3 \(100%\), .*elapsed$`, lines[len(lines)-1])
		require.NotContains(t, b.String(), "\r")
	})
	t.Run("a terminal's line is redrawn in place", func(t *testing.T) {
		var b bytes.Buffer
		p := startProgress(&b, true, "x", 3)
		p.add(2)
		p.stop()
		require.True(t, strings.HasPrefix(b.String(), "\rx ["), b.String())
		require.True(t, strings.HasSuffix(b.String(), "\n"))
		require.Contains(t, b.String(), "2/3 (66%)")
	})
}

func TestImportUsage(t *testing.T) {
	none := []string{"--addrs", "127.0.0.1:1", "--timeout", "200ms"}
	for _, a := range [][]string{
		{"import"},
		{"import", "--from", "nope"},
		{"import", "--from", "scs", "--batch", "0"},
		{"import", "--from", "scs", "--batch", "1000001"},
		{"import", "--from", "scs", "--workers", "0"},
		{"import", "--from", "scs", "--workers", "65"},
		{"import", "--from", "scs", "extra"},
	} {
		_, stderr, code := run(t, "", append(a, none...)...)
		require.Equal(t, 2, code, "%q", a)
		require.NotContains(t, stderr, "127.0.0.1:1", "nothing was sent")
	}
}
