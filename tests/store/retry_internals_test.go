package store_test

import "testing"

// A save whose reply was lost is sent again with the same save ID: it applies once.
func TestRetriedSaveIsAppliedOnce(t *testing.T) {
	ctx := t.Context()
	st := internalStore(t)
	in := internals(st)
	s, _ := st.NewSession()
	_ = s.Set("n", 1)
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	loaded, err := st.Load(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	_ = loaded.Set("n", 2)
	args := []any{newSaveID(), "", "u", in.IdleMs, 0, in.CodecName, "", 0, 0, "", "", "", "", ""}
	args = appendChanges(loaded, args)
	key := in.Key(s.ID())
	first, err := in.RunSave(ctx, key, args)
	if err != nil {
		t.Fatal(err)
	}
	again, err := in.RunSave(ctx, key, args) // the retry
	if err != nil {
		t.Fatal(err)
	}
	if first.Version != 2 || again.Version != 2 {
		t.Fatalf("versions %d then %d, want 2 and 2", first.Version, again.Version)
	}
	v, err := in.Client.HGet(ctx, key, fVersion).Int64()
	if err != nil || v != 2 {
		t.Fatalf("stored version %d (%v), want 2: the retry was applied again", v, err)
	}
	// A new save (new save ID) applies.
	args[0] = newSaveID()
	third, err := in.RunSave(ctx, key, args)
	if err != nil || third.Version != 3 {
		t.Fatalf("third save: version %d, %v", third.Version, err)
	}
}
