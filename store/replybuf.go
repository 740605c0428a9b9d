package store

import (
	"io"
	"slices"
)

// replyBuf collects one raw reply, the destination of a redis.RawWriteToCmd. It is
// allocated once at a size hint (the size of a recent reply) and grows only when a reply
// is larger, so an 8 KB session is read into one buffer instead of a dozen growing ones.
type replyBuf struct {
	b []byte
}

func (w *replyBuf) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// ReadFrom reads a bulk string's bytes straight into the buffer: io.CopyN hands it an
// *io.LimitedReader whose N is exactly what is left of the string.
func (w *replyBuf) ReadFrom(r io.Reader) (int64, error) {
	lr, ok := r.(*io.LimitedReader)
	if !ok || lr.N < 0 || lr.N > 1<<30 {
		var total int64
		for {
			w.b = slices.Grow(w.b, 512)
			n, err := r.Read(w.b[len(w.b):cap(w.b)])
			w.b = w.b[:len(w.b)+n]
			total += int64(n)
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
		}
	}
	n := int(lr.N)
	w.b = slices.Grow(w.b, n)
	m, err := io.ReadFull(lr, w.b[len(w.b):len(w.b)+n])
	w.b = w.b[:len(w.b)+m]
	return int64(m), err
}
