package store

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// replyBuf takes what redis.RawWriteToCmd gives it — lines through Write, bulk strings
// through io.CopyN — and any other reader, from any starting capacity.
func TestReplyBufCollectsEveryByte(t *testing.T) {
	bulk := strings.Repeat("abcdefgh", 5000)
	for _, start := range []int{0, 1, 64, 40000, 1 << 20} {
		w := &replyBuf{b: make([]byte, 0, start)}
		var want bytes.Buffer
		for i := range 3 {
			line := "$" + strings.Repeat("9", i+1) + "\r\n"
			if _, err := w.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
			want.WriteString(line)
			part := bulk[:len(bulk)/(i+1)]
			n, err := io.CopyN(w, strings.NewReader(part+"tail"), int64(len(part)))
			if err != nil || n != int64(len(part)) {
				t.Fatalf("start %d: CopyN wrote %d, %v; want %d", start, n, err, len(part))
			}
			want.WriteString(part)
		}
		// A reader that is neither a LimitedReader nor a WriterTo: ReadFrom's own loop.
		n, err := io.Copy(w, struct{ io.Reader }{strings.NewReader(bulk)})
		if err != nil || n != int64(len(bulk)) {
			t.Fatalf("start %d: Copy wrote %d, %v; want %d", start, n, err, len(bulk))
		}
		want.WriteString(bulk)
		if !bytes.Equal(w.b, want.Bytes()) {
			t.Fatalf("start %d: collected %d bytes, differ from the %d sent", start, len(w.b), want.Len())
		}
	}
	// A short source is an error, not a silent truncation.
	w := &replyBuf{}
	if _, err := io.CopyN(w, strings.NewReader("abc"), 10); err == nil {
		t.Fatal("CopyN of 10 bytes from 3: no error")
	}
	// A read that fails half way (a connection reset mid-reply) reports the bytes it got
	// and the error.
	broken := io.MultiReader(strings.NewReader("12345"), iotest.ErrReader(errors.New("reset")))
	w = &replyBuf{}
	n, err := w.ReadFrom(&io.LimitedReader{R: broken, N: 10})
	if err == nil || n != 5 || string(w.b) != "12345" {
		t.Fatalf("ReadFrom of a broken reader: %d bytes %q, %v; want 5 bytes and an error", n, w.b, err)
	}
}

// A small session read after a huge one goes through the reply buffer sized from the
// huge one, and keeps a buffer of its own size; the hint follows the replies.
func TestLargeReplyPathKeepsNoOversizedBuffer(t *testing.T) {
	ctx := t.Context()
	st := internalStore(t)
	s, _ := st.NewSession()
	_ = s.Set("a", "small")
	if err := st.Save(ctx, s); err != nil {
		t.Fatal(err)
	}
	key := st.key(s.ID())
	small, err := st.hgetall(ctx, key) // the RawCmd path: the reference
	if err != nil {
		t.Fatal(err)
	}
	st.replyHint.Store(1 << 20)
	got, err := st.hgetall(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, small) {
		t.Fatalf("reply through the buffer %q, want %q", got, small)
	}
	if cap(got) > len(got)+len(got)/4 {
		t.Fatalf("a reply of %d bytes keeps a buffer of %d", len(got), cap(got))
	}
	if h := st.replyHint.Load(); h != int64(len(small)) {
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
