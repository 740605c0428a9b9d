package otel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	hasessionotel "github.com/hasession/hasession/otel"
	"github.com/hasession/hasession/store"
)

func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }

// telemetry is an Observer on the real OpenTelemetry SDK: a ManualReader for the metrics,
// a span recorder (every span sampled) for the traces.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	obs    *hasessionotel.Observer
}

func newTelemetry(t *testing.T) *telemetry {
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tel.tp.Shutdown(context.Background()) })
	var err error
	tel.obs, err = hasessionotel.New(hasessionotel.WithMeterProvider(mp), hasessionotel.WithTracerProvider(tel.tp))
	require.NoError(t, err)
	return tel
}

// point is one data point of a metric: its attributes (key=value, sorted) and value (a
// sum's value, a histogram's count).
type point struct {
	metric, attrs string
	value         int64
	sum           float64
}

func (tel *telemetry) collect(t *testing.T) []point {
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	var out []point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out = append(out, point{metric: m.Name, attrs: attrString(dp.Attributes), value: dp.Value})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out = append(out, point{metric: m.Name, attrs: attrString(dp.Attributes), value: int64(dp.Count), sum: dp.Sum})
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					out = append(out, point{metric: m.Name, attrs: attrString(dp.Attributes), value: dp.Value})
				}
			default:
				t.Errorf("metric %s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	slices.SortFunc(out, func(a, b point) int { return strings.Compare(a.metric+a.attrs, b.metric+b.attrs) })
	return out
}

func attrString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		if kv.Key == "db.system.name" {
			continue // on every instrument: "redis" (checked in TestInstrumentAttributes)
		}
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// total sums the metric's points whose attributes contain every one of want.
func total(points []point, metric string, want ...string) int64 {
	var n int64
	for _, p := range points {
		if p.metric != metric {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(p.attrs, w)
		}
		if ok {
			n += p.value
		}
	}
	return n
}

func dump(t *testing.T, title string, points []point) {
	var b strings.Builder
	for _, p := range points {
		if strings.HasSuffix(p.metric, ".duration") {
			fmt.Fprintf(&b, "  %s%s count=%d sum=%.3fs\n", p.metric, p.attrs, p.value, p.sum)
		} else {
			fmt.Fprintf(&b, "  %s%s %d\n", p.metric, p.attrs, p.value)
		}
	}
	t.Logf("%s:\n%s", title, b.String())
}

// TestMetricsAndSpansThroughAMasterKill runs HTTP traffic through otelhttp and the
// httpsession middleware on a Cluster, then load through a master kill, and checks what
// the SDK got: the counts of the operations done, one span per store operation under the
// request's span with the database attributes, and the retry, recovery and reload
// counters moving with the kill.
func TestMetricsAndSpansThroughAMasterKill(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	ctx := t.Context()
	tel := newTelemetry(t)
	rdb := cluster.Client(t, topo, store.NewFailoverClient)
	// WAIT 1 on every write, a shortfall accepted: after the kill, the promoted replica has
	// no replica of its own until the old master rejoins.
	st, err := store.New(rdb, store.WithObserver(tel.obs), store.WithTouchInterval(0),
		store.WithWriteAck(1, 250*time.Millisecond), store.WithWriteAckPolicy(store.AckBestEffort))
	require.NoError(t, err)
	sm, err := httpsession.New(st, httpsession.WithSecure(false))
	require.NoError(t, err)

	// 1. HTTP: each client logs in (a new session: created), reads it back twice (hits,
	// touched), logs out (destroyed).
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, httpsession.FromContext(r.Context()).Set("n", 1))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, httpsession.FromContext(r.Context()).Destroy(r.Context()))
	})
	srv := httptest.NewServer(otelhttp.NewHandler(sm.Handler(mux), "request", otelhttp.WithTracerProvider(tel.tp)))
	t.Cleanup(srv.Close)
	const clients = 5
	for range clients {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		for _, req := range []struct{ method, path string }{{"POST", "/login"}, {"GET", "/"}, {"GET", "/"}, {"POST", "/logout"}} {
			r, err := http.NewRequestWithContext(ctx, req.method, srv.URL+req.path, nil)
			require.NoError(t, err)
			resp, err := c.Do(r)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	// A load of an ID that names no session: not found.
	_, err = st.Load(ctx, uuid.NewString())
	require.ErrorIs(t, err, store.ErrNotFound)
	// A user's three sessions, revoked all at once.
	user := "user-" + uuid.NewString()
	for range 3 {
		s, err := st.NewSession()
		require.NoError(t, err)
		s.SetUser(user)
		require.NoError(t, st.Save(ctx, s))
	}
	require.NoError(t, st.RevokeAll(ctx, user))

	before := tel.collect(t)
	dump(t, "metrics after the HTTP traffic (no fault)", before)
	dur := hasessionotel.MetricOperationDuration
	require.Equal(t, int64(clients+3), total(before, hasessionotel.MetricSessionsCreated), "sessions created")
	require.Equal(t, int64(clients), total(before, hasessionotel.MetricSessionsDestroyed), "sessions destroyed")
	require.Equal(t, int64(3), total(before, hasessionotel.MetricSessionsRevoked), "sessions revoked")
	// Each client's two reads and its logout load the session: hits.
	require.Equal(t, int64(3*clients+1), total(before, dur, "db.operation.name=hasession.load,"), "loads")
	require.Equal(t, int64(3*clients), total(before, dur, "db.operation.name=hasession.load,", "hasession.outcome=hit"), "load hits")
	require.Equal(t, int64(1), total(before, dur, "db.operation.name=hasession.load,", "hasession.outcome=not_found"), "loads not found")
	// Touch interval 0: every hit's touch is due (skipped only when Redis's clock has
	// not moved on a millisecond since the last one).
	require.Equal(t, int64(3*clients), total(before, hasessionotel.MetricTouches), "touches sent and skipped: one per hit")
	require.Positive(t, total(before, hasessionotel.MetricTouches, "hasession.touch=sent"), "touches sent")
	require.Equal(t, int64(clients+3), total(before, dur, "db.operation.name=hasession.save,", "hasession.outcome=ok"), "saves")
	require.Equal(t, int64(clients), total(before, dur, "db.operation.name=hasession.destroy,", "hasession.outcome=ok"), "destroys")
	require.Positive(t, total(before, hasessionotel.MetricBytesSent, "db.operation.name=hasession.save"), "bytes sent by saves")
	require.Zero(t, total(before, dur, "hasession.outcome=error"), "errors")

	// Spans: each request's store spans are children of otelhttp's request span.
	spans := tel.spans.Ended()
	requests := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindServer { // otelhttp's
			requests[s.SpanContext().SpanID().String()] = s
		}
	}
	require.Len(t, requests, 4*clients, "one otelhttp span per request")
	byName, underRequest := map[string]int{}, map[string]int{}
	var shown []string
	for _, s := range spans {
		if !strings.HasPrefix(s.Name(), "hasession.") {
			continue
		}
		byName[s.Name()]++
		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes() {
			attrs[kv.Key] = kv.Value
		}
		require.Equal(t, "redis", attrs["db.system.name"].AsString(), s.Name())
		require.Equal(t, s.Name(), attrs["db.operation.name"].AsString())
		require.Contains(t, attrs, attribute.Key("hasession.outcome"))
		require.Equal(t, int64(1), attrs["hasession.attempts"].AsInt64(), "no retry without a fault")
		if !s.Parent().IsValid() {
			continue // the test's own calls, outside any request
		}
		parent, ok := requests[s.Parent().SpanID().String()]
		require.True(t, ok, "span %s: parent %s is not a request span", s.Name(), s.Parent().SpanID())
		require.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID())
		underRequest[s.Name()]++
		if len(shown) < 3 && byName[s.Name()] == 1 {
			shown = append(shown, spanString(s, parent))
		}
	}
	t.Logf("store spans by name: %v, of which under a request span: %v\n%s", byName, underRequest, strings.Join(shown, "\n"))
	require.Equal(t, 3*clients+1, byName["hasession.load"])
	require.Equal(t, clients+3, byName["hasession.save"])
	require.Equal(t, map[string]int{"hasession.load": 3 * clients, "hasession.save": clients, "hasession.destroy": clients}, underRequest)

	// 2. Load through a master kill: retries, recoveries and reloads move.
	probe, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, probe.Set("n", 0))
	require.NoError(t, st.Save(ctx, probe))
	key, _ := st.Key(probe.ID())
	var ops, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				octx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err := st.Update(octx, probe.ID(), func(s *store.Session) error {
					n, _ := store.GetOr(s, "n", 0)
					return s.Set("n", n+1)
				})
				cancel()
				if err != nil && !errors.Is(err, context.Canceled) {
					failed.Add(1)
					t.Logf("update: %v", err)
				}
				ops.Add(1)
			}
		})
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	require.Eventually(t, func() bool { return ops.Load() > 50 }, 10*time.Second, 10*time.Millisecond, "warm-up")
	ep, err := cluster.RunEpisode(ctx, topo, cluster.FaultKill, cluster.EpisodeOptions{Key: key, Logf: t.Logf})
	require.NoError(t, err)
	n := ops.Load()
	require.Eventually(t, func() bool { return ops.Load() > n+50 }, 20*time.Second, 10*time.Millisecond, "load after the heal")
	close(stop)
	wg.Wait()
	t.Logf("killed %s, %s promoted after %s; %d updates, %d failed; store stats %+v",
		ep.Master.Name, ep.Promoted.Name, ep.Promotion.Round(time.Millisecond), ops.Load(), failed.Load(), st.Stats())

	after := tel.collect(t)
	dump(t, "metrics after the master kill", after)
	stats := st.Stats()
	require.Positive(t, total(after, hasessionotel.MetricRetries), "retries")
	require.Positive(t, total(after, hasessionotel.MetricRecoveries), "recoveries")
	require.Positive(t, total(after, hasessionotel.MetricReloads), "slot-map reloads")
	require.Equal(t, stats.Retries, total(after, hasessionotel.MetricRetries), "retries: metric and Stats agree")
	require.Equal(t, stats.Recovered, total(after, hasessionotel.MetricRecoveries), "recoveries: metric and Stats agree")
	require.Equal(t, stats.Reloads, total(after, hasessionotel.MetricReloads), "reloads: metric and Stats agree")
	require.Equal(t, stats.Unacknowledged, total(after, hasessionotel.MetricAckShortfalls), "WAIT shortfalls: metric and Stats agree")
	require.Equal(t, stats.AcceptedUnacknowledged, total(after, hasessionotel.MetricAckShortfalls, "hasession.ack.accepted=true"), "accepted shortfalls")
	require.Zero(t, failed.Load(), "updates that failed")

	// A span of an operation that recovered: several attempts, retry events.
	for _, s := range tel.spans.Ended() {
		if len(s.Events()) == 0 || !strings.HasPrefix(s.Name(), "hasession.") {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key == "hasession.outcome" && (kv.Value.AsString() == "hit" || kv.Value.AsString() == "ok") {
				t.Logf("a span that recovered:\n%s", spanString(s, nil))
				return
			}
		}
	}
	t.Error("no span of a recovered operation")
}

func spanString(s sdktrace.ReadOnlySpan, parent sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  span %q kind=%s trace=%s span=%s parent=%s", s.Name(), s.SpanKind(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID())
	if parent != nil {
		fmt.Fprintf(&b, " (%q)", parent.Name())
	}
	fmt.Fprintf(&b, " status=%s duration=%s\n", s.Status().Code, s.EndTime().Sub(s.StartTime()).Round(time.Microsecond))
	for _, kv := range s.Attributes() {
		fmt.Fprintf(&b, "    %s=%s\n", kv.Key, kv.Value.String())
	}
	for _, e := range s.Events() {
		fmt.Fprintf(&b, "    event %s", e.Name)
		for _, kv := range e.Attributes {
			fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value.String())
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
