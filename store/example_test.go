package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/store"
)

// The examples run on a Redis of yours: HASESSION_REDIS_ADDR is the host:port of a single
// Redis, HASESSION_REDIS_CLUSTER_ADDRS those of a Cluster's nodes, comma-separated. go
// test compiles them but does not run them; the repository's tests/store runs the same
// code on containers and checks what it prints.

// redisAddrs returns the addresses in the environment variable, or nil after saying
// that the example needs them.
func redisAddrs(env string) []string {
	v := os.Getenv(env)
	if v == "" {
		fmt.Printf("skipped: set %s to run this example\n", env)
		return nil
	}
	return strings.Split(v, ",")
}

func ExampleNew() {
	addrs := redisAddrs("HASESSION_REDIS_ADDR")
	if addrs == nil {
		return
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	defer rdb.Close()

	st, err := store.New(rdb,
		store.WithIdleTimeout(30*time.Minute), // sliding expiry
		store.WithLifetime(12*time.Hour),      // absolute lifetime
		store.WithTouchInterval(time.Minute),  // extend the TTL at most once a minute
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	s, _ := st.NewSession() // nothing in Redis yet
	_ = s.Set("theme", "dark")
	_ = s.Set("visits", 1)
	if err := st.Save(ctx, s); err != nil { // one script: only what changed
		panic(err)
	}

	loaded, err := st.Load(ctx, s.ID()) // one round trip
	if err != nil {
		panic(err)
	}
	var theme string
	var visits int
	_ = loaded.Get("theme", &theme)
	_ = loaded.Get("visits", &visits)
	fmt.Println(theme, visits, loaded.Version())
	// Prints: dark 1 1
}

func ExampleStore_Load() {
	addrs := redisAddrs("HASESSION_REDIS_ADDR")
	if addrs == nil {
		return
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	defer rdb.Close()
	st, _ := store.New(rdb)
	ctx := context.Background()

	// A cookie with a malformed ID never reaches Redis.
	_, err := st.Load(ctx, "{not-an-id}")
	fmt.Println(errors.Is(err, store.ErrInvalidID))

	// Missing and expired sessions are one error.
	_, err = st.Load(ctx, "6f1c2a9e-2b0d-4a8e-9a51-3c7d9f0e4b21")
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Prints:
	// true
	// true
}

func ExampleStore_Rotate() {
	addrs := redisAddrs("HASESSION_REDIS_ADDR")
	if addrs == nil {
		return
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	defer rdb.Close()
	st, _ := store.New(rdb, store.WithGracePeriod(30*time.Second))
	ctx := context.Background()

	s, _ := st.NewSession()
	_ = s.Set("cart", []string{"book"})
	_ = st.Save(ctx, s)
	before := s.ID()

	// Login: bind the user and change the ID against session fixation.
	s.SetUser("alice")
	if err := st.Rotate(ctx, s); err != nil {
		panic(err)
	}
	fmt.Println(s.ID() != before)
	// The login changed who the session belongs to: the old ID leads nowhere.
	_, err := st.Load(ctx, before)
	fmt.Println(errors.Is(err, store.ErrNotFound))

	// A privilege change keeps the user: a request still carrying the old ID lands on the
	// new session during the grace period.
	before = s.ID()
	if err := st.Rotate(ctx, s); err != nil {
		panic(err)
	}
	viaOld, _ := st.Load(ctx, before)
	fmt.Println(viaOld.ID() == s.ID(), viaOld.User())
	// Prints:
	// true
	// true
	// true alice
}

// The same store on a Redis Cluster: every key of a session carries its hash tag, so each
// session lives in one slot.
func Example_cluster() {
	addrs := redisAddrs("HASESSION_REDIS_CLUSTER_ADDRS")
	if addrs == nil {
		return
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      addrs,
		ClusterStateReloadInterval: time.Second,
	})
	defer rdb.Close()
	st, _ := store.New(rdb)
	ctx := context.Background()

	s, _ := st.NewSession()
	_ = s.Set("n", 42)
	_ = st.Save(ctx, s)
	got, _ := st.Load(ctx, s.ID())
	var n int
	_ = got.Get("n", &n)
	key, _ := st.Key(s.ID())
	fmt.Println(n, key == "hs:{"+s.ID()+"}")
	// Prints: 42 true
}

// A user's sessions: list them ("where am I logged in"), revoke one, log out everywhere
// else. Works the same on a Redis Cluster.
func ExampleStore_Sessions() {
	addrs := redisAddrs("HASESSION_REDIS_ADDR")
	if addrs == nil {
		return
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	defer rdb.Close()
	st, _ := store.New(rdb, store.WithPrefix("example-users:"))
	ctx := context.Background()
	user := "ada-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	var ids []string
	for _, device := range []string{"laptop", "phone", "tablet"} {
		s, _ := st.NewSession()
		_ = s.Set("device", device)
		s.SetUser(user) // on login (with Rotate, when there was an anonymous session)
		if err := st.Save(ctx, s); err != nil {
			panic(err)
		}
		ids = append(ids, s.ID())
	}
	current, _ := st.Ref(ids[0])

	infos, _ := st.Sessions(ctx, user, "device")
	var devices []string
	for _, in := range infos {
		var d string
		_ = in.Get("device", &d)
		devices = append(devices, d)
	}
	slices.Sort(devices)
	fmt.Println(devices)

	// Revoke the phone by the Ref the list showed, then every session but this one.
	for _, in := range infos {
		var d string
		if _ = in.Get("device", &d); d == "phone" {
			_ = st.Revoke(ctx, user, in.Ref)
		}
	}
	_ = st.RevokeAll(ctx, user, ids[0])

	infos, _ = st.Sessions(ctx, user)
	fmt.Println(len(infos), infos[0].Ref == current)
	_, err := st.Load(ctx, ids[2])
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Prints:
	// [laptop phone tablet]
	// 1 true
	// true
}

// An audit log of sign-ins and logouts, which can also free what a session held. The
// handler runs on the store's own goroutine, never on a request's: a slow or failing
// audit sink delays no request (see WithEvents). Events name a session by its Ref, never
// by its ID.
func ExampleWithEvents() {
	addrs := redisAddrs("HASESSION_REDIS_ADDR")
	if addrs == nil {
		return
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	defer rdb.Close()
	audit := make(chan store.Event, 16)
	st, _ := store.New(rdb, store.WithPrefix("example-events:"), store.WithEvents(func(e store.Event) {
		// In production: slog.Info("session", "event", e.Kind.String(), "ref", e.Ref, "user", e.User)
		audit <- e
	}))
	defer st.Close()
	ctx := context.Background()
	user := "ada-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	s, _ := st.NewSession()
	_ = s.Set("cart", []string{"book"})
	_ = st.Save(ctx, s) // created
	s.SetUser(user)     // login: the user, then a new ID
	_ = st.Rotate(ctx, s)
	_ = st.Destroy(ctx, s.ID()) // logout

	for range 4 {
		e := <-audit
		fmt.Println(e.Kind, e.User == user)
	}
	// Prints:
	// created false
	// rotated true
	// user-bound true
	// destroyed true
}

// A Python application kept its sessions in one hash (HSET sessions <id> <json>). The Go
// service that replaces it reads them through: the first request with an old cookie moves
// that session — its JSON becomes the attribute "data" — and gets a new ID to send back.
func ExampleWithLegacyHash() {
	addrs := redisAddrs("HASESSION_REDIS_ADDR")
	if addrs == nil {
		return
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	defer rdb.Close()
	ctx := context.Background()
	st, err := store.New(rdb, store.WithLegacyHash("sessions:example", "data"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	rdb.HSet(ctx, "sessions:example", "py-7f3a9c", `{"user": "alice"}`) // as redis-py wrote it

	s, err := st.Load(ctx, "py-7f3a9c") // the old cookie's value
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := store.Get[string](s, "data")
	fmt.Println(data, s.ID() != "py-7f3a9c")
	left, _ := rdb.HExists(ctx, "sessions:example", "py-7f3a9c").Result()
	fmt.Println("left in the hash:", left)
}
