package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/store"
)

// offline returns a client that is never reached: the tests below send nothing.
func offline(t *testing.T) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestMaxExpiryOptions(t *testing.T) {
	rdb := offline(t)
	st := newStore(t, rdb, store.WithIdleTimeout(time.Hour), store.WithLifetime(2*time.Hour))
	require.Equal(t, time.Hour, st.MaxIdleTimeout(), "the maximum defaults to the idle timeout")
	require.Equal(t, 2*time.Hour, st.MaxLifetime(), "the maximum defaults to the lifetime")

	st = newStore(t, rdb, store.WithMaxIdleTimeout(7*24*time.Hour), store.WithMaxLifetime(30*24*time.Hour))
	require.Equal(t, 7*24*time.Hour, st.MaxIdleTimeout())
	require.Equal(t, 30*24*time.Hour, st.MaxLifetime())
	require.Equal(t, store.DefaultIdleTimeout, st.IdleTimeout(), "the defaults stay")
	require.Equal(t, store.DefaultLifetime, st.Lifetime())

	for name, opts := range map[string][]store.Option{
		"max idle under the idle timeout": {store.WithIdleTimeout(time.Hour), store.WithMaxIdleTimeout(time.Minute)},
		"max lifetime under the lifetime": {store.WithLifetime(time.Hour), store.WithMaxLifetime(time.Minute)},
		"max idle under 1s":               {store.WithMaxIdleTimeout(time.Millisecond)},
		"max lifetime negative":           {store.WithMaxLifetime(-time.Hour)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := store.New(rdb, opts...)
			require.Error(t, err)
		})
	}
}

func TestSessionExpiryValidation(t *testing.T) {
	st := newStore(t, offline(t), store.WithIdleTimeout(time.Hour), store.WithMaxIdleTimeout(24*time.Hour),
		store.WithLifetime(2*time.Hour), store.WithMaxLifetime(30*24*time.Hour))
	s, err := st.NewSession()
	require.NoError(t, err)

	// Nothing set: the store's, and nothing to save.
	require.Equal(t, time.Hour, s.IdleTimeout())
	require.Equal(t, 2*time.Hour, s.Lifetime())
	p, ok := s.Persistent()
	require.False(t, ok, "no persistence chosen")
	require.False(t, p)
	require.False(t, s.Modified())

	for _, c := range []struct {
		name    string
		set     func(time.Duration) error
		d, max  time.Duration
		setting string
	}{
		{"idle zero", s.SetIdleTimeout, 0, 24 * time.Hour, "idle timeout"},
		{"idle negative", s.SetIdleTimeout, -time.Minute, 24 * time.Hour, "idle timeout"},
		{"idle under 1s", s.SetIdleTimeout, 999 * time.Millisecond, 24 * time.Hour, "idle timeout"},
		{"idle over the maximum", s.SetIdleTimeout, 24*time.Hour + time.Millisecond, 24 * time.Hour, "idle timeout"},
		{"lifetime zero", s.SetLifetime, 0, 30 * 24 * time.Hour, "lifetime"},
		{"lifetime negative", s.SetLifetime, -time.Hour, 30 * 24 * time.Hour, "lifetime"},
		{"lifetime over the maximum", s.SetLifetime, 31 * 24 * time.Hour, 30 * 24 * time.Hour, "lifetime"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.set(c.d)
			require.ErrorIs(t, err, store.ErrInvalidExpiry)
			var ee *store.ExpiryError
			require.True(t, errors.As(err, &ee), "%T", err)
			require.Equal(t, store.ExpiryError{Setting: c.setting, Value: c.d, Min: time.Second, Max: c.max}, *ee)
			require.Contains(t, err.Error(), c.setting)
			// Unchanged.
			require.Equal(t, time.Hour, s.IdleTimeout())
			require.Equal(t, 2*time.Hour, s.Lifetime())
			require.False(t, s.Modified(), "a refused expiry is no change")
		})
	}

	require.NoError(t, s.SetIdleTimeout(24*time.Hour), "the maximum itself")
	require.NoError(t, s.SetLifetime(30*24*time.Hour))
	require.Equal(t, 24*time.Hour, s.IdleTimeout())
	require.Equal(t, 30*24*time.Hour, s.Lifetime())
	require.True(t, s.Modified())
	require.ErrorIs(t, s.SetLifetime(31*24*time.Hour), store.ErrInvalidExpiry)
	require.Equal(t, 30*24*time.Hour, s.Lifetime(), "a refused lifetime keeps the one set before")
	require.NoError(t, s.SetIdleTimeout(time.Second), "a shorter one")
	require.Equal(t, time.Second, s.IdleTimeout())
	s.SetPersistent(true)
	p, ok = s.Persistent()
	require.True(t, p && ok)
	s.SetPersistent(false)
	p, ok = s.Persistent()
	require.True(t, !p && ok)
}

func TestExpiryErrorMessages(t *testing.T) {
	over := &store.ExpiryError{Setting: "lifetime", Value: 48 * time.Hour, Min: time.Second, Max: 24 * time.Hour}
	require.Equal(t, "hasession: session lifetime 48h0m0s is over the store's maximum of 24h0m0s (store.WithMaxLifetime)", over.Error())
	under := &store.ExpiryError{Setting: "idle timeout", Value: 0, Min: time.Second, Max: time.Hour}
	require.Equal(t, "hasession: session idle timeout 0s is under 1s", under.Error())
}
