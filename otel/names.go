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
)
