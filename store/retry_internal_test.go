package store

import "testing"

// A save whose reply was lost is sent again with the same save ID: it applies once.
func TestRetriedSaveIsAppliedOnce(t *testing.T) {
	ctx := t.Context()
	st := internalStore(t)
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
	args := []any{newSaveID(), "", "u", st.idleMs, 0, st.o.codec.Name(), "", 0, 0, ""}
	args = loaded.appendChanges(args)
	key := st.key(s.ID())
	first, err := st.runSave(ctx, key, args)
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.runSave(ctx, key, args) // the retry
	if err != nil {
		t.Fatal(err)
	}
	if first.version != 2 || again.version != 2 {
		t.Fatalf("versions %d then %d, want 2 and 2", first.version, again.version)
	}
	v, err := st.rdb.HGet(ctx, key, fVersion).Int64()
	if err != nil || v != 2 {
		t.Fatalf("stored version %d (%v), want 2: the retry was applied again", v, err)
	}
	// A new save (new save ID) applies.
	args[0] = newSaveID()
	third, err := st.runSave(ctx, key, args)
	if err != nil || third.version != 3 {
		t.Fatalf("third save: version %d, %v", third.version, err)
	}
}
