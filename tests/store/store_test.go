package store_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/store"
)

type profile struct {
	Name    string
	Age     int
	Tags    []string
	Friends map[string]int
	Since   time.Time
}

// eachTopology runs f once per topology kind, as a subtest.
func eachTopology(t *testing.T, f func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient)) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			f(t, topo, client(t, topo))
		})
	}
}

func newStore(t *testing.T, rdb redis.UniversalClient, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.New(rdb, opts...)
	require.NoError(t, err)
	return st
}

// eventually polls cond every 20 ms until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, d, 20*time.Millisecond, msg)
}

func TestTypedValuesRoundTrip(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
			t.Run(c.Name(), func(t *testing.T) {
				st := newStore(t, rdb, store.WithCodec(c), store.WithPrefix("rt:"+c.Name()+":"))
				s, err := st.NewSession()
				require.NoError(t, err)
				since := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
				p := profile{Name: "Ada", Age: 36, Tags: []string{"admin", "ops"}, Friends: map[string]int{"bob": 2}, Since: since}
				require.NoError(t, s.Set("name", "Ada Lovelace"))
				require.NoError(t, s.Set("count", int64(-42)))
				require.NoError(t, s.Set("at", since))
				require.NoError(t, s.Set("profile", p))
				require.NoError(t, s.Set("map", map[string]string{"theme": "dark"}))
				require.NoError(t, s.Set("slice", []int{1, 2, 3}))
				s.SetUser("user-1")
				require.NoError(t, st.Save(ctx, s))
				require.EqualValues(t, 1, s.Version())

				got, err := st.Load(ctx, s.ID())
				require.NoError(t, err)
				var name string
				var count int64
				var at time.Time
				var gp profile
				var m map[string]string
				var sl []int
				require.NoError(t, got.Get("name", &name))
				require.NoError(t, got.Get("count", &count))
				require.NoError(t, got.Get("at", &at))
				require.NoError(t, got.Get("profile", &gp))
				require.NoError(t, got.Get("map", &m))
				require.NoError(t, got.Get("slice", &sl))
				require.Equal(t, "Ada Lovelace", name)
				require.EqualValues(t, -42, count)
				require.True(t, since.Equal(at), "time %v != %v", at, since)
				require.True(t, p.Since.Equal(gp.Since))
				gp.Since = p.Since
				require.Equal(t, p, gp)
				require.Equal(t, map[string]string{"theme": "dark"}, m)
				require.Equal(t, []int{1, 2, 3}, sl)
				require.Equal(t, []string{"at", "count", "map", "name", "profile", "slice"}, got.Keys())
				require.Equal(t, "user-1", got.User())
				require.EqualValues(t, 1, got.Version())
				require.False(t, got.IsNew())
				require.WithinDuration(t, time.Now(), got.CreatedAt(), 10*time.Second)
				require.WithinDuration(t, time.Now().Add(store.DefaultIdleTimeout), got.ExpiresAt(), 10*time.Second)
				require.ErrorIs(t, got.Get("missing", &name), store.ErrNoAttribute)
				require.Error(t, got.Get("name", &count), "a string does not decode into an int")

				// Delete one, change one: only those change.
				got.Delete("slice")
				require.NoError(t, got.Set("count", int64(7)))
				require.NoError(t, st.Save(ctx, got))
				again, err := st.Load(ctx, s.ID())
				require.NoError(t, err)
				require.False(t, again.Has("slice"))
				require.NoError(t, again.Get("count", &count))
				require.EqualValues(t, 7, count)
				require.NoError(t, again.Get("name", &name))
				require.EqualValues(t, 2, again.Version())
			})
		}
	})
}

func TestNewSessionCostsNothingUntilSaved(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		st := newStore(t, rdb)
		s, err := st.NewSession()
		require.NoError(t, err)
		require.True(t, s.IsNew())
		require.NoError(t, st.Save(t.Context(), s), "saving an untouched new session")
		require.Zero(t, n.Load(), "no command for a new, unmodified session")
		_, err = st.Load(t.Context(), s.ID())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestIdleExpiry(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithIdleTimeout(time.Second), store.WithTouchInterval(0))
		s, _ := st.NewSession()
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(ctx, s))
		_, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		// Polled without loading (a load would touch it).
		key, _ := st.Key(s.ID())
		eventually(t, 10*time.Second, func() bool {
			return rdb.Exists(context.Background(), key).Val() == 0
		}, "an idle session expires")
		_, err = st.Load(ctx, s.ID())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestTouchKeepsAnActiveSessionAlive(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithIdleTimeout(time.Second), store.WithTouchInterval(0))
		s, _ := st.NewSession()
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(ctx, s))
		// Loaded every 100 ms for 2.5 s (more than twice the idle timeout): it stays.
		deadline := time.Now().Add(2500 * time.Millisecond)
		for tick := time.NewTicker(100 * time.Millisecond); time.Now().Before(deadline); <-tick.C {
			_, err := st.Load(ctx, s.ID())
			require.NoError(t, err, "an active session does not expire")
		}
	})
}

func TestAbsoluteLifetime(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithIdleTimeout(time.Minute), store.WithLifetime(time.Second), store.WithTouchInterval(0))
		s, _ := st.NewSession()
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(ctx, s))
		require.WithinDuration(t, s.CreatedAt().Add(time.Second), s.ExpiresAt(), 10*time.Millisecond)
		require.Equal(t, s.ExpiresAt(), s.Deadline(), "the lifetime is shorter than the idle timeout")
		require.Equal(t, time.Second, st.Lifetime())
		require.Equal(t, time.Minute, st.IdleTimeout())
		require.False(t, s.LastTouch().IsZero())
		// Active all along, with saves too: still gone after its lifetime.
		eventually(t, 10*time.Second, func() bool {
			got, err := st.Load(context.Background(), s.ID())
			if errors.Is(err, store.ErrNotFound) {
				return true
			}
			require.NoError(t, err)
			_ = got.Set("b", time.Now().UnixNano())
			err = st.Save(context.Background(), got)
			return errors.Is(err, store.ErrNotFound)
		}, "a session past its absolute lifetime is gone")
		require.Less(t, time.Since(s.CreatedAt()), 5*time.Second)
		_, err := st.Load(ctx, s.ID())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// commandCalls returns how many times the node ran the command (INFO commandstats).
func commandCalls(t *testing.T, node *cluster.Node, cmd string) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: node.Addr()})
	defer c.Close()
	info, err := c.Info(t.Context(), "commandstats").Result()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

func TestTouchThrottling(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		for _, c := range []struct {
			name     string
			interval time.Duration
			want     func(loads, writes int64) bool
			scripts  func(loads int64) int64 // touch scripts run: none unless a touch is due
		}{
			{"touch not due: no writes", 10 * time.Minute, func(loads, writes int64) bool { return writes == 0 },
				func(int64) int64 { return 0 }},
			{"touch due on every load: one write per load", 0, func(loads, writes int64) bool { return writes == loads },
				func(loads int64) int64 { return loads }},
		} {
			t.Run(c.name, func(t *testing.T) {
				st := newStore(t, rdb, store.WithTouchInterval(c.interval))
				s, _ := st.NewSession()
				require.NoError(t, s.Set("a", 1))
				require.NoError(t, st.Save(ctx, s))
				key, _ := st.Key(s.ID())
				master, err := topo.MasterForKey(ctx, key)
				require.NoError(t, err)
				before := commandCalls(t, master, "pexpire")
				beforeReads, beforeScripts := commandCalls(t, master, "hgetall"), commandCalls(t, master, "evalsha")
				const loads = 50
				for range loads {
					_, err := st.Load(ctx, s.ID())
					require.NoError(t, err)
				}
				writes := commandCalls(t, master, "pexpire") - before
				require.True(t, c.want(loads, writes), "%d loads made %d TTL writes", loads, writes)
				// (Redis counts the touch script's own HGETALL too.)
				require.Equal(t, loads+c.scripts(loads), commandCalls(t, master, "hgetall")-beforeReads, "one HGETALL per load")
				scripts := commandCalls(t, master, "evalsha") - beforeScripts
				// (The first EVALSHA on a node without the script fails, and an EVAL loads it.)
				want := c.scripts(loads)
				require.True(t, scripts == want || (want > 0 && scripts == want+1), "%d touch scripts for %d loads", scripts, loads)
			})
		}
	})
}

func TestConcurrentSavesOfDifferentAttributesBothSurvive(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb)
		s, _ := st.NewSession()
		require.NoError(t, s.Set("base", 0))
		require.NoError(t, st.Save(ctx, s))
		const writers = 8
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				got, err := st.Load(ctx, s.ID())
				if err == nil {
					_ = got.Set("attr"+strconv.Itoa(i), i)
					err = st.Save(ctx, got)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		got, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		for i := range writers {
			var v int
			require.NoError(t, got.Get("attr"+strconv.Itoa(i), &v), "attr%d kept", i)
			require.Equal(t, i, v)
		}
		require.EqualValues(t, 1+writers, got.Version())
	})
}

// requireNoSession: nothing at key, or the tombstone a logout leaves (see destroy.lua):
// no session metadata but the user it kept, and no attribute.
func requireNoSession(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	fields, err := rdb.HKeys(t.Context(), key).Result()
	require.NoError(t, err)
	if len(fields) == 0 {
		return
	}
	require.Contains(t, fields, "_r", "a tombstone, not a session: %v", fields)
	for _, f := range fields {
		require.Contains(t, []string{"_r", "_n", "_u", "_s", "_R"}, f, "the tombstone holds no session field: %v", fields)
	}
}

func TestSaveAfterDestroyIsNotFoundAndWritesNothing(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb)
		s, _ := st.NewSession()
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(ctx, s))
		loaded, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		require.NoError(t, st.Destroy(ctx, s.ID()))
		require.NoError(t, st.Destroy(ctx, s.ID()), "destroying twice is fine")

		require.NoError(t, loaded.Set("b", 2))
		require.ErrorIs(t, st.Save(ctx, loaded), store.ErrNotFound)
		key, _ := st.Key(s.ID())
		requireNoSession(t, rdb, key)
		_, err = st.Load(ctx, s.ID())
		require.ErrorIs(t, err, store.ErrNotFound)

		require.NoError(t, st.DestroySession(ctx, loaded))
		require.ErrorIs(t, st.Save(ctx, loaded), store.ErrDestroyed)
	})
}

func TestVersionConflict(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithVersionCheck(true))
		s, _ := st.NewSession()
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(ctx, s))
		a, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		b, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		require.NoError(t, a.Set("a", 2))
		require.NoError(t, st.Save(ctx, a))
		require.NoError(t, b.Set("a", 3))
		require.ErrorIs(t, st.Save(ctx, b), store.ErrConflict)
		got, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		var v int
		require.NoError(t, got.Get("a", &v))
		require.Equal(t, 2, v, "the conflicting save wrote nothing")
		// The winner saves again without conflict: its version followed.
		require.NoError(t, a.Set("a", 4))
		require.NoError(t, st.Save(ctx, a))
	})
}

func TestRotateWithGracePeriod(t *testing.T) {
	eachTopology(t, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithGracePeriod(time.Second))
		s, _ := st.NewSession()
		require.NoError(t, s.Set("cart", []string{"book"}))
		require.NoError(t, st.Save(ctx, s))
		oldID, created := s.ID(), s.CreatedAt()

		// Login: user set, pending change, new ID.
		s.SetUser("alice")
		require.NoError(t, s.Set("role", "member"))
		require.NoError(t, st.Rotate(ctx, s))
		require.NotEqual(t, oldID, s.ID())
		require.False(t, s.Modified())

		fresh, err := st.Load(ctx, s.ID())
		require.NoError(t, err)
		require.Equal(t, "alice", fresh.User())
		require.True(t, created.Equal(fresh.CreatedAt()), "rotation keeps the absolute lifetime")
		var role string
		require.NoError(t, fresh.Get("role", &role))
		require.Equal(t, "member", role)

		var cart []string
		require.NoError(t, fresh.Get("cart", &cart))
		require.Equal(t, []string{"book"}, cart)
		// The login changed who the session belongs to: the old ID leads nowhere
		// (against session fixation).
		_, err = st.Load(ctx, oldID)
		require.ErrorIs(t, err, store.ErrNotFound)

		// A rotation that keeps the user (a privilege change): a request still carrying
		// the old ID lands on the new session.
		oldID = s.ID()
		require.NoError(t, st.Rotate(ctx, s))
		viaOld, err := st.Load(ctx, oldID)
		require.NoError(t, err)
		require.Equal(t, s.ID(), viaOld.ID())
		require.NoError(t, viaOld.Get("cart", &cart))
		require.Equal(t, []string{"book"}, cart)

		if topo.Kind() == cluster.KindCluster {
			oldKey, _ := st.Key(oldID)
			newKey, _ := st.Key(s.ID())
			require.NotEqual(t, cluster.Slot(oldKey), cluster.Slot(newKey), "old and new live in different slots here")
		}
		// After the grace period the old ID is gone; the new one stays.
		eventually(t, 10*time.Second, func() bool {
			_, err := st.Load(context.Background(), oldID)
			return errors.Is(err, store.ErrNotFound)
		}, "the old ID stops working after the grace period")
		_, err = st.Load(ctx, s.ID())
		require.NoError(t, err)
	})
}

func TestEveryKeyOfASessionMapsToOneSlot(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	rdb := client(t, topo)
	ctx := t.Context()
	for _, opts := range [][]store.Option{nil, {store.WithHashedIDs([]byte("0123456789abcdef0123456789abcdef"))}} {
		st := newStore(t, rdb, opts...)
		s, _ := st.NewSession()
		key, err := st.Key(s.ID())
		require.NoError(t, err)
		tag := key[strings.IndexByte(key, '{')+1 : len(key)-1]
		want, err := rdb.ClusterKeySlot(ctx, tag).Result()
		require.NoError(t, err)
		got, err := rdb.ClusterKeySlot(ctx, key).Result()
		require.NoError(t, err)
		require.Equal(t, want, got, "key %s hashes by its tag", key)
		require.EqualValues(t, cluster.Slot(key), got)
		if len(opts) > 0 {
			require.NotContains(t, key, s.ID(), "hashed IDs keep the raw ID out of Redis")
		}
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(ctx, s))
		_, err = st.Load(ctx, s.ID())
		require.NoError(t, err)
	}
}

func TestMalformedIDSendsNothing(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		st := newStore(t, rdb)
		for _, id := range []string{
			"", "abc", "{evil}", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", // v1
			"F47AC10B-58CC-4372-A567-0E02B2C3D479", "f47ac10b-58cc-4372-a567-0e02b2c3d47 ",
			"f47ac10b-58cc-4372-a567-0e02b2c3d479}", "f47ac10b58cc4372a5670e02b2c3d479",
		} {
			_, err := st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrInvalidID, "%q", id)
			require.ErrorIs(t, st.Destroy(ctx, id), store.ErrInvalidID)
			_, err = st.Key(id)
			require.ErrorIs(t, err, store.ErrInvalidID)
		}
		require.Zero(t, n.Load(), "no command reached Redis")
	})
}

func TestOversizedSessionIsATypedErrorAndSendsNothing(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		var n atomic.Int64
		rdb.AddHook(cluster.CommandCounter{N: &n})
		st := newStore(t, rdb, store.WithSizeLimit(1024))
		s, _ := st.NewSession()
		require.NoError(t, s.Set("blob", strings.Repeat("x", 2000)))
		err := st.Save(ctx, s)
		var se *store.SizeError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 1024, se.Limit)
		require.Greater(t, se.Size, 2000)
		require.Zero(t, n.Load(), "nothing sent")
		// Shrink it and it saves.
		require.NoError(t, s.Set("blob", "small"))
		require.NoError(t, st.Save(ctx, s))
	})
}

// Sessions of very different sizes, loaded in an order that makes every size guess of
// the reply reader wrong at least once (small after large, larger than any before, an
// error reply and a forward pointer after a large session), and then all at once.
func TestSessionsOfEverySizeLoadAlike(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithSizeLimit(1<<20))
		sizes := []int{10, 3000, 100, 40000, 2500, 300000, 0, 5000}
		ids := make([]string, len(sizes))
		for i, n := range sizes {
			s, _ := st.NewSession()
			require.NoError(t, s.Set("blob", strings.Repeat(strconv.Itoa(i), n)))
			for j := range 40 {
				require.NoError(t, s.Set("k"+strconv.Itoa(j), j*n))
			}
			require.NoError(t, st.Save(ctx, s))
			ids[i] = s.ID()
		}
		check := func(i int) error {
			got, err := st.Load(ctx, ids[i])
			if err != nil {
				return err
			}
			var blob string
			if err := got.Get("blob", &blob); err != nil {
				return err
			}
			if blob != strings.Repeat(strconv.Itoa(i), sizes[i]) {
				return errors.New("session " + strconv.Itoa(i) + ": blob of " + strconv.Itoa(len(blob)) + " bytes, want " + strconv.Itoa(sizes[i]))
			}
			var last int
			if err := got.Get("k39", &last); err != nil || last != 39*sizes[i] {
				return errors.New("session " + strconv.Itoa(i) + ": k39 wrong")
			}
			return nil
		}
		for range 2 {
			for i := range sizes {
				require.NoError(t, check(i))
			}
		}

		// An error reply (WRONGTYPE) right after a large session.
		str, _ := st.NewSession()
		strKey, _ := st.Key(str.ID())
		require.NoError(t, rdb.Set(ctx, strKey, "hello", time.Minute).Err())
		require.NoError(t, check(5))
		_, err := st.Load(ctx, str.ID())
		require.ErrorIs(t, err, store.ErrCorrupt)

		// A forward pointer right after a large session.
		require.NoError(t, check(5))
		rotated, err := st.Load(ctx, ids[1])
		require.NoError(t, err)
		require.NoError(t, st.Rotate(ctx, rotated))
		require.NoError(t, check(5))
		viaOld, err := st.Load(ctx, ids[1])
		require.NoError(t, err)
		require.Equal(t, rotated.ID(), viaOld.ID())
		ids[1] = rotated.ID()

		// All at once, from 8 goroutines.
		var wg sync.WaitGroup
		errs := make(chan error, 8*len(sizes))
		for g := range 8 {
			wg.Go(func() {
				for k := range 4 * len(sizes) {
					if err := check((g + k) % len(sizes)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestCorruptAndForeignData(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb)
		put := func(f func(key string)) string {
			s, _ := st.NewSession()
			key, _ := st.Key(s.ID())
			f(key)
			return s.ID()
		}
		cases := map[string]string{
			"a string where the hash should be": put(func(k string) { rdb.Set(ctx, k, "hello", time.Minute) }),
			"a list":                            put(func(k string) { rdb.RPush(ctx, k, "a"); rdb.Expire(ctx, k, time.Minute) }),
			"a hash without metadata":           put(func(k string) { rdb.HSet(ctx, k, "foo", "bar"); rdb.Expire(ctx, k, time.Minute) }),
			"a non-numeric version": put(func(k string) {
				rdb.HSet(ctx, k, "_v", "x", "_c", "1", "_a", "99999999999999", "_t", "1", "_k", "msgpack")
				rdb.Expire(ctx, k, time.Minute)
			}),
		}
		for name, id := range cases {
			t.Run(name, func(t *testing.T) {
				_, err := st.Load(ctx, id)
				require.ErrorIs(t, err, store.ErrCorrupt)
				var ce *store.CorruptError
				require.ErrorAs(t, err, &ce)
				key, _ := st.Key(id)
				require.Equal(t, key, ce.Key)
				require.Positive(t, rdb.Exists(ctx, key).Val(), "the data is left untouched")
			})
		}
	})
}

func TestCodecMismatch(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		mp := newStore(t, rdb)
		js := newStore(t, rdb, store.WithCodec(codec.JSON))
		s, _ := mp.NewSession()
		require.NoError(t, s.Set("a", "msgpack value"))
		require.NoError(t, mp.Save(ctx, s))

		_, err := js.Load(ctx, s.ID())
		require.ErrorIs(t, err, store.ErrCodecMismatch)
		var ce *store.CodecError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "msgpack", ce.Stored)
		require.Equal(t, "json", ce.Want)

		// A JSON store's session object cannot write over it either.
		loaded, err := mp.Load(ctx, s.ID())
		require.NoError(t, err)
		jsSession, _ := js.NewSession()
		_ = jsSession
		require.NoError(t, loaded.Set("b", 1))
		require.NoError(t, mp.Save(ctx, loaded))
		var v string
		again, err := mp.Load(ctx, s.ID())
		require.NoError(t, err)
		require.NoError(t, again.Get("a", &v))
		require.Equal(t, "msgpack value", v)
	})
}

func TestCancelledAndExpiredContexts(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		st := newStore(t, rdb)
		s, _ := st.NewSession()
		require.NoError(t, s.Set("a", 1))
		require.NoError(t, st.Save(t.Context(), s))

		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := st.Load(cancelled, s.ID())
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, s.Set("a", 2))
		require.ErrorIs(t, st.Save(cancelled, s), context.Canceled)
		require.ErrorIs(t, st.Destroy(cancelled, s.ID()), context.Canceled)

		expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel2()
		_, err = st.Load(expired, s.ID())
		require.ErrorIs(t, err, context.DeadlineExceeded)

		// Nothing was lost: the session is as it was, and the pending change still saves.
		require.NoError(t, st.Save(t.Context(), s))
		got, err := st.Load(t.Context(), s.ID())
		require.NoError(t, err)
		var v int
		require.NoError(t, got.Get("a", &v))
		require.Equal(t, 2, v)
	})
}

// Destroy leaves foreign data at a session's key untouched and says so with a
// *CorruptError; every shape the store itself writes there is destroyed as before.
func TestDestroyLeavesForeignDataUntouched(t *testing.T) {
	eachTopology(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("destroy-foreign:"))
		put := func(f func(key string)) string {
			s, _ := st.NewSession()
			key, _ := st.Key(s.ID())
			f(key)
			require.NoError(t, rdb.Expire(ctx, key, time.Minute).Err())
			return s.ID()
		}
		meta := []any{"_v", "1", "_c", "1", "_a", "99999999999999", "_t", "1", "_k", "msgpack", "_s", "x"}
		foreign := map[string]string{
			"a string": put(func(k string) { rdb.Set(ctx, k, "hello", 0) }),
			"a list":   put(func(k string) { rdb.RPush(ctx, k, "a") }),
			"a set":    put(func(k string) { rdb.SAdd(ctx, k, "a") }),
			"a hash with unknown fields": put(func(k string) {
				rdb.HSet(ctx, k, "foo", "bar", "_v", "1")
			}),
			"a session with one unknown field": put(func(k string) {
				rdb.HSet(ctx, k, append(meta, ".a", "\xa1x", "_x", "1")...)
			}),
			"a hash of attributes without metadata": put(func(k string) { rdb.HSet(ctx, k, ".a", "\xa1x") }),
			"a session missing its deadline": put(func(k string) {
				rdb.HSet(ctx, k, "_v", "1", "_c", "1", "_t", "1", "_k", "msgpack")
			}),
		}
		for name, id := range foreign {
			t.Run(name, func(t *testing.T) {
				key, _ := st.Key(id)
				before, err := rdb.Dump(ctx, key).Result()
				require.NoError(t, err)
				err = st.Destroy(ctx, id)
				require.ErrorIs(t, err, store.ErrCorrupt)
				var ce *store.CorruptError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, key, ce.Key)
				after, err := rdb.Dump(ctx, key).Result()
				require.NoError(t, err, "the data is still there")
				require.Equal(t, before, after, "the data is left untouched")
			})
		}

		// The store's own shapes are not foreign.
		saved := func(user string) *store.Session {
			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("a", "x"))
			if user != "" {
				s.SetUser(user)
			}
			require.NoError(t, st.Save(ctx, s))
			return s
		}
		gone := func(t *testing.T, id string) {
			_, err := st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
		t.Run("a session", func(t *testing.T) {
			s := saved("")
			require.NoError(t, st.Destroy(ctx, s.ID()))
			gone(t, s.ID())
		})
		t.Run("a user's session", func(t *testing.T) {
			s := saved("destroy-foreign-user")
			require.NoError(t, st.Destroy(ctx, s.ID()))
			gone(t, s.ID())
		})
		t.Run("a forward pointer and its session", func(t *testing.T) {
			s := saved("destroy-foreign-user")
			old := s.ID()
			require.NoError(t, st.Rotate(ctx, s))
			require.NoError(t, st.Destroy(ctx, old))
			gone(t, old)
			gone(t, s.ID())
		})
		t.Run("a revoked session's tombstone", func(t *testing.T) {
			s := saved("destroy-foreign-revoked")
			require.NoError(t, st.Revoke(ctx, "destroy-foreign-revoked", s.ID()))
			key, _ := st.Key(s.ID())
			require.Equal(t, "hash", rdb.Type(ctx, key).Val(), "a tombstone")
			require.NoError(t, st.Destroy(ctx, s.ID()))
			gone(t, s.ID())
		})
		t.Run("a session marked by a rotation in flight", func(t *testing.T) {
			s := saved("destroy-foreign-user")
			target, _ := st.NewSession()
			key, _ := st.Key(s.ID())
			tkey, _ := st.Key(target.ID())
			tag := tkey[strings.Index(tkey, "{")+1 : len(tkey)-1]
			require.NoError(t, rdb.HSet(ctx, key, "_n", tag).Err()) // as pending.lua marks it
			require.NoError(t, st.Destroy(ctx, s.ID()))
			gone(t, s.ID())
			gone(t, target.ID())
		})
		t.Run("a missing session", func(t *testing.T) {
			s, _ := st.NewSession()
			require.NoError(t, st.Destroy(ctx, s.ID()))
		})
	})
}
