package httpsession_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// Two Managers, one inside the other (say, a site's session and an admin area's), each
// with its own cookie: each one's session is found by its Manager, kept apart from the
// other's, saved with its own cookie. FromContext gives the innermost; a Manager whose
// Handler the request did not go through finds nothing.
func TestNestedManagers(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			st, err := store.New(client(t, cluster.Shared(t, kind)))
			require.NoError(t, err)
			outer, err := httpsession.New(st, httpsession.WithCookieName("site"))
			require.NoError(t, err)
			inner, err := httpsession.New(st, httpsession.WithCookieName("admin"))
			require.NoError(t, err)
			other, err := httpsession.New(st, httpsession.WithCookieName("other"))
			require.NoError(t, err)

			mux := http.NewServeMux()
			mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
				if err := outer.FromContext(r.Context()).Set("who", "site"); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				if err := inner.FromContext(r.Context()).Set("who", "admin"); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				_, _ = io.WriteString(w, "ok")
			})
			mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
				var a, b string
				_ = outer.FromContext(r.Context()).Get("who", &a)
				_ = inner.FromContext(r.Context()).Get("who", &b)
				innermost := httpsession.FromContext(r.Context()) == inner.FromContext(r.Context())
				fmt.Fprintf(w, "%s %s %t %t", a, b, innermost, other.FromContext(r.Context()) == nil)
			})
			srv := httptest.NewTLSServer(outer.Handler(inner.Handler(mux)))
			t.Cleanup(srv.Close)
			browser := newBrowser(t, srv)

			status, body := fetch(t, browser, srv.URL+"/set")
			require.Equal(t, http.StatusOK, status, body)
			status, body = fetch(t, browser, srv.URL+"/get")
			require.Equal(t, http.StatusOK, status, body)
			require.Equal(t, "site admin true true", body)

			// Two sessions in Redis, one per cookie.
			var ids []string
			u, err := url.Parse(srv.URL)
			require.NoError(t, err)
			for _, ck := range browser.Jar.Cookies(u) {
				ids = append(ids, ck.Name+"="+ck.Value)
				s, err := st.Load(t.Context(), ck.Value)
				require.NoError(t, err, ck.Name)
				var who string
				require.NoError(t, s.Get("who", &who))
				require.Equal(t, map[string]string{"site": "site", "admin": "admin"}[ck.Name], who)
			}
			require.Len(t, ids, 2, "one cookie per Manager: %v", ids)
		})
	}
}
