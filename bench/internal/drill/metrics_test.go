package drill

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hasession/hasession/store"
)

// --metrics serves the hasession runs' store metrics at /metrics, and the report lists
// the metrics to alert on (no Redis needed: the observer is fed as a store feeds it).
func TestMetricsFlagServesStoreMetrics(t *testing.T) {
	c, err := parseFlags([]string{"--metrics", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.metrics != "127.0.0.1:0" {
		t.Fatalf("--metrics: %q", c.metrics)
	}
	m, err := startMetrics(c.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	c.observer = m.obs
	for _, spec := range c.runs() {
		if spec.observer == nil {
			t.Errorf("run %s gets no observer", spec.Name)
		}
	}
	ctx := context.Background()
	op := m.obs.OpStart(ctx, store.OpLoad)
	m.obs.OpEnd(op, store.OpEvent{Op: store.OpLoad, Outcome: store.OutcomeHit, Duration: time.Millisecond, Attempts: 2, Touch: store.TouchSkipped})
	m.obs.Notify(ctx, store.Notice{Kind: store.NoticeRetry, Op: store.OpLoad, Attempt: 1})
	m.obs.Notify(ctx, store.Notice{Kind: store.NoticeRecovered, Op: store.OpLoad, Attempt: 2})

	resp, err := http.Get("http://" + m.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	for _, want := range []string{
		`hasession_operation_duration_seconds_bucket{db_operation_name="hasession.load",db_system_name="redis",hasession_outcome="hit"`,
		`hasession_operation_retries_total{db_operation_name="hasession.load",db_system_name="redis"`,
		`hasession_operation_recoveries_total{db_operation_name="hasession.load",db_system_name="redis"`,
		`hasession_touches_total{db_system_name="redis",hasession_touch="skipped"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var report strings.Builder
	if err := m.writeMetrics(&report); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:%s", report.String())
	for _, want := range []string{"hasession_operation_duration_seconds", "hasession_outcome=hit: 1", "hasession_operation_retries_total", "db_operation_name=hasession.load: 1"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
}
