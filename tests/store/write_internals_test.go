package store_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

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
		args := appendChanges(mine, []any{id, expect, "u", in.IdleMs, 0, in.CodecName, "", 0, 0, ""})
		first, err := in.RunSave(ctx, key, args)
		if err != nil || first.Version != 2 {
			t.Fatalf("first attempt: version %d, %v", first.Version, err)
		}
		// Another request's save lands before the retry.
		other := appendChanges(mine, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, ""})
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
	firstArgs := appendChanges(s, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, ""})
	if _, err := in.RunSave(ctx, key, firstArgs); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		args := appendChanges(s, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, ""})
		if _, err := in.RunSave(ctx, key, args); err != nil {
			t.Fatal(i, err)
		}
	}
	r, err := in.RunSave(ctx, key, firstArgs)
	if err != nil || r.Version != 2 {
		t.Fatalf("15 saves later the retry is still recognised: got version %d, %v, want 2", r.Version, err)
	}
	args := appendChanges(s, []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, ""})
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
	args := appendChanges(s, []any{newSaveID(), "", "n", in.IdleMs, in.LifeMs, in.CodecName, "", 0, 0, ""})
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
