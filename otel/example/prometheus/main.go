// Command prometheus is a small session app whose store reports its OpenTelemetry
// metrics on a Prometheus endpoint, through OpenTelemetry's Prometheus exporter:
//
//	go run ./otel/example/prometheus --redis 127.0.0.1:6379 --listen 127.0.0.1:8080
//
// Each request to / loads the visitor's session and counts the visit in it (the first
// creates the session); /metrics answers Prometheus with the store's instruments
// (hasession_operation_duration_seconds, hasession_operation_retries_total, …: see the
// hasessionotel package doc for the list and what to alert on). --redis takes one
// address (a single server) or several (a Cluster); --for ends the program after that
// long (0: on Ctrl-C). It prints the address it listens on, then serves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hasession/hasession/httpsession"
	hasessionotel "github.com/hasession/hasession/otel"
	"github.com/hasession/hasession/store"
)

func main() {
	addrs := flag.String("redis", "127.0.0.1:6379", "Redis address; several, comma-separated, for a Cluster")
	listen := flag.String("listen", "127.0.0.1:8080", "address of the app and its /metrics endpoint")
	run := flag.Duration("for", 0, "stop after this long (0: on Ctrl-C or SIGTERM)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *run > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *run)
		defer cancel()
	}
	if err := serve(ctx, strings.Split(*addrs, ","), *listen); err != nil {
		fmt.Fprintln(os.Stderr, "prometheus example:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, addrs []string, listen string) error {
	// The exporter is a metric reader: the MeterProvider's measurements are collected
	// when Prometheus scrapes the registry.
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	obs, err := hasessionotel.New(hasessionotel.WithMeterProvider(mp))
	if err != nil {
		return err
	}

	rdb := store.NewFailoverClient(&redis.UniversalOptions{Addrs: addrs})
	defer rdb.Close()
	st, err := store.New(rdb, store.WithObserver(obs))
	if err != nil {
		return err
	}
	defer st.Close()
	sm, err := httpsession.New(st, httpsession.WithSecure(false)) // plain HTTP: local only
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /", sm.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		n, _ := store.GetOr(s, "visits", 0)
		_ = s.Set("visits", n+1)
		fmt.Fprintln(w, "visits:", n+1)
	})))
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s (metrics: http://%s/metrics)\n", ln.Addr(), ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
