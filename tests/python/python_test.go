package python_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// kinds are the topologies the Python module is run on: a single Redis (redis.Redis) and a
// Cluster (redis.cluster.RedisCluster). Sentinel is left out: the module takes a client,
// and redis-py's Sentinel gives it a plain redis.Redis to the master.
var kinds = []cluster.Kind{cluster.KindStandalone, cluster.KindCluster}

// root is the repository's root, from the test's working directory (tests/python).
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "store", "lua", "save.lua"))
	require.NoError(t, err, "the repository root is two directories up from tests/python")
	return dir
}

func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// interpreter returns the Python that imports redis and msgpack (python/interpreter.sh).
// Without one the test skips, or fails when CI is set, as the Docker tests do.
func interpreter(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(root(t), "python", "interpreter.sh")).Output()
	if err != nil {
		msg := "no python3 imports redis and msgpack: run `bash python/install-deps.sh` (as root: Debian's python3-redis and python3-msgpack), or set HASESSION_PYTHON"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip("skipping: " + msg)
	}
	return strings.TrimSpace(string(out))
}

// py runs one step of python/tests/interop.py against topo, logs what it printed, and
// returns its output. It fails the test when the step fails.
func py(t *testing.T, topo cluster.Topology, kind cluster.Kind, args ...string) string {
	t.Helper()
	out, code := pyCode(t, topo, kind, args...)
	require.Zero(t, code, "python3 interop.py %s", strings.Join(args, " "))
	return out
}

// pyCode is py, returning the step's exit code instead of failing on it.
func pyCode(t *testing.T, topo cluster.Topology, kind cluster.Kind, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir := root(t)
	cmd := exec.CommandContext(ctx, interpreter(t), append([]string{filepath.Join(dir, "python", "tests", "interop.py")}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HASESSION_KIND="+string(kind), "HASESSION_ADDRS="+strings.Join(topo.Addrs(), ","),
		"PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		t.Log(line)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && ctx.Err() == nil {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, "python3 interop.py %s", strings.Join(args, " "))
	return string(out), 0
}

// line returns the JSON that follows the output line starting with prefix.
func line(t *testing.T, out, prefix string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(rest), &m), "%s", l)
			return m
		}
	}
	t.Fatalf("no line %q in the output", prefix)
	return nil
}

// TestPythonUnit runs the Python module's pure tests (no Redis).
func TestPythonUnit(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter(t), "-m", "unittest", "discover", "-v", "-s", "python/tests", "-p", "test_*.py")
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Log(strings.TrimRight(string(out), "\n"))
	require.NoError(t, err)
}

func newStore(t *testing.T, topo cluster.Topology, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.New(cluster.Client(t, topo, nil), opts...)
	require.NoError(t, err)
	return st
}

type prefs struct {
	Theme string `msgpack:"theme"`
	Size  int    `msgpack:"size"`
}

func TestGoAndPython(t *testing.T) {
	interpreter(t)
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			ctx := t.Context()
			st := newStore(t, topo)

			t.Run("GoWritesPythonReads", func(t *testing.T) {
				s, err := st.NewSession()
				require.NoError(t, err)
				require.NoError(t, s.Set("name", "Zoë from Go"))
				require.NoError(t, s.Set("count", 42))
				require.NoError(t, s.Set("neg", int64(-7)))
				require.NoError(t, s.Set("big", int64(1)<<40))
				require.NoError(t, s.Set("ratio", 0.5))
				require.NoError(t, s.Set("admin", true))
				require.NoError(t, s.Set("tags", []string{"a", "b", "ç"}))
				require.NoError(t, s.Set("prefs", prefs{Theme: "dark", Size: 3}))
				require.NoError(t, s.Set("when", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
				s.SetUser("go-user-" + string(kind))
				require.NoError(t, st.Save(ctx, s))

				got := line(t, py(t, topo, kind, "read", s.ID()), "python: read")
				assert.Equal(t, s.ID(), got["id"])
				assert.Equal(t, "go-user-"+string(kind), got["user"])
				assert.EqualValues(t, 1, got["version"])
				assert.Equal(t, map[string]any{
					"name": "Zoë from Go", "count": 42.0, "neg": -7.0, "big": float64(int64(1) << 40),
					"ratio": 0.5, "admin": true, "tags": []any{"a", "b", "ç"},
					"prefs": map[string]any{"theme": "dark", "size": 3.0},
					"when":  "2026-01-02 03:04:05+00:00", // a msgpack timestamp: a datetime
				}, got["attrs"])

				// Python lists what Go wrote (sessions(user): index_read.lua, member.lua 'l').
				listed := line(t, py(t, topo, kind, "sessions", "go-user-"+string(kind), s.ID()), "python: sessions")
				ref, err := st.Ref(s.ID())
				require.NoError(t, err)
				assert.Equal(t, []any{ref}, listed["refs"], "Python's ref is Go's Ref")
				assert.Equal(t, []any{"Zoë from Go"}, listed["names"])
			})

			t.Run("PythonWritesGoReads", func(t *testing.T) {
				user := "py-user-" + string(kind)
				id, _ := line(t, py(t, topo, kind, "write", user), "python: wrote")["id"].(string)
				require.NotEmpty(t, id)
				s, err := st.Load(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, user, s.User())
				assert.EqualValues(t, 1, s.Version())
				str := func(k string) string { v, err := store.Get[string](s, k); require.NoError(t, err, k); return v }
				assert.Equal(t, "Zoë from Python", str("name"))
				for k, want := range map[string]int64{"count": 42, "neg": -7, "big": 1 << 40} {
					v, err := store.Get[int64](s, k)
					require.NoError(t, err, k)
					assert.Equal(t, want, v, k)
				}
				n, err := store.Get[int](s, "count")
				require.NoError(t, err)
				assert.Equal(t, 42, n)
				r, err := store.Get[float64](s, "ratio")
				require.NoError(t, err)
				assert.Equal(t, 0.5, r)
				b, err := store.Get[bool](s, "admin")
				require.NoError(t, err)
				assert.True(t, b)
				nothing, err := store.Get[*string](s, "nothing")
				require.NoError(t, err)
				assert.Nil(t, nothing)
				tags, err := store.Get[[]string](s, "tags")
				require.NoError(t, err)
				assert.Equal(t, []string{"a", "b", "ç"}, tags)
				p, err := store.Get[prefs](s, "prefs")
				require.NoError(t, err)
				assert.Equal(t, prefs{Theme: "dark", Size: 3}, p)
				_, err = store.Get[string](s, "gone")
				assert.ErrorIs(t, err, store.ErrNoAttribute)

				// The user index lists it (index_add.lua ran before save.lua).
				infos, err := st.Sessions(ctx, user, "name")
				require.NoError(t, err)
				ref, err := st.Ref(id)
				require.NoError(t, err)
				require.Len(t, infos, 1)
				assert.Equal(t, ref, infos[0].Ref)
				var name string
				require.NoError(t, infos[0].Get("name", &name))
				assert.Equal(t, "Zoë from Python", name)
			})

			t.Run("ConcurrentSaves", func(t *testing.T) {
				s, err := st.NewSession()
				require.NoError(t, err)
				require.NoError(t, s.Set("start", true))
				require.NoError(t, st.Save(ctx, s))
				// Python saves 'py' (a load and a save each round) at least pyMin and at most
				// pyMax times, until pyWant of its rounds found a save of Go's since its own;
				// Go saves 'go' in a loop until Python is done, at least goMin and at most
				// goMax times.
				const pyMin, pyMax, pyWant, goMin, goMax = 100, 2000, 10, 20, 20000
				ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				done := make(chan struct{})
				var wg sync.WaitGroup
				var goErr error
				goRounds := 0
				wg.Go(func() {
					for i := 1; i <= goMax; i++ {
						select {
						case <-done:
							if i > goMin {
								return
							}
						default:
						}
						var g *store.Session
						if g, goErr = st.Load(ctx, s.ID()); goErr != nil {
							return
						}
						if goErr = g.Set("go", i); goErr != nil {
							return
						}
						if goErr = st.Save(ctx, g); goErr != nil {
							return
						}
						goRounds = i
					}
				})
				var out string
				func() {
					defer close(done)
					out = py(t, topo, kind, "save-loop", s.ID(), "py", strconv.Itoa(pyMin), strconv.Itoa(pyMax), strconv.Itoa(pyWant))
				}()
				wg.Wait()
				require.NoError(t, goErr)
				res := line(t, out, "python: save-loop done")
				pyRounds, _ := res["rounds"].(float64)
				interleaved, _ := res["interleaved"].(float64)
				assert.Positive(t, interleaved, "Go saved between Python's saves")
				got, err := st.Load(ctx, s.ID())
				require.NoError(t, err)
				g, err := store.Get[int](got, "go")
				require.NoError(t, err)
				p, err := store.Get[int](got, "py")
				require.NoError(t, err)
				assert.Equal(t, goRounds, g, "Go's attribute")
				assert.Equal(t, int(pyRounds), p, "Python's attribute")
				assert.EqualValues(t, 1+goRounds+int(pyRounds), got.Version(), "every save applied")
				ok, err := store.Get[bool](got, "start")
				require.NoError(t, err)
				assert.True(t, ok)
				t.Logf("after %d Go and %d Python saves: go=%d py=%d version=%d", goRounds, int(pyRounds), g, p, got.Version())
			})

			t.Run("TouchDestroy", func(t *testing.T) {
				short := newStore(t, topo, store.WithIdleTimeout(10*time.Minute))
				s, err := short.NewSession()
				require.NoError(t, err)
				require.NoError(t, s.Set("x", 1))
				require.NoError(t, short.Save(ctx, s))
				key, err := st.Key(s.ID())
				require.NoError(t, err)
				rdb := cluster.Client(t, topo, nil)
				before, err := rdb.PTTL(ctx, key).Result()
				require.NoError(t, err)
				require.LessOrEqual(t, before, 10*time.Minute)

				// Python's store (30 min idle timeout) touches it: the TTL goes past 10 min.
				got := line(t, py(t, topo, kind, "touch", s.ID()), "python: touch")
				assert.Equal(t, true, got["touched_by_load"], "load ran touch.lua and touched")
				assert.Equal(t, []any{"x"}, got["attrs"], "the pair '!' 'touched' is no attribute")
				assert.Greater(t, got["pttl_after_load"], 29*60*1000.0)
				assert.Equal(t, true, got["touched"])
				after, err := rdb.PTTL(ctx, key).Result()
				require.NoError(t, err)
				assert.Greater(t, after, 29*time.Minute, "touched by Python: the TTL of its idle timeout")

				got = line(t, py(t, topo, kind, "destroy", s.ID()), "python: destroy")
				assert.Equal(t, false, got["found_after"])
				_, err = st.Load(ctx, s.ID())
				assert.True(t, errors.Is(err, store.ErrNotFound), "Load after Python's destroy: %v", err)
			})

			t.Run("RotatedAndNewerFormat", func(t *testing.T) {
				// A rotation keeps the user: the old ID is a forward pointer, which Python
				// follows to the new session, as Load does.
				s, err := st.NewSession()
				require.NoError(t, err)
				require.NoError(t, s.Set("name", "rotated"))
				s.SetUser("rot-user-" + string(kind))
				require.NoError(t, st.Save(ctx, s))
				old := s.ID()
				require.NoError(t, st.Rotate(ctx, s))
				require.NotEqual(t, old, s.ID())
				got := line(t, py(t, topo, kind, "read", old), "python: read")
				assert.Equal(t, s.ID(), got["id"], "Python follows the forward pointer")
				assert.Equal(t, map[string]any{"name": "rotated"}, got["attrs"])

				// Python's destroy of the old ID ends the new session too, as Destroy does.
				py(t, topo, kind, "destroy", old)
				_, err = st.Load(ctx, s.ID())
				assert.ErrorIs(t, err, store.ErrNotFound, "the rotated session, after Python destroyed its old ID")

				// A key of a newer format ('_F' = 2) is refused by Python, and left as it is.
				n, err := st.NewSession()
				require.NoError(t, err)
				require.NoError(t, n.Set("x", 1))
				require.NoError(t, st.Save(ctx, n))
				key, err := st.Key(n.ID())
				require.NoError(t, err)
				rdb := cluster.Client(t, topo, nil)
				require.NoError(t, rdb.HSet(ctx, key, "_F", "2").Err())
				before, err := rdb.HGetAll(ctx, key).Result()
				require.NoError(t, err)
				out, code := pyCode(t, topo, kind, "read", n.ID())
				assert.Equal(t, 5, code, "a FormatVersionError")
				assert.EqualValues(t, 2, line(t, out, "python: read: newer format")["version"])
				after, err := rdb.HGetAll(ctx, key).Result()
				require.NoError(t, err)
				assert.Equal(t, before, after, "left byte-identical")
				require.NoError(t, rdb.Del(ctx, key).Err())
			})
		})
	}
}
