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
