package hasessionotel

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/hasession/hasession/store"
)

// nearMetrics reports the near-cache counters of the stores an Observer observes
// (ObserveNearCache), read from their Stats at each collection.
type nearMetrics struct {
	loads, evictions, leaseWaits, fallbacks, connections metric.Int64ObservableCounter
	entries                                              metric.Int64ObservableGauge

	// mu is held through a collection and through a store's leaving: a store's counts
	// move to retired between two collections, never during one, so the counters stay
	// monotonic.
	mu     sync.Mutex
	stores map[*store.Store]*observed
	// retired holds what the stores no longer observed counted while they were: the
	// counters stay monotonic when a store leaves (its entries, a gauge, leave with it).
	retired nearCounts
	any     bool // a store was ever observed: until then, no data points

	hit, miss                                metric.ObserveOption
	invalidation, lease, reconnect, capacity metric.ObserveOption
	opened, dialFailed, masterChanged, plain metric.ObserveOption
}

// observed is a store being observed: its registrations, and its counts when observing
// began (what it counted before is not reported, so a store observed again after it
// left is not counted twice).
type observed struct {
	refs int
	base nearCounts
}

// nearCounts are the near-cache's fields of store.Stats.
type nearCounts struct {
	hits, misses, cached                                     int64
	invalidated, lease, reconnect, capacity                  int64
	leaseWaits, fallbacks, connects, failures, masterChanges int64
}

func nearCountsOf(s store.Stats) nearCounts {
	return nearCounts{
		hits: s.NearHits, misses: s.NearMisses, cached: s.NearCached,
		invalidated: s.NearEvictedInvalidated, lease: s.NearEvictedLease, reconnect: s.NearEvictedReconnect, capacity: s.NearEvictedCapacity,
		leaseWaits: s.NearLeaseWaits, fallbacks: s.NearFallbacks, connects: s.NearConnects, failures: s.NearConnectFailures, masterChanges: s.NearMasterChanges,
	}
}

// plus returns c + sign·o, field by field, but for cached, which is c's plus o's
// (sign 1) or c's (sign −1): entries are a level, not a count.
func (c nearCounts) plus(o nearCounts, sign int64) nearCounts {
	cached := c.cached
	if sign > 0 {
		cached += o.cached
	}
	return nearCounts{
		hits: c.hits + sign*o.hits, misses: c.misses + sign*o.misses, cached: cached,
		invalidated: c.invalidated + sign*o.invalidated, lease: c.lease + sign*o.lease,
		reconnect: c.reconnect + sign*o.reconnect, capacity: c.capacity + sign*o.capacity,
		leaseWaits: c.leaseWaits + sign*o.leaseWaits, fallbacks: c.fallbacks + sign*o.fallbacks,
		connects: c.connects + sign*o.connects, failures: c.failures + sign*o.failures,
		masterChanges: c.masterChanges + sign*o.masterChanges,
	}
}

// since is what st counted since observing began, and its entries now.
func (o *observed) since(st *store.Store) nearCounts {
	return nearCountsOf(st.Stats()).plus(o.base, -1)
}

func newNearMetrics(m metric.Meter) (*nearMetrics, error) {
	n := &nearMetrics{stores: map[*store.Store]*observed{}}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	n.loads = counter(MetricNearLoads, "{load}", "Loads of a store with the near-cache, served from memory (hit) or read from Redis (miss).")
	n.evictions = counter(MetricNearEvictions, "{entry}", "Near-cache entries dropped, by cause.")
	n.leaseWaits = counter(MetricNearLeaseWaits, "{revocation}", "Revocations that waited the near-cache's lease before returning.")
	n.fallbacks = counter(MetricNearFallbacks, "{load}", "Near-cache misses read through the client because the tracking connection failed, was slow or the node refused the read.")
	n.connections = counter(MetricNearConnections, "{event}", "Near-cache tracking connections opened, dials that failed, and connections closed because their node was no longer the master.")
	var err error
	n.entries, err = m.Int64ObservableGauge(MetricNearEntries, metric.WithUnit("{session}"), metric.WithDescription("Sessions the near-cache holds."))
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	system := semconv.DBSystemNameRedis
	opt := func(kvs ...attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(append([]attribute.KeyValue{system}, kvs...)...))
	}
	n.hit, n.miss = opt(NearResultKey.String("hit")), opt(NearResultKey.String("miss"))
	n.invalidation, n.lease = opt(NearCauseKey.String("invalidation")), opt(NearCauseKey.String("lease"))
	n.reconnect, n.capacity = opt(NearCauseKey.String("reconnect")), opt(NearCauseKey.String("capacity"))
	n.opened, n.dialFailed = opt(NearEventKey.String("opened")), opt(NearEventKey.String("dial_failed"))
	n.masterChanged, n.plain = opt(NearEventKey.String("master_changed")), opt()
	if _, err := m.RegisterCallback(n.observe, n.loads, n.evictions, n.leaseWaits, n.fallbacks, n.connections, n.entries); err != nil {
		return nil, err
	}
	return n, nil
}

// observe sums the counters of the observed stores and of those that left.
func (n *nearMetrics) observe(_ context.Context, o metric.Observer) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.any {
		return nil
	}
	c := n.retired
	for st, ob := range n.stores {
		c = c.plus(ob.since(st), 1)
	}
	o.ObserveInt64(n.loads, c.hits, n.hit)
	o.ObserveInt64(n.loads, c.misses, n.miss)
	o.ObserveInt64(n.evictions, c.invalidated, n.invalidation)
	o.ObserveInt64(n.evictions, c.lease, n.lease)
	o.ObserveInt64(n.evictions, c.reconnect, n.reconnect)
	o.ObserveInt64(n.evictions, c.capacity, n.capacity)
	o.ObserveInt64(n.leaseWaits, c.leaseWaits, n.plain)
	o.ObserveInt64(n.fallbacks, c.fallbacks, n.plain)
	o.ObserveInt64(n.connections, c.connects, n.opened)
	o.ObserveInt64(n.connections, c.failures, n.dialFailed)
	o.ObserveInt64(n.connections, c.masterChanges, n.masterChanged)
	o.ObserveInt64(n.entries, c.cached, n.plain)
	return nil
}

// ObserveNearCache reports the near-cache counters of st ([store.WithNearCache]; see
// [store.Stats]) through the Observer's meter, from this call on: they are read from
// st.Stats() at each collection and summed over every store the Observer observes (the
// package doc lists the instruments). Call it right after store.New: what st counted
// before is not reported. The instruments have no data points until a store is
// observed. A store without the near-cache reports zeros.
//
// Call stop once st is closed, or when it is no longer to be reported: what st counted
// until then stays in the counters (they remain monotonic), its entries leave the gauge.
// stop may be called more than once. A store observed twice is reported once, until both
// are stopped; a store observed again after it was stopped is reported from then on. A
// nil store, or an Observer not made by New, observes nothing (stop does nothing).
func (o *Observer) ObserveNearCache(st *store.Store) (stop func()) {
	if o == nil || o.near == nil || st == nil {
		return func() {}
	}
	n := o.near
	n.mu.Lock()
	ob := n.stores[st]
	if ob == nil {
		ob = &observed{base: nearCountsOf(st.Stats())}
		ob.base.cached = 0
		n.stores[st] = ob
	}
	ob.refs++
	n.any = true
	n.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if ob.refs--; ob.refs > 0 {
				return
			}
			delete(n.stores, st)
			c := ob.since(st)
			c.cached = 0
			n.retired = n.retired.plus(c, 1)
		})
	}
}
