package store_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// standaloneAndCluster runs f on the shared standalone server and the shared Cluster, as
// subtests.
func standaloneAndCluster(t *testing.T, f func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient)) {
	for _, kind := range []cluster.Kind{cluster.KindStandalone, cluster.KindCluster} {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			f(t, topo, client(t, topo))
		})
	}
}

// lostReply is a client hook that, once armed, lets the next save of an existing session
// (the save script in update mode) reach Redis and apply, then runs between (another
// request's save) and reports the reply lost (io.EOF, as a dropped connection would): the
// store retries the save. It records the save ID of every save attempt.
type lostReply struct {
	armed   atomic.Bool
	between func()
	mu      sync.Mutex
	ids     []string
}

func isUpdateSave(cmd redis.Cmder) (string, bool) {
	a := cmd.Args()
	if len(a) < 4 || a[0] != "evalsha" {
		return "", false
	}
	nkeys, ok := a[2].(int)
	argv := 3 + nkeys // ARGV[1]: the save ID; ARGV[3]: the mode
	if !ok || len(a) < argv+3 || a[argv+2] != "u" {
		return "", false
	}
	id, _ := a[argv].(string)
	return id, true
}

func (h *lostReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		id, save := isUpdateSave(cmd)
		if save {
			h.mu.Lock()
			h.ids = append(h.ids, id)
			h.mu.Unlock()
		}
		err := next(ctx, cmd)
		if save && err == nil && h.armed.CompareAndSwap(true, false) {
			h.between()
			cmd.SetErr(io.EOF)
			return io.EOF
		}
		return err
	}
}

func (h *lostReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A save whose reply is lost, while another request's save lands before the retry, is
// applied once and answered as the first time: with WithVersionCheck it is no conflict,
// without it the retry does not apply again.
func TestLostSaveReplyWithASaveInBetween(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	for _, check := range []bool{true, false} {
		t.Run(map[bool]string{true: "version check", false: "no version check"}[check], func(t *testing.T) {
			ctx := t.Context()
			plain := newStore(t, client(t, topo), store.WithPrefix("lost:"))
			h := &lostReply{}
			rdb := redis.NewClient(&redis.Options{Addr: topo.Addrs()[0]})
			t.Cleanup(func() { _ = rdb.Close() })
			rdb.AddHook(h)
			opts := []store.Option{store.WithPrefix("lost:"), store.WithAutoPipeline(false)}
			if check {
				opts = append(opts, store.WithVersionCheck(true))
			}
			st := newStore(t, rdb, opts...)

			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("n", 1))
			require.NoError(t, st.Save(ctx, s)) // version 1
			id := s.ID()
			h.between = func() { // Save holds s: no method of s here
				other, err := plain.Load(ctx, id)
				require.NoError(t, err)
				require.NoError(t, other.Set("other", "yes"))
				require.NoError(t, plain.Save(ctx, other)) // version 3
			}
			h.armed.Store(true)
			require.NoError(t, s.Set("n", 2))
			require.NoError(t, st.Save(ctx, s), "the retried save applied the first time: no error")
			require.EqualValues(t, 2, s.Version(), "the save's own answer: version 2")

			h.mu.Lock()
			ids := h.ids
			h.mu.Unlock()
			require.Len(t, ids, 2, "the first attempt and its retry")
			require.Equal(t, ids[0], ids[1], "every attempt of one Save carries one save ID")

			got, err := plain.Load(ctx, s.ID())
			require.NoError(t, err)
			require.EqualValues(t, 3, got.Version(), "applied once, plus the save in between")
			var n int
			require.NoError(t, got.Get("n", &n))
			require.Equal(t, 2, n)
			require.True(t, got.Has("other"))
		})
	}
}

// Session fixation through the grace period: a rotation that changes who the session
// belongs to leaves no forward pointer. The old ID finds nothing, and destroying it does
// not end the new session. A rotation that keeps the user still forwards.
func TestRotationThatChangesUserLeavesNoForward(t *testing.T) {
	standaloneAndCluster(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("fixation:"+t.Name()+":"), store.WithGracePeriod(30*time.Second))

		// The attacker's session A, planted in the victim's browser.
		planted, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, planted.Set("cart", "bait"))
		require.NoError(t, st.Save(ctx, planted))
		a := planted.ID()

		// The victim logs in: "" -> alice.
		victim, err := st.Load(ctx, a)
		require.NoError(t, err)
		victim.SetUser("alice")
		require.NoError(t, st.Rotate(ctx, victim))
		b := victim.ID()
		require.NotEqual(t, a, b)

		// Within the grace period the attacker sends A.
		_, err = st.Load(ctx, a)
		require.ErrorIs(t, err, store.ErrNotFound, "the old ID must not lead to the logged-in session")
		require.NoError(t, planted.Set("cart", "more bait"))
		require.ErrorIs(t, st.Save(ctx, planted), store.ErrNotFound, "nor can it be written")
		require.ErrorIs(t, st.Rotate(ctx, planted), store.ErrNotFound, "nor rotated")
		require.NoError(t, st.Destroy(ctx, a))
		got, err := st.Load(ctx, b)
		require.NoError(t, err, "destroying the old ID does not end the new session")
		require.Equal(t, "alice", got.User())
		var cart string
		require.NoError(t, got.Get("cart", &cart), "the session's data moved to the new ID")
		require.Equal(t, "bait", cart)

		// A same-user rotation (privilege change) forwards the old ID.
		require.NoError(t, got.Set("role", "admin"))
		require.NoError(t, st.Rotate(ctx, got))
		c := got.ID()
		viaOld, err := st.Load(ctx, b)
		require.NoError(t, err)
		require.Equal(t, c, viaOld.ID())

		// "alice" -> "bob": the old ID finds nothing; alice's RevokeAll leaves bob's session.
		viaOld.SetUser("bob")
		require.NoError(t, st.Rotate(ctx, viaOld))
		d := viaOld.ID()
		for _, id := range []string{b, c} {
			_, err = st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound, "old ID %s", id)
		}
		require.NoError(t, st.Destroy(ctx, c))
		require.NoError(t, st.RevokeAll(ctx, "alice"))
		bobs, err := st.Load(ctx, d)
		require.NoError(t, err)
		require.Equal(t, "bob", bobs.User())
		infos, err := st.Sessions(ctx, "alice")
		require.NoError(t, err)
		require.Empty(t, infos)
		infos, err = st.Sessions(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, []string{ref(t, st, d)}, refs(infos))

		// A Revoke of bob's session by its previous IDs ends nothing of bob's either.
		require.NoError(t, st.Revoke(ctx, "alice", c))
		_, err = st.Load(ctx, d)
		require.NoError(t, err)
	})
}

// A rotation carries what another request saved between this request's Load and its
// Rotate, plus this request's own changes.
func TestRotateCarriesAConcurrentSave(t *testing.T) {
	standaloneAndCluster(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("rotate-race:"+t.Name()+":"), store.WithGracePeriod(30*time.Second))
		for _, user := range []string{"", "ivy"} {
			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("cart", "book"))
			require.NoError(t, s.Set("gone", "soon"))
			s.SetUser(user)
			require.NoError(t, st.Save(ctx, s))

			req1, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
			req2, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
			require.NoError(t, req2.Set("x", "from request 2"))
			req2.Delete("gone")
			require.NoError(t, st.Save(ctx, req2))

			require.NoError(t, req1.Set("y", "from request 1"))
			require.NoError(t, st.Rotate(ctx, req1))
			require.NotEqual(t, s.ID(), req1.ID())
			for _, sess := range []*store.Session{req1, func() *store.Session {
				got, err := st.Load(ctx, req1.ID())
				require.NoError(t, err)
				return got
			}()} {
				var x, y, cart string
				require.NoError(t, sess.Get("x", &x), "request 2's save survives the rotation")
				require.Equal(t, "from request 2", x)
				require.NoError(t, sess.Get("y", &y))
				require.Equal(t, "from request 1", y)
				require.NoError(t, sess.Get("cart", &cart))
				require.False(t, sess.Has("gone"), "request 2's deletion survives too")
				require.Equal(t, user, sess.User())
				require.EqualValues(t, 3, sess.Version())
			}
		}
	})
}

// A save WAIT did not confirm applied on the master: the Session says so (not new, its
// changes applied), and saving it again is an update.
func TestUnacknowledgedSaveLeavesTheSessionSaved(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	rdb := redis.NewClient(&redis.Options{Addr: topo.Addrs()[0], ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	st := newStore(t, rdb, store.WithPrefix("unacked:"), store.WithWriteAck(1, 50*time.Millisecond))
	ctx := t.Context()
	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("a", 1))
	err = st.Save(ctx, s)
	require.ErrorIs(t, err, store.ErrNotAcknowledged, "no replica: WAIT confirms none")
	var ack *store.AckError
	require.ErrorAs(t, err, &ack)
	require.False(t, s.IsNew())
	require.False(t, s.Modified())
	require.EqualValues(t, 1, s.Version())
	require.False(t, s.Deadline().IsZero())

	require.NoError(t, s.Set("b", 2))
	require.ErrorIs(t, st.Save(ctx, s), store.ErrNotAcknowledged, "the second save is an update")
	require.EqualValues(t, 2, s.Version())
	got, err := st.Load(ctx, s.ID())
	require.NoError(t, err)
	require.EqualValues(t, 2, got.Version())
	require.ElementsMatch(t, []string{"a", "b"}, got.Keys())

	// A rotation whose new session is not confirmed is complete all the same.
	old := s.ID()
	require.NoError(t, s.Set("c", 3))
	require.ErrorIs(t, st.Rotate(ctx, s), store.ErrNotAcknowledged)
	require.NotEqual(t, old, s.ID())
	require.False(t, s.Modified())
	got, err = st.Load(ctx, s.ID())
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "b", "c"}, got.Keys())
}

// A session saved through another store is an exported error.
func TestSessionOfAnotherStore(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	rdb := client(t, topo)
	st1, st2 := newStore(t, rdb), newStore(t, rdb)
	s, err := st1.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("a", 1))
	require.ErrorIs(t, st2.Save(t.Context(), s), store.ErrWrongStore)
	require.ErrorIs(t, st2.Rotate(t.Context(), s), store.ErrWrongStore)
}

// Metadata damaged between a Load and a Save is a *CorruptError, and the key is left as
// it is.
func TestSaveOfDamagedMetadata(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	rdb := client(t, topo)
	ctx := t.Context()
	st := newStore(t, rdb, store.WithPrefix("damaged:"))
	damages := map[string]func(key string) error{
		"version not a number":    func(k string) error { return rdb.HSet(ctx, k, "_v", "x").Err() },
		"version fractional":      func(k string) error { return rdb.HSet(ctx, k, "_v", "1.5").Err() },
		"created-at missing":      func(k string) error { return rdb.HDel(ctx, k, "_c").Err() },
		"created-at not a number": func(k string) error { return rdb.HSet(ctx, k, "_c", "yesterday").Err() },
		"deadline not a number":   func(k string) error { return rdb.HSet(ctx, k, "_a", "x").Err() },
		"deadline missing":        func(k string) error { return rdb.HDel(ctx, k, "_a").Err() },
		"last touch not a number": func(k string) error { return rdb.HSet(ctx, k, "_t", "x").Err() },
		"codec missing":           func(k string) error { return rdb.HDel(ctx, k, "_k").Err() },
		"version missing":         func(k string) error { return rdb.HDel(ctx, k, "_v").Err() },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			for _, op := range []string{"save", "rotate"} {
				s, err := st.NewSession()
				require.NoError(t, err)
				require.NoError(t, s.Set("a", 1))
				require.NoError(t, st.Save(ctx, s))
				s, err = st.Load(ctx, s.ID())
				require.NoError(t, err)
				key, _ := st.Key(s.ID())
				require.NoError(t, damage(key))
				before := rdb.HGetAll(ctx, key).Val()
				require.NoError(t, s.Set("a", 2))
				if op == "save" {
					err = st.Save(ctx, s)
				} else {
					err = st.Rotate(ctx, s)
				}
				require.ErrorIs(t, err, store.ErrCorrupt, "%s: %v", op, err)
				var ce *store.CorruptError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, before, rdb.HGetAll(ctx, key).Val(), "%s: the key is left as it is", op)
			}
		})
	}
}
