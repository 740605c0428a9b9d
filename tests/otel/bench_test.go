package otel_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/benchshape"
	hasessionotel "github.com/hasession/hasession/otel"
	"github.com/hasession/hasession/store"
)

// discard is a span exporter that drops what it gets: the cost measured is the SDK's
// and the observer's, not an exporter's network.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// operatorObserver is the observer as an operator runs it: metrics on (the SDK's
// MeterProvider; a ManualReader stands for the exporter's reader), traces sampled at 1%
// of root spans (ParentBased(TraceIDRatioBased(0.01))) through a batch span processor.
// With traces false, spans are off (a no-op TracerProvider): the metrics' share.
func operatorObserver(b *testing.B, traces bool) *hasessionotel.Observer {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if traces {
		sdk := sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
			sdktrace.WithBatcher(discard{}))
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		tp = sdk
	}
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	obs, err := hasessionotel.New(hasessionotel.WithMeterProvider(mp), hasessionotel.WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	return obs
}

// BenchmarkLoad is the store's BenchmarkLoad (a hit of a typical session whose touch is
// not due, 16 goroutines, one standalone Redis) without an observer and with this
// module's (observer=on: metrics and traces; observer=metrics: spans off), side by side
// in one run: compare them with benchstat -col /observer.
func BenchmarkLoad(b *testing.B) {
	topo := cluster.Shared(b, cluster.KindStandalone)
	o := topo.UniversalOptions()
	o.PoolSize = 32
	rdb := redis.NewUniversalClient(o)
	b.Cleanup(func() { _ = rdb.Close() })
	for _, name := range []string{"observer=off", "observer=on", "observer=metrics"} {
		var opts []store.Option
		switch name {
		case "observer=on":
			opts = append(opts, store.WithObserver(operatorObserver(b, true)))
		case "observer=metrics":
			opts = append(opts, store.WithObserver(operatorObserver(b, false)))
		}
		b.Run(name, func(b *testing.B) {
			st, err := store.New(rdb, append(opts, store.WithTouchInterval(10*time.Minute))...)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ids := make([]string, 64)
			for i := range ids {
				s, _ := st.NewSession()
				for k, v := range benchshape.Session("typical") {
					if err := s.Set(k, v); err != nil {
						b.Fatal(err)
					}
				}
				if err := st.Save(context.Background(), s); err != nil {
					b.Fatal(err)
				}
				ids[i] = s.ID()
			}
			b.ReportAllocs()
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.ResetTimer()
			start := time.Now()
			var n int
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				i := 0
				for pb.Next() {
					i++
					if _, err := st.Load(ctx, ids[i%64]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			n = b.N
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "ops/s")
		})
	}
}
