package httpsession_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// TestResponseWriter checks that the wrapper saves the session before the first byte
// whatever way the handler sends it, and keeps the server's writer reachable.
func TestResponseWriter(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	st, err := store.New(client(t, topo))
	require.NoError(t, err)
	m, err := httpsession.New(st, httpsession.WithSecure(false))
	require.NoError(t, err)

	serve := func(t *testing.T, h http.HandlerFunc) *httptest.Server {
		srv := httptest.NewServer(m.Handler(h))
		t.Cleanup(srv.Close)
		return srv
	}
	// stored returns the value of k in the session the response's cookie names.
	stored := func(t *testing.T, resp *http.Response, k string) string {
		t.Helper()
		for _, c := range resp.Cookies() {
			if c.Name == m.CookieName() {
				s, err := st.Load(t.Context(), c.Value)
				require.NoError(t, err)
				var v string
				require.NoError(t, s.Get(k, &v))
				return v
			}
		}
		t.Fatalf("no session cookie in %q", resp.Header.Values("Set-Cookie"))
		return ""
	}

	t.Run("Flush sends the cookie with the headers", func(t *testing.T) {
		release := make(chan struct{})
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			_ = httpsession.FromContext(r.Context()).Set("k", "flushed")
			if _, ok := w.(http.Flusher); !ok {
				t.Error("the response writer is not an http.Flusher")
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			<-release // the client has the headers before the handler returns
			_, _ = io.WriteString(w, "done")
		})
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "flushed", stored(t, resp, "k"))
		close(release)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, "done", string(body))
	})

	t.Run("Hijack saves the session first", func(t *testing.T) {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			_ = httpsession.FromContext(r.Context()).Set("k", "hijacked")
			if _, ok := w.(http.Hijacker); !ok {
				t.Error("the response writer is not an http.Hijacker")
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
			// The handler writes its own response, with the cookie the middleware set.
			_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nSet-Cookie: " + w.Header().Get("Set-Cookie") +
				"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			_ = brw.Flush()
		})
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "hijacked", stored(t, resp, "k"))
	})

	t.Run("Unwrap reaches the server's writer", func(t *testing.T) {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			if !ok || u.Unwrap() == nil {
				t.Error("the response writer has no Unwrap")
			}
			rc := http.NewResponseController(w)
			if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("SetWriteDeadline: %v", err)
			}
			if err := rc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("SetReadDeadline: %v", err)
			}
			_ = httpsession.FromContext(r.Context()).Set("k", "unwrapped")
		})
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "unwrapped", stored(t, resp, "k"))
	})

	t.Run("io.Copy to the response saves the session first", func(t *testing.T) {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			_ = httpsession.FromContext(r.Context()).Set("k", "copied")
			if _, err := io.Copy(w, strings.NewReader("body")); err != nil {
				t.Errorf("copy: %v", err)
			}
		})
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "copied", stored(t, resp, "k"))
	})

	t.Run("an informational status does not commit the session", func(t *testing.T) {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			if err := httpsession.FromContext(r.Context()).Set("k", "after hints"); err != nil {
				t.Errorf("set after 103: %v", err)
			}
			_, _ = io.WriteString(w, "ok")
		})
		var hints []textproto.MIMEHeader
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, h)
			return nil
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Len(t, hints, 1)
		require.Empty(t, hints[0].Values("Set-Cookie"))
		require.Equal(t, "after hints", stored(t, resp, "k"))
	})

	t.Run("changes after the response started are refused", func(t *testing.T) {
		errs := make(chan error, 3)
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			s := httpsession.FromContext(r.Context())
			_ = s.Set("k", "before")
			_, _ = io.WriteString(w, "x")
			errs <- s.Set("k", "after")
			errs <- s.Rotate(r.Context())
			errs <- s.Delete("k")
		})
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.ErrorIs(t, <-errs, httpsession.ErrCommitted)
		require.ErrorIs(t, <-errs, httpsession.ErrCommitted)
		require.ErrorIs(t, <-errs, httpsession.ErrCommitted)
		require.Equal(t, "before", stored(t, resp, "k"))
	})

	t.Run("Vary lists Cookie once", func(t *testing.T) {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Vary", "Accept-Encoding, cookie")
		})
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, []string{"Accept-Encoding, cookie"}, resp.Header.Values("Vary"))
	})
}
