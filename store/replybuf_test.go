package store

import (
	"bytes"
	"io"
	"strings"
	"testing"
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
		n, err := io.Copy(w, strings.NewReader(bulk)) // not a LimitedReader
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
}
