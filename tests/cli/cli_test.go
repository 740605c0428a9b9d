package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/cli"
	"github.com/hasession/hasession/store"
)

// result is one run of the CLI.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the CLI in-process with stdin as its input and logs what it printed.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	t.Logf("$ hasession %s\n%s%s(exit status %d)", strings.Join(args, " "), out.String(), errb.String(), code)
	return result{out.String(), errb.String(), code}
}

// deployment returns the flags that name the topology: its nodes' addresses (a Cluster's,
// the single server's) or the sentinels' and the master's name.
func deployment(topo cluster.Topology) []string {
	o := topo.UniversalOptions()
	flags := []string{"--addrs", strings.Join(o.Addrs, ",")}
	if o.MasterName != "" {
		flags = append(flags, "--sentinel-master", o.MasterName)
	}
	return flags
}

// args joins the command, the deployment's flags and more arguments.
func args(cmd string, topo cluster.Topology, more ...string) []string {
	return append(append([]string{cmd}, deployment(topo)...), more...)
}

// eachTopology runs f on a shared topology of each kind.
func eachTopology(t *testing.T, kinds []cluster.Kind, f func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient)) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			f(t, topo, cluster.Client(t, topo, nil))
		})
	}
}

// prefix returns a key prefix of the test's own.
func prefix(t *testing.T) string {
	return "cli:" + strings.ReplaceAll(t.Name(), "/", ":") + ":" + rand.Text()[:6] + ":"
}

func newStore(t *testing.T, rdb redis.UniversalClient, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.New(rdb, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// login saves a session of user with a cart and a device, as a login handler would.
func login(t *testing.T, st *store.Store, user, device string) *store.Session {
	t.Helper()
	ctx := t.Context()
	s, err := st.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Set("cart", []string{"apple", "pear"}))
	require.NoError(t, st.Save(ctx, s))
	s.SetUser(user)
	require.NoError(t, s.Set("device", device))
	require.NoError(t, st.Rotate(ctx, s))
	return s
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), "stdout: %s", r.stdout)
	return v
}

func TestCLIInspect(t *testing.T) {
	eachTopology(t, cluster.Kinds, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		p := prefix(t)
		st := newStore(t, rdb, store.WithPrefix(p))
		s := login(t, st, "alice", "laptop")
		key, err := st.Key(s.ID())
		require.NoError(t, err)
		// A TTL well under the idle timeout: a touch would extend it.
		require.NoError(t, rdb.PExpire(t.Context(), key, 10*time.Minute).Err())
		before, err := rdb.HGetAll(t.Context(), key).Result()
		require.NoError(t, err)

		t.Run("shows metadata and attribute names, not values", func(t *testing.T) {
			r := run(t, "", args("inspect", topo, "--prefix", p, s.ID())...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, key)
			require.Contains(t, r.stdout, "alice")
			require.Contains(t, r.stdout, "cart")
			require.Contains(t, r.stdout, "device")
			require.Contains(t, r.stdout, "msgpack")
			require.NotContains(t, r.stdout, "laptop")
			require.NotContains(t, r.stdout, "apple")
		})
		t.Run("shows values with --values", func(t *testing.T) {
			r := run(t, "", args("inspect", topo, "--prefix", p, "--values", s.ID())...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, `["apple","pear"]`)
			require.Contains(t, r.stdout, `"laptop"`)
		})
		t.Run("prints JSON with --json", func(t *testing.T) {
			r := run(t, "", args("inspect", topo, "--prefix", p, "--json", s.ID())...)
			require.Equal(t, 0, r.code, r.stderr)
			got := decode[map[string]any](t, r)
			require.Equal(t, s.ID(), got["id"])
			require.Equal(t, "alice", got["user"])
			require.Equal(t, []any{"cart", "device"}, got["attributes"])
			require.EqualValues(t, s.Version(), got["version"])
			require.NotContains(t, got, "values")
			require.Greater(t, got["ttl_ms"], float64(0))

			r = run(t, "", args("inspect", topo, "--prefix", p, "--json", "--values", s.ID())...)
			require.Equal(t, 0, r.code, r.stderr)
			got = decode[map[string]any](t, r)
			require.Equal(t, map[string]any{"cart": []any{"apple", "pear"}, "device": "laptop"}, got["values"])
		})
		t.Run("follows a rotation's forward pointer", func(t *testing.T) {
			s2 := login(t, st, "bob", "phone")
			old := s2.ID()
			require.NoError(t, st.Rotate(t.Context(), s2))
			r := run(t, "", args("inspect", topo, "--prefix", p, "--json", old)...)
			require.Equal(t, 0, r.code, r.stderr)
			got := decode[map[string]any](t, r)
			require.Equal(t, s2.ID(), got["id"])
			require.Equal(t, []any{old}, got["forwarded_from"])
		})
		t.Run("writes nothing", func(t *testing.T) {
			after, err := rdb.HGetAll(t.Context(), key).Result()
			require.NoError(t, err)
			require.Equal(t, before, after)
			ttl, err := rdb.PTTL(t.Context(), key).Result()
			require.NoError(t, err)
			require.LessOrEqual(t, ttl, 10*time.Minute, "not touched")
		})
		t.Run("says a missing session is not found", func(t *testing.T) {
			id := newID(t, st)
			r := run(t, "", args("inspect", topo, "--prefix", p, id)...)
			require.Equal(t, 1, r.code)
			require.Contains(t, r.stderr, id+": not found")
		})
		t.Run("reports a revoked session's tombstone", func(t *testing.T) {
			s3 := login(t, st, "carol", "tablet")
			require.NoError(t, st.Revoke(t.Context(), "carol", s3.ID()))
			r := run(t, "", args("inspect", topo, "--prefix", p, s3.ID())...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "tombstone")
		})
	})
}

// newID returns a session ID that was never saved.
func newID(t *testing.T, st *store.Store) string {
	t.Helper()
	s, err := st.NewSession()
	require.NoError(t, err)
	return s.ID()
}

func TestCLISessions(t *testing.T) {
	eachTopology(t, cluster.Kinds, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		p := prefix(t)
		st := newStore(t, rdb, store.WithPrefix(p))
		devices := []string{"laptop", "phone", "tablet"}
		want := map[string]string{}
		for _, d := range devices {
			s := login(t, st, "alice", d)
			ref, err := st.Ref(s.ID())
			require.NoError(t, err)
			want[ref] = `"` + d + `"`
		}
		login(t, st, "bob", "desktop")

		r := run(t, "", args("sessions", topo, "--prefix", p, "--attrs", "device", "alice")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `user "alice": 3 live session(s)`)
		for ref, d := range want {
			require.Regexp(t, ref+`.*`+d, r.stdout)
		}

		r = run(t, "", args("sessions", topo, "--prefix", p, "--json", "--attrs", "device", "alice")...)
		require.Equal(t, 0, r.code, r.stderr)
		got := decode[struct {
			User     string
			Sessions []struct {
				Ref    string
				Values map[string]json.RawMessage
			}
		}](t, r)
		require.Equal(t, "alice", got.User)
		require.Len(t, got.Sessions, 3)
		for _, s := range got.Sessions {
			require.Equal(t, want[s.Ref], string(s.Values["device"]))
		}

		r = run(t, "", args("sessions", topo, "--prefix", p, "nobody")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `user "nobody": 0 live session(s)`)
	})
}

func TestCLIRevoke(t *testing.T) {
	eachTopology(t, cluster.Kinds, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		p := prefix(t)
		st := newStore(t, rdb, store.WithPrefix(p))
		s := login(t, st, "alice", "laptop")

		t.Run("answered no, it changes nothing", func(t *testing.T) {
			r := run(t, "no\n", args("revoke", topo, "--prefix", p, "alice", s.ID())...)
			require.Equal(t, 1, r.code)
			require.Contains(t, r.stderr, "type yes to go on")
			require.Contains(t, r.stderr, cli.ErrNotConfirmed.Error())
			_, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
		})
		t.Run("with --json and no terminal, it refuses without --yes", func(t *testing.T) {
			r := run(t, "yes\n", args("revoke", topo, "--prefix", p, "--json", "alice", s.ID())...)
			require.Equal(t, 2, r.code)
			require.Contains(t, r.stderr, "refusing without --yes")
			require.Contains(t, decode[map[string]string](t, r)["error"], "refusing without --yes")
			_, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
		})
		t.Run("answered yes, it revokes", func(t *testing.T) {
			other := login(t, st, "alice", "phone")
			r := run(t, "yes\n", args("revoke", topo, "--prefix", p, "alice", other.ID())...)
			require.Equal(t, 0, r.code, r.stderr)
			_, err := st.Load(ctx, other.ID())
			require.ErrorIs(t, err, store.ErrNotFound)
		})
		t.Run("with --yes, by Ref, it revokes", func(t *testing.T) {
			ref, err := st.Ref(s.ID())
			require.NoError(t, err)
			r := run(t, "", args("revoke", topo, "--prefix", p, "--yes", "--json", "alice", ref)...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, ref, decode[map[string]string](t, r)["revoked"])
			_, err = st.Load(ctx, s.ID())
			require.ErrorIs(t, err, store.ErrNotFound)
		})
		t.Run("another user's session is left alone", func(t *testing.T) {
			b := login(t, st, "bob", "desktop")
			r := run(t, "", args("revoke", topo, "--prefix", p, "--yes", "alice", b.ID())...)
			require.Equal(t, 1, r.code)
			require.Contains(t, r.stderr, "another user")
			_, err := st.Load(ctx, b.ID())
			require.NoError(t, err)
		})
	})
}

func TestCLIRevokeAll(t *testing.T) {
	eachTopology(t, cluster.Kinds, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		p := prefix(t)
		st := newStore(t, rdb, store.WithPrefix(p))
		var ss []*store.Session
		for _, d := range []string{"laptop", "phone", "tablet", "watch"} {
			ss = append(ss, login(t, st, "alice", d))
		}
		bob := login(t, st, "bob", "desktop")

		r := run(t, "", args("revoke-all", topo, "--prefix", p, "alice")...)
		require.Equal(t, 1, r.code, "no answer")
		require.Contains(t, r.stderr, `revoke every session of user "alice" (4 live)`)
		for _, s := range ss {
			_, err := st.Load(ctx, s.ID())
			require.NoError(t, err)
		}

		r = run(t, "", args("revoke-all", topo, "--prefix", p, "--yes", "--except", ss[0].ID(), "alice")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "4 live before, 1 now")
		_, err := st.Load(ctx, ss[0].ID())
		require.NoError(t, err, "kept")
		for _, s := range ss[1:] {
			_, err := st.Load(ctx, s.ID())
			require.ErrorIs(t, err, store.ErrNotFound)
		}

		r = run(t, "", args("revoke-all", topo, "--prefix", p, "--yes", "--json", "alice")...)
		require.Equal(t, 0, r.code, r.stderr)
		got := decode[struct {
			User       string
			LiveBefore int `json:"live_before"`
			LiveAfter  int `json:"live_after"`
		}](t, r)
		require.Equal(t, "alice", got.User)
		require.Equal(t, 1, got.LiveBefore)
		require.Equal(t, 0, got.LiveAfter)
		_, err = st.Load(ctx, ss[0].ID())
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = st.Load(ctx, bob.ID())
		require.NoError(t, err, "another user's session")
	})
}

func TestCLICount(t *testing.T) {
	eachTopology(t, cluster.Kinds, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		p := prefix(t)
		st := newStore(t, rdb, store.WithPrefix(p))
		const n = 40
		for i := range n {
			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("cart", strings.Repeat("x", 100+i)))
			require.NoError(t, st.Save(t.Context(), s))
		}
		// Not sessions: a user's index, the forward pointer of a rotation, a tombstone.
		login(t, st, "alice", "laptop") // a session (+1), the index, a login's tombstone
		revoked := login(t, st, "alice", "phone")
		require.NoError(t, st.Revoke(t.Context(), "alice", revoked.ID())) // a tombstone
		// A busy session (+1): saved 30 times in a row, it has a save history.
		busy, err := st.NewSession()
		require.NoError(t, err)
		for i := range 30 {
			require.NoError(t, busy.Set("n", i))
			require.NoError(t, st.Save(t.Context(), busy))
		}

		r := run(t, "", args("count", topo, "--prefix", p, "--json")...)
		require.Equal(t, 0, r.code, r.stderr)
		got := decode[struct {
			Sessions int64
			Memory   int64 `json:"memory_bytes"`
			Other    int64 `json:"other_keys"`
			History  int64 `json:"save_histories"`
			Nodes    []struct {
				Addr     string
				Sessions int64
			}
		}](t, r)
		require.EqualValues(t, n+2, got.Sessions)
		require.EqualValues(t, 1, got.History, "the busy session's save history, counted apart")
		require.GreaterOrEqual(t, got.Other, int64(2), "the logins' tombstones and the revoke's")
		require.Greater(t, got.Memory, int64((n+1)*100))
		wantNodes := 1
		if topo.Kind() == cluster.KindCluster {
			wantNodes = 3
		}
		require.Len(t, got.Nodes, wantNodes)

		r = run(t, "", args("count", topo, "--prefix", p, "--max-keys", "5")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "lower bounds")
		r = run(t, "", args("count", topo, "--prefix", p)...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `total\s+42\s`, r.stdout)
	})
}

func TestCLIHealth(t *testing.T) {
	eachTopology(t, cluster.Kinds, func(t *testing.T, topo cluster.Topology, _ redis.UniversalClient) {
		require.NoError(t, topo.WaitHealthy(t.Context()))
		r := run(t, "", args("health", topo)...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "health: ok")

		r = run(t, "", args("health", topo, "--json")...)
		require.Equal(t, 0, r.code, r.stderr)
		type node struct {
			Addr, Role, Follows, Link string
			Replicas                  *int
			Slots                     int
			LagBytes                  *int64 `json:"lag_bytes"`
		}
		got := decode[struct {
			Deployment   string
			Healthy      bool
			Master       string
			SlotsCovered *int `json:"slots_covered"`
			Nodes        []node
			Problems     []string
		}](t, r)
		require.True(t, got.Healthy)
		require.Empty(t, got.Problems)
		roles := map[string]int{}
		for _, n := range got.Nodes {
			roles[n.Role]++
			if n.Role == "replica" {
				require.Equal(t, "up", n.Link, n.Addr)
				require.NotNil(t, n.LagBytes, n.Addr)
			}
		}
		switch topo.Kind() {
		case cluster.KindCluster:
			require.Equal(t, "cluster", got.Deployment)
			require.NotNil(t, got.SlotsCovered)
			require.Equal(t, 16384, *got.SlotsCovered)
			require.Equal(t, map[string]int{"master": 3, "replica": 3}, roles)
			slots := 0
			for _, n := range got.Nodes {
				if n.Role == "master" {
					require.NotNil(t, n.Replicas, n.Addr)
					require.Equal(t, 1, *n.Replicas, n.Addr)
					slots += n.Slots
				}
			}
			require.Equal(t, 16384, slots)
		case cluster.KindSentinel:
			require.Equal(t, "sentinel", got.Deployment)
			m, err := topo.(*cluster.Sentinel).Master(t.Context())
			require.NoError(t, err)
			require.Equal(t, m.Addr(), got.Master)
			require.Equal(t, map[string]int{"master": 1, "replica": 2, "sentinel": 3}, roles)
		default:
			require.Equal(t, "standalone", got.Deployment)
			require.Equal(t, map[string]int{"master": 1}, roles)
		}
	})
}

func TestCLIHealthBad(t *testing.T) {
	cluster.RequireDocker(t)
	ctx := t.Context()
	c, err := cluster.RunCluster(ctx)
	cluster.Cleanup(t, c)
	require.NoError(t, err)
	status, err := c.Status(ctx)
	require.NoError(t, err)
	var replica *cluster.Node
	for _, n := range status {
		if n.Role == cluster.RoleReplica {
			replica = n.Node
			break
		}
	}
	require.NotNil(t, replica)

	r := run(t, "", args("health", c)...)
	require.Equal(t, 0, r.code, r.stderr)

	// A node dead: reported, and the status is not zero (at once: the node does not
	// answer, whatever the other nodes think of it yet).
	require.NoError(t, c.Kill(ctx, replica))
	r = run(t, "", args("health", c, "--timeout", "1s")...)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "health: BAD")
	require.Contains(t, r.stdout, "problem: "+replica.Addr()+" did not answer")
	require.Contains(t, r.stderr, cli.ErrUnhealthy.Error())

	r = run(t, "", args("health", c, "--timeout", "1s", "--json")...)
	require.Equal(t, 1, r.code)
	got := decode[struct {
		Healthy  bool
		Problems []string
	}](t, r)
	require.False(t, got.Healthy)
	require.NotEmpty(t, got.Problems)
}

func TestCLIUnreachable(t *testing.T) {
	// The first address that answers is asked; an address that does not is an error.
	topo := cluster.Shared(t, cluster.KindCluster)
	addrs := append([]string{"127.0.0.1:1"}, topo.UniversalOptions().Addrs...)
	r := run(t, "", "health", "--addrs", strings.Join(addrs, ","), "--timeout", "2s")
	require.Equal(t, 0, r.code, r.stderr)

	r = run(t, "", "health", "--addrs", "127.0.0.1:1", "--timeout", "500ms")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "127.0.0.1:1")
}

// The command as users run it: built from its package (in this module, which gets the
// product module through its replace directive) and run as a process, on a Cluster.
func TestCLIBinary(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindCluster)
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "hasession")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/hasession/hasession/cmd/hasession").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	exe := func(stdin string, args ...string) result {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		t.Logf("$ hasession %s\n%s%s(exit status %d)", strings.Join(args, " "), stdout.String(), stderr.String(), code)
		return result{stdout.String(), stderr.String(), code}
	}

	r := exe("", "-h")
	require.Equal(t, 0, r.code)
	require.Equal(t, cli.Usage, r.stdout)

	rdb := cluster.Client(t, topo, nil)
	p := prefix(t)
	st := newStore(t, rdb, store.WithPrefix(p))
	s := login(t, st, "alice", "laptop")

	r = exe("", args("inspect", topo, "--prefix", p, s.ID())...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "cart")
	require.Empty(t, r.stderr, "nothing but the report: go-redis's own logging is off")

	r = exe("no\n", args("revoke", topo, "--prefix", p, "alice", s.ID())...)
	require.Equal(t, 1, r.code)
	_, err = st.Load(ctx, s.ID())
	require.NoError(t, err)

	r = exe("", args("health", topo)...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "slots: 16384 of 16384 covered")
}

func TestCLIHashedIDs(t *testing.T) {
	eachTopology(t, []cluster.Kind{cluster.KindCluster}, func(t *testing.T, topo cluster.Topology, rdb redis.UniversalClient) {
		p := prefix(t)
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		st := newStore(t, rdb, store.WithPrefix(p), store.WithHashedIDs(key))
		s := login(t, st, "alice", "laptop")
		skey, err := st.Key(s.ID())
		require.NoError(t, err)
		require.NotContains(t, skey, s.ID())

		r := run(t, "", args("inspect", topo, "--prefix", p, "--hash-key", hex.EncodeToString(key), s.ID())...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, skey)
		require.Contains(t, r.stdout, "alice")

		file := filepath.Join(t.TempDir(), "key")
		require.NoError(t, os.WriteFile(file, append(key, '\n'), 0o600))
		r = run(t, "", args("inspect", topo, "--prefix", p, "--hash-key-file", file, "--json", s.ID())...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, skey, decode[map[string]any](t, r)["key"])

		r = run(t, "", args("sessions", topo, "--prefix", p, "--hash-key", hex.EncodeToString(key), "alice")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "1 live session(s)")

		r = run(t, "", args("inspect", topo, "--prefix", p, s.ID())...)
		require.Equal(t, 1, r.code, "without the key")
		require.Contains(t, r.stderr, "not found")
		r = run(t, "", args("sessions", topo, "--prefix", p, "alice")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "0 live session(s)")
	})
}
