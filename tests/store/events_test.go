package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// events collects what a store's WithEvents handler is given.
type events struct {
	ch chan store.Event
}

func newEvents() *events { return &events{ch: make(chan store.Event, 4*store.EventQueueSize)} }

func (ev *events) handle(e store.Event) { ev.ch <- e }

// eventStore returns a store that reports its events to ev, closed when the test ends.
func eventStore(t *testing.T, rdb redis.UniversalClient, ev *events, opts ...store.Option) *store.Store {
	t.Helper()
	st := newStore(t, rdb, append(opts, store.WithEvents(ev.handle))...)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// want is an event expected: its kind, ref, old ref and user.
type want struct {
	kind        store.EventKind
	ref, oldRef string
	user        string
}

func (w want) String() string {
	return fmt.Sprintf("%s ref=%s old=%s user=%q", w.kind, w.ref, w.oldRef, w.user)
}

// expect requires the next events to be exactly these, in this order, and then no other
// before a barrier (see upToBarrier).
func (ev *events) expect(t *testing.T, st *store.Store, ws ...want) {
	t.Helper()
	require.Equal(t, ws, ev.upToBarrier(t, st))
}

// upToBarrier returns the events delivered before a barrier: a session the test
// creates, whose EventCreated comes after every event the store emitted before it
// (delivery is in order).
func (ev *events) upToBarrier(t *testing.T, st *store.Store) []want {
	t.Helper()
	ctx := t.Context()
	b, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, b.Set("barrier", true))
	require.NoError(t, st.Save(ctx, b))
	barrier := want{kind: store.EventCreated, ref: ref(t, st, b.ID())}
	var got []want
	for {
		select {
		case e := <-ev.ch:
			require.False(t, e.Time.IsZero())
			w := want{e.Kind, e.Ref, e.OldRef, e.User}
			if w == barrier {
				return got
			}
			got = append(got, w)
		case <-time.After(10 * time.Second):
			t.Fatalf("events: got %v and no barrier %v", got, barrier)
		}
	}
}

// Each operation emits its events once Redis applied it, exactly once, naming the session
// by its Ref and user; operations that end nothing emit nothing.
func TestEventsOfEachOperation(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		ev := newEvents()
		st := eventStore(t, rdb, ev, store.WithPrefix("events:"+t.Name()+":"), store.WithGracePeriod(time.Minute))
		const user = "ada"

		s, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, s.Set("cart", "book"))
		require.NoError(t, st.Save(ctx, s))
		anon := s.ID()
		ev.expect(t, st, want{kind: store.EventCreated, ref: ref(t, st, anon)})

		// A change of a session is no event; nor is a load.
		require.NoError(t, s.Set("cart", "two books"))
		require.NoError(t, st.Save(ctx, s))
		_, err = st.Load(ctx, s.ID())
		require.NoError(t, err)
		ev.expect(t, st)

		// A login: the user, then a new ID.
		s.SetUser(user)
		require.NoError(t, st.Rotate(ctx, s))
		first := s.ID()
		ev.expect(t, st,
			want{kind: store.EventRotated, ref: ref(t, st, first), oldRef: ref(t, st, anon), user: user},
			want{kind: store.EventUserBound, ref: ref(t, st, first), user: user})

		// A rotation that keeps the user (a privilege change) is not a login.
		require.NoError(t, st.Rotate(ctx, s))
		second := s.ID()
		ev.expect(t, st, want{kind: store.EventRotated, ref: ref(t, st, second), oldRef: ref(t, st, first), user: user})

		// A logout through the old ID ends the session it forwards to, once.
		require.NoError(t, st.Destroy(ctx, first))
		ev.expect(t, st, want{kind: store.EventDestroyed, ref: ref(t, st, second), user: user})
		require.NoError(t, st.Destroy(ctx, second))
		require.NoError(t, st.Destroy(ctx, first))
		ev.expect(t, st)

		// A new session saved with a user; an anonymous one given a user by a plain save.
		n, err := st.NewSession()
		require.NoError(t, err)
		n.SetUser(user)
		require.NoError(t, n.Set("device", "phone"))
		require.NoError(t, st.Save(ctx, n))
		a, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, a.Set("device", "tablet"))
		require.NoError(t, st.Save(ctx, a))
		a.SetUser(user)
		require.NoError(t, st.Save(ctx, a))
		a.SetUser(user) // the same user again: no event
		require.NoError(t, st.Save(ctx, a))
		ev.expect(t, st,
			want{kind: store.EventCreated, ref: ref(t, st, n.ID()), user: user},
			want{kind: store.EventUserBound, ref: ref(t, st, n.ID()), user: user},
			want{kind: store.EventCreated, ref: ref(t, st, a.ID())},
			want{kind: store.EventUserBound, ref: ref(t, st, a.ID()), user: user})

		// Revoke one by its Ref, then every other: one event per session ended.
		require.NoError(t, st.Revoke(ctx, user, ref(t, st, n.ID())))
		require.NoError(t, st.Revoke(ctx, user, ref(t, st, n.ID())))
		ev.expect(t, st, want{kind: store.EventRevoked, ref: ref(t, st, n.ID()), user: user})
		l, err := st.NewSession() // a login, as the login helper does it
		require.NoError(t, err)
		require.NoError(t, l.Set("cart", "anonymous cart"))
		require.NoError(t, st.Save(ctx, l))
		lAnon := l.ID()
		l.SetUser(user)
		require.NoError(t, st.Rotate(ctx, l))
		ev.expect(t, st,
			want{kind: store.EventCreated, ref: ref(t, st, lAnon)},
			want{kind: store.EventRotated, ref: ref(t, st, l.ID()), oldRef: ref(t, st, lAnon), user: user},
			want{kind: store.EventUserBound, ref: ref(t, st, l.ID()), user: user})
		require.NoError(t, st.RevokeAll(ctx, user, l.ID()))
		ev.expect(t, st, want{kind: store.EventRevoked, ref: ref(t, st, a.ID()), user: user})
		require.NoError(t, st.RevokeAll(ctx, user))
		require.NoError(t, st.RevokeAll(ctx, user))
		ev.expect(t, st, want{kind: store.EventRevoked, ref: ref(t, st, l.ID()), user: user})

		// DestroySession of a session never saved: nothing in Redis, no event.
		fresh, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, st.DestroySession(ctx, fresh))
		ev.expect(t, st)
		require.Zero(t, st.Stats().EventsDropped)
		require.Zero(t, st.Stats().EventHandlerPanics)
	})
}

// A user's session that expires on Redis (idle timeout) is reported when the user's
// index is next read, exactly once also when two app servers list the user at the same
// time; RevokeAll reports a session it finds expired as expired, not revoked. A load of
// it reports nothing.
func TestEventsExpiredSessionReportedOnceByTheNextListing(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			ctx := t.Context()
			opts := []store.Option{
				store.WithPrefix("events-exp:" + t.Name() + ":"),
				store.WithIdleTimeout(time.Second), store.WithTouchInterval(100 * time.Millisecond),
			}
			// Two app servers: a store each, on a client each.
			evA, evB := newEvents(), newEvents()
			stA := eventStore(t, client(t, topo), evA, opts...)
			stB := eventStore(t, client(t, topo), evB, opts...)
			const user = "grace"

			loginNew := func() *store.Session {
				s, err := stA.NewSession()
				require.NoError(t, err)
				s.SetUser(user)
				require.NoError(t, stA.Save(ctx, s))
				return s
			}
			gone := func(ss ...*store.Session) {
				t.Helper()
				rdb := stA.Client()
				eventually(t, 15*time.Second, func() bool {
					for _, s := range ss {
						key, err := stA.Key(s.ID())
						require.NoError(t, err)
						if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
							return false
						}
					}
					return true
				}, "the sessions expire on Redis")
			}
			expired := func(ss ...*store.Session) []want {
				var ws []want
				for _, s := range ss {
					ws = append(ws, want{kind: store.EventExpired, ref: ref(t, stA, s.ID()), user: user})
				}
				return ws
			}

			s1, s2 := loginNew(), loginNew()
			require.Len(t, evA.upToBarrier(t, stA), 4, "created and user-bound, twice")
			gone(s1, s2)
			_, err := stB.Load(ctx, s1.ID())
			require.ErrorIs(t, err, store.ErrNotFound)
			evB.expect(t, stB)

			// Both app servers list the user at once: each expiry is reported once, by
			// one of them.
			start, errs := make(chan struct{}), make(chan error, 2)
			for _, st := range []*store.Store{stA, stB} {
				go func() {
					<-start
					infos, err := st.Sessions(ctx, user)
					if err == nil && len(infos) != 0 {
						err = fmt.Errorf("listed %d sessions", len(infos))
					}
					errs <- err
				}()
			}
			close(start)
			require.NoError(t, <-errs)
			require.NoError(t, <-errs)
			got := append(evA.upToBarrier(t, stA), evB.upToBarrier(t, stB)...)
			require.ElementsMatch(t, expired(s1, s2), got)

			// Listed again: nothing more to report.
			for _, st := range []*store.Store{stA, stB} {
				infos, err := st.Sessions(ctx, user)
				require.NoError(t, err)
				require.Empty(t, infos)
			}
			evA.expect(t, stA)
			evB.expect(t, stB)

			// RevokeAll meets an expired session: expired, not revoked; the live one is
			// revoked.
			s3, s4 := loginNew(), loginNew()
			require.Len(t, evA.upToBarrier(t, stA), 4)
			gone(s3, s4)
			live := loginNew()
			evA.expect(t, stA,
				want{kind: store.EventCreated, ref: ref(t, stA, live.ID()), user: user},
				want{kind: store.EventUserBound, ref: ref(t, stA, live.ID()), user: user})
			require.NoError(t, stB.Revoke(ctx, user, s3.ID()), "a Revoke by ID of an expired session")
			evB.expect(t, stB, expired(s3)...)
			require.NoError(t, stB.RevokeAll(ctx, user))
			got = evB.upToBarrier(t, stB)
			require.ElementsMatch(t, append(expired(s4), want{kind: store.EventRevoked, ref: ref(t, stB, live.ID()), user: user}), got)
			evA.expect(t, stA)
		})
	}
}

// A handler that blocks (until the test ends) delays no request: saves and loads go on
// while it is stuck, the queue fills, and the events beyond it are dropped and counted.
func TestEventsSlowHandlerDelaysNoRequest(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		entered, release := make(chan struct{}, 1), make(chan struct{})
		st := newStore(t, rdb, store.WithPrefix("events-slow:"+t.Name()+":"), store.WithEvents(func(store.Event) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}))
		t.Cleanup(func() { _ = st.Close() })
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()

		save := func() (string, error) {
			s, err := st.NewSession()
			if err != nil {
				return "", err
			}
			if err = s.Set("n", 1); err == nil {
				err = st.Save(ctx, s)
			}
			return s.ID(), err
		}
		_, err := save()
		require.NoError(t, err)
		select {
		case <-entered: // the handler holds the first event, and will not return
		case <-time.After(10 * time.Second):
			t.Fatal("the handler was never called")
		}
		const n, workers = store.EventQueueSize + 76, 8
		ids, errs := make(chan string, n), make(chan error, n)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					id, err := save()
					ids <- id
					errs <- err
				}
			})
		}
		wg.Wait()
		close(ids)
		close(errs)
		for err := range errs {
			require.NoError(t, err, "a save while the handler is stuck")
		}
		for id := range ids {
			s, err := st.Load(ctx, id)
			require.NoError(t, err)
			var v int
			require.NoError(t, s.Get("n", &v))
			require.Equal(t, 1, v)
		}
		require.EqualValues(t, 76, st.Stats().EventsDropped, "queued: %d; beyond that, dropped", store.EventQueueSize)
	})
}

// A handler that panics is recovered and counted; the next events are delivered.
func TestEventsPanickingHandlerIsRecovered(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		got := make(chan store.Event, 16)
		st := newStore(t, rdb, store.WithPrefix("events-panic:"+t.Name()+":"), store.WithEvents(func(e store.Event) {
			if e.Kind == store.EventCreated {
				panic("the audit log is down")
			}
			got <- e
		}))
		t.Cleanup(func() { _ = st.Close() })

		s, err := st.NewSession()
		require.NoError(t, err)
		s.SetUser("hopper")
		require.NoError(t, st.Save(ctx, s)) // created (panics), then user-bound
		old := s.ID()
		require.NoError(t, st.Rotate(ctx, s))
		for _, w := range []want{
			{kind: store.EventUserBound, ref: ref(t, st, old), user: "hopper"},
			{kind: store.EventRotated, ref: ref(t, st, s.ID()), oldRef: ref(t, st, old), user: "hopper"},
		} {
			select {
			case e := <-got:
				require.Equal(t, w, want{e.Kind, e.Ref, e.OldRef, e.User})
			case <-time.After(10 * time.Second):
				t.Fatalf("%v never delivered after the handler panicked", w)
			}
		}
		require.EqualValues(t, 1, st.Stats().EventHandlerPanics)
		_, err = st.Load(ctx, s.ID())
		require.NoError(t, err)
	})
}
