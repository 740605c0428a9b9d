package store_test

import (
	"context"
	"flag"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/internal/benchshape"
	"github.com/hasession/hasession/store"
)

// Benchmarks run against the shared standalone container, side by side, so that their
// ratios can be compared: RawGet/RawSet (GET / SET EX of the same bytes as the session) are
// the floor. Run: go test -run '^$' -bench . ./store/

// With -nopipeline the store's benchmarks run with WithAutoPipeline(false): each command
// alone, as the raw go-redis floor sends it.
var noPipeline = flag.Bool("nopipeline", false, "benchmarks: the store without auto-pipelining")

func benchStore(b *testing.B, rdb redis.UniversalClient, opts ...store.Option) *store.Store {
	st, err := store.New(rdb, append(opts, store.WithAutoPipeline(!*noPipeline))...)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// sessionShape returns the attributes of a typical (~300 B, 6 attributes) or large
// (~8 KB) session, the same as `bench compare` measures.
func sessionShape(size string) map[string]any { return benchshape.Session(size) }

// countingConn counts the bytes a client writes to Redis.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.Conn.Write(p)
}

func benchClient(b *testing.B, sent *atomic.Int64) redis.UniversalClient {
	topo := cluster.Shared(b, cluster.KindStandalone)
	o := topo.UniversalOptions()
	o.PoolSize = 32
	var d net.Dialer
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, sent}, nil
	}
	rdb := redis.NewUniversalClient(o)
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// report adds ops/s and bytes sent per op.
func report(b *testing.B, start time.Time, sent *atomic.Int64) {
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "ops/s")
	b.ReportMetric(float64(sent.Load())/float64(b.N), "B-sent/op")
}

func parallel(b *testing.B, sent *atomic.Int64, f func(pb *testing.PB)) {
	b.ReportAllocs()
	b.SetParallelism(8) // 16 clients on 2 cores
	sent.Store(0)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(f)
	b.StopTimer()
	report(b, start, sent)
}

// seed saves n sessions of the shape and returns their IDs.
func seed(b *testing.B, st *store.Store, size string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		s, _ := st.NewSession()
		for k, v := range sessionShape(size) {
			if err := s.Set(k, v); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.Save(context.Background(), s); err != nil {
			b.Fatal(err)
		}
		ids[i] = s.ID()
	}
	return ids
}

// wholeSession is the session's attributes encoded as one value: what a store that
// keeps a session as one string would GET and SET.
func wholeSession(b *testing.B, size string) []byte {
	v, err := codec.MsgPack.Marshal(sessionShape(size))
	if err != nil {
		b.Fatal(err)
	}
	return v
}

var sizes = []string{"typical", "large"}

func BenchmarkRawGet(b *testing.B) {
	for _, size := range sizes {
		b.Run(size, func(b *testing.B) {
			var sent atomic.Int64
			rdb := benchClient(b, &sent)
			val := wholeSession(b, size)
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = "raw:{" + strconv.Itoa(i) + "}"
				rdb.Set(context.Background(), keys[i], val, time.Hour)
			}
			b.ReportMetric(float64(len(val)), "session-B")
			var i atomic.Int64
			parallel(b, &sent, func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := rdb.Get(ctx, keys[i.Add(1)%64]).Bytes(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkRawSet(b *testing.B) {
	for _, size := range sizes {
		b.Run(size, func(b *testing.B) {
			var sent atomic.Int64
			rdb := benchClient(b, &sent)
			val := wholeSession(b, size)
			var i atomic.Int64
			parallel(b, &sent, func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := rdb.Set(ctx, "raw:{"+strconv.Itoa(int(i.Add(1)%64))+"}", val, 30*time.Minute).Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func benchLoad(b *testing.B, touch time.Duration, opts ...store.Option) {
	for _, size := range sizes {
		b.Run(size, func(b *testing.B) {
			var sent atomic.Int64
			rdb := benchClient(b, &sent)
			st := benchStore(b, rdb, append([]store.Option{store.WithTouchInterval(touch)}, opts...)...)
			ids := seed(b, st, size, 64)
			var i atomic.Int64
			parallel(b, &sent, func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := st.Load(ctx, ids[i.Add(1)%64]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkLoad: a hit whose touch is not due (the common, read-only path).
func BenchmarkLoad(b *testing.B) { benchLoad(b, 10*time.Minute) }

// BenchmarkLoadNearCache: BenchmarkLoad with the near-cache on (the 64 sessions stay
// cached: after the first loads, every load is a hit).
func BenchmarkLoadNearCache(b *testing.B) {
	benchLoad(b, 10*time.Minute, store.WithNearCache(store.NearCache{}))
}

// BenchmarkLoadTouch: a hit whose touch is due on every load.
func BenchmarkLoadTouch(b *testing.B) { benchLoad(b, 0) }

// BenchmarkSave: a loaded session with 2 changed attributes.
func BenchmarkSave(b *testing.B) {
	for _, size := range sizes {
		b.Run(size, func(b *testing.B) {
			var sent atomic.Int64
			rdb := benchClient(b, &sent)
			st := benchStore(b, rdb)
			ids := seed(b, st, size, 64)
			var next atomic.Int64
			parallel(b, &sent, func(pb *testing.PB) {
				ctx := context.Background()
				s, err := st.Load(ctx, ids[next.Add(1)%64])
				if err != nil {
					b.Error(err)
					return
				}
				n := 0
				for pb.Next() {
					n++
					_ = s.Set("last", "/page/"+strconv.Itoa(n))
					_ = s.Set("csrf", "token-"+strconv.Itoa(n))
					if err := st.Save(ctx, s); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkCycle: a request that loads the session, reads two attributes and changes one.
func BenchmarkCycle(b *testing.B) {
	for _, size := range sizes {
		b.Run(size, func(b *testing.B) {
			var sent atomic.Int64
			rdb := benchClient(b, &sent)
			st := benchStore(b, rdb)
			ids := seed(b, st, size, 64)
			var i atomic.Int64
			parallel(b, &sent, func(pb *testing.PB) {
				ctx := context.Background()
				var name, last string
				for pb.Next() {
					s, err := st.Load(ctx, ids[i.Add(1)%64])
					if err == nil {
						_ = s.Get("name", &name)
						_ = s.Get("last", &last)
						_ = s.Set("last", "/cart")
						err = st.Save(ctx, s)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSaveOneOfLarge: bytes sent to change 1 attribute of the large session, against
// the session's size.
func BenchmarkSaveOneOfLarge(b *testing.B) {
	var sent atomic.Int64
	rdb := benchClient(b, &sent)
	st := benchStore(b, rdb)
	ids := seed(b, st, "large", 1)
	s, err := st.Load(context.Background(), ids[0])
	if err != nil {
		b.Fatal(err)
	}
	whole := len(wholeSession(b, "large"))
	b.ReportAllocs()
	sent.Store(0)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		n++
		_ = s.Set("last", "/page/"+strconv.Itoa(n))
		if err := st.Save(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	report(b, start, &sent)
	b.ReportMetric(float64(whole), "session-B")
	b.ReportMetric(float64(sent.Load())/float64(b.N)/float64(whole), "sent/session")
}

// BenchmarkMemoryPerSession: Redis memory per typical session, over 100k sessions.
func BenchmarkMemoryPerSession(b *testing.B) {
	const n = 100_000
	var sent atomic.Int64
	rdb := benchClient(b, &sent)
	ctx := context.Background()
	st := benchStore(b, rdb, store.WithPrefix("mem:"))
	for b.Loop() {
		b.StopTimer()
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		before := usedMemory(b, rdb)
		b.StartTimer()
		sem := make(chan struct{}, 32)
		var failed atomic.Int64
		for range n {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				s, _ := st.NewSession()
				for k, v := range sessionShape("typical") {
					_ = s.Set(k, v)
				}
				if st.Save(ctx, s) != nil {
					failed.Add(1)
				}
			}()
		}
		for range cap(sem) {
			sem <- struct{}{}
		}
		b.StopTimer()
		if failed.Load() > 0 {
			b.Fatalf("%d saves failed", failed.Load())
		}
		after := usedMemory(b, rdb)
		b.ReportMetric(float64(after-before)/n, "B/session")
		var one string
		keys, _ := rdb.Keys(ctx, "mem:*").Result()
		if len(keys) != n {
			b.Fatalf("%d keys, want %d", len(keys), n)
		}
		one, _ = rdb.ObjectEncoding(ctx, keys[0]).Result()
		b.Logf("encoding of a typical session: %s; MEMORY USAGE of one: %d B", one, rdb.MemoryUsage(ctx, keys[0]).Val())
		_ = rdb.FlushAll(ctx).Err()
		b.StartTimer()
	}
}

func usedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}
