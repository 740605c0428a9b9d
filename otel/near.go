package hasessionotel

import (
	"context"
	"errors"
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
	retired store.Stats
	any     bool // a store was ever observed: until then, no data points

	hit, miss                                metric.ObserveOption
	invalidation, lease, reconnect, capacity metric.ObserveOption
	opened, dialFailed, masterChanged, plain metric.ObserveOption
}

// observed is a store being observed: its registrations, and its counts when observing
// began, NearCached zeroed (what it counted before is not reported, so a store observed
// again after it left is not counted twice).
type observed struct {
	refs int
	base store.Stats
}

// since is what st counted since observing began, and its entries now.
func (o *observed) since(st *store.Store) store.Stats {
	return st.Stats().Sub(o.base)
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
	if err := errors.Join(errs...); err != nil {
		return nil, err
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
		c = c.Add(ob.since(st))
	}
	o.ObserveInt64(n.loads, c.NearHits, n.hit)
	o.ObserveInt64(n.loads, c.NearMisses, n.miss)
	o.ObserveInt64(n.evictions, c.NearEvictedInvalidated, n.invalidation)
	o.ObserveInt64(n.evictions, c.NearEvictedLease, n.lease)
	o.ObserveInt64(n.evictions, c.NearEvictedReconnect, n.reconnect)
	o.ObserveInt64(n.evictions, c.NearEvictedCapacity, n.capacity)
	o.ObserveInt64(n.leaseWaits, c.NearLeaseWaits, n.plain)
	o.ObserveInt64(n.fallbacks, c.NearFallbacks, n.plain)
	o.ObserveInt64(n.connections, c.NearConnects, n.opened)
	o.ObserveInt64(n.connections, c.NearConnectFailures, n.dialFailed)
	o.ObserveInt64(n.connections, c.NearMasterChanges, n.masterChanged)
	o.ObserveInt64(n.entries, c.NearCached, n.plain)
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
		ob = &observed{base: st.Stats()}
		ob.base.NearCached = 0
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
			c.NearCached = 0
			n.retired = n.retired.Add(c)
		})
	}
}
