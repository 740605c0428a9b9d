package timings

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hasession/hasession/cluster"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    stats
	}{
		{"none", nil, stats{}},
		{"one", []time.Duration{ms(520)}, stats{Median: ms(520), Min: ms(520), Max: ms(520), N: 1}},
		{"odd, unsorted", []time.Duration{ms(610), ms(480), ms(520)}, stats{Median: ms(520), Min: ms(480), Max: ms(610), N: 3}},
		{"even: mean of the middle two", []time.Duration{ms(4000), ms(1000), ms(3000), ms(2000)}, stats{Median: ms(2500), Min: ms(1000), Max: ms(4000), N: 4}},
		{"repeats", []time.Duration{ms(7), ms(7), ms(1)}, stats{Median: ms(7), Min: ms(1), Max: ms(7), N: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.samples)
			if got := summarize(in); got != tc.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tc.samples, got, tc.want)
			}
			if !slices.Equal(in, tc.samples) {
				t.Errorf("summarize reordered its input: %v", in)
			}
		})
	}
}

// sampleReport has a complete series, one with a failed attempt and one with no sample.
func sampleReport() *results {
	r := &results{Repeat: 3}
	for _, d := range []time.Duration{ms(610), ms(480), ms(520)} {
		r.add("standalone", measureHealthy, d)
	}
	r.add("cluster", measurePromoted(cluster.FaultKill), ms(2410))
	r.add("cluster", measurePromoted(cluster.FaultKill), ms(2610))
	r.fail("cluster", measurePromoted(cluster.FaultKill), errors.New("no promotion"))
	r.fail("cluster", measureRejoined(cluster.FaultKill), errors.New("boom"))
	return r
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := writeTable(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"TOPOLOGY    MEASURE        MEDIAN  MIN    MAX    RUNS",
		"standalone  run→healthy    0.52s   0.48s  0.61s  3",
		"cluster     kill→promoted  2.51s   2.41s  2.61s  2/3",
		"cluster     kill→rejoined  -       -      -      0/1",
		"",
	}, "\n")
	if got := buf.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := writeTable(&buf, &results{Repeat: 1}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "TOPOLOGY  MEASURE  MEDIAN  MIN  MAX  RUNS\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var got jsonReport
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v in\n%s", err, buf.String())
	}
	if got.Repeat != 3 || len(got.Results) != 3 {
		t.Fatalf("repeat %d, %d results:\n%s", got.Repeat, len(got.Results), buf.String())
	}

	sa := got.Results[0]
	if sa.Topology != "standalone" || sa.Measure != "run→healthy" {
		t.Errorf("first result is %s %s", sa.Topology, sa.Measure)
	}
	if !slices.Equal(sa.Samples, []float64{0.61, 0.48, 0.52}) {
		t.Errorf("samples %v: want every sample in seconds, in the order measured", sa.Samples)
	}
	if sa.Median == nil || *sa.Median != 0.52 || *sa.Min != 0.48 || *sa.Max != 0.61 || sa.Runs != 3 || sa.Failed != 0 || sa.Errors != nil {
		t.Errorf("standalone: %+v", sa)
	}

	kill := got.Results[1]
	if kill.Median == nil || *kill.Median != 2.51 || kill.Runs != 2 || kill.Failed != 1 || !slices.Equal(kill.Errors, []string{"no promotion"}) {
		t.Errorf("kill→promoted: %+v", kill)
	}

	// A measure without a sample has null figures and an empty (not null) sample list.
	s := buf.String()
	i := strings.Index(s, `"measure": "kill→rejoined"`)
	if i < 0 {
		t.Fatalf("no kill→rejoined in\n%s", s)
	}
	rest := s[i:]
	for _, want := range []string{`"samples_s": []`, `"median_s": null`, `"runs": 0`, `"failed": 1`} {
		if !strings.Contains(rest, want) {
			t.Errorf("kill→rejoined lacks %s:\n%s", want, rest)
		}
	}
}

func TestReportKeepsDeclaredOrder(t *testing.T) {
	b := &timer{res: &results{}}
	b.declare(cluster.KindSentinel, []cluster.FaultKind{cluster.FaultKill, cluster.FaultPause})
	b.declare(cluster.KindStandalone, nil)
	b.res.add("standalone", measureHealthy, ms(1))
	b.res.add("sentinel", measureRejoined(cluster.FaultPause), ms(1))
	var got []string
	for _, s := range b.res.Series {
		got = append(got, s.Topology+" "+s.Measure)
	}
	want := []string{
		"sentinel run→healthy", "sentinel run→removed",
		"sentinel kill→promoted", "sentinel kill→rejoined",
		"sentinel pause→promoted", "sentinel pause→rejoined",
		"standalone run→healthy", "standalone run→removed",
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%v\nwant\n%v", got, want)
	}
}
