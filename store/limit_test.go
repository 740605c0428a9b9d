package store_test

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/store"
)

func TestWithMaxSessionsValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, c := range []struct {
		n  int
		p  store.LimitPolicy
		ok bool
	}{
		{1, store.EvictOldest, true},
		{3, store.RefuseLogin, true},
		{0, store.EvictOldest, false},
		{-1, store.RefuseLogin, false},
		{3, 0, false},
		{3, store.LimitPolicy(9), false},
	} {
		st, err := store.New(rdb, store.WithMaxSessions(c.n, c.p))
		if c.ok {
			if err != nil {
				t.Errorf("WithMaxSessions(%d, %v): %v", c.n, c.p, err)
			}
			continue
		}
		if !errors.Is(err, store.ErrInvalidLimit) || st != nil {
			t.Errorf("WithMaxSessions(%d, %v): got %v, want ErrInvalidLimit and no store", c.n, c.p, err)
		}
	}
}

func TestSessionLimitErrorMatches(t *testing.T) {
	var err error = &store.SessionLimitError{Max: 3}
	if !errors.Is(err, store.ErrTooManySessions) {
		t.Fatal("a SessionLimitError is ErrTooManySessions")
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Fatal("a SessionLimitError is not ErrNotFound")
	}
	if got, want := err.Error(), "hasession: login refused: the user has 3 sessions, the maximum"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if got := store.LimitPolicy(7).String(); got != "LimitPolicy(7)" {
		t.Fatalf("String() = %q", got)
	}
}
