package httpsession_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// logRecorder keeps the level and message of every record logged through it.
type logRecorder struct {
	mu      sync.Mutex
	records []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Level.String()+" "+r.Message)
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.records...)
}

// fetch GETs url with the client and returns the status and the body.
func fetch(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return resp.StatusCode, string(body)
}

// newBrowser returns a client with a cookie jar of its own.
func newBrowser(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := *srv.Client()
	c.Jar = jar
	return &c
}

// With WithVersionCheck, a request whose plain read-modify-write meets a concurrent
// change is answered 409 Conflict by default and logged as a warning: not a 500, not an
// error.
func TestConflictIs409(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	st, err := store.New(client(t, topo), store.WithVersionCheck(true))
	require.NoError(t, err)
	logs := &logRecorder{}
	m, err := httpsession.New(st, httpsession.WithSecure(false), httpsession.WithLogger(slog.New(logs)))
	require.NoError(t, err)

	loaded, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /incr", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		var n int
		if err := s.Get("n", &n); err != nil && !errors.Is(err, store.ErrNoAttribute) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if r.FormValue("wait") != "" {
			close(loaded)
			<-release
		}
		_ = s.Set("n", n+1)
		fmt.Fprint(w, n+1)
	})
	srv := httptest.NewServer(m.Handler(mux))
	t.Cleanup(srv.Close)
	browser := newBrowser(t, srv)
	status, _ := fetch(t, browser, srv.URL+"/incr")
	require.Equal(t, http.StatusOK, status)

	// Tab 1 reads n = 1 and waits; tab 2 reads n = 1 and saves 2; tab 1 then saves.
	type result struct {
		status int
		body   string
	}
	slow := make(chan result, 1)
	go func() {
		status, body := fetch(t, browser, srv.URL+"/incr?wait=1")
		slow <- result{status, body}
	}()
	<-loaded
	status, body := fetch(t, browser, srv.URL+"/incr")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "2", body)
	close(release)
	r := <-slow
	require.Equal(t, http.StatusConflict, r.status, "body %q", r.body)

	_, body = fetch(t, browser, srv.URL+"/incr")
	require.Equal(t, "3", body, "the conflicting save wrote nothing")
	lines := logs.lines()
	require.NotEmpty(t, lines)
	for _, l := range lines {
		require.NotRegexp(t, `^ERROR`, l)
	}
	require.Contains(t, lines, "WARN hasession: session changed by a concurrent request; not saved")
}
