package httpsession_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// The examples of package httpsession (which go doc shows, and go test there compiles only), run
// here on the shared topologies, with their output checked.

func Example() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cluster.SharedAddrs(cluster.KindStandalone)})
	defer rdb.Close()
	st, err := store.New(rdb)
	if err != nil {
		panic(err)
	}
	// Plain HTTP for the example; keep the default Secure cookie in production.
	sm, err := httpsession.New(st, httpsession.WithSecure(false))
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		var cart []string
		_ = s.Get("cart", &cart) // store.ErrNoAttribute on the first visit
		_ = s.Set("cart", append(cart, r.FormValue("item")))
		fmt.Fprintf(w, "%d items", len(cart)+1)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		// SetUser fails only once the response has started (ErrCommitted).
		_ = s.SetUser(r.FormValue("user"))
		if err := s.Rotate(r.Context()); err != nil { // a new ID against session fixation
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "welcome ", s.User())
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s := httpsession.FromContext(r.Context())
		var cart []string
		_ = s.Get("cart", &cart)
		fmt.Fprintf(w, "user=%q cart=%v", s.User(), cart)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := httpsession.FromContext(r.Context()).Destroy(r.Context()); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "bye")
	})
	srv := httptest.NewServer(sm.Handler(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	visit := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := browser.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %s: %s (cookie sent: %t)\n", method, path, body, resp.Header.Get("Set-Cookie") != "")
	}

	visit("GET", "/me") // an anonymous visitor: no cookie, no Redis write
	visit("POST", "/cart?item=book")
	visit("POST", "/cart?item=pen")
	visit("POST", "/login?user=alice")
	visit("GET", "/me")
	visit("POST", "/logout")
	visit("GET", "/me")
	// Output:
	// GET /me: user="" cart=[] (cookie sent: false)
	// POST /cart?item=book: 1 items (cookie sent: true)
	// POST /cart?item=pen: 2 items (cookie sent: true)
	// POST /login?user=alice: welcome alice (cookie sent: true)
	// GET /me: user="alice" cart=[book pen] (cookie sent: true)
	// POST /logout: bye (cookie sent: true)
	// GET /me: user="" cart=[] (cookie sent: false)
}

// Session.Update makes a read-modify-write atomic: concurrent requests of one session,
// from several tabs or several app servers, lose no increment.
func ExampleSession_Update() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cluster.SharedAddrs(cluster.KindStandalone)})
	defer rdb.Close()
	st, err := store.New(rdb)
	if err != nil {
		panic(err)
	}
	sm, err := httpsession.New(st, httpsession.WithSecure(false))
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /like", func(w http.ResponseWriter, r *http.Request) {
		var likes int
		err := httpsession.FromContext(r.Context()).Update(r.Context(), func(s *store.Session) error {
			likes = 0
			_ = s.Get("likes", &likes) // store.ErrNoAttribute the first time
			likes++
			return s.Set("likes", likes)
		})
		switch {
		case errors.Is(err, store.ErrConflict): // still changing after store.UpdateAttempts
			http.Error(w, "busy, try again", http.StatusConflict)
			return
		case err != nil:
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, likes)
	})
	srv := httptest.NewServer(sm.Handler(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	like := func() string {
		resp, err := browser.Post(srv.URL+"/like", "", nil)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	like() // the first like creates the session and its cookie

	var wg sync.WaitGroup
	for range 10 { // ten tabs at once
		wg.Go(func() { like() })
	}
	wg.Wait()
	fmt.Println("likes:", like())
	// Output:
	// likes: 12
}
