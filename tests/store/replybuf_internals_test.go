package store_test

import (
	"bytes"
	"testing"
)

// A small session read after a huge one goes through the reply buffer sized from the
// huge one, and keeps a buffer of its own size; the hint follows the replies.
func TestLargeReplyPathKeepsNoOversizedBuffer(t *testing.T) {
	ctx := t.Context()
	st := internalStore(t)
	in := internals(st)
	s, _ := st.NewSession()
	_ = s.Set("a", "small")
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	key := in.Key(s.ID())
	small, err := in.HGetAll(ctx, key) // the RawCmd path: the reference
	if err != nil {
		t.Fatal(err)
	}
	in.ReplyHint.Store(1 << 20)
	got, err := in.HGetAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, small) {
		t.Fatalf("reply through the buffer %q, want %q", got, small)
	}
	if cap(got) > len(got)+len(got)/4 {
		t.Fatalf("a reply of %d bytes keeps a buffer of %d", len(got), cap(got))
	}
	if h := in.ReplyHint.Load(); h != int64(len(small)) {
		t.Fatalf("hint %d after a reply of %d bytes", h, len(small))
	}
	loaded, err := st.Load(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	var a string
	if err := loaded.Get("a", &a); err != nil || a != "small" {
		t.Fatalf("Get a = %q, %v", a, err)
	}
}
