package httpsession_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// event is what the test compares of a store.Event.
type event struct {
	kind        store.EventKind
	ref, oldRef string
	user        string
}

// The middleware's operations emit the store's events: a new session's first response
// created, a login (SetUser, Rotate) rotated and user-bound, "log out everywhere else"
// revoked for each other session, a logout destroyed; a request that only reads emits
// nothing.
func TestEventsThroughTheMiddleware(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			ch := make(chan store.Event, 64)
			a := newAppOn(t, client(t, cluster.Shared(t, kind)), true,
				[]store.Option{store.WithGracePeriod(time.Second), store.WithEvents(func(e store.Event) { ch <- e })})
			t.Cleanup(func() { _ = a.st.Close() })
			user := "lin-" + string(kind)
			refOf := func(c *http.Client) string {
				t.Helper()
				r, err := a.st.Ref(a.jarCookie(t, c).Value)
				require.NoError(t, err)
				return r
			}
			// expect requires exactly these events, then none before a barrier: a session
			// the test saves, whose EventCreated comes after every event emitted before.
			expect := func(want ...event) {
				t.Helper()
				b, err := a.st.NewSession()
				require.NoError(t, err)
				require.NoError(t, b.Set("barrier", true))
				require.NoError(t, a.st.Save(t.Context(), b))
				barrier, err := a.st.Ref(b.ID())
				require.NoError(t, err)
				var got []event
				for {
					select {
					case e := <-ch:
						if e.Kind == store.EventCreated && e.Ref == barrier {
							require.Equal(t, want, got)
							return
						}
						got = append(got, event{e.Kind, e.Ref, e.OldRef, e.User})
					case <-time.After(10 * time.Second):
						t.Fatalf("events: got %v, want %v, and no barrier", got, want)
					}
				}
			}

			laptop, phone := a.user(t), a.user(t)
			a.get(t, laptop, "/set?k=cart&v=1")
			anon := refOf(laptop)
			a.get(t, laptop, "/get?k=cart")
			expect(event{kind: store.EventCreated, ref: anon})

			a.get(t, laptop, "/login?user="+user+"&device=laptop")
			expect(event{kind: store.EventRotated, ref: refOf(laptop), oldRef: anon, user: user},
				event{kind: store.EventUserBound, ref: refOf(laptop), user: user})

			a.get(t, phone, "/login?user="+user+"&device=phone") // no session before: created with its user
			expect(event{kind: store.EventCreated, ref: refOf(phone), user: user},
				event{kind: store.EventUserBound, ref: refOf(phone), user: user})
			phoneRef := refOf(phone)

			a.get(t, laptop, "/revoke-others")
			expect(event{kind: store.EventRevoked, ref: phoneRef, user: user})

			laptopRef := refOf(laptop)
			a.get(t, laptop, "/logout")
			expect(event{kind: store.EventDestroyed, ref: laptopRef, user: user})
			require.Zero(t, a.st.Stats().EventsDropped)
		})
	}
}
