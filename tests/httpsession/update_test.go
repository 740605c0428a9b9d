package httpsession_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// counterServer serves
//
//	/incr          adds one to "n" with Session.Update and answers the new value;
//	               ?also=v then sets "last" to v with a plain Set
//	/set?k=…&v=…   a plain Set
//	/n             the value of "n"
//	/late          Update after the response started: answers the error
func counterServer(t *testing.T, st *store.Store, opts ...httpsession.Option) *httptest.Server {
	t.Helper()
	m, err := httpsession.New(st, append([]httpsession.Option{httpsession.WithSecure(false)}, opts...)...)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /incr", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		var n int64
		err := s.Update(r.Context(), func(s *store.Session) error {
			n = 0
			if err := s.Get("n", &n); err != nil && !errors.Is(err, store.ErrNoAttribute) {
				return err
			}
			n++
			return s.Set("n", n)
		})
		switch {
		case errors.Is(err, store.ErrConflict):
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if v := r.FormValue("also"); v != "" {
			if err := s.Set("last", v); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
		if err := httpsession.FromContext(r.Context()).Set(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /n", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		var n int64
		_ = s.Get("n", &n)
		var last string
		_ = s.Get("last", &last)
		fmt.Fprintf(w, "n=%d last=%s keys=%v", n, last, s.Keys())
	})
	mux.HandleFunc("GET /late", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		w.WriteHeader(http.StatusOK)
		err := s.Update(r.Context(), func(s *store.Session) error { return s.Set("n", 1000) })
		fmt.Fprint(w, err)
	})
	srv := httptest.NewServer(m.Handler(mux))
	t.Cleanup(srv.Close)
	return srv
}

func TestUpdateThroughMiddleware(t *testing.T) {
	for _, kind := range []cluster.Kind{cluster.KindStandalone, cluster.KindCluster} {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			rdb := client(t, topo)
			for _, versionCheck := range []bool{false, true} {
				t.Run(fmt.Sprintf("two tabs × 20 concurrent increments make 40 (version check %t)", versionCheck), func(t *testing.T) {
					st, err := store.New(rdb, store.WithVersionCheck(versionCheck))
					require.NoError(t, err)
					srv := counterServer(t, st)
					browser := newBrowser(t, srv)
					status, _ := fetch(t, browser, srv.URL+"/set?k=base&v=1")
					require.Equal(t, http.StatusOK, status)

					const tabs, each = 2, 20
					var wg sync.WaitGroup
					var mu sync.Mutex
					seen := make(map[string]bool)
					for tab := range tabs {
						for i := range each {
							wg.Go(func() {
								url := srv.URL + "/incr"
								// With the version check, the response's own save checks the
								// version too: a plain Set after Update meets the other
								// requests' saves (409).
								if !versionCheck && i%2 == 0 {
									url += "?also=" + strconv.Itoa(tab)
								}
								status, body := fetch(t, browser, url)
								if status != http.StatusOK {
									t.Errorf("GET %s: %d %s", url, status, body)
									return
								}
								mu.Lock()
								defer mu.Unlock()
								if seen[body] {
									t.Errorf("two increments both made %s", body)
								}
								seen[body] = true
							})
						}
					}
					wg.Wait()
					_, body := fetch(t, browser, srv.URL+"/n")
					if versionCheck {
						require.Equal(t, "n=40 last= keys=[base n]", body)
					} else {
						require.Regexp(t, `^n=40 last=[01] keys=\[base last n\]$`, body)
					}
					require.Len(t, seen, tabs*each)
				})
			}
		})
	}
}

func TestUpdateRequestSession(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	st, err := store.New(client(t, topo))
	require.NoError(t, err)
	srv := counterServer(t, st)

	t.Run("a visitor without a session gets one, saved, with its cookie", func(t *testing.T) {
		browser := newBrowser(t, srv)
		status, body := fetch(t, browser, srv.URL+"/incr")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "1", body)
		_, body = fetch(t, browser, srv.URL+"/incr")
		require.Equal(t, "2", body)
		_, body = fetch(t, browser, srv.URL+"/n")
		require.Equal(t, "n=2 last= keys=[n]", body)
	})

	t.Run("the request's own changes before Update are kept", func(t *testing.T) {
		browser := newBrowser(t, srv)
		fetch(t, browser, srv.URL+"/incr")
		fetch(t, browser, srv.URL+"/incr?also=x")
		_, body := fetch(t, browser, srv.URL+"/n")
		require.Equal(t, "n=2 last=x keys=[last n]", body)
	})

	t.Run("after the response started Update returns ErrCommitted and changes nothing", func(t *testing.T) {
		browser := newBrowser(t, srv)
		fetch(t, browser, srv.URL+"/incr")
		_, body := fetch(t, browser, srv.URL+"/late")
		require.Equal(t, httpsession.ErrCommitted.Error(), body)
		_, body = fetch(t, browser, srv.URL+"/n")
		require.Equal(t, "n=1 last= keys=[n]", body)
	})
}
