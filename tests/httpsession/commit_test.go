package httpsession_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// TestMutatorsAfterCommit checks, on a session stored in Redis, that once the handler has
// started its response every mutator of the request's session returns ErrCommitted and
// does nothing: the session stays in Redis with its ID, version, attributes and user, and
// the response's cookie, if any (a persistent cookie is re-sent to follow the sliding
// expiry), still names it. (httpsession's own tests check the same without Redis, on a
// new session.)
func TestMutatorsAfterCommit(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	st, err := store.New(client(t, topo), store.WithPrefix("hs-commit:"))
	require.NoError(t, err)
	m, err := httpsession.New(st, httpsession.WithSecure(false))
	require.NoError(t, err)

	starts := []struct {
		name  string
		start func(w http.ResponseWriter) error
	}{
		{"Write", func(w http.ResponseWriter) error { _, err := io.WriteString(w, "ok"); return err }},
		{"WriteHeader", func(w http.ResponseWriter) error { w.WriteHeader(http.StatusOK); return nil }},
		{"Flush", func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
	}
	mutators := []struct {
		name string
		do   func(ctx context.Context, s *httpsession.Session) error
	}{
		{"Set", func(_ context.Context, s *httpsession.Session) error { return s.Set("k", "changed") }},
		{"Set a new attribute", func(_ context.Context, s *httpsession.Session) error { return s.Set("new", "x") }},
		{"Delete", func(_ context.Context, s *httpsession.Session) error { return s.Delete("k") }},
		{"Pop", func(_ context.Context, s *httpsession.Session) error { return s.Pop("k", new(string)) }},
		{"Clear", func(_ context.Context, s *httpsession.Session) error { return s.Clear() }},
		{"SetUser", func(_ context.Context, s *httpsession.Session) error { return s.SetUser("bob") }},
		{"SetUser to anonymous", func(_ context.Context, s *httpsession.Session) error { return s.SetUser("") }},
		{"SetIdleTimeout", func(_ context.Context, s *httpsession.Session) error { return s.SetIdleTimeout(time.Minute) }},
		{"SetLifetime", func(_ context.Context, s *httpsession.Session) error { return s.SetLifetime(time.Hour) }},
		{"SetPersistent", func(_ context.Context, s *httpsession.Session) error { return s.SetPersistent(false) }},
		{"Rotate", func(ctx context.Context, s *httpsession.Session) error { return s.Rotate(ctx) }},
		{"Destroy", func(ctx context.Context, s *httpsession.Session) error { return s.Destroy(ctx) }},
		{"Update", func(ctx context.Context, s *httpsession.Session) error {
			return s.Update(ctx, func(s *store.Session) error { return s.Set("k", "updated") })
		}},
	}

	// The handler starts the response as ?start= says, then runs the mutator ?mut= names
	// and sends its error to errs.
	errs := make(chan error, 1)
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.Atoi(r.FormValue("start"))
		mut, _ := strconv.Atoi(r.FormValue("mut"))
		s := httpsession.FromContext(r.Context())
		if err := starts[start].start(w); err != nil {
			errs <- fmt.Errorf("starting the response: %w", err)
			return
		}
		errs <- mutators[mut].do(r.Context(), s)
	})))
	t.Cleanup(srv.Close)

	for i, start := range starts {
		for j, mut := range mutators {
			t.Run(start.name+" then "+mut.name, func(t *testing.T) {
				ctx := t.Context()
				seed, err := st.NewSession()
				require.NoError(t, err)
				require.NoError(t, seed.Set("k", "v"))
				seed.SetUser("ada")
				require.NoError(t, st.Save(ctx, seed))
				id, version := seed.ID(), seed.Version()

				req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/?start=%d&mut=%d", srv.URL, i, j), nil)
				require.NoError(t, err)
				req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: id})
				resp, err := srv.Client().Do(req)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.ErrorIs(t, <-errs, httpsession.ErrCommitted)
				for _, c := range resp.Cookies() {
					if c.Name == m.CookieName() {
						require.Equal(t, id, c.Value, "the cookie names the session")
						require.GreaterOrEqual(t, c.MaxAge, 0, "the cookie is not expired")
					}
				}

				got, err := st.Load(ctx, id)
				require.NoError(t, err, "the session is still in Redis")
				require.Equal(t, id, got.ID())
				require.Equal(t, version, got.Version(), "no save")
				require.Equal(t, []string{"k"}, got.Keys())
				var v string
				require.NoError(t, got.Get("k", &v))
				require.Equal(t, "v", v)
				require.Equal(t, "ada", got.User())
				require.Equal(t, store.DefaultIdleTimeout, got.IdleTimeout())
				require.Equal(t, store.DefaultLifetime, got.Lifetime())
				_, chose := got.Persistent()
				require.False(t, chose, "no persistence chosen")
				require.NoError(t, st.Destroy(ctx, id))
			})
		}
	}
}
