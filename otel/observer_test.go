package hasessionotel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	hasessionotel "github.com/hasession/hasession/otel"
	"github.com/hasession/hasession/store"
)

// instruments is the package doc's table: name, unit, attribute keys besides
// db.system.name.
var instruments = map[string]struct {
	unit  string
	attrs []attribute.Key
}{
	hasessionotel.MetricOperationDuration: {"s", []attribute.Key{"db.operation.name", "hasession.outcome"}},
	hasessionotel.MetricRetries:           {"{retry}", []attribute.Key{"db.operation.name"}},
	hasessionotel.MetricRecoveries:        {"{operation}", []attribute.Key{"db.operation.name"}},
	hasessionotel.MetricReloads:           {"{reload}", nil},
	hasessionotel.MetricAckShortfalls:     {"{write}", []attribute.Key{"db.operation.name", "hasession.ack.accepted"}},
	hasessionotel.MetricBytesSent:         {"By", []attribute.Key{"db.operation.name"}},
	hasessionotel.MetricTouches:           {"{load}", []attribute.Key{"hasession.touch"}}, // observable
	hasessionotel.MetricSessionsCreated:   {"{session}", nil},
	hasessionotel.MetricSessionsDestroyed: {"{session}", nil},
	hasessionotel.MetricSessionsRevoked:   {"{session}", nil},
	// the near-cache's (observable, once a store is observed)
	hasessionotel.MetricNearLoads:       {"{load}", []attribute.Key{"hasession.near_cache.result"}},
	hasessionotel.MetricNearEntries:     {"{session}", nil},
	hasessionotel.MetricNearEvictions:   {"{entry}", []attribute.Key{"hasession.near_cache.cause"}},
	hasessionotel.MetricNearLeaseWaits:  {"{revocation}", nil},
	hasessionotel.MetricNearFallbacks:   {"{load}", nil},
	hasessionotel.MetricNearConnections: {"{event}", []attribute.Key{"hasession.near_cache.event"}},
}

func newObserver(t *testing.T) (*hasessionotel.Observer, *sdkmetric.ManualReader, *tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) })
	obs, err := hasessionotel.New(hasessionotel.WithMeterProvider(mp), hasessionotel.WithTracerProvider(tp))
	require.NoError(t, err)
	return obs, reader, sr, tp
}

// Every instrument the doc lists is recorded with the unit and attributes it names.
func TestInstrumentAttributes(t *testing.T) {
	obs, reader, _, _ := newObserver(t)
	ctx := context.Background()
	end := func(op store.Op, oc store.Outcome, touch store.Touch, bytes int) {
		c := obs.OpStart(ctx, op)
		obs.OpEnd(c, store.OpEvent{Op: op, Outcome: oc, Duration: time.Millisecond, Attempts: 1, Touch: touch, BytesSent: bytes})
	}
	end(store.OpLoad, store.OutcomeHit, store.TouchSent, 0)
	end(store.OpLoad, store.OutcomeHit, store.TouchSkipped, 0)
	end(store.OpSave, store.OutcomeOK, store.TouchNone, 120)
	for _, k := range []store.NoticeKind{store.NoticeRetry, store.NoticeRecovered, store.NoticeReload, store.NoticeAckShortfall, store.NoticeCreated, store.NoticeDestroyed, store.NoticeRevoked} {
		obs.Notify(ctx, store.Notice{Kind: k, Op: store.OpSave, Count: 2, Attempt: 1, Err: errors.New("x"), Accepted: true})
	}
	// A store with the near-cache, on a client that reaches no server (its counters are
	// zero: the near-cache's instruments report them).
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb, store.WithNearCache(store.NearCache{}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(obs.ObserveNearCache(st))
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	require.Equal(t, hasessionotel.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	seen := map[string]bool{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		want, ok := instruments[m.Name]
		require.True(t, ok, "undocumented instrument %s", m.Name)
		seen[m.Name] = true
		require.Equal(t, want.unit, m.Unit, m.Name)
		require.NotEmpty(t, m.Description, m.Name)
		var sets []attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			require.True(t, d.IsMonotonic, m.Name)
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		case metricdata.Gauge[int64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		}
		require.NotEmpty(t, sets, m.Name)
		for _, s := range sets {
			v, ok := s.Value("db.system.name")
			require.True(t, ok, m.Name)
			require.Equal(t, "redis", v.AsString())
			require.Equal(t, len(want.attrs)+1, s.Len(), "%s: %v", m.Name, s.ToSlice())
			for _, k := range want.attrs {
				require.True(t, s.HasValue(k), "%s lacks %s", m.Name, k)
			}
		}
	}
	require.Len(t, seen, len(instruments))
}

// A span per operation, a child of the context's span, with the database attributes.
func TestSpanNestsUnderTheCallersSpan(t *testing.T) {
	obs, _, sr, tp := newObserver(t)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "GET /cart")
	c := obs.OpStart(ctx, store.OpLoad)
	obs.Notify(c, store.Notice{Kind: store.NoticeRetry, Op: store.OpLoad, Attempt: 1, Err: context.DeadlineExceeded})
	obs.OpEnd(c, store.OpEvent{Op: store.OpLoad, Outcome: store.OutcomeError, Err: fmt.Errorf("hasession: load session: %w", context.DeadlineExceeded),
		Attempts: 2, Node: "10.0.0.1:6379"})
	parent.End()
	spans := sr.Ended()
	require.Len(t, spans, 2)
	s := spans[0]
	require.Equal(t, "hasession.load", s.Name())
	require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
	attrs := attribute.NewSet(s.Attributes()...)
	for k, want := range map[attribute.Key]string{
		"db.system.name": "redis", "db.operation.name": "hasession.load", "server.address": "10.0.0.1",
		"error.type": "timeout", "hasession.outcome": "error",
	} {
		v, ok := attrs.Value(k)
		require.True(t, ok, k)
		require.Equal(t, want, v.AsString(), k)
	}
	port, _ := attrs.Value("server.port")
	require.Equal(t, int64(6379), port.AsInt64())
	require.Equal(t, "Error", s.Status().Code.String())
	require.Len(t, s.Events(), 1)
	require.Equal(t, "hasession.retry", s.Events()[0].Name)
}

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("x: %w", context.Canceled), "canceled"},
		{&store.AckError{Acked: 0, Want: 1}, "not_acknowledged"},
		{&store.CorruptError{Key: "k", Reason: "r"}, "corrupt"},
		{store.ErrClosed, "closed"},
		{fmt.Errorf("hasession: load session: %w", io.EOF), "eof"},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "connection_refused"},
		{errors.New("something"), "_OTHER"},
	} {
		require.Equal(t, c.want, hasessionotel.ErrorType(c.err), "%v", c.err)
	}
}

// With metrics on and spans not sampled, an operation allocates only what the SDK does
// (a non-recording span and the context that carries it, and one in the metric SDK):
// the observer builds no attribute set or option per call.
func TestOperationAllocations(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	obs, err := hasessionotel.New(hasessionotel.WithMeterProvider(mp), hasessionotel.WithTracerProvider(tp))
	require.NoError(t, err)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		c := obs.OpStart(ctx, store.OpLoad)
		obs.OpEnd(c, store.OpEvent{Op: store.OpLoad, Outcome: store.OutcomeHit, Duration: time.Millisecond, Attempts: 1, Touch: store.TouchSkipped})
	})
	t.Logf("allocations per operation (metrics on, span not sampled): %.0f", allocs)
	require.LessOrEqual(t, allocs, 2.0)
}

// ObserveNearCache with nothing to observe does nothing, and panics in no collection.
func TestObserveNearCacheNothing(t *testing.T) {
	obs, reader, _, _ := newObserver(t)
	obs.ObserveNearCache(nil)()
	(&hasessionotel.Observer{}).ObserveNearCache(nil)()
	var nilObs *hasessionotel.Observer
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb)
	require.NoError(t, err)
	nilObs.ObserveNearCache(st)()
	(&hasessionotel.Observer{}).ObserveNearCache(st)()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			require.NotContains(t, m.Name, "near_cache", "no store was observed")
		}
	}
}
