package httpsession_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// TestLoggerDefault checks the logging policy: a Manager logs through the logger
// WithLogger gives it and, without one (or with nil), logs nothing — not through
// slog.Default either.
func TestLoggerDefault(t *testing.T) {
	var global syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&global, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	// A load that fails: the default error handler answers 500 and logs it.
	fail := func(t *testing.T, opts ...httpsession.Option) {
		t.Helper()
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		rdb.AddHook(&refusingHook{})
		t.Cleanup(func() { _ = rdb.Close() })
		st, err := store.New(rdb)
		require.NoError(t, err)
		id := func() string { s, err := st.NewSession(); require.NoError(t, err); return s.ID() }()
		m, err := httpsession.New(st, append(opts, httpsession.WithTimeout(100*time.Millisecond))...)
		require.NoError(t, err)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: id})
		rec := httptest.NewRecorder()
		m.Handler(http.NotFoundHandler()).ServeHTTP(rec, req)
		require.Equal(t, http.StatusInternalServerError, rec.Code)
	}

	t.Run("without a logger nothing is logged", func(t *testing.T) {
		fail(t)
		fail(t, httpsession.WithLogger(nil))
		require.Empty(t, global.String())
	})
	t.Run("with a logger it logs there", func(t *testing.T) {
		var own syncBuffer
		fail(t, httpsession.WithLogger(slog.New(slog.NewTextHandler(&own, nil))))
		require.Contains(t, own.String(), "level=ERROR")
		require.Contains(t, own.String(), "session unavailable")
		require.Empty(t, global.String())
	})
}
