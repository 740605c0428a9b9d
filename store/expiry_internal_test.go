package store

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A session with a shorter idle timeout of its own is touched at the store's touch
// interval scaled down by the same ratio (as touch.lua computes it); a longer one, or
// none, at the store's.
func TestTouchIntervalOfASessionsOwnIdleTimeout(t *testing.T) {
	st, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), // nothing is sent
		WithIdleTimeout(30*time.Minute), WithTouchInterval(time.Minute), WithMaxIdleTimeout(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ idle, want int64 }{
		{0, 60_000},                 // none: the store's
		{30 * 60_000, 60_000},       // the store's idle timeout
		{7 * 24 * 3600_000, 60_000}, // longer
		{15 * 60_000, 30_000},       // half
		{1500, 50},                  // 1.5 s: 1/1200 of it
		{1000, 33},                  // rounded down
	} {
		if got := st.touchMsFor(c.idle); got != c.want {
			t.Errorf("idle %d ms: touch interval %d ms, want %d", c.idle, got, c.want)
		}
	}
}
