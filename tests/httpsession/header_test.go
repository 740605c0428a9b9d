package httpsession_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// An API client without cookies carries its session in a header (WithHeader): the
// response that creates the session, and the one that rotates it, hand it the ID in the
// header; later requests name the session by it; a malformed or stale header gets a new
// session (no round trip for the malformed one); a logout answers with the header empty.
func TestSessionIDInAHeader(t *testing.T) {
	const hdr = "X-Session-Id"
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			rdb := client(t, cluster.Shared(t, kind))
			cmds := &cmdCounter{}
			rdb.AddHook(cmds)
			st, err := store.New(rdb)
			require.NoError(t, err)
			m, err := httpsession.New(st, httpsession.WithHeader(hdr))
			require.NoError(t, err)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
				if err := httpsession.FromContext(r.Context()).Set("k", r.FormValue("v")); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			})
			mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
				v, err := store.GetOr(httpsession.FromContext(r.Context()), "k", "-")
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				_, _ = io.WriteString(w, v)
			})
			mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
				s := httpsession.FromContext(r.Context())
				if err := s.SetUser("ada"); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				if err := s.Rotate(r.Context()); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			})
			mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
				if err := httpsession.FromContext(r.Context()).Destroy(r.Context()); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			})
			srv := httptest.NewTLSServer(m.Handler(mux))
			t.Cleanup(srv.Close)
			c := srv.Client() // no cookie jar: the header alone carries the session
			call := func(path, id string) (*http.Response, string) {
				t.Helper()
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
				require.NoError(t, err)
				if id != "" {
					req.Header.Set(hdr, id)
				}
				resp, body := send(t, c, req)
				require.Contains(t, resp.Header.Values("Vary"), hdr)
				return resp, body
			}

			resp, _ := call("/set?v=1", "")
			id := resp.Header.Get(hdr)
			require.NotEmpty(t, id, "a new session's ID in the header")
			resp, body := call("/get", id)
			require.Equal(t, "1", body)
			require.Empty(t, resp.Header.Values(hdr), "the same ID is not sent again")

			resp, _ = call("/login", id)
			rotated := resp.Header.Get(hdr)
			require.NotEmpty(t, rotated)
			require.NotEqual(t, id, rotated, "a rotation hands the new ID")
			_, body = call("/get", rotated)
			require.Equal(t, "1", body)

			before := cmds.n.Load()
			_, body = call("/get", "not-an-id")
			require.Equal(t, "-", body, "a malformed ID: a new session")
			require.Equal(t, before, cmds.n.Load(), "and no command sent")
			_, body = call("/get", uuid.NewString())
			require.Equal(t, "-", body, "a stale ID: a new session")

			resp, _ = call("/logout", rotated)
			require.Equal(t, []string{""}, resp.Header.Values(hdr), "a logout empties the header")
			_, body = call("/get", rotated)
			require.Equal(t, "-", body)
		})
	}
}
