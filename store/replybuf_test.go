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
