package store

import (
	"sync/atomic"
)

// Stats are the store's counters since it was created.
type Stats struct {
	Loads          int64 // Load calls that returned a session
	Saves          int64 // Save calls that wrote
	Touches        int64 // loads that extended the TTL
	TouchesSkipped int64 // loads that did not need to (touch not due)
	Retries        int64 // attempts repeated after a failover-type error
	Recovered      int64 // operations that succeeded after at least one retry
	Reloads        int64 // cluster slot-map reloads requested after a failed attempt
	Conflicts      int64 // saves refused with ErrConflict
	Unacknowledged int64 // writes WAIT did not confirm in time (WithWriteAck): saves, logouts, index entries
	// AcceptedUnacknowledged counts the writes of Unacknowledged that were accepted
	// anyway (WithWriteAckPolicy(AckBestEffort)): saves, logouts, and the index entries
	// of logins, that the caller was told succeeded without the replicas asked for.
	AcceptedUnacknowledged int64
	// EventsDropped counts the events (WithEvents) dropped because the queue was full, or
	// emitted after Close; EventHandlerPanics the calls of the event handler that
	// panicked (recovered).
	EventsDropped, EventHandlerPanics int64
	// LegacyImported counts the legacy sessions this store moved into its format
	// (Adopt, WithLegacyHash); LegacyCorrupt those it found that do not decode (left
	// untouched).
	LegacyImported, LegacyCorrupt int64

	// The near-cache's (WithNearCache; all zero without it). NearHits counts the loads
	// served from memory, NearMisses those that read Redis; NearCached is the number of
	// entries now. NearEvicted* count the entries dropped by cause: an invalidation from
	// Redis (a write by any app server, or this store's own), a lapsed lease (the node's
	// connection had no lease when the entry was wanted), a closed or
	// replaced connection (a reconnect, a failover, a node that stopped being a master),
	// the size limit. (A lapsed lease does not drop the entry: it is served again once
	// the lease is renewed, unless a fill replaced it.) NearLeaseWaits counts the
	// revocations that waited the lease; NearConnects the tracking connections opened,
	// NearConnectFailures the dials that failed; NearMasterChanges the connections closed
	// because their node was no longer the master (a ROLE reply, or on Sentinel the
	// client's master found to be another); NearFallbacks the misses read through the
	// client because the tracking connection failed, was slow, or the node refused the
	// read.
	NearHits, NearMisses, NearCached                                                    int64
	NearEvictedInvalidated, NearEvictedLease, NearEvictedReconnect, NearEvictedCapacity int64
	NearLeaseWaits, NearConnects, NearFallbacks, NearConnectFailures, NearMasterChanges int64
}

type counters struct {
	loads, saves, touches, touchesSkipped, retries, recovered, reloads, conflicts, unacked, acceptedUnacked atomic.Int64
	legacyImported, legacyCorrupt                                                                           atomic.Int64
}

// Stats returns a snapshot of the store's counters.
func (st *Store) Stats() Stats {
	c := &st.stats
	var dropped, panics int64
	if q := st.events; q != nil {
		dropped, panics = q.dropped.Load(), q.panics.Load()
	}
	s := Stats{
		Loads: c.loads.Load(), Saves: c.saves.Load(), Touches: c.touches.Load(), TouchesSkipped: c.touchesSkipped.Load(),
		Retries: c.retries.Load(), Recovered: c.recovered.Load(), Reloads: c.reloads.Load(),
		Conflicts: c.conflicts.Load(), Unacknowledged: c.unacked.Load(), AcceptedUnacknowledged: c.acceptedUnacked.Load(),
		EventsDropped: dropped, EventHandlerPanics: panics,
		LegacyImported: c.legacyImported.Load(), LegacyCorrupt: c.legacyCorrupt.Load(),
	}
	if st.near != nil {
		st.near.stats(&s)
	}
	return s
}

// Add returns the sum of s and o, field by field: the counters of several stores (an app
// server's stores, or a fleet's) as one. NearCached adds up too (the entries of all).
func (s Stats) Add(o Stats) Stats { return s.plus(o, 1) }

// Sub returns s minus o, field by field: what a store counted between two snapshots of
// its Stats, o the earlier. NearCached, a level, is subtracted too.
func (s Stats) Sub(o Stats) Stats { return s.plus(o, -1) }

// plus returns s + k·o, field by field.
func (s Stats) plus(o Stats, k int64) Stats {
	s.Loads += k * o.Loads
	s.Saves += k * o.Saves
	s.Touches += k * o.Touches
	s.TouchesSkipped += k * o.TouchesSkipped
	s.Retries += k * o.Retries
	s.Recovered += k * o.Recovered
	s.Reloads += k * o.Reloads
	s.Conflicts += k * o.Conflicts
	s.Unacknowledged += k * o.Unacknowledged
	s.AcceptedUnacknowledged += k * o.AcceptedUnacknowledged
	s.EventsDropped += k * o.EventsDropped
	s.EventHandlerPanics += k * o.EventHandlerPanics
	s.LegacyImported += k * o.LegacyImported
	s.LegacyCorrupt += k * o.LegacyCorrupt
	s.NearHits += k * o.NearHits
	s.NearMisses += k * o.NearMisses
	s.NearCached += k * o.NearCached
	s.NearEvictedInvalidated += k * o.NearEvictedInvalidated
	s.NearEvictedLease += k * o.NearEvictedLease
	s.NearEvictedReconnect += k * o.NearEvictedReconnect
	s.NearEvictedCapacity += k * o.NearEvictedCapacity
	s.NearLeaseWaits += k * o.NearLeaseWaits
	s.NearConnects += k * o.NearConnects
	s.NearFallbacks += k * o.NearFallbacks
	s.NearConnectFailures += k * o.NearConnectFailures
	s.NearMasterChanges += k * o.NearMasterChanges
	return s
}
