package drill

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	hasessionotel "github.com/hasession/hasession/otel"
)

// metricsServer serves the hasession runs' store metrics (hasessionotel, through
// OpenTelemetry's Prometheus exporter) on /metrics during the drill (--metrics).
type metricsServer struct {
	obs  *hasessionotel.Observer
	reg  *prometheus.Registry
	mp   *sdkmetric.MeterProvider
	srv  *http.Server
	addr string // where it listens
}

// startMetrics listens on addr and serves /metrics until close.
func startMetrics(addr string) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	obs, err := hasessionotel.New(hasessionotel.WithMeterProvider(mp))
	if err != nil {
		_ = mp.Shutdown(context.Background())
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = mp.Shutdown(context.Background())
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{obs: obs, reg: reg, mp: mp, addr: ln.Addr().String(),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

func (m *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
	_ = m.mp.Shutdown(ctx)
}

// alertMetrics are the series the report shows, and an operator alerts on (see the
// hasessionotel package doc and the README): Prometheus names, a label to split by, and
// why.
var alertMetrics = []struct {
	name, by, why string
}{
	{"hasession_operation_duration_seconds", "hasession_outcome", "errors: alert on outcome=error above zero; p99 of load and save"},
	{"hasession_operation_retries_total", "db_operation_name", "retries: a node down; alert when they last longer than a failover"},
	{"hasession_operation_recoveries_total", "db_operation_name", "operations that recovered after retries"},
	{"hasession_cluster_reloads_total", "", "slot-map reloads the store asked for"},
	{"hasession_write_ack_shortfalls_total", "hasession_ack_accepted", "WAIT shortfalls: a master without a replica"},
	{"hasession_near_cache_loads_total", "hasession_near_cache_result", "near-cache hits and misses (--cache): the hit ratio falls with invalidations, lapsed leases, reconnects"},
}

// writeMetrics prints the alert series' totals from the registry, summed over the
// hasession runs.
func (m *metricsServer) writeMetrics(w io.Writer) error {
	families, err := m.reg.Gather()
	if err != nil {
		return err
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	fmt.Fprintf(w, "\nmetrics to alert on (served at http://%s/metrics during the drill; totals of the hasession runs):\n", m.addr)
	for _, a := range alertMetrics {
		totals := map[string]float64{}
		if f := byName[a.name]; f != nil {
			for _, s := range f.GetMetric() {
				v := s.GetCounter().GetValue()
				if h := s.GetHistogram(); h != nil {
					v = float64(h.GetSampleCount())
				}
				key := ""
				for _, l := range s.GetLabel() {
					if l.GetName() == a.by {
						key = a.by + "=" + l.GetValue()
					}
				}
				totals[key] += v
			}
		}
		var parts []string
		for k, v := range totals {
			if k == "" {
				parts = append(parts, fmt.Sprintf("%.0f", v))
			} else {
				parts = append(parts, fmt.Sprintf("%s: %.0f", k, v))
			}
		}
		sort.Strings(parts)
		if len(parts) == 0 {
			parts = []string{"0"}
		}
		fmt.Fprintf(w, "  %-38s %s  (%s)\n", a.name, strings.Join(parts, ", "), a.why)
	}
	return nil
}
