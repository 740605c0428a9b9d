package httpsession

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter saves the session before the first byte of the response leaves.
type responseWriter struct {
	http.ResponseWriter
	m *Manager
	r *http.Request
	h *Session

	done   bool // the commit ran
	failed bool // the commit failed and the error handler answered
}

// commit saves the session once; it reports false if that failed (the error handler
// has answered).
func (w *responseWriter) commit() bool {
	if w.done {
		return !w.failed
	}
	w.done = true
	if err := w.m.commit(w.r, w.ResponseWriter.Header(), w.h); err != nil {
		w.failed = true
		w.m.onError(w.ResponseWriter, w.r, err)
		return false
	}
	return true
}

// WriteHeader saves the session, then sends the status. An informational status (1xx,
// such as 103 Early Hints) goes out as it is: the session is saved with the final one.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if !w.failed {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Write saves the session, then writes b.
func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.commit() {
		return 0, ErrNotSaved
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom saves the session, then copies src to the response, with the server's
// ReadFrom (sendfile) where it has one.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, ErrNotSaved
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Flush saves the session, then flushes (http.Flusher).
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError saves the session, then flushes; http.ResponseController.Flush calls it.
func (w *responseWriter) FlushError() error {
	if !w.commit() {
		return ErrNotSaved
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack saves the session, then hands over the connection (http.Hijacker). It returns
// an error wrapping http.ErrNotSupported when the server's writer cannot be hijacked
// (HTTP/2).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.commit() {
		return nil, nil, ErrNotSaved
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the server's response writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ http.Hijacker = (*responseWriter)(nil)
	_ io.ReaderFrom = (*responseWriter)(nil)
)
