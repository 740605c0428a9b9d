package store_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// sharedStandaloneStore returns a Store on the package's shared standalone server.
func sharedStandaloneStore(t *testing.T, opts ...store.Option) *store.Store {
	t.Helper()
	rdb := redis.NewUniversalClient(cluster.Shared(t, cluster.KindStandalone).UniversalOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A save whose reply was lost is retried with the same save ID after another save landed:
// it is recognised and answered as the first time (not applied again, no conflict).
func TestRetryAfterAnotherSaveIsRecognised(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("retry-window:"))
	in := internals(st)
	for _, expect := range []string{"1", ""} {
		s, _ := st.NewSession()
		_ = s.Set("n", 1)
		if err := st.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		key := in.Key(s.ID())
		mine, err := st.Load(ctx, s.ID())
		if err != nil {
			t.Fatal(err)
		}
		_ = mine.Set("n", 2)
		id := newSaveID()
		args := appendChanges(mine, []any{id, expect, "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", ""})
		first, err := in.RunSave(ctx, key, args)
		if err != nil || first.Version != 2 {
			t.Fatalf("first attempt: version %d, %v", first.Version, err)
		}
		// Another request's save lands before the retry.
		other := appendChanges(mine, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", ""})
		if r, err := in.RunSave(ctx, key, other); err != nil || r.Version != 3 {
			t.Fatalf("other save: version %d, %v", r.Version, err)
		}
		again, err := in.RunSave(ctx, key, args) // the retry
		if err != nil {
			t.Fatalf("expect %q: the retry got %v, want its first answer", expect, err)
		}
		if again != first {
			t.Fatalf("expect %q: the retry got %+v, want the first answer %+v", expect, again, first)
		}
		if v, err := in.Client.HGet(ctx, key, fVersion).Int64(); err != nil || v != 3 {
			t.Fatalf("expect %q: stored version %d (%v), want 3: the retry applied again", expect, v, err)
		}
	}
}

// The saves a session remembers for the retry window are bounded in number: the oldest is
// forgotten, and a retry of it is a new save.
func TestRetryWindowIsBounded(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("retry-bound:"))
	in := internals(st)
	s, _ := st.NewSession()
	_ = s.Set("n", 0)
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	key := in.Key(s.ID())
	_ = s.Set("n", 1)
	firstArgs := appendChanges(s, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", ""})
	if _, err := in.RunSave(ctx, key, firstArgs); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		args := appendChanges(s, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", ""})
		if _, err := in.RunSave(ctx, key, args); err != nil {
			t.Fatal(i, err)
		}
	}
	r, err := in.RunSave(ctx, key, firstArgs)
	if err != nil || r.Version != 2 {
		t.Fatalf("15 saves later the retry is still recognised: got version %d, %v, want 2", r.Version, err)
	}
	args := appendChanges(s, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", ""})
	if _, err := in.RunSave(ctx, key, args); err != nil {
		t.Fatal(err)
	}
	ids, err := in.Client.HGet(ctx, key, fSaveID).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(ids, ",") + 1; n != 16 {
		t.Fatalf("%d saves remembered, want 16: %q", n, ids)
	}
	if r, err := in.RunSave(ctx, key, firstArgs); err != nil || r.Version != 19 {
		t.Fatalf("past the window the old save ID is a new save: version %d, %v, want 19", r.Version, err)
	}
}

// A new session whose key exists already (an earlier save of it may have applied) is an
// exported error: ErrConflict.
func TestNewSessionWhoseKeyExistsIsAConflict(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("exists:"))
	in := internals(st)
	s, _ := st.NewSession()
	_ = s.Set("a", 1)
	args := appendChanges(s, []any{newSaveID(), "", "n", in.IdleMs, in.LifeMs, in.CodecName, "", 0, 0, "", "", "", "", ""})
	if _, err := in.RunSave(ctx, in.Key(s.ID()), args); err != nil {
		t.Fatal(err)
	}
	// s is still new: as after a save whose outcome its caller never learnt.
	if err := st.Save(ctx, s); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
}

// beforeForward is a client hook that runs f once, just before the rotation's forward
// step reaches Redis.
type beforeForward struct {
	f    func()
	done atomic.Bool
}

func (h *beforeForward) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *beforeForward) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if len(a) > 1 && a[0] == "evalsha" && a[1] == testhook.ForwardScriptHash && h.done.CompareAndSwap(false, true) {
			h.f()
		}
		return next(ctx, cmd)
	}
}

func (h *beforeForward) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A save that lands between the rotation's copy and its forward step is not lost: the
// forward step sees the version moved, and the rotation copies the session again.
func TestSaveBetweenRotationCopyAndForward(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("rotate-copy:"))
	in := internals(st)
	other := sharedStandaloneStore(t, store.WithPrefix("rotate-copy:"))
	s, _ := st.NewSession()
	_ = s.Set("a", 1)
	s.SetUser("una")
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	old := s.ID()
	h := &beforeForward{f: func() { // Rotate holds s: no method of s here
		o, err := other.Load(ctx, old)
		if err != nil {
			t.Error(err)
			return
		}
		_ = o.Set("x", "late")
		if err := other.Save(ctx, o); err != nil {
			t.Error(err)
		}
	}}
	in.Client.AddHook(h)
	if err := st.Rotate(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !h.done.Load() {
		t.Fatal("the hook did not run")
	}
	var x string
	if err := s.Get("x", &x); err != nil || x != "late" {
		t.Fatalf("the rotated session lost the save in between: %q, %v", x, err)
	}
	got, err := other.Load(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Get("x", &x); err != nil || x != "late" {
		t.Fatalf("stored: %q, %v", x, err)
	}
	if got.Version() != 3 || s.Version() != 3 {
		t.Fatalf("versions %d and %d, want 3", got.Version(), s.Version())
	}
	viaOld, err := other.Load(ctx, old)
	if err != nil || viaOld.ID() != s.ID() {
		t.Fatalf("the old ID forwards to the final copy: %v", err)
	}
	infos, err := st.Sessions(ctx, "una")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 {
		t.Fatalf("the dropped copy left the index: %d sessions listed", len(infos))
	}
}

// A save whose reply was lost is retried after another request ended the session (a
// revoke, a rotation, a logout): the save had applied, before the session ended, and the
// retry says so (the first answer) instead of store.ErrNotFound, and applies nothing.
func TestRetryAfterSessionEndedIsRecognised(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("retry-ended:"))
	in := internals(st)
	ends := map[string]func(t *testing.T, s *store.Session){
		"revoke": func(t *testing.T, s *store.Session) {
			if err := st.Revoke(ctx, "alice", s.ID()); err != nil {
				t.Fatal(err)
			}
		},
		"destroy": func(t *testing.T, s *store.Session) {
			if err := st.Destroy(ctx, s.ID()); err != nil {
				t.Fatal(err)
			}
		},
		"rotate": func(t *testing.T, s *store.Session) {
			cur, err := st.Load(ctx, s.ID())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Rotate(ctx, cur); err != nil {
				t.Fatal(err)
			}
			if cur.Version() != 3 {
				t.Fatalf("rotated session: version %d, want 3 (the save once, then the copy)", cur.Version())
			}
		},
		"rotate to another user": func(t *testing.T, s *store.Session) {
			cur, err := st.Load(ctx, s.ID())
			if err != nil {
				t.Fatal(err)
			}
			cur.SetUser("bob")
			if err := st.Rotate(ctx, cur); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			s, _ := st.NewSession()
			s.SetUser("alice")
			_ = s.Set("n", 1)
			if err := st.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			key := in.Key(s.ID())
			mine, err := st.Load(ctx, s.ID())
			if err != nil {
				t.Fatal(err)
			}
			_ = mine.Set("n", 2)
			args := appendChanges(mine, []any{newSaveID(), "", "u", in.IdleMs, mine.Deadline().UnixMilli(), in.CodecName, "", mine.CreatedAt().UnixMilli(), 0, "", "", "", "", ""})
			first, err := in.RunSave(ctx, key, args)
			if err != nil || first.Version != 2 {
				t.Fatalf("first attempt: version %d, %v", first.Version, err)
			}
			end(t, mine)
			again, err := in.RunSave(ctx, key, args) // the retry
			if err != nil {
				t.Fatalf("the retry got %v, want its first answer (the save applied before the session ended)", err)
			}
			if again != first {
				t.Fatalf("the retry got %+v, want the first answer %+v", again, first)
			}
			if _, err := st.Load(ctx, s.ID()); name != "rotate" && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("load after the retry: %v, want store.ErrNotFound (the retry wrote nothing)", err)
			}
			// A save that never applied is still refused.
			other := appendChanges(mine, []any{newSaveID(), "", "u", in.IdleMs, mine.Deadline().UnixMilli(), in.CodecName, "", mine.CreatedAt().UnixMilli(), 0, "", "", "", "", ""})
			if _, err := in.RunSave(ctx, key, other); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a new save of the ended session: %v, want store.ErrNotFound", err)
			}
		})
	}
	// A new session's save retried after a logout: answered with what the first attempt
	// computed (its deadline and created-at), nothing written.
	s, _ := st.NewSession()
	_ = s.Set("n", 1)
	key := in.Key(s.ID())
	args := appendChanges(s, []any{newSaveID(), "", "n", in.IdleMs, in.LifeMs, in.CodecName, "", 0, 0, "", "", "", "", ""})
	first, err := in.RunSave(ctx, key, args)
	if err != nil || first.Version != 1 {
		t.Fatalf("first attempt: version %d, %v", first.Version, err)
	}
	if err := st.Destroy(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	again, err := in.RunSave(ctx, key, args)
	if err != nil || again != first {
		t.Fatalf("the retry of a new session's save got %+v, %v; want the first answer %+v", again, err, first)
	}
	if _, err := st.Load(ctx, s.ID()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("load after the retry: %v, want store.ErrNotFound", err)
	}
}

// A Destroy cut short (its context ends between two keys of a rotation chain) has ended
// the session at every ID of the chain, or at none: never the old ID while the rotated
// session lives on.
func TestDestroyCutShortEndsAllOrNothing(t *testing.T) {
	st := sharedStandaloneStore(t, store.WithPrefix("destroy-cut:"), store.WithGracePeriod(time.Minute))
	t.Cleanup(func() { testhook.SetDestroyHopHook(nil) })
	for cut := 1; cut <= 4; cut++ {
		ctx := t.Context()
		_, ids := rotatedChain(t, st, 2)
		dctx, cancel := context.WithCancel(ctx)
		hops := 0
		testhook.SetDestroyHopHook(func() {
			if hops++; hops == cut {
				cancel()
			}
		})
		err := st.Destroy(dctx, ids[0])
		testhook.SetDestroyHopHook(nil)
		cancel()
		var live []string
		for _, id := range ids {
			if _, err := st.Load(ctx, id); err == nil {
				live = append(live, id)
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
		}
		if len(live) != 0 && len(live) != len(ids) {
			t.Fatalf("cut after %d key(s) (Destroy: %v): %d of the chain's %d IDs still load a session", cut, err, len(live), len(ids))
		}
		if len(live) == len(ids) && err == nil {
			t.Fatalf("cut after %d key(s): Destroy returned nil and the session lives", cut)
		}
		// Calling it again ends it.
		if err := st.Destroy(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if _, err := st.Load(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("cut after %d: after Destroy again, load %s: %v, want store.ErrNotFound", cut, id, err)
			}
		}
	}
}

// Revoke of an old ID follows its chain of rotations as far as Load does: it ends the
// session Load of that ID finds, and none where Load finds none (a chain longer than
// testhook.MaxHops keys), so a revoke never ends a session its ID did not lead to.
func TestRevokeReachesWhatLoadFinds(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("revoke-reach:"), store.WithGracePeriod(time.Minute))
	for rotations := 1; rotations <= testhook.MaxHops+1; rotations++ {
		s, _ := st.NewSession()
		s.SetUser("alice")
		_ = s.Set("n", 1)
		if err := st.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
		oldest := s.ID()
		for range rotations {
			if err := st.Rotate(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		_, loadErr := st.Load(ctx, oldest)
		if loadErr != nil && !errors.Is(loadErr, store.ErrNotFound) {
			t.Fatal(loadErr)
		}
		if err := st.Revoke(ctx, "alice", oldest); err != nil {
			t.Fatal(err)
		}
		_, err := st.Load(ctx, s.ID())
		switch {
		case loadErr == nil && !errors.Is(err, store.ErrNotFound):
			t.Fatalf("%d rotations: the oldest ID led to the session, and after revoking it the session loads (%v)", rotations, err)
		case loadErr != nil && err != nil:
			t.Fatalf("%d rotations: the oldest ID led nowhere (Load: %v), yet revoking it ended the session (%v)", rotations, loadErr, err)
		}
		if rotations == testhook.MaxHops+1 && loadErr == nil {
			t.Fatalf("%d rotations: Load followed more than testhook.MaxHops keys", rotations)
		}
	}
}

// A logout of the oldest ID of a chain longer than Load follows (testhook.MaxHops keys)
// ends the chain's first testhook.MaxHops keys and leaves the session past them alive;
// the IDs it ended then lead nowhere, and a Revoke or a Destroy of any of them ends
// nothing. (A drill's history checker found this: the last pointer's tombstone kept its
// rotation mark, and a revoke of the second ID followed the tombstones' marks to the
// session, which no load of that ID found.)
func TestRevokeAndDestroyAfterALogoutReachWhatLoadFinds(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("logout-reach:"), store.WithGracePeriod(time.Minute))
	for _, again := range []string{"revoke", "destroy"} {
		for from := 1; from < testhook.MaxHops; from++ {
			s, ids := rotatedChain(t, st, testhook.MaxHops)
			if err := st.Destroy(ctx, ids[0]); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids[:testhook.MaxHops] {
				if _, err := st.Load(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("load %s after the logout: %v, want store.ErrNotFound", id, err)
				}
			}
			if _, err := st.Load(ctx, s.ID()); err != nil {
				t.Fatalf("the session %d keys on, past what Load of the logout's ID follows: %v", testhook.MaxHops+1, err)
			}
			var err error
			if again == "revoke" {
				err = st.Revoke(ctx, "alice", ids[from])
			} else {
				err = st.Destroy(ctx, ids[from])
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Load(ctx, s.ID()); err != nil {
				t.Fatalf("%s of the %d. ID (which Load finds no session at) after the logout of the first ended the session: %v", again, from+1, err)
			}
		}
	}
}

// rotatedChain saves a new session of alice and rotates it n times: the session and its
// IDs, oldest first.
func rotatedChain(t *testing.T, st *store.Store, n int) (*store.Session, []string) {
	t.Helper()
	ctx := t.Context()
	s, _ := st.NewSession()
	s.SetUser("alice")
	_ = s.Set("n", 1)
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	ids := []string{s.ID()}
	for range n {
		if err := st.Rotate(ctx, s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID())
	}
	return s, ids
}

// The saves remembered ('_s') as a save rewrites them: entries beyond the last 15 are
// dropped, then, from the oldest on, those past the 300 s window or in another form; the
// others stay, in order, with the new save's entry last. An entry in another form further
// on stays, and takes a place among the 16, unless the save's ID appears in '_s' (then
// the script reads every entry, and drops it). A retry of a save remembered in the old
// form (a bare save ID) is still recognised.
func TestSaveIDWindowRewrite(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("retry-rewrite:"))
	in := internals(st)
	now := time.Now().UnixMilli()
	entry := func(id string, v int, at int64) string { return fmt.Sprintf("%s:%d:%d", id, v, at) }
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = newSaveID()
	}
	recent := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, entry(ids[i], i+1, now))
		}
		return out
	}
	fresh := newSaveID() // a new save's ID, found inside an entry in another form
	for _, tc := range []struct {
		name        string
		stored      []string
		want        []string // what stays of stored, before the new entry
		retryOf     string   // the save's ID ("": a new one)
		wantApplied bool
	}{
		{"old first", append([]string{entry(ids[19], 1, now-400_000)}, recent(0, 3)...), recent(0, 3), "", true},
		{"malformed first", append([]string{"zz!", "x:1"}, recent(0, 3)...), recent(0, 3), "", true},
		// Further on, it stays until it is the oldest (telling it apart would cost every
		// save a pattern match of every entry), and takes a place among the last 16.
		{"malformed further on", append(append(recent(0, 2), "zz!"), recent(2, 3)...), append(append(recent(0, 2), "zz!"), recent(2, 3)...), "", true},
		{"empty entry further on", append(append(recent(0, 2), ""), recent(2, 3)...), append(append(recent(0, 2), ""), recent(2, 3)...), "", true},
		{"bare ID further on", append(append(recent(0, 2), ids[19]), recent(2, 3)...), append(append(recent(0, 2), ids[19]), recent(2, 3)...), "", true},
		{"over the bound with one in another form", append(append(recent(0, 14), "zz!"), recent(14, 16)...), append(append(recent(2, 14), "zz!"), recent(14, 16)...), "", true},
		// The save's ID inside it: every entry is read, and it is dropped.
		{"malformed further on, read whole", append(append(recent(0, 2), "zz"+fresh), recent(2, 3)...), recent(0, 3), fresh, true},
		{"over the bound", recent(0, 20), recent(5, 20), "", true},
		{"old and over the bound", append([]string{entry(ids[19], 1, now-400_000)}, recent(0, 16)...), recent(1, 16), "", true},
		{"all old", []string{entry(ids[0], 1, now-400_000), entry(ids[1], 2, now-300_500)}, nil, "", true},
		{"retry in the bare form", append([]string{ids[19]}, recent(0, 3)...), nil, ids[19], false},
		{"retry, with old ones first", append([]string{entry(ids[19], 1, now-400_000)}, recent(0, 3)...), nil, ids[1], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := st.NewSession()
			_ = s.Set("n", 1)
			if err := st.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			key := in.Key(s.ID())
			if err := in.Client.HSet(ctx, key, fSaveID, strings.Join(tc.stored, ",")).Err(); err != nil {
				t.Fatal(err)
			}
			_ = s.Set("n", 2)
			id := cmp.Or(tc.retryOf, newSaveID())
			args := appendChanges(s, []any{id, "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", ""})
			r, err := in.RunSave(ctx, key, args)
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.Client.HGet(ctx, key, fSaveID).Result()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantApplied {
				if v, err := in.Client.HGet(ctx, key, fVersion).Int64(); err != nil || v != 1 {
					t.Fatalf("stored version %d (%v), want 1: the retry applied again", v, err)
				}
				if want := strings.Join(tc.stored, ","); got != want {
					t.Fatalf("the retry rewrote the saves remembered:\n got %q\nwant %q", got, want)
				}
				return
			}
			if r.Version != 2 {
				t.Fatalf("version %d, want 2", r.Version)
			}
			want := strings.Join(append(tc.want, entry(id, 2, r.Now)), ",")
			if got != want {
				t.Fatalf("saves remembered:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// An entry in another form (a bare save ID an older writer left, say) between remembered
// saves takes a place among the last 16: the save before it leaves '_s' one save
// earlier, for the history. A retry of that save (as Save sends one, marked as a retry)
// is still recognised there, and answered as the first time. (An entry in another form
// dropped as the oldest: TestSaveIDWindowRewrite's "malformed first".)
func TestSaveIDWindowMalformedEntryAndRetry(t *testing.T) {
	ctx := t.Context()
	st := sharedStandaloneStore(t, store.WithPrefix("retry-malformed:"))
	in := internals(st)
	s, _ := st.NewSession()
	_ = s.Set("n", 1)
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	key := in.Key(s.ID())
	now := time.Now().UnixMilli()
	// X applied (version 1), then an entry in another form, then 13 other saves: 15 entries.
	x := newSaveID()
	stored := []string{fmt.Sprintf("%s:1:%d", x, now), "zz!"}
	for range 13 {
		stored = append(stored, fmt.Sprintf("%s:1:%d", newSaveID(), now))
	}
	if err := in.Client.HSet(ctx, key, fSaveID, strings.Join(stored, ",")).Err(); err != nil {
		t.Fatal(err)
	}
	save := func(id, retry string) int64 {
		_ = s.Set("n", 2)
		r, err := in.RunSave(ctx, key, appendChanges(s, []any{id, "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", retry}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Version
	}
	save(newSaveID(), "") // 16 entries
	save(newSaveID(), "") // 17: the first 2 leave '_s' for the count, X (for the history) and "zz!"
	got, err := in.Client.HGet(ctx, key, fSaveID).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, x) || strings.Contains(got, "zz!") || strings.Count(got, ",") != 14 {
		t.Fatalf("saves remembered after 2 saves: %q, want X and the entry in another form gone, 15 entries", got)
	}
	if v := save(x, "1"); v != 1 {
		t.Fatalf("retry of a save that left '_s' for the history answered version %d, want the dup answer 1 (applied again)", v)
	}
	if again, err := in.Client.HGet(ctx, key, fSaveID).Result(); err != nil || again != got {
		t.Fatalf("saves remembered after the retry: %q (%v), want them as they were", again, err)
	}
}
