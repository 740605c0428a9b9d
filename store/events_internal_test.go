package store

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a log destination safe for the queue's goroutine and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestEventKindNames(t *testing.T) {
	want := map[EventKind]string{
		EventCreated: "created", EventRotated: "rotated", EventDestroyed: "destroyed",
		EventRevoked: "revoked", EventUserBound: "user-bound", EventExpired: "expired",
		0: "EventKind(0)", 42: "EventKind(42)",
	}
	for k, name := range want {
		require.Equal(t, name, k.String())
	}
}

// A handler that blocks holds one event; the queue takes EventQueueSize more, and every
// event beyond is dropped at once and counted, never waited for.
func TestEventQueueDropsWhenFull(t *testing.T) {
	var logs syncBuffer
	entered, release := make(chan Event, 1), make(chan struct{})
	q := newEventQueue(func(e Event) {
		select {
		case entered <- e:
		default:
		}
		<-release
	}, slog.New(slog.NewTextHandler(&logs, nil)), EventQueueSize)
	defer q.close()
	defer close(release)

	q.emit(Event{Kind: EventCreated, Ref: "first"})
	select {
	case e := <-entered:
		require.Equal(t, "first", e.Ref)
		require.False(t, e.Time.IsZero(), "stamped when emitted")
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was never called")
	}
	const extra = 7
	start := time.Now()
	for range EventQueueSize + extra {
		q.emit(Event{Kind: EventExpired})
	}
	require.Less(t, time.Since(start), 5*time.Second, "emit never waits for the handler")
	require.EqualValues(t, extra, q.dropped.Load())
	require.Equal(t, 1, strings.Count(logs.String(), "events dropped"), "logged once, not once per event")
	require.Contains(t, logs.String(), "dropped=1 ")
}

// A handler that panics is recovered; the events after it are delivered, in order.
func TestEventHandlerPanicIsRecovered(t *testing.T) {
	var logs syncBuffer
	got := make(chan Event, 16)
	q := newEventQueue(func(e Event) {
		if e.Kind == EventRevoked {
			panic("boom")
		}
		got <- e
	}, slog.New(slog.NewTextHandler(&logs, nil)), EventQueueSize)
	defer q.close()

	q.emit(Event{Kind: EventCreated, Ref: "a"})
	q.emit(Event{Kind: EventRevoked, Ref: "b"})
	q.emit(Event{Kind: EventRevoked, Ref: "c"})
	q.emit(Event{Kind: EventDestroyed, Ref: "d"})
	for _, want := range []string{"a", "d"} {
		select {
		case e := <-got:
			require.Equal(t, want, e.Ref)
		case <-time.After(5 * time.Second):
			t.Fatalf("event %s never delivered after the handler panicked", want)
		}
	}
	require.EqualValues(t, 2, q.panics.Load())
	require.Contains(t, logs.String(), "event handler panicked")
	require.Contains(t, logs.String(), "panic=boom")
	require.Zero(t, q.dropped.Load())
}

// Close delivers what was queued before it, drops (and counts) what comes after, and the
// goroutine ends.
func TestEventQueueClose(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var refs []string
	q := newEventQueue(func(e Event) {
		<-release
		mu.Lock()
		refs = append(refs, e.Ref)
		mu.Unlock()
	}, slog.New(slog.DiscardHandler), 4)
	q.emit(Event{Ref: "1"})
	q.emit(Event{Ref: "2"})
	q.close()
	q.close() // harmless
	q.emit(Event{Ref: "late"})
	require.EqualValues(t, 1, q.dropped.Load(), "an event after close is dropped")
	close(release)
	select {
	case <-q.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery goroutine did not end after close")
	}
	require.Equal(t, []string{"1", "2"}, refs, "queued before close: delivered, in order")
}

// eventLoops counts the event delivery goroutines of every store.
func eventLoops() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "store.(*eventQueue).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A store with WithEvents runs one delivery goroutine, which Close ends; a store without
// runs none, and builds no events.
func TestStoreEventsOption(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialerRetries: 1})
	defer rdb.Close()
	_, err := New(rdb, WithEvents(nil))
	require.Error(t, err, "a nil handler is refused")

	// Counting goroutines against a count taken before is racy (other tests' stores end
	// theirs meanwhile): each store's queue is checked instead — a queue is what runs
	// the one delivery goroutine, and its done channel closes when that goroutine ends.
	plain, err := New(rdb)
	require.NoError(t, err)
	require.Nil(t, plain.events, "no queue, so no delivery goroutine")
	require.NoError(t, plain.Close())

	st, err := New(rdb, WithEvents(func(Event) {}))
	require.NoError(t, err)
	require.NotNil(t, st.events)
	require.Eventually(t, func() bool { return eventLoops() >= 1 }, 5*time.Second, 5*time.Millisecond,
		"a delivery goroutine runs")
	select {
	case <-st.events.done:
		t.Fatal("the delivery goroutine ended before Close")
	default:
	}
	require.NoError(t, st.Close())
	require.Eventually(t, func() bool {
		select {
		case <-st.events.done:
			return true
		default:
			return false
		}
	}, 5*time.Second, 5*time.Millisecond, "Close ends the delivery goroutine")
	st.emit(EventCreated, "tag", "")
	require.Equal(t, Stats{EventsDropped: 1}, st.Stats(), "an event emitted after Close is counted as dropped")
}
