package gorillastore_test

import (
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/adapters/gorillastore"
	"github.com/hasession/hasession/store"
)

type Cart struct {
	Items []string
}

func ExampleNew() {
	// A client tuned for failover: MasterName makes a Sentinel client, several addresses
	// a Cluster one.
	rdb := store.NewFailoverClient(&redis.UniversalOptions{MasterName: "mymaster", Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"}})
	st, err := store.New(rdb, store.WithIdleTimeout(30*time.Minute), store.WithLifetime(12*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	// The one line that changes; the cart comes back as a Cart.
	sessionStore, err := gorillastore.New(st, gorillastore.WithValueType("cart", Cart{}))
	if err != nil {
		log.Fatal(err)
	}

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		session, err := sessionStore.Get(r, "session")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cart, _ := session.Values["cart"].(Cart)
		cart.Items = append(cart.Items, r.URL.Query().Get("add"))
		session.Values["cart"] = cart
		session.AddFlash("added")
		if err := session.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d items\n", len(cart.Items))
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}

func ExampleWithLegacyRedistore() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"}) // the Redis redistore used
	st, err := store.New(rdb)
	if err != nil {
		log.Fatal(err)
	}
	// The keys the app gave redistore.NewRediStore, in the same order.
	hashKey, blockKey := []byte("the app's 32-byte hash key......"), []byte("its block key...")
	sessionStore, err := gorillastore.New(st,
		gorillastore.WithLegacyRedistore(gorillastore.RedistorePrefix, hashKey, blockKey))
	if err != nil {
		log.Fatal(err)
	}
	// Handlers stay as they were: a redistore cookie's session moves at its first
	// request, and session.Save sends the cookie of its new ID.
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		session, err := sessionStore.Get(r, "session")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := session.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "hello", session.Values["user"])
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
