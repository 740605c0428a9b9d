package httpsession_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// TestRedisDown checks that a Redis failure on load or save reaches the error handler,
// and that nothing panics.
func TestRedisDown(t *testing.T) {
	dead := func(t *testing.T) *store.Store {
		rdb := store.NewFailoverClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}})
		t.Cleanup(func() { _ = rdb.Close() })
		st, err := store.New(rdb)
		require.NoError(t, err)
		return st
	}
	// short gives each request a short deadline: the store retries until it ends.
	short := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 200*time.Millisecond)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	validID := func(t *testing.T, st *store.Store) string {
		s, err := st.NewSession()
		require.NoError(t, err)
		return s.ID()
	}

	t.Run("a load failure answers 500 and logs, without calling the handler", func(t *testing.T) {
		st := dead(t)
		var logs syncBuffer
		m, err := httpsession.New(st, httpsession.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		called := false
		h := short(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })))

		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: validID(t, st)})
		rec := httptest.NewRecorder()
		require.NotPanics(t, func() { h.ServeHTTP(rec, req) })
		require.Equal(t, http.StatusInternalServerError, rec.Code)
		require.False(t, called)
		require.Empty(t, rec.Header().Values("Set-Cookie"))
		require.Contains(t, logs.String(), "level=ERROR")
		require.Contains(t, logs.String(), "session unavailable")
	})

	t.Run("a save failure answers 500 instead of the handler's response", func(t *testing.T) {
		st := dead(t)
		m, err := httpsession.New(st, httpsession.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		require.NoError(t, err)
		var writeErr error
		h := short(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = httpsession.FromContext(r.Context()).Set("k", "v")
			w.Header().Set("X-Handler", "yes")
			_, writeErr = io.WriteString(w, "handler body")
		})))
		rec := httptest.NewRecorder()
		require.NotPanics(t, func() { h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil)) })
		require.Equal(t, http.StatusInternalServerError, rec.Code)
		require.NotContains(t, rec.Body.String(), "handler body")
		require.ErrorIs(t, writeErr, httpsession.ErrNotSaved)
		require.Empty(t, rec.Header().Values("Set-Cookie"))
	})

	t.Run("a custom error handler gets the error when the handler wrote nothing, within WithTimeout", func(t *testing.T) {
		st := dead(t)
		var got error
		m, err := httpsession.New(st, httpsession.WithTimeout(200*time.Millisecond),
			httpsession.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				got = err
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
		require.NoError(t, err)
		// No deadline on the request: WithTimeout bounds the save.
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = httpsession.FromContext(r.Context()).Set("k", "v")
		}))
		rec := httptest.NewRecorder()
		start := time.Now()
		require.NotPanics(t, func() { h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil)) })
		require.Less(t, time.Since(start), 5*time.Second)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.ErrorIs(t, got, context.DeadlineExceeded)
	})

	t.Run("a visitor who stores nothing does not need Redis", func(t *testing.T) {
		m, err := httpsession.New(dead(t))
		require.NoError(t, err)
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
		for _, ck := range []*http.Cookie{nil, {Name: m.CookieName(), Value: "{malformed}"}} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if ck != nil {
				req.AddCookie(ck)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "ok", rec.Body.String())
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the logger's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
