package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Observer is told about every operation of the store and about failover events, for
// metrics and traces (the module github.com/hasession/hasession/otel implements it with
// OpenTelemetry). It is set with [WithObserver]; without one the store calls nothing and
// allocates nothing for it.
//
// An operation is one step of the store under its retry policy: one key of a Load (a
// rotated session's old ID is one more), a Save's write (and, on a login, its user's
// index entry first), a rotation's steps, one key of a Destroy, a revoke's or a
// listing's pipeline. OpStart is called before its first attempt with the caller's
// context; the context it returns is the one every attempt runs with (a span's), and
// OpEnd gets it after the last attempt. The methods are called on the caller's goroutine
// (or an attempt's, for a client that ignores context deadlines: see RetryPolicy),
// concurrently from concurrent callers, and must not block.
type Observer interface {
	// OpStart is called when an operation starts; it returns the context the operation
	// runs with (ctx itself, or one that carries a span).
	OpStart(ctx context.Context, op Op) context.Context
	// OpEnd is called once per OpStart, when the operation returns, with OpStart's
	// context.
	OpEnd(ctx context.Context, e OpEvent)
	// Notify is called at a failover event (a retry, a recovery, a slot-map reload, a
	// WAIT shortfall) and when sessions are created, destroyed or revoked. ctx is the
	// operation's (OpStart's), except for the WAIT shortfall of a logout, a login's
	// index entry or a rotation's forward step (context.Background()).
	Notify(ctx context.Context, n Notice)
}

// WithObserver sets an observer of the store's operations and failover events (see
// [Observer]). Default: none. A nil observer is none.
func WithObserver(o Observer) Option {
	return func(opts *options) error {
		opts.observer = o
		return nil
	}
}

// Op is a kind of store operation, as an [Observer] sees it.
type Op uint8

// The operations an Observer sees. Their names (String) are stable: metrics and spans
// carry them.
const (
	OpOther        Op = iota // an operation Store.Retry runs (the adapters' own commands)
	OpLoad                   // one key of Load (and Update's load)
	OpSave                   // the write of Save (Update's, and a rotation's copy)
	OpRotate                 // a rotation's read-and-mark and forward steps
	OpDestroy                // one key of Destroy
	OpIndex                  // a session listed in its user's index (a login, a rotation)
	OpUnindex                // sessions dropped from a user's index
	OpReadIndex              // a read of a user's index (Sessions, Revoke, RevokeAll)
	OpListSessions           // Sessions' read of the listed sessions (one pipeline)
	OpRevoke                 // Revoke's and RevokeAll's writes (one pipeline per hop)
)

var opObsNames = [...]string{
	OpOther:        "other",
	OpLoad:         "load",
	OpSave:         "save",
	OpRotate:       "rotate",
	OpDestroy:      "destroy",
	OpIndex:        "index",
	OpUnindex:      "unindex",
	OpReadIndex:    "read_index",
	OpListSessions: "list_sessions",
	OpRevoke:       "revoke",
}

// String returns the operation's name: "load", "save", "rotate", "destroy", "index",
// "unindex", "read_index", "list_sessions", "revoke" or "other".
func (o Op) String() string {
	if int(o) < len(opObsNames) {
		return opObsNames[o]
	}
	return "other"
}

// Outcome is how an operation ended.
type Outcome uint8

// Outcomes.
const (
	OutcomeOK       Outcome = iota // succeeded (a Load step that found a forward pointer too)
	OutcomeHit                     // a Load step that found the session
	OutcomeNotFound                // ErrNotFound: no such session (missing, expired, ended)
	OutcomeConflict                // ErrConflict: a version check failed
	OutcomeError                   // any other error
)

var outcomeNames = [...]string{"ok", "hit", "not_found", "conflict", "error"}

// String returns "ok", "hit", "not_found", "conflict" or "error".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "error"
}

// Touch says what a Load step did about the session's TTL.
type Touch uint8

// Touches.
const (
	TouchNone    Touch = iota // not a load, or no session found
	TouchSent                 // the touch was due: the TTL was extended
	TouchSkipped              // not due (by the app server's clock or by Redis's): no write
)

// OpEvent is one operation, as [Observer.OpEnd] gets it. It is passed by value and holds
// no session ID or key.
type OpEvent struct {
	Op       Op
	Name     string // the name the caller gave Store.Retry (OpOther); otherwise ""
	Outcome  Outcome
	Err      error         // the error returned; nil on success (and for a WAIT shortfall accepted)
	Duration time.Duration // from OpStart to OpEnd, every attempt and backoff included
	Attempts int           // attempts made: 1 + retries
	// BytesSent is the size of the command's arguments, for a save (attribute names and
	// encoded values, metadata); 0 for the others, whose commands are a key and a few
	// short arguments.
	BytesSent int
	Touch     Touch // for OpLoad
	// Node is the server's address where the store knows it without a lookup: the
	// client's address for a single server (*redis.Client with an address); "" for a
	// Cluster (a key's node is known to go-redis only: its own instrumentation,
	// redisotel, gives each command's) and Sentinel.
	Node string
}

// Retries returns the attempts after the first.
func (e OpEvent) Retries() int { return max(e.Attempts-1, 0) }

// NoticeKind is the kind of a [Notice].
type NoticeKind uint8

// Notice kinds.
const (
	// NoticeRetry: an attempt failed with a retryable error and the operation tries
	// again (after a backoff).
	NoticeRetry NoticeKind = iota
	// NoticeRecovered: an operation succeeded after at least one retry.
	NoticeRecovered
	// NoticeReload: after a failed attempt on a Cluster the store asked go-redis to
	// reload its slot map (ClusterClient.ReloadState). go-redis's own reloads (on MOVED,
	// every ClusterStateReloadInterval) are not seen by the store.
	NoticeReload
	// NoticeAckShortfall: WAIT confirmed fewer replicas than WithWriteAck asks for
	// (Acked, Want); Accepted says whether the write was accepted anyway
	// (AckBestEffort).
	NoticeAckShortfall
	// NoticeCreated: a new session was saved for the first time (Count 1).
	NoticeCreated
	// NoticeDestroyed: a session was deleted by a Destroy, or a rotation in flight that it
	// blocked (Count 1 per session; forward pointers and tombstones not counted).
	NoticeDestroyed
	// NoticeRevoked: Revoke or RevokeAll ended Count sessions.
	NoticeRevoked
)

var noticeNames = [...]string{"retry", "recovered", "reload", "ack_shortfall", "created", "destroyed", "revoked"}

// String returns "retry", "recovered", "reload", "ack_shortfall", "created", "destroyed"
// or "revoked".
func (k NoticeKind) String() string {
	if int(k) < len(noticeNames) {
		return noticeNames[k]
	}
	return "unknown"
}

// Notice is a failover or session event, as [Observer.Notify] gets it.
type Notice struct {
	Kind     NoticeKind
	Op       Op    // the operation it happened in
	Attempt  int   // NoticeRetry: the attempt that failed (1 for the first); NoticeRecovered: attempts made
	Err      error // NoticeRetry: the attempt's error; NoticeAckShortfall: the *AckError
	Count    int   // NoticeCreated, NoticeDestroyed, NoticeRevoked: sessions
	Acked    int   // NoticeAckShortfall: replicas WAIT confirmed
	Want     int   // NoticeAckShortfall: replicas asked for
	Accepted bool  // NoticeAckShortfall: accepted under AckBestEffort
}

// obsOp returns the observer's name for a retry-loop operation.
func (k opKind) obsOp() Op {
	switch k {
	case opLoad:
		return OpLoad
	case opSave:
		return OpSave
	case opRotate:
		return OpRotate
	case opDestroy:
		return OpDestroy
	case opIndex:
		return OpIndex
	case opUnindex:
		return OpUnindex
	case opReadIndex:
		return OpReadIndex
	case opListSessions:
		return OpListSessions
	case opRevoke:
		return OpRevoke
	}
	return OpOther
}

// outcomeOf classifies an operation's error.
func outcomeOf(op Op, err error) Outcome {
	switch {
	case err == nil:
		if op == OpLoad {
			return OutcomeHit
		}
		return OutcomeOK
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, ErrConflict):
		return OutcomeConflict
	}
	return OutcomeError
}

// nodeOf returns the address OpEvent.Node reports for rdb (see there).
func nodeOf(rdb redis.UniversalClient) string {
	if c, ok := rdb.(*redis.Client); ok {
		if a := c.Options().Addr; a != "FailoverClient" {
			return a
		}
	}
	return ""
}

// obsStart starts an operation's observation (only called with an observer set).
func (st *Store) obsStart(ctx context.Context, kind opKind, name string) (context.Context, OpEvent) {
	e := OpEvent{Op: kind.obsOp(), Node: st.node}
	if e.Op == OpOther {
		e.Name = name
	}
	return st.o.observer.OpStart(ctx, e.Op), e
}

// obsEnd ends it: attempts made, the error returned; arg and v are the operation's
// argument and result, for what they tell (bytes sent, a touch, a session created or
// destroyed).
func obsEnd[A, T any](st *Store, ctx context.Context, e *OpEvent, start time.Time, attempts int, arg *A, v *T, err error) {
	e.Duration = time.Since(start)
	e.Attempts = attempts
	e.Err = err
	e.Outcome = outcomeOf(e.Op, err)
	var created, destroyedN int
	switch a := any(arg).(type) {
	case *saveReq:
		for _, x := range a.args {
			switch x := x.(type) {
			case string:
				e.BytesSent += len(x)
			case []byte:
				e.BytesSent += len(x)
			}
		}
		if err == nil && len(a.args) > 2 && a.args[2] == saveNew.arg() {
			created = 1
		}
	}
	switch r := any(v).(type) {
	case *loaded:
		e.Touch = r.touch
	case *destroyed:
		if err == nil && r.deleted && r.fwd == "" {
			destroyedN = 1
		}
	}
	o := st.o.observer
	o.OpEnd(ctx, *e)
	if created > 0 {
		o.Notify(ctx, Notice{Kind: NoticeCreated, Op: e.Op, Count: created})
	}
	if destroyedN > 0 {
		o.Notify(ctx, Notice{Kind: NoticeDestroyed, Op: e.Op, Count: destroyedN})
	}
}

// observe reports an event, if there is an observer.
func (st *Store) notify(ctx context.Context, e Notice) {
	if st.o.observer != nil {
		st.o.observer.Notify(ctx, e)
	}
}
