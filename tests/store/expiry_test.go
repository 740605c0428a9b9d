package store_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

const (
	day   = 24 * time.Hour
	month = 30 * day
)

// expiryOptions are those of the stores of TestSessionExpiry: the defaults of a site
// (30 min idle, 24 h lifetime) with room for a "remember me" session (7 days idle, 30
// days).
func expiryOptions(prefix string, more ...store.Option) []store.Option {
	return append([]store.Option{store.WithPrefix(prefix), store.WithIdleTimeout(30 * time.Minute),
		store.WithMaxIdleTimeout(7 * day), store.WithLifetime(day), store.WithMaxLifetime(month)}, more...)
}

// hashInt reads an integer metadata field of the session's hash straight from Redis.
func hashInt(t *testing.T, rdb redis.UniversalClient, key, field string) int64 {
	t.Helper()
	v, err := rdb.HGet(context.Background(), key, field).Result()
	require.NoError(t, err, "field %s of %s", field, key)
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	return n
}

// requirePTTL checks the key's TTL, read from Redis, is within (want − slack, want].
func requirePTTL(t *testing.T, rdb redis.UniversalClient, key string, want time.Duration) {
	t.Helper()
	ttl, err := rdb.PTTL(context.Background(), key).Result()
	require.NoError(t, err)
	require.LessOrEqual(t, ttl, want, "PTTL of %s", key)
	require.Greater(t, ttl, want-10*time.Second, "PTTL of %s", key)
}

// A session's own idle timeout, lifetime and cookie persistence: stored with it, enforced
// by Redis (its TTL, its deadline), kept through Rotate and seen by every app server.
func TestSessionExpiry(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		fIdle, fPersist := testhook.FieldIdle, testhook.FieldPersist
		fCreated, fDeadline := testhook.FieldCreated, testhook.FieldDeadline

		t.Run("the idle timeout of its own sets the key's TTL", func(t *testing.T) {
			st := newStore(t, rdb, expiryOptions("exp-idle:", store.WithTouchInterval(0))...)
			def, _ := st.NewSession()
			require.NoError(t, def.Set("a", 1))
			require.NoError(t, st.Save(ctx, def))
			defKey, _ := st.Key(def.ID())
			requirePTTL(t, rdb, defKey, 30*time.Minute)
			require.False(t, rdb.HExists(ctx, defKey, fIdle).Val(), "a session that sets nothing stores nothing new")
			require.False(t, rdb.HExists(ctx, defKey, fPersist).Val())

			for _, d := range []time.Duration{10 * time.Minute, 2 * time.Hour, 7 * day} {
				s, _ := st.NewSession()
				require.NoError(t, s.SetIdleTimeout(d))
				require.NoError(t, s.Set("a", 1))
				require.NoError(t, st.Save(ctx, s))
				key, _ := st.Key(s.ID())
				want := min(d, day) // never past the deadline
				requirePTTL(t, rdb, key, want)
				require.Equal(t, d.Milliseconds(), hashInt(t, rdb, key, fIdle))
				require.Equal(t, d, s.IdleTimeout())
				require.WithinDuration(t, s.LastTouch().Add(want), s.ExpiresAt(), 0)

				// A load that touches it (touch interval 0) extends it to its own, not the store's.
				require.NoError(t, rdb.PExpire(ctx, key, time.Minute).Err())
				got, err := st.Load(ctx, s.ID())
				require.NoError(t, err)
				require.Equal(t, d, got.IdleTimeout())
				requirePTTL(t, rdb, key, want)
				// And so does a save of something else.
				require.NoError(t, rdb.PExpire(ctx, key, time.Minute).Err())
				require.NoError(t, got.Set("b", 2))
				require.NoError(t, st.Save(ctx, got))
				requirePTTL(t, rdb, key, want)
			}
		})

		t.Run("a short idle timeout expires on Redis's clock, a default session does not", func(t *testing.T) {
			st := newStore(t, rdb, expiryOptions("exp-short:", store.WithTouchInterval(10*time.Second))...)
			short, _ := st.NewSession()
			require.NoError(t, short.SetIdleTimeout(1500*time.Millisecond))
			require.NoError(t, short.Set("a", 1))
			require.NoError(t, st.Save(ctx, short))
			def, _ := st.NewSession()
			require.NoError(t, def.Set("a", 1))
			require.NoError(t, st.Save(ctx, def))
			key, _ := st.Key(short.ID())
			// Polled without loading (a load would touch it).
			eventually(t, 10*time.Second, func() bool {
				return rdb.Exists(context.Background(), key).Val() == 0
			}, "a session idle past its own idle timeout expires")
			_, err := st.Load(ctx, short.ID())
			require.ErrorIs(t, err, store.ErrNotFound)
			_, err = st.Load(ctx, def.ID())
			require.NoError(t, err, "a session without one keeps the store's idle timeout")
		})

		t.Run("an active session with a short idle timeout of its own is touched in time", func(t *testing.T) {
			// The store's touch interval (10 s) is longer than the session's idle timeout:
			// the session's own is scaled down with it.
			st := newStore(t, rdb, expiryOptions("exp-active:", store.WithTouchInterval(10*time.Second))...)
			s, _ := st.NewSession()
			require.NoError(t, s.SetIdleTimeout(1500*time.Millisecond))
			require.NoError(t, s.Set("a", 1))
			require.NoError(t, st.Save(ctx, s))
			// Loaded every 100 ms for 4 s (more than twice its idle timeout): it stays.
			deadline := time.Now().Add(4 * time.Second)
			for tick := time.NewTicker(100 * time.Millisecond); time.Now().Before(deadline); <-tick.C {
				_, err := st.Load(ctx, s.ID())
				require.NoError(t, err, "an active session does not expire")
			}
		})

		t.Run("the lifetime of its own sets the deadline", func(t *testing.T) {
			st := newStore(t, rdb, expiryOptions("exp-life:")...)
			// A new session.
			s, _ := st.NewSession()
			require.NoError(t, s.SetLifetime(time.Hour))
			require.NoError(t, s.SetIdleTimeout(7*day))
			require.NoError(t, s.Set("a", 1))
			require.NoError(t, st.Save(ctx, s))
			key, _ := st.Key(s.ID())
			require.Equal(t, time.Hour, s.Deadline().Sub(s.CreatedAt()))
			require.Equal(t, time.Hour.Milliseconds(), hashInt(t, rdb, key, fDeadline)-hashInt(t, rdb, key, fCreated))
			require.Equal(t, s.Deadline().UnixMilli(), hashInt(t, rdb, key, fDeadline))
			requirePTTL(t, rdb, key, time.Hour)
			require.Equal(t, s.Deadline(), s.ExpiresAt(), "the lifetime is shorter than the idle timeout")

			// A saved session with the store's lifetime, given "remember me" later: the
			// deadline moves to created-at + 30 days, computed in Redis.
			r, _ := st.NewSession()
			require.NoError(t, r.Set("a", 1))
			require.NoError(t, st.Save(ctx, r))
			rkey, _ := st.Key(r.ID())
			created := hashInt(t, rdb, rkey, fCreated)
			require.Equal(t, day.Milliseconds(), hashInt(t, rdb, rkey, fDeadline)-created)
			require.Equal(t, day, r.Lifetime())
			require.NoError(t, r.SetLifetime(month))
			require.NoError(t, r.SetIdleTimeout(7*day))
			require.NoError(t, st.Save(ctx, r))
			require.Equal(t, created+month.Milliseconds(), hashInt(t, rdb, rkey, fDeadline))
			require.Equal(t, month, r.Deadline().Sub(r.CreatedAt()))
			require.Equal(t, month, r.Lifetime())
			requirePTTL(t, rdb, rkey, 7*day)
			// Shortened again, in a load on another app server.
			other := newStore(t, client(t, topo), expiryOptions("exp-life:")...)
			o, err := other.Load(ctx, r.ID())
			require.NoError(t, err)
			require.Equal(t, month, o.Lifetime())
			require.NoError(t, o.SetLifetime(2*time.Hour))
			require.NoError(t, other.Save(ctx, o))
			require.Equal(t, created+(2*time.Hour).Milliseconds(), hashInt(t, rdb, rkey, fDeadline))
			requirePTTL(t, rdb, rkey, 2*time.Hour)
			require.Equal(t, 7*day.Milliseconds(), hashInt(t, rdb, rkey, fIdle), "its idle timeout stays")
		})

		t.Run("it survives Rotate, and a load on another app server", func(t *testing.T) {
			st := newStore(t, rdb, expiryOptions("exp-rot:", store.WithGracePeriod(time.Minute))...)
			other := newStore(t, client(t, topo), expiryOptions("exp-rot:", store.WithGracePeriod(time.Minute))...)
			s, _ := st.NewSession()
			s.SetUser("ada")
			require.NoError(t, s.SetIdleTimeout(2*time.Hour))
			require.NoError(t, s.SetLifetime(month))
			s.SetPersistent(true)
			require.NoError(t, s.Set("a", 1))
			require.NoError(t, st.Save(ctx, s))
			deadline, oldID := s.Deadline(), s.ID()
			require.NoError(t, st.Rotate(ctx, s))
			require.NotEqual(t, oldID, s.ID())
			check := func(t *testing.T, got *store.Session, idle time.Duration, deadline time.Time, persistent bool) {
				t.Helper()
				require.Equal(t, idle, got.IdleTimeout())
				require.Equal(t, deadline, got.Deadline())
				require.Equal(t, deadline.Sub(got.CreatedAt()), got.Lifetime())
				p, ok := got.Persistent()
				require.True(t, ok, "persistence chosen")
				require.Equal(t, persistent, p)
				key, _ := st.Key(got.ID())
				requirePTTL(t, rdb, key, min(idle, time.Until(deadline)))
				require.Equal(t, idle.Milliseconds(), hashInt(t, rdb, key, fIdle))
				require.Equal(t, deadline.UnixMilli(), hashInt(t, rdb, key, fDeadline))
			}
			check(t, s, 2*time.Hour, deadline, true)
			got, err := other.Load(ctx, s.ID())
			require.NoError(t, err)
			require.Equal(t, s.ID(), got.ID())
			check(t, got, 2*time.Hour, deadline, true)
			// Through the old ID's forward pointer, on the other app server.
			got, err = other.Load(ctx, oldID)
			require.NoError(t, err)
			require.Equal(t, s.ID(), got.ID())
			check(t, got, 2*time.Hour, deadline, true)
			// Saved there with a change of something else: they stay.
			require.NoError(t, got.Set("b", 2))
			require.NoError(t, other.Save(ctx, got))
			check(t, got, 2*time.Hour, deadline, true)

			// Changes not saved yet go with the rotation (a "remember me" login).
			require.NoError(t, got.SetLifetime(3*day))
			require.NoError(t, got.SetIdleTimeout(day))
			got.SetPersistent(false)
			require.NoError(t, other.Rotate(ctx, got))
			require.False(t, got.Modified())
			again, err := st.Load(ctx, got.ID())
			require.NoError(t, err)
			check(t, again, day, again.CreatedAt().Add(3*day), false)
			require.Equal(t, s.CreatedAt(), again.CreatedAt(), "a rotation keeps created-at")
		})

		t.Run("the user's index follows a longer lifetime", func(t *testing.T) {
			st := newStore(t, rdb, expiryOptions("exp-idx:")...)
			idx := st.IndexKey("grace")
			// A login with "remember me".
			s, _ := st.NewSession()
			s.SetUser("grace")
			require.NoError(t, s.SetLifetime(month))
			require.NoError(t, st.Save(ctx, s))
			tag := s.ID()
			score, err := rdb.ZScore(ctx, idx, tag).Result()
			require.NoError(t, err)
			require.GreaterOrEqual(t, int64(score), s.Deadline().UnixMilli(), "the index entry lasts as long as the session")
			ttl := rdb.PTTL(ctx, idx).Val()
			require.Greater(t, ttl, time.Until(s.Deadline()), "the index outlives the session")
			// A session of the user given a longer lifetime later.
			l, _ := st.NewSession()
			l.SetUser("grace")
			require.NoError(t, st.Save(ctx, l))
			require.NoError(t, l.SetLifetime(20*day))
			require.NoError(t, st.Save(ctx, l))
			score, err = rdb.ZScore(ctx, idx, l.ID()).Result()
			require.NoError(t, err)
			require.Equal(t, l.Deadline().UnixMilli(), int64(score))
			infos, err := st.Sessions(ctx, "grace")
			require.NoError(t, err)
			require.Len(t, infos, 2)
		})

		t.Run("bad input is a typed error and changes nothing", func(t *testing.T) {
			st := newStore(t, rdb, expiryOptions("exp-bad:")...)
			s, _ := st.NewSession()
			require.NoError(t, s.Set("a", 1))
			require.NoError(t, s.SetIdleTimeout(time.Hour))
			require.NoError(t, st.Save(ctx, s))
			key, _ := st.Key(s.ID())
			before, err := rdb.HGetAll(ctx, key).Result()
			require.NoError(t, err)
			for _, err := range []error{
				s.SetLifetime(month + time.Second), s.SetLifetime(0), s.SetLifetime(-time.Hour),
				s.SetIdleTimeout(7*day + time.Second), s.SetIdleTimeout(0), s.SetIdleTimeout(-time.Second),
			} {
				require.ErrorIs(t, err, store.ErrInvalidExpiry)
				var ee *store.ExpiryError
				require.True(t, errors.As(err, &ee))
			}
			require.False(t, s.Modified())
			require.NoError(t, st.Save(ctx, s))
			after, err := rdb.HGetAll(ctx, key).Result()
			require.NoError(t, err)
			require.Equal(t, before, after, "nothing written")
			require.Equal(t, time.Hour, s.IdleTimeout())
			require.Equal(t, day, s.Lifetime())
			got, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
			require.Equal(t, time.Hour, got.IdleTimeout())
			require.Equal(t, day, got.Lifetime())
		})
	})
}
