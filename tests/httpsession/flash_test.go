package httpsession_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// A flash set by one request is shown by the next and gone after (Pop); Clear empties
// the stored session and keeps it, its user and its cookie; typed getters read a
// request's session.
func TestFlashClearAndTypedGetters(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			st, err := store.New(client(t, cluster.Shared(t, kind)))
			require.NoError(t, err)
			m, err := httpsession.New(st)
			require.NoError(t, err)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /flash", func(w http.ResponseWriter, r *http.Request) {
				s := httpsession.FromContext(r.Context())
				if err := errors.Join(s.Set("flash", r.FormValue("m")), s.Set("n", 3), s.SetUser("ada")); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			})
			mux.HandleFunc("GET /show", func(w http.ResponseWriter, r *http.Request) {
				s := httpsession.FromContext(r.Context())
				var f string
				if err := s.Pop("flash", &f); errors.Is(err, store.ErrNoAttribute) {
					f = "-"
				} else if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				n, err := store.GetOr(s, "n", -1)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				_, _ = io.WriteString(w, f+" "+strings.Repeat("n", max(n, 0))+" "+s.User()+" "+strings.Join(s.Keys(), ","))
			})
			mux.HandleFunc("GET /clear", func(w http.ResponseWriter, r *http.Request) {
				if err := httpsession.FromContext(r.Context()).Clear(); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
				}
			})
			srv := httptest.NewTLSServer(m.Handler(mux))
			t.Cleanup(srv.Close)
			b := newBrowser(t, srv)

			for _, step := range []struct{ path, want string }{
				{"/flash?m=saved", ""},
				{"/show", "saved nnn ada n"},
				{"/show", "- nnn ada n"},
				{"/clear", ""},
				{"/show", "-  ada "},
			} {
				status, body := fetch(t, b, srv.URL+step.path)
				require.Equal(t, http.StatusOK, status, body)
				require.Equal(t, step.want, body, step.path)
			}
		})
	}
}
