package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/scsstore"
	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/cli"
)

// scsToken returns a new scs session token: 32 random bytes in unpadded base64url, as
// scs's generateToken makes them.
func scsToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeLegacySCS writes n sessions as scs's goredisstore does — the key
// <legacyPrefix><token>, the bytes scs.GobCodec encodes, PX the time to the deadline —
// in pipelines of 1000 (a Cluster client splits them by node), and returns their bytes
// by key.
func writeLegacySCS(tb testing.TB, rdb redis.UniversalClient, legacyPrefix string, n int, lifetime time.Duration) map[string][]byte {
	tb.Helper()
	ctx := context.Background()
	out := make(map[string][]byte, n)
	deadline := time.Now().Add(lifetime)
	for i := 0; i < n; i += 1000 {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := i; j < min(i+1000, n); j++ {
				b, err := scs.GobCodec{}.Encode(deadline, map[string]any{"user": fmt.Sprintf("user-%d", j), "cart": []string{"apple", "pear"}})
				if err != nil {
					return err
				}
				key := legacyPrefix + scsToken()
				out[key] = b
				p.Set(ctx, key, b, time.Until(deadline))
			}
			return nil
		})
		require.NoError(tb, err)
	}
	return out
}

// keyState is what a key holds: its serialized value (DUMP, so any type compares) and
// its TTL.
type keyState struct {
	dump string
	ttl  time.Duration
}

// keysMatching returns the state of every key matching pattern, on every master.
func keysMatching(t *testing.T, rdb redis.UniversalClient, pattern string) map[string]keyState {
	t.Helper()
	ctx := t.Context()
	out := map[string]keyState{}
	scan := func(ctx context.Context, c *redis.Client) error {
		var keys []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			d, err := c.Dump(ctx, k).Result()
			if err != nil {
				return fmt.Errorf("DUMP %s: %w", k, err)
			}
			ttl, err := c.PTTL(ctx, k).Result()
			if err != nil {
				return err
			}
			out[k] = keyState{d, ttl}
		}
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		var mu = make(chan struct{}, 1)
		err = c.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu <- struct{}{}
			defer func() { <-mu }()
			return scan(ctx, c)
		})
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("client %T", rdb)
	}
	require.NoError(t, err)
	return out
}

// cancelOn is a writer that calls cancel once what was written contains s.
type cancelOn struct {
	s      string
	cancel context.CancelFunc
	b      strings.Builder
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.s) {
		w.cancel()
	}
	return len(p), nil
}

// importResult is import's --json output, as the tests read it.
type importResult struct {
	DryRun      bool `json:"dry_run"`
	Interrupted bool
	Legacy      int64 `json:"legacy_keys"`
	Imported    int64
	Skipped     int64
	Corrupt     int64
	CorruptKeys []struct{ Key, Reason string } `json:"corrupt_keys"`
	Nodes       []struct{ Addr string }
}

func TestCLIImport(t *testing.T) {
	eachTopology(t, cluster.Kinds, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		// goredisstore's keys and the adapter's share the prefix, as they do by default:
		// the legacy keys are <p><token>, the adapter's <p>{<token>}.
		p := "cli-import:" + rand.Text()[:6] + ":scs:session:"
		flags := []string{"--from", "scs", "--legacy-prefix", p, "--adapter-prefix", p}
		const n = 60
		legacy := writeLegacySCS(t, rdb, p, n, time.Hour)

		// One session from scs itself, by its SessionManager and goredisstore (which
		// takes a *redis.Client: not on a Cluster).
		sm := scs.New()
		sm.Lifetime = 2 * time.Hour
		var byScs string
		if c, ok := rdb.(*redis.Client); ok {
			sm.Store = goredisstore.NewWithPrefix(c, p)
			sctx, err := sm.Load(ctx, "")
			require.NoError(t, err)
			sm.Put(sctx, "user", "alice")
			byScs, _, err = sm.Commit(sctx)
			require.NoError(t, err)
			b, err := rdb.Get(ctx, p+byScs).Bytes()
			require.NoError(t, err)
			legacy[p+byScs] = b
		}
		sessions := int64(len(legacy))

		// A value that does not decode, and a key of the wrong type.
		badValue, wrongType := p+scsToken(), p+scsToken()
		require.NoError(t, rdb.Set(ctx, badValue, "not gob", time.Hour).Err())
		require.NoError(t, rdb.HSet(ctx, wrongType, "deadline", "tomorrow").Err())
		before := keysMatching(t, rdb, p+"*")
		require.Len(t, before, len(legacy)+2)

		t.Run("a dry run reports what it would do and writes nothing", func(t *testing.T) {
			r := run(t, "", args("import", topo, append(flags, "--dry-run", "--json")...)...)
			require.Equal(t, 0, r.code, r.stderr)
			got := decode[importResult](t, r)
			require.True(t, got.DryRun)
			require.Equal(t, sessions+2, got.Legacy)
			require.Equal(t, sessions, got.Imported)
			require.Zero(t, got.Skipped)
			require.EqualValues(t, 2, got.Corrupt)
			after := keysMatching(t, rdb, p+"*")
			require.Len(t, after, len(before))
			for k, s := range before {
				require.Equal(t, s.dump, after[k].dump, k)
			}
			require.Contains(t, r.stderr, "import scs (dry run)")
		})
		t.Run("interrupted, it prints the counts so far and exits 1", func(t *testing.T) {
			// Ctrl-C as the counting pass ends: the context is cancelled when the
			// command says how many keys it counted.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var out strings.Builder
			stderr := &cancelOn{s: "session key(s) in", cancel: cancel}
			code := cli.Main(ctx, args("import", topo, append(flags, "--json")...), strings.NewReader(""), &out, stderr)
			t.Logf("%s%s(exit status %d)", out.String(), stderr.b.String(), code)
			require.Equal(t, 1, code)
			got := decode[importResult](t, result{stdout: out.String()})
			require.True(t, got.Interrupted)
			require.Equal(t, sessions+2, got.Legacy)
			require.Contains(t, stderr.b.String(), cli.ErrInterrupted.Error())
		})
		t.Run("moves the sessions and leaves the corrupt ones as they are", func(t *testing.T) {
			r := run(t, "", args("import", topo, flags...)...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Regexp(t, fmt.Sprintf(`total\s+%d\s+%d\s+%d\s+0\s+2\s`, sessions+2, sessions+2, sessions), r.stdout)
			require.Contains(t, r.stdout, badValue)
			require.Contains(t, r.stdout, wrongType)
			require.Regexp(t, fmt.Sprintf(`import scs( \[#+\])? %d/%d \(100%%\)`, sessions+2, sessions+2), r.stderr)

			after := keysMatching(t, rdb, p+"*")
			for _, k := range []string{badValue, wrongType} {
				require.Equal(t, before[k].dump, after[k].dump, "%s left byte-identical", k)
			}
			for k, b := range legacy {
				require.NotContains(t, after, k, "legacy key gone")
				token := strings.TrimPrefix(k, p)
				moved := p + "{" + token + "}"
				got, err := rdb.Get(ctx, moved).Bytes()
				require.NoError(t, err, moved)
				require.Equal(t, b, got, moved)
				require.InDelta(t, before[k].ttl.Seconds(), after[moved].ttl.Seconds(), 30, "%s keeps its TTL", moved)
			}
			require.Len(t, after, len(legacy)+2, "the moved sessions and the two corrupt keys")
		})
		t.Run("the scs adapter reads the moved sessions", func(t *testing.T) {
			st := newStore(t, rdb)
			a, err := scsstore.New(st, scsstore.WithPrefix(p))
			require.NoError(t, err)
			for k, b := range legacy {
				got, ok, err := a.FindCtx(ctx, strings.TrimPrefix(k, p))
				require.NoError(t, err)
				require.True(t, ok, k)
				require.Equal(t, b, got)
			}
			if byScs != "" {
				sm.Store = a
				sctx, err := sm.Load(ctx, byScs)
				require.NoError(t, err)
				require.Equal(t, "alice", sm.GetString(sctx, "user"))
			}
		})
		t.Run("run again, it imports nothing: idempotent", func(t *testing.T) {
			before := keysMatching(t, rdb, p+"*")
			r := run(t, "", args("import", topo, append(flags, "--json")...)...)
			require.Equal(t, 0, r.code, r.stderr)
			got := decode[importResult](t, r)
			require.Zero(t, got.Imported)
			require.Zero(t, got.Skipped)
			require.EqualValues(t, 2, got.Corrupt)
			require.Len(t, got.CorruptKeys, 2)
			require.ElementsMatch(t, []string{badValue, wrongType}, []string{got.CorruptKeys[0].Key, got.CorruptKeys[1].Key})
			for _, c := range got.CorruptKeys {
				require.NotEmpty(t, c.Reason)
			}
			after := keysMatching(t, rdb, p+"*")
			require.Len(t, after, len(before))
			wantNodes := 1
			if topo.Kind() == cluster.KindCluster {
				wantNodes = 3
			}
			require.Len(t, got.Nodes, wantNodes)
		})
		t.Run("an unknown layout, or a prefix it cannot use, is a usage error", func(t *testing.T) {
			r := run(t, "", args("import", topo, "--from", "gorilla")...)
			require.Equal(t, 2, r.code)
			require.Contains(t, r.stderr, `unknown layout --from "gorilla"`)
			r = run(t, "", args("import", topo, "--from", "scs", "--adapter-prefix", "a{b}:")...)
			require.Equal(t, 2, r.code)
			require.Contains(t, r.stderr, "brace")
		})
	})
}

// onWrite is a writer that runs f (once) when what was written contains s, before the
// Write returns: the command waits for it.
type onWrite struct {
	s    string
	f    func()
	done bool
	b    strings.Builder
}

func (w *onWrite) Write(p []byte) (int, error) {
	w.b.Write(p)
	if !w.done && strings.Contains(w.b.String(), w.s) {
		w.done = true
		w.f()
	}
	return len(p), nil
}

// TestCLIImportFailover kills the master import is about to SCAN first (on a Cluster of
// its own): the SCAN fails, import waits for the replica's promotion and scans the new
// master from the start, and every session is moved.
func TestCLIImportFailover(t *testing.T) {
	ctx := t.Context()
	c, err := cluster.RunCluster(ctx)
	cluster.Cleanup(t, c)
	require.NoError(t, err)
	rdb := cluster.Client(t, c, nil)
	p := "cli-import-failover:scs:session:"
	const n = 3000
	legacy := writeLegacySCS(t, rdb, p, n, time.Hour)
	// Every master's replica has the sessions before the kill.
	require.NoError(t, rdb.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Wait(ctx, 1, 5*time.Second).Err()
	}))
	masters, err := c.Masters(ctx)
	require.NoError(t, err)
	first := masters[0]
	for _, m := range masters {
		if m.Addr() < first.Addr() {
			first = m
		}
	}

	var out strings.Builder
	var fault *cluster.Fault
	stderr := &onWrite{s: "session key(s) in", f: func() {
		fault, err = c.Inject(ctx, cluster.FaultKill, first, time.Minute)
		t.Logf("killed %s: %v", first, err)
	}}
	code := cli.Main(ctx, args("import", c, "--from", "scs", "--legacy-prefix", p, "--adapter-prefix", p, "--timeout", "1s", "--json"),
		strings.NewReader(""), &out, stderr)
	t.Logf("%s%s(exit status %d)", out.String(), stderr.b.String(), code)
	require.True(t, stderr.done)
	require.NoError(t, err, "the kill")
	require.NoError(t, fault.Heal(ctx), "the killed master restarts and rejoins as a replica")
	require.Equal(t, 0, code)
	got := decode[struct {
		Imported, Skipped, Corrupt int64
		Nodes                      []struct {
			Addr     string
			Restarts int
		}
	}](t, result{stdout: out.String()})
	require.EqualValues(t, n, got.Imported)
	require.Zero(t, got.Corrupt)
	require.Len(t, got.Nodes, 3)
	require.GreaterOrEqual(t, got.Nodes[0].Restarts, 1, "the first master's scan started over")
	require.NotEqual(t, first.Addr(), got.Nodes[0].Addr, "on the promoted replica")

	require.NoError(t, c.WaitHealthy(ctx))
	after := cluster.Client(t, c, nil) // a client that never knew the killed master as one
	exists := map[string]*redis.IntCmd{}
	gets := map[string]*redis.StringCmd{}
	_, err = after.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for k := range legacy {
			exists[k] = pl.Exists(ctx, k)
			gets[k] = pl.Get(ctx, p+"{"+strings.TrimPrefix(k, p)+"}")
		}
		return nil
	})
	require.NoError(t, err)
	for k, b := range legacy {
		require.Zero(t, exists[k].Val(), "legacy key %s gone", k)
		require.Equal(t, string(b), gets[k].Val(), "moved %s", k)
	}
}
