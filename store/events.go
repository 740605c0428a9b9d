package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what happened to a session (see [Event]).
type EventKind uint8

// The kinds of [Event].
const (
	// EventCreated: a new session's first Save applied (the session now exists in Redis).
	EventCreated EventKind = iota + 1
	// EventRotated: a Rotate applied: the session lives on under a new ID (Ref), the old
	// one (OldRef) forwards to it for the grace period or leads nowhere.
	EventRotated
	// EventDestroyed: a Destroy (logout) deleted the session. Destroying an ID of a
	// rotation chain reports the session it ended; a session already gone reports
	// nothing.
	EventDestroyed
	// EventRevoked: a Revoke or RevokeAll deleted the session, or a login evicted it
	// (WithMaxSessions, EvictOldest): one event per session deleted, a rotation in
	// flight that it followed included.
	EventRevoked
	// EventUserBound: a save gave the session a user it did not have (a login, or a
	// switch to another user), through Save, Update or Rotate.
	EventUserBound
	// EventExpired: a session listed in its user's index was found gone without this
	// store having deleted it: expired by idle timeout or lifetime (see the package
	// documentation, "Events", for how and when that is seen, and what else looks so).
	EventExpired
)

var eventNames = [...]string{
	EventCreated:   "created",
	EventRotated:   "rotated",
	EventDestroyed: "destroyed",
	EventRevoked:   "revoked",
	EventUserBound: "user-bound",
	EventExpired:   "expired",
}

// String returns the kind's name: "created", "rotated", "destroyed", "revoked",
// "user-bound" or "expired".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is something that happened to a session, handed to the function given to
// [WithEvents] once Redis acknowledged the operation. It names the session by its Ref
// (as [Store.Ref] and [Store.Sessions] give it), never by its ID: events go to logs, and
// a session ID in a log is a credential in a log. To free per-session resources, key
// them by [Store.Ref] of the session's ID.
type Event struct {
	Kind EventKind
	// Ref is the session's reference; for EventRotated, the new session's.
	Ref string
	// OldRef is, for EventRotated, the reference of the ID the session had before;
	// empty for the other kinds.
	OldRef string
	// User is the session's user ("" for an anonymous session): for EventUserBound the
	// user it was given, for EventRotated the user after the rotation.
	User string
	// Time is when the store saw the operation apply, by the app server's clock.
	Time time.Time
}

// EventQueueSize is how many events wait for the handler given to [WithEvents] at most;
// an event that finds the queue full is dropped and counted (Stats().EventsDropped).
const EventQueueSize = 1024

// eventLogInterval is how often, at most, the store logs dropped events and handler
// panics (each a count since the last such line).
const eventLogInterval = 10 * time.Second

// WithEvents sets a function that is told what happens to sessions: created, rotated,
// destroyed, revoked, given a user (login) and expired (see [EventKind]). Default: none,
// and then emitting costs nothing.
//
// The function runs on a goroutine of the store's own, one event after the other, in the
// order the store emitted them, never on a request's path: an operation that emits pays
// one non-blocking send to a queue of [EventQueueSize] events, whatever the function
// does. When the queue is full (the function is slower than the events come), the event
// is dropped, counted in Stats().EventsDropped and logged (at most once every 10 s). A
// panic in the function is recovered, counted (Stats().EventHandlerPanics) and logged,
// and the next event is delivered as usual. Delivery is at most once: an event is
// emitted when Redis acknowledged the step that did it, and a step whose reply was lost
// (its outcome unknown) emits nothing, also when Redis applied it; an *AckError of a
// Save, Rotate or Destroy (applied, not confirmed by replicas) emits as success does.
// [Store.Close] stops
// delivery: the events queued before it are still delivered, then the goroutine ends
// (Close does not wait for it); later ones are dropped and counted. See the package
// documentation ("Events") for which operation emits what, and how expiry is seen.
func WithEvents(h func(Event)) Option {
	return func(o *options) error {
		if h == nil {
			return errors.New("hasession: nil event handler")
		}
		o.events = h
		return nil
	}
}

// eventQueue delivers a store's events to its handler on a goroutine of its own.
type eventQueue struct {
	h      func(Event)
	logger *slog.Logger

	mu     sync.RWMutex // held for reading by emit, for writing by close
	closed bool
	ch     chan Event
	done   chan struct{} // closed when the goroutine ends

	dropped, panics atomic.Int64
	// What was last logged: the counts, and when (UnixNano).
	loggedDrops, loggedPanics atomic.Int64
	lastDropLog, lastPanicLog atomic.Int64
}

// newEventQueue starts the goroutine that calls h with each event emitted.
func newEventQueue(h func(Event), logger *slog.Logger, size int) *eventQueue {
	q := &eventQueue{h: h, logger: logger, ch: make(chan Event, size), done: make(chan struct{})}
	go q.run()
	return q
}

// emit queues e without waiting, or drops and counts it (queue full, or closed).
func (q *eventQueue) emit(e Event) {
	e.Time = time.Now()
	q.mu.RLock()
	if !q.closed {
		select {
		case q.ch <- e:
			q.mu.RUnlock()
			return
		default:
		}
	}
	q.mu.RUnlock()
	n := q.dropped.Add(1)
	q.logOnce(&q.lastDropLog, &q.loggedDrops, n, func(since int64) {
		q.logger.Warn("hasession: event queue full or store closed: events dropped", "dropped", since, "total", n, "queue", cap(q.ch))
	})
}

// logOnce runs log with the count since the last call that logged, at most once per
// eventLogInterval.
func (q *eventQueue) logOnce(last, logged *atomic.Int64, n int64, log func(since int64)) {
	now := time.Now().UnixNano()
	prev := last.Load()
	if prev != 0 && now-prev < int64(eventLogInterval) {
		return
	}
	if !last.CompareAndSwap(prev, now) {
		return // another goroutine logs this one
	}
	log(n - logged.Swap(n))
}

// close stops the queue: events already queued are delivered, later ones dropped.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

func (q *eventQueue) run() {
	defer close(q.done)
	for e := range q.ch {
		q.deliver(e)
	}
}

// deliver calls the handler with e; a panic in it is recovered, counted and logged.
func (q *eventQueue) deliver(e Event) {
	defer func() {
		if v := recover(); v != nil {
			n := q.panics.Add(1)
			q.logOnce(&q.lastPanicLog, &q.loggedPanics, n, func(since int64) {
				q.logger.Error("hasession: event handler panicked", "event", e.Kind.String(), "panic", fmt.Sprint(v), "panics", since, "total", n)
			})
		}
	}()
	q.h(e)
}

// emit hands an event to the handler of WithEvents, if any. Callers check st.events
// first, so that a store without one builds no event.
func (st *Store) emit(kind EventKind, tag, user string) {
	st.events.emit(Event{Kind: kind, Ref: refOf(tag), User: user})
}

// unindexExpired drops from the user's index the tags of sessions a Revoke by ID found
// gone (no key: neither a session nor a tombstone nor a forward pointer) and emits
// EventExpired for each one this call removed (ZREM answered 1): an ID the caller named
// is reported only if it was listed. Best effort, like indexRemove; an attempt whose
// reply was lost reports nothing for what it removed (at most once).
func (st *Store) unindexExpired(ctx context.Context, user string, tags []string) {
	if len(tags) == 0 {
		return
	}
	removed, err := st.indexUpdate(ctx, user, "r", tags)
	if err != nil {
		st.o.logger.Warn("hasession: could not drop expired sessions from the user's index; they are pruned when found", "err", err)
		return
	}
	for i, n := range removed {
		if n == 1 {
			st.emit(EventExpired, tags[i], user)
		}
	}
}
