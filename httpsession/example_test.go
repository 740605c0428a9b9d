package httpsession_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

func Example() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: exampleAddrs(cluster.KindStandalone)})
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
		s.SetUser(r.FormValue("user"))
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
