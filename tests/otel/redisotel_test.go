package otel_test

import (
	"testing"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// go-redis's own tracing (redisotel) works beside the store's spans: its command spans
// are children of the store operation's span, which is a child of the caller's.
func TestRedisotelSpansNestUnderTheStoresSpans(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	for _, pipelined := range []bool{false, true} {
		name := "commands sent alone"
		if pipelined {
			name = "auto-pipelined"
		}
		t.Run(name, func(t *testing.T) {
			tel := newTelemetry(t)
			rdb := redis.NewClient(&redis.Options{Addr: topo.UniversalOptions().Addrs[0]})
			t.Cleanup(func() { _ = rdb.Close() })
			require.NoError(t, redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tel.tp)))
			st, err := store.New(rdb, store.WithObserver(tel.obs), store.WithAutoPipeline(pipelined))
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })

			ctx, parent := tel.tp.Tracer("test").Start(t.Context(), "GET /cart")
			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("cart", []string{"book"}))
			require.NoError(t, st.Save(ctx, s))
			_, err = st.Load(ctx, s.ID())
			require.NoError(t, err)
			parent.End()

			spans := tel.spans.Ended()
			storeSpans := map[string]string{} // span ID → name
			for _, sp := range spans {
				if sp.Name() == "hasession.save" || sp.Name() == "hasession.load" {
					require.Equal(t, parent.SpanContext().SpanID(), sp.Parent().SpanID(), "%s under the caller's span", sp.Name())
					storeSpans[sp.SpanContext().SpanID().String()] = sp.Name()
				}
			}
			require.Len(t, storeSpans, 2)
			under := map[string][]string{}
			for _, sp := range spans {
				if op, ok := storeSpans[sp.Parent().SpanID().String()]; ok {
					under[op] = append(under[op], sp.Name())
				}
			}
			t.Logf("redisotel spans under the store's: %v", under)
			require.NotEmpty(t, under["hasession.save"], "redisotel's spans of the save")
			require.NotEmpty(t, under["hasession.load"], "redisotel's spans of the load")
		})
	}
}
