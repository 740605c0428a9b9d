package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// Steps retried after a lost reply, whose first attempt applied, and which something
// that happened between the attempts must not make answer "not applied".

// loseScriptReply is a client hook that lets the first EVALSHA of the script sha apply,
// then runs f and answers the call with a lost reply (io.EOF), so that the store retries
// it — after f.
type loseScriptReply struct {
	sha  string
	f    func()
	done atomic.Bool
}

func (h *loseScriptReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *loseScriptReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) > 1 && a[0] == "evalsha" && a[1] == h.sha && !h.done.Load() {
			if err := next(ctx, cmd); err != nil {
				return err // NOSCRIPT: the store sends the script itself, and the hook waits
			}
			h.done.Store(true)
			if h.f != nil {
				h.f()
			}
			cmd.SetErr(io.EOF)
			return io.EOF
		}
		return next(ctx, cmd)
	}
}

func (h *loseScriptReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// saveLosingReply sets the attribute name to v on s and saves it on st, whose save
// script's first attempt applies, then f runs and the reply is lost (the store retries
// it); it returns the save's error.
func saveLosingReply(t *testing.T, st *store.Store, s *store.Session, name string, v int, f func()) error {
	t.Helper()
	h := &loseScriptReply{sha: testhook.SaveScriptHash, f: f}
	internals(st).Client.AddHook(h)
	_ = s.Set(name, v)
	err := st.Save(t.Context(), s)
	if !h.done.Load() {
		t.Fatal("the hook did not run")
	}
	return err
}

// saveElsewhere is another request's save of the session id on st: it sets the attribute
// name to v. It reports a failure with t.Error (it runs inside a hook) and returns false.
func saveElsewhere(t *testing.T, st *store.Store, id, name string, v int) bool {
	t.Helper()
	o, err := st.Load(t.Context(), id)
	if err == nil {
		_ = o.Set(name, v)
		err = st.Save(t.Context(), o)
	}
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// waitGone waits until key no longer exists (its TTL, a few milliseconds, has run out).
func waitGone(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	end := time.Now().Add(10 * time.Second)
	for {
		n, err := rdb.Exists(ctx, key).Result()
		if err != nil {
			t.Errorf("exists %s: %v", key, err)
			return
		}
		if n == 0 {
			return
		}
		if time.Now().After(end) {
			t.Errorf("%s still exists", key)
			return
		}
	}
}

// userSession returns a session saved on st with the attribute a = 1, and the user
// ("": none).
func userSession(t *testing.T, st *store.Store, user string) *store.Session {
	t.Helper()
	s, _ := st.NewSession()
	_ = s.Set("a", 1)
	if user != "" {
		s.SetUser(user)
	}
	if err := st.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

// loadForwardScript rotates a session of a store of its own, so that the forward
// script is loaded and a rotation's forward step is an EVALSHA (which loseScriptReply
// watches for).
func loadForwardScript(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("forward-script-warm:"))
	if err := st.Rotate(ctx, userSession(t, st, "")); err != nil {
		t.Fatal(err)
	}
}

// A rotation whose forward step applied but whose reply was lost is retried after a
// logout of the old ID (which followed the new pointer and ended the new session): the
// rotation had applied, and the retry says so instead of ErrNotFound. (Found by the
// history checker behind a proxy that loses replies: the caller was told the rotation
// did not happen while another request had already loaded the new session through the
// old ID.)
func TestForwardRetriedAfterLogoutIsRecognised(t *testing.T) {
	ctx := t.Context()
	loadForwardScript(t)
	for _, user := range []string{"", "alice"} {
		t.Run("user "+user, func(t *testing.T) {
			st := sharedStandaloneStore(t, store.WithPrefix("forward-retry:"))
			other := sharedStandaloneStore(t, store.WithPrefix("forward-retry:"))
			s := userSession(t, st, user)
			old := s.ID()
			var seen string
			h := &loseScriptReply{sha: testhook.ForwardScriptHash, f: func() { // Rotate holds s: no method of s here
				// Another request follows the old ID to the new session, then logs out.
				o, err := other.Load(ctx, old)
				if err != nil {
					t.Errorf("the old ID, forwarded: %v", err)
					return
				}
				seen = o.ID()
				if err := other.Destroy(ctx, old); err != nil {
					t.Error(err)
				}
			}}
			internals(st).Client.AddHook(h)
			if err := st.Rotate(ctx, s); err != nil {
				t.Fatalf("the rotation applied, then the logout ended it: got %v, want nil", err)
			}
			if !h.done.Load() {
				t.Fatal("the hook did not run")
			}
			if s.ID() == old || s.ID() != seen {
				t.Fatalf("s has ID %s; the old ID %s led to %s", s.ID(), old, seen)
			}
			for _, id := range []string{old, s.ID()} {
				if _, err := other.Load(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("after the logout, %s: %v, want ErrNotFound", id, err)
				}
			}
		})
	}
}

// A rotation whose forward step applied but whose reply was lost is retried after the
// forward pointer's grace period has ended (the pointer expired): the retry cannot tell
// whether the first attempt applied, so Rotate says so (ErrOutcomeUnknown), not
// ErrNotFound, and keeps the new session (requests that followed the pointer carry its
// ID), where it used to say ErrNotFound and drop it, so that a user who had followed the
// pointer lost the session. A grace period of 1 ms stands here for the default 30 s,
// which a retry across a failover can outlast.
func TestForwardRetriedAfterPointerExpired(t *testing.T) {
	ctx := t.Context()
	loadForwardScript(t)
	for _, user := range []string{"", "alice"} {
		t.Run("user "+user, func(t *testing.T) {
			prefix := "forward-expired-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
			st := sharedStandaloneStore(t, store.WithPrefix(prefix), store.WithGracePeriod(time.Millisecond))
			in := internals(st)
			s := userSession(t, st, user)
			old := s.ID()
			oldKey := in.Key(old)
			h := &loseScriptReply{sha: testhook.ForwardScriptHash, f: func() {
				// The pointer the forward step wrote lives for the grace period.
				waitGone(t, in.Client, oldKey)
			}}
			in.Client.AddHook(h)
			err := st.Rotate(ctx, s)
			if !h.done.Load() {
				t.Fatal("the hook did not run")
			}
			if !errors.Is(err, store.ErrOutcomeUnknown) || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the forward step may have applied (its pointer expired): got %v, want ErrOutcomeUnknown", err)
			}
			if s.ID() != old {
				t.Fatalf("s took the ID %s on an error", s.ID())
			}
			// The new session is kept: the one session under the prefix.
			var live []string
			iter := in.Client.Scan(ctx, 0, prefix+"*", 100).Iterator()
			for iter.Next(ctx) {
				if v, err := in.Client.HGet(ctx, iter.Val(), fVersion).Result(); err == nil && v != "" {
					live = append(live, iter.Val())
				}
			}
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			if len(live) != 1 || live[0] == oldKey {
				t.Fatalf("sessions under the prefix: %q, want the new one alone", live)
			}
			if a, err := in.Client.HGet(ctx, live[0], ".a").Bytes(); err != nil || len(a) == 0 {
				t.Fatalf("the new session's attribute: %q, %v", a, err)
			}
		})
	}
}

// A save whose reply was lost is retried after another request rotated the session and
// the rotation's forward pointer (which keeps the saves applied, '_s') expired with the
// grace period: the retry cannot tell whether the save applied, so Save says so
// (ErrOutcomeUnknown), where it used to say ErrNotFound of a save that had applied.
func TestSaveRetriedAfterRotationPointerExpired(t *testing.T) {
	ctx := t.Context()
	prefix := "save-expired-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	st := sharedStandaloneStore(t, store.WithPrefix(prefix))
	other := sharedStandaloneStore(t, store.WithPrefix(prefix), store.WithGracePeriod(time.Millisecond))
	in := internals(st)
	s, _ := st.NewSession()
	_ = s.Set("n", 1)
	if err := st.Save(ctx, s); err != nil { // (the save script loaded: the hook sees EVALSHA)
		t.Fatal(err)
	}
	id, key := s.ID(), in.Key(s.ID())
	err := saveLosingReply(t, st, s, "n", 2, func() {
		// Another request rotates the session (with the save); the old key's pointer
		// ends with the grace period.
		o, err := other.Load(ctx, id)
		if err != nil {
			t.Error(err)
			return
		}
		if err := other.Rotate(ctx, o); err != nil {
			t.Error(err)
			return
		}
		waitGone(t, in.Client, key)
	})
	if !errors.Is(err, store.ErrOutcomeUnknown) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the retry of a save that applied, whose key expired: got %v, want ErrOutcomeUnknown", err)
	}
}

// A logout (Destroy) whose delete applied but whose reply was lost is retried: the retry
// finds the key gone (a session without a rotation mark and without saves in the last
// 90 s leaves no tombstone) and no longer knows the session's user, so the session stays
// listed in its user's index, and the user's next listing reports it expired
// (EventExpired: "ended without this store seeing a logout or revoke of it") although
// this store logged it out, and Destroy returned nil.
func TestDestroyRetriedAfterLostReplyUnlistsTheSession(t *testing.T) {
	ctx := t.Context()
	rdb := redis.NewUniversalClient(cluster.Shared(t, cluster.KindStandalone).UniversalOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	ev := newEvents()
	st := eventStore(t, rdb, ev, store.WithPrefix("destroy-retry:"))
	in := internals(st)
	user := "ada-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	// The destroy script loaded, so that the logout's delete is an EVALSHA.
	warm, _ := st.NewSession()
	_ = warm.Set("a", 1)
	if err := st.Save(ctx, warm); err != nil {
		t.Fatal(err)
	}
	if err := st.Destroy(ctx, warm.ID()); err != nil {
		t.Fatal(err)
	}

	s, _ := st.NewSession()
	_ = s.Set("a", 1)
	s.SetUser(user)
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	// Its last save was two minutes ago (loads since touched it): the save-ID entry
	// says so.
	key := in.Key(s.ID())
	sids, err := in.Client.HGet(ctx, key, fSaveID).Result()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(sids, ":")
	if len(parts) != 3 {
		t.Fatalf("save IDs %q", sids)
	}
	at, _ := strconv.ParseInt(parts[2], 10, 64)
	parts[2] = strconv.FormatInt(at-120_000, 10)
	if err := in.Client.HSet(ctx, key, fSaveID, strings.Join(parts, ":")).Err(); err != nil {
		t.Fatal(err)
	}
	ev.upToBarrier(t, st) // created, user-bound

	h := &loseScriptReply{sha: testhook.DestroyScriptHash}
	in.Client.AddHook(h)
	if err := st.Destroy(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	if !h.done.Load() {
		t.Fatal("the hook did not run")
	}
	if _, err := in.Client.ZScore(ctx, st.IndexKey(user), s.ID()).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("after the logout, the user's index still lists the session (%v)", err)
	}
	if _, err := st.Sessions(ctx, user); err != nil {
		t.Fatal(err)
	}
	for _, e := range ev.upToBarrier(t, st) {
		if e.kind == store.EventExpired {
			t.Errorf("the logged-out session is reported %v", e)
		}
	}
}

// A version-checked save whose reply was lost is retried after a failover lost its first
// attempt, which another request had seen, and another save changed the session: the
// retry cannot tell whether the save applied (it did, and was lost), so Save says so
// (ErrOutcomeUnknown), not ErrConflict, which says it did not. (Found by the history
// checker across a SENTINEL FAILOVER: a save answered "conflict" whose first attempt
// another request had read.) The failover's loss of the attempt is played here by
// rewriting the saves the session remembers.
func TestVersionCheckedSaveRetriedAfterItsAttemptWasLost(t *testing.T) {
	ctx := t.Context()
	prefix := "save-lost-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	st := sharedStandaloneStore(t, store.WithPrefix(prefix), store.WithVersionCheck(true))
	other := sharedStandaloneStore(t, store.WithPrefix(prefix))
	in := internals(st)
	s := userSession(t, st, "") // (the save script loaded: the hook sees EVALSHA)
	id, key := s.ID(), in.Key(s.ID())
	err := saveLosingReply(t, st, s, "a", 2, func() {
		// The failover loses the attempt's record, and another request's save lands.
		if err := in.Client.HDel(ctx, key, fSaveID).Err(); err != nil {
			t.Error(err)
			return
		}
		saveElsewhere(t, other, id, "b", 2)
	})
	if !errors.Is(err, store.ErrOutcomeUnknown) || errors.Is(err, store.ErrConflict) {
		t.Fatalf("the retry of a save whose first attempt may have applied: got %v, want ErrOutcomeUnknown", err)
	}
}

// An Update whose save's reply is lost, when a failover lost the attempt too and another
// save made the version it would have made, starts again: the change ends up in the
// session once, and Update returns nil (it returned ErrOutcomeUnknown: a counter updated
// by four goroutines through a master kill failed one update in most runs). The loss is
// played by restoring the key as it was before the attempt.
func TestUpdateWhoseAttemptWasLostStartsAgain(t *testing.T) {
	ctx := t.Context()
	prefix := "update-lost-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	st := sharedStandaloneStore(t, store.WithPrefix(prefix))
	other := sharedStandaloneStore(t, store.WithPrefix(prefix))
	in := internals(st)
	s := userSession(t, st, "") // a=1 (the save script loaded: the hook sees EVALSHA)
	id, key := s.ID(), in.Key(s.ID())
	before, err := in.Client.Dump(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	h := &loseScriptReply{sha: testhook.SaveScriptHash, f: func() {
		// The failover loses the attempt; another request's save lands.
		if err := in.Client.RestoreReplace(ctx, key, time.Hour, before).Err(); err != nil {
			t.Error(err)
			return
		}
		saveElsewhere(t, other, id, "b", 1)
	}}
	in.Client.AddHook(h)
	runs := 0
	err = st.Update(ctx, id, func(s *store.Session) error {
		runs++
		n, _ := store.GetOr(s, "a", 0)
		return s.Set("a", n+1)
	})
	if !h.done.Load() {
		t.Fatal("the hook did not run")
	}
	if err != nil {
		t.Fatalf("update whose lost attempt another save replaced: %v, want nil", err)
	}
	got, err := st.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := store.GetOr(got, "a", 0)
	b, _ := store.GetOr(got, "b", 0)
	if a != 2 || b != 1 || got.Version() != 3 || runs != 2 {
		t.Fatalf("after the update: a=%d b=%d version %d, fn ran %d times; want a=2 b=1 version 3, 2 runs", a, b, got.Version(), runs)
	}
}

// A save retried after a lost reply is recognised as applied when many saves landed in
// between (a busy session across a failover): the saves that left '_s' for the count are
// in the session's history. Without it the retry applied again (unchecked) or said
// ErrOutcomeUnknown (checked) once 16 saves had landed.
func TestSaveRetriedAfterManySavesIsRecognised(t *testing.T) {
	const between = 40
	for _, checked := range []bool{false, true} {
		t.Run("checked="+strconv.FormatBool(checked), func(t *testing.T) {
			ctx := t.Context()
			prefix := "save-many-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
			st := sharedStandaloneStore(t, store.WithPrefix(prefix), store.WithVersionCheck(checked))
			other := sharedStandaloneStore(t, store.WithPrefix(prefix))
			in := internals(st)
			s := userSession(t, st, "") // version 1
			id, key := s.ID(), in.Key(s.ID())
			err := saveLosingReply(t, st, s, "a", 2, func() { // version 2
				for i := range between {
					if !saveElsewhere(t, other, id, "b", i) {
						return
					}
				}
			})
			if err != nil {
				t.Fatalf("the retry of a save that applied, %d saves later: %v, want nil", between, err)
			}
			if s.Version() != 2 {
				t.Errorf("the save's version: %d, want 2 (as its first attempt made it)", s.Version())
			}
			got, err := st.Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(2 + between); got.Version() != want {
				t.Fatalf("version after the retry: %d, want %d (the save applied once)", got.Version(), want)
			}
			// The history: bounded in time.
			ttl, err := in.Client.PTTL(ctx, key+":s").Result()
			if err != nil || ttl <= 0 || ttl > time.Minute {
				t.Errorf("the history's TTL: %v (%v), want (0, 60s]", ttl, err)
			}
		})
	}
}

// The history keeps at most 1024 versions: a session saved 1,100 times in a row holds no
// more.
func TestSaveHistoryIsBounded(t *testing.T) {
	ctx := t.Context()
	prefix := "save-history-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	st := sharedStandaloneStore(t, store.WithPrefix(prefix))
	in := internals(st)
	s := userSession(t, st, "")
	for i := range 1100 {
		_ = s.Set("n", i)
		if err := st.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	hist := in.Key(s.ID()) + ":s"
	n, err := in.Client.HLen(ctx, hist).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1000 || n > 1024 {
		t.Fatalf("history of a session saved 1101 times: %d versions, want 1000 to 1024", n)
	}
	// Each entry is in the field of its version modulo 1024, newer ones in place of older.
	all, err := in.Client.HGetAll(ctx, hist).Result()
	if err != nil {
		t.Fatal(err)
	}
	for f, e := range all {
		parts := strings.Split(e, ":")
		v, _ := strconv.Atoi(f)
		if len(parts) != 3 || parts[1] == "" {
			t.Fatalf("history entry %s=%q: not <save id>:<version>:<now>", f, e)
		}
		ver, _ := strconv.Atoi(parts[1])
		if ver%1024 != v || ver < 1101-16-1024 {
			t.Errorf("history entry %s=%q: version %d, want one of the last 1024 moved, in field version mod 1024", f, e, ver)
		}
	}
}

// lossyConn is a connection that loses the reply to the first command written on it that
// holds marker, once armed: it reads the reply (the command ran), runs f, closes the
// connection and answers io.EOF, so that go-redis writes the command again by itself, on
// a new connection, within the same call (its MaxRetries), where the store does not see it.
type lossyConn struct {
	net.Conn
	l       *lossy
	pending bool
}

type lossy struct {
	marker []byte
	armed  atomic.Bool
	done   atomic.Bool
	f      func()
}

func (c *lossyConn) Write(b []byte) (int, error) {
	if c.l.armed.Load() && bytes.Contains(b, c.l.marker) {
		c.pending = true
	}
	return c.Conn.Write(b)
}

func (c *lossyConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.pending && n > 0 && c.l.armed.CompareAndSwap(true, false) {
		c.l.f()
		c.l.done.Store(true)
		_ = c.Conn.Close()
		return 0, io.EOF
	}
	return n, err
}

// lossyStore returns a store whose client loses the reply to the save script's first
// write once l is armed (go-redis's own retries on: MaxRetries 3).
func lossyStore(t *testing.T, l *lossy, opts ...store.Option) *store.Store {
	t.Helper()
	topo := cluster.Shared(t, cluster.KindStandalone)
	l.marker = []byte(testhook.SaveScriptHash)
	var d net.Dialer
	rdb := redis.NewClient(&redis.Options{Addr: topo.Addrs()[0], MaxRetries: 3,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lossyConn{Conn: c, l: l}, nil
		}})
	t.Cleanup(func() { _ = rdb.Close() })
	return newStore(t, rdb, opts...)
}

// A version-checked save whose reply go-redis loses and writes again by itself (not the
// store's retry), after a failover lost the first write and another save took its
// version: ErrOutcomeUnknown, not ErrConflict (found by the history checker across a
// SENTINEL FAILOVER with WAIT 2: a save answered "conflict" whose first write another
// request had read). An unchecked save written again after 40 saves landed is answered as
// applied (its write applied twice). Both fail when go-redis's writes go unseen.
func TestSaveWrittenAgainByGoRedis(t *testing.T) {
	for _, checked := range []bool{true, false} {
		t.Run("checked="+strconv.FormatBool(checked), func(t *testing.T) {
			ctx := t.Context()
			prefix := "save-resent-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
			l := &lossy{}
			st := lossyStore(t, l, store.WithPrefix(prefix), store.WithVersionCheck(checked))
			other := sharedStandaloneStore(t, store.WithPrefix(prefix))
			in := internals(other)
			s := userSession(t, st, "") // version 1 (the script loaded: EVALSHA)
			id, key := s.ID(), in.Key(s.ID())
			before, err := in.Client.Dump(ctx, key).Result()
			require.NoError(t, err)
			l.f = func() {
				if checked { // the failover loses the write; another save takes version 2
					if err := in.Client.RestoreReplace(ctx, key, time.Hour, before).Err(); err != nil {
						t.Error(err)
						return
					}
					saveElsewhere(t, other, id, "b", 1)
					return
				}
				for i := range 40 { // the write (version 2) leaves '_s'
					if !saveElsewhere(t, other, id, "b", i) {
						return
					}
				}
			}
			l.armed.Store(true)
			_ = s.Set("a", 2)
			err = st.Save(ctx, s)
			require.True(t, l.done.Load(), "the reply was not lost")
			got, lerr := other.Load(ctx, id)
			require.NoError(t, lerr)
			if checked {
				require.ErrorIs(t, err, store.ErrOutcomeUnknown, "a save whose first write a failover lost")
				require.NotErrorIs(t, err, store.ErrConflict)
				require.EqualValues(t, 2, got.Version(), "nothing applied again")
				return
			}
			require.NoError(t, err)
			require.EqualValues(t, 2, s.Version(), "the save's version, as its first write made it")
			require.EqualValues(t, 42, got.Version(), "the save applied once")
		})
	}
}
