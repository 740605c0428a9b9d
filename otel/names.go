package hasessionotel

// The instruments' names (see the package doc for their units and attributes).
const (
	MetricOperationDuration = "hasession.operation.duration"
	MetricRetries           = "hasession.operation.retries"
	MetricRecoveries        = "hasession.operation.recoveries"
	MetricReloads           = "hasession.cluster.reloads"
	MetricAckShortfalls     = "hasession.write_ack.shortfalls"
	MetricBytesSent         = "hasession.bytes.sent"
	MetricTouches           = "hasession.touches"
	MetricSessionsCreated   = "hasession.sessions.created"
	MetricSessionsDestroyed = "hasession.sessions.destroyed"
	MetricSessionsRevoked   = "hasession.sessions.revoked"

	// The near-cache's, for the stores given to Observer.ObserveNearCache.
	MetricNearLoads       = "hasession.near_cache.loads"
	MetricNearEntries     = "hasession.near_cache.entries"
	MetricNearEvictions   = "hasession.near_cache.evictions"
	MetricNearLeaseWaits  = "hasession.near_cache.lease_waits"
	MetricNearFallbacks   = "hasession.near_cache.fallbacks"
	MetricNearConnections = "hasession.near_cache.connections"
)
