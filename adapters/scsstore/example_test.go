package scsstore_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/adapters/scsstore"
	"github.com/hasession/hasession/store"
)

func ExampleNew() {
	// A client tuned for failover: several addresses make a Cluster client, MasterName a
	// Sentinel one.
	rdb := store.NewFailoverClient(&redis.UniversalOptions{Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}})
	st, err := store.New(rdb)
	if err != nil {
		log.Fatal(err)
	}

	sessionManager := scs.New()
	sessionManager.Lifetime = 12 * time.Hour
	sessionManager.Store, err = scsstore.New(st) // the one line that changes
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sessionManager.Put(r.Context(), "message", "Hello from a session!")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, sessionManager.GetString(r.Context(), "message"))
	})
	log.Fatal(http.ListenAndServe(":4000", sessionManager.LoadAndSave(mux)))
}

func ExampleWithLegacy() {
	rdb := store.NewFailoverClient(&redis.UniversalOptions{Addrs: []string{"10.0.0.1:6379"}})
	st, err := store.New(rdb)
	if err != nil {
		log.Fatal(err)
	}

	sessionManager := scs.New()
	// Was: sessionManager.Store = goredisstore.New(client). Sessions goredisstore wrote
	// are moved over as requests meet them: nobody is logged out by the switch.
	ad, err := scsstore.New(st, scsstore.WithLegacy(scsstore.DefaultPrefix, sessionManager.Codec))
	if err != nil {
		log.Fatal(err)
	}
	sessionManager.Store = ad

	mux := http.NewServeMux()
	mux.HandleFunc("/migration", func(w http.ResponseWriter, r *http.Request) {
		s := ad.LegacyStats()
		_, _ = fmt.Fprintf(w, "moved %d, corrupt %d\n", s.Imported, s.Corrupt)
	})
	log.Fatal(http.ListenAndServe(":4000", sessionManager.LoadAndSave(mux)))
}
