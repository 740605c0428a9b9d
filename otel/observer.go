package hasessionotel

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hasession/hasession/store"
)

// ScopeName is the instrumentation scope of the meter and tracer (the module's path).
const ScopeName = "github.com/hasession/hasession/otel"

// Attribute keys of the instruments and spans (see the package doc).
const (
	OutcomeKey     = attribute.Key("hasession.outcome")
	TouchKey       = attribute.Key("hasession.touch")
	AcceptedKey    = attribute.Key("hasession.ack.accepted")
	AttemptsKey    = attribute.Key("hasession.attempts")
	BytesSentKey   = attribute.Key("hasession.bytes_sent")
	CallerNameKey  = attribute.Key("hasession.operation.caller_name")
	AttemptKey     = attribute.Key("hasession.attempt")
	ReplicasAckKey = attribute.Key("hasession.ack.replicas")
	NearResultKey  = attribute.Key("hasession.near_cache.result")
	NearCauseKey   = attribute.Key("hasession.near_cache.cause")
	NearEventKey   = attribute.Key("hasession.near_cache.event")
)

// Observer implements [store.Observer] with the OpenTelemetry API: metrics through a
// MeterProvider and spans through a TracerProvider (see the package doc for every
// instrument). Set it on a store with store.WithObserver; it is safe for concurrent use.
type Observer struct {
	tracer trace.Tracer

	duration   metric.Float64Histogram
	retries    metric.Int64Counter
	recoveries metric.Int64Counter
	reloads    metric.Int64Counter
	shortfalls metric.Int64Counter
	bytesSent  metric.Int64Counter
	touches    metric.Int64ObservableCounter
	created    metric.Int64Counter
	destroyed  metric.Int64Counter
	revoked    metric.Int64Counter
	near       *nearMetrics

	// Attribute sets built once (recording with a set allocates nothing per call).
	durOpts   [numOps][numOutcomes][]metric.RecordOption
	opOpts    [numOps][]metric.AddOption
	shortOpts [numOps][2][]metric.AddOption
	touchOpts [3]metric.ObserveOption
	// Touches are counted here and reported when the reader collects (an observable
	// counter): a load, the hot path, pays an atomic add instead of an SDK measurement.
	touchCount   [3]atomic.Int64
	noOpts       []metric.AddOption
	startOpts    [numOps][]trace.SpanStartOption
	opNames      [numOps]string
	dbOperations [numOps]attribute.KeyValue
}

var _ store.Observer = (*Observer)(nil)

// numOps and numOutcomes bound the store's Op and Outcome values this version knows;
// later ones are reported as "other" and "error".
const (
	numOps      = int(store.OpRevoke) + 1
	numOutcomes = int(store.OutcomeError) + 1
)

// Option configures an Observer.
type Option func(*config)

type config struct {
	mp metric.MeterProvider
	tp trace.TracerProvider
}

// WithMeterProvider sets the MeterProvider. Default: the global one (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithTracerProvider sets the TracerProvider. Default: the global one
// (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// DurationBuckets are the duration histogram's bucket boundaries, in seconds: a hit on a
// healthy node takes well under a millisecond, a failover seconds.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// New returns an Observer that records with the providers the options name (the global
// ones by default). It fails only when an instrument cannot be created.
func New(opts ...Option) (*Observer, error) {
	c := config{}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	m := c.mp.Meter(ScopeName)
	o := &Observer{tracer: c.tp.Tracer(ScopeName)}
	var errs []error
	hist := func(name, unit, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		h, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return h
	}
	o.duration = hist(MetricOperationDuration, "s", "Duration of hasession store operations, every retry and backoff included.", DurationBuckets)
	o.retries = counter(MetricRetries, "{retry}", "Attempts of store operations repeated after a failover-type error.")
	o.recoveries = counter(MetricRecoveries, "{operation}", "Store operations that succeeded after at least one retry.")
	o.reloads = counter(MetricReloads, "{reload}", "Cluster slot-map reloads the store requested after a failed attempt.")
	o.shortfalls = counter(MetricAckShortfalls, "{write}", "Writes that WAIT confirmed on fewer replicas than asked for.")
	o.bytesSent = counter(MetricBytesSent, "By", "Bytes of the arguments of the store's save commands.")
	var err error
	o.touches, err = m.Int64ObservableCounter(MetricTouches, metric.WithUnit("{load}"),
		metric.WithDescription("Loads that extended the session's TTL (sent) or did not need to (skipped)."),
		metric.WithInt64Callback(func(_ context.Context, io metric.Int64Observer) error {
			for _, t := range []store.Touch{store.TouchSent, store.TouchSkipped} {
				if n := o.touchCount[t].Load(); n > 0 {
					io.Observe(n, o.touchOpts[t])
				}
			}
			return nil
		}))
	errs = append(errs, err)
	o.created = counter(MetricSessionsCreated, "{session}", "Sessions saved for the first time.")
	o.destroyed = counter(MetricSessionsDestroyed, "{session}", "Sessions deleted by a logout (Destroy).")
	o.revoked = counter(MetricSessionsRevoked, "{session}", "Live sessions ended by Revoke or RevokeAll.")
	o.near, err = newNearMetrics(m)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	system := semconv.DBSystemNameRedis
	for op := range numOps {
		name := "hasession." + store.Op(op).String()
		o.opNames[op] = name
		o.dbOperations[op] = semconv.DBOperationName(name)
		opAttr := o.dbOperations[op]
		for oc := range numOutcomes {
			set := attribute.NewSet(system, opAttr, OutcomeKey.String(store.Outcome(oc).String()))
			o.durOpts[op][oc] = []metric.RecordOption{metric.WithAttributeSet(set)}
		}
		o.opOpts[op] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(system, opAttr))}
		for i, acc := range []bool{false, true} {
			o.shortOpts[op][i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(system, opAttr, AcceptedKey.Bool(acc)))}
		}
		// db.system.name and db.operation.name are set when the span ends, not given
		// to Start: an attribute at Start costs an allocation per operation, sampled or
		// not, and the SDK's samplers (ratio, parent-based) do not read them.
		o.startOpts[op] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	}
	o.touchOpts[store.TouchSent] = metric.WithAttributeSet(attribute.NewSet(system, TouchKey.String("sent")))
	o.touchOpts[store.TouchSkipped] = metric.WithAttributeSet(attribute.NewSet(system, TouchKey.String("skipped")))
	o.noOpts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(system))}
	return o, nil
}

func opIndex(op store.Op) int {
	if int(op) < numOps {
		return int(op)
	}
	return int(store.OpOther)
}

// OpStart starts the operation's span, a child of ctx's span (the HTTP request's, with
// otelhttp), and returns its context.
func (o *Observer) OpStart(ctx context.Context, op store.Op) context.Context {
	i := opIndex(op)
	ctx, _ = o.tracer.Start(ctx, o.opNames[i], o.startOpts[i]...)
	return ctx
}

// OpEnd records the operation's duration, bytes and touch, and ends its span.
func (o *Observer) OpEnd(ctx context.Context, e store.OpEvent) {
	i := opIndex(e.Op)
	oc := int(e.Outcome)
	if oc >= numOutcomes {
		oc = int(store.OutcomeError)
	}
	o.duration.Record(ctx, e.Duration.Seconds(), o.durOpts[i][oc]...)
	if e.BytesSent > 0 {
		o.bytesSent.Add(ctx, int64(e.BytesSent), o.opOpts[i]...)
	}
	if e.Touch == store.TouchSent || e.Touch == store.TouchSkipped {
		o.touchCount[e.Touch].Add(1)
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, semconv.DBSystemNameRedis, o.dbOperations[i], OutcomeKey.String(e.Outcome.String()), AttemptsKey.Int(e.Attempts))
	if e.Name != "" {
		attrs = append(attrs, CallerNameKey.String(e.Name))
	}
	if e.BytesSent > 0 {
		attrs = append(attrs, BytesSentKey.Int(e.BytesSent))
	}
	if e.Touch == store.TouchSent {
		attrs = append(attrs, TouchKey.String("sent"))
	} else if e.Touch == store.TouchSkipped {
		attrs = append(attrs, TouchKey.String("skipped"))
	}
	if host, port, err := net.SplitHostPort(e.Node); err == nil {
		attrs = append(attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	}
	if e.Outcome == store.OutcomeError && e.Err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(ErrorType(e.Err)))
		span.SetStatus(codes.Error, e.Err.Error())
	}
	span.SetAttributes(attrs...)
	span.End()
}

// Notify counts a failover or session event, and adds a retry or a WAIT shortfall to the
// operation's span as a span event.
func (o *Observer) Notify(ctx context.Context, e store.Notice) {
	i := opIndex(e.Op)
	switch e.Kind {
	case store.NoticeRetry:
		o.retries.Add(ctx, 1, o.opOpts[i]...)
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("hasession.retry", trace.WithAttributes(AttemptKey.Int(e.Attempt), semconv.ErrorTypeKey.String(ErrorType(e.Err))))
		}
	case store.NoticeRecovered:
		o.recoveries.Add(ctx, 1, o.opOpts[i]...)
	case store.NoticeReload:
		o.reloads.Add(ctx, 1, o.noOpts...)
	case store.NoticeAckShortfall:
		acc := 0
		if e.Accepted {
			acc = 1
		}
		o.shortfalls.Add(ctx, 1, o.shortOpts[i][acc]...)
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("hasession.ack_shortfall", trace.WithAttributes(ReplicasAckKey.Int(e.Acked), AcceptedKey.Bool(e.Accepted)))
		}
	case store.NoticeCreated:
		o.created.Add(ctx, int64(e.Count), o.noOpts...)
	case store.NoticeDestroyed:
		o.destroyed.Add(ctx, int64(e.Count), o.noOpts...)
	case store.NoticeRevoked:
		o.revoked.Add(ctx, int64(e.Count), o.noOpts...)
	}
}

// ErrorType returns the error.type of an operation's error: "timeout" (a deadline,
// the caller's or an attempt's), "canceled", "not_acknowledged" (a WAIT shortfall),
// "corrupt", "codec_mismatch", "permission_denied", "closed", the first word of a Redis
// error reply (CLUSTERDOWN, READONLY, …), "eof", "connection_refused",
// "connection_reset", "pool_timeout", "network" (another network error), or "_OTHER".
func ErrorType(err error) string {
	var re redis.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, store.ErrNotAcknowledged):
		return "not_acknowledged"
	case errors.Is(err, store.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, store.ErrCodecMismatch):
		return "codec_mismatch"
	case errors.Is(err, store.ErrPermission):
		return "permission_denied"
	case errors.Is(err, store.ErrClosed):
		return "closed"
	case errors.As(err, &re):
		if w, _, _ := strings.Cut(re.Error(), " "); w != "" && w == strings.ToUpper(w) {
			return w
		}
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "connection_reset"
	case errors.Is(err, redis.ErrPoolTimeout):
		return "pool_timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "network"
	}
	return "_OTHER"
}
