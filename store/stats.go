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
func (s Stats) Add(o Stats) Stats {
	s.Loads += o.Loads
	s.Saves += o.Saves
	s.Touches += o.Touches
	s.TouchesSkipped += o.TouchesSkipped
	s.Retries += o.Retries
	s.Recovered += o.Recovered
	s.Reloads += o.Reloads
	s.Conflicts += o.Conflicts
	s.Unacknowledged += o.Unacknowledged
	s.AcceptedUnacknowledged += o.AcceptedUnacknowledged
	s.EventsDropped += o.EventsDropped
	s.EventHandlerPanics += o.EventHandlerPanics
	s.LegacyImported += o.LegacyImported
	s.LegacyCorrupt += o.LegacyCorrupt
	s.NearHits += o.NearHits
	s.NearMisses += o.NearMisses
	s.NearCached += o.NearCached
	s.NearEvictedInvalidated += o.NearEvictedInvalidated
	s.NearEvictedLease += o.NearEvictedLease
	s.NearEvictedReconnect += o.NearEvictedReconnect
	s.NearEvictedCapacity += o.NearEvictedCapacity
	s.NearLeaseWaits += o.NearLeaseWaits
	s.NearConnects += o.NearConnects
	s.NearFallbacks += o.NearFallbacks
	s.NearConnectFailures += o.NearConnectFailures
	s.NearMasterChanges += o.NearMasterChanges
	return s
}
