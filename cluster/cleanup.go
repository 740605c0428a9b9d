package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// live holds the topologies this process has not terminated yet.
var live = struct {
	sync.Mutex
	m map[*topology]struct{}
}{m: map[*topology]struct{}{}}

func register(t *topology) {
	live.Lock()
	live.m[t] = struct{}{}
	live.Unlock()
}

func unregister(t *topology) {
	live.Lock()
	delete(live.m, t)
	live.Unlock()
}

// TerminateAll terminates every topology this process started and has not terminated.
func TerminateAll(ctx context.Context) error {
	live.Lock()
	ts := make([]*topology, 0, len(live.m))
	for t := range live.m {
		ts = append(ts, t)
	}
	live.Unlock()
	var errs []error
	for _, t := range ts {
		errs = append(errs, t.Terminate(ctx))
	}
	return errors.Join(errs...)
}

// removeByLabel force-removes the containers (unpausing paused ones first) and then the
// networks that carry the label filter "key=value".
func removeByLabel(ctx context.Context, dc *client.Client, label string) error {
	f := make(client.Filters).Add("label", label)
	cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("cluster: list containers: %w", err)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, c := range cs.Items {
		wg.Go(func() {
			if c.State == "paused" {
				_, _ = dc.ContainerUnpause(ctx, c.ID, client.ContainerUnpauseOptions{})
			}
			_, err := dc.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !isNotFound(err) {
				name := c.ID[:12]
				if len(c.Names) > 0 {
					name = strings.TrimPrefix(c.Names[0], "/")
				}
				mu.Lock()
				errs = append(errs, &RemoveError{Leftover: Leftover{Type: "container", ID: c.ID, Name: name, Owner: c.Labels[LabelOwner]}, Err: err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ns, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("cluster: list networks: %w", err))...)
	}
	for _, n := range ns.Items {
		if err := removeNetwork(ctx, dc, n.ID); err != nil {
			errs = append(errs, &RemoveError{Leftover: Leftover{Type: "network", ID: n.ID, Name: n.Name, Owner: n.Labels[LabelOwner]}, Err: err})
		}
	}
	return errors.Join(errs...)
}

// removeNetwork removes a network. One that Docker refuses to remove because it "has
// active endpoints" (a run killed while a container was being connected can leave an
// endpoint with no container behind it) is force-disconnected from every endpoint Docker
// still lists, by container ID and by endpoint name, and removed again.
func removeNetwork(ctx context.Context, dc *client.Client, id string) error {
	_, err := dc.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
	if err == nil || isNotFound(err) {
		return nil
	}
	if !strings.Contains(err.Error(), "active endpoints") {
		return err
	}
	in, ierr := dc.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if ierr != nil {
		if isNotFound(ierr) {
			return nil
		}
		return errors.Join(err, ierr)
	}
	for cid, ep := range in.Network.Containers {
		for _, target := range []string{cid, ep.Name} {
			if target == "" {
				continue
			}
			if _, derr := dc.NetworkDisconnect(ctx, id, client.NetworkDisconnectOptions{Container: target, Force: true}); derr == nil {
				break
			}
		}
	}
	if _, err2 := dc.NetworkRemove(ctx, id, client.NetworkRemoveOptions{}); err2 != nil && !isNotFound(err2) {
		return fmt.Errorf("%w (after force-disconnecting its %d endpoints)", err2, len(in.Network.Containers))
	}
	return nil
}

// RemoveError says that a sweep or a cleanup could not remove a container or a network.
// A sweep reports such leftovers and goes on with the rest.
type RemoveError struct {
	Leftover Leftover
	Err      error
}

func (e *RemoveError) Error() string {
	return fmt.Sprintf("cluster: could not remove %s %s (owner %s): %v", e.Leftover.Type, e.Leftover.Name, e.Leftover.Owner, e.Err)
}

func (e *RemoveError) Unwrap() error { return e.Err }

// NotRemoved lists the leftovers that err (from [Sweep], [SweepAll] or a cleanup) says
// could not be removed.
func NotRemoved(err error) []Leftover {
	var out []Leftover
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if re, ok := err.(*RemoveError); ok {
			out = append(out, re.Leftover)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "No such") || strings.Contains(err.Error(), "not found"))
}

// Leftover is a container or network with the project label.
type Leftover struct {
	Type  string // "container" or "network"
	ID    string
	Name  string
	Owner string // LabelOwner: "<hostname>:<pid>"
}

// Leftovers lists the containers and networks that carry the project label. With
// ownedBy non-empty, only those whose owner label equals it.
func Leftovers(ctx context.Context, ownedBy string) ([]Leftover, error) {
	dc, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	label := LabelProject + "=" + projectName
	if ownedBy != "" {
		label = LabelOwner + "=" + ownedBy
	}
	f := make(client.Filters).Add("label", label)
	var out []Leftover
	cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("cluster: list containers: %w", err)
	}
	for _, c := range cs.Items {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Leftover{Type: "container", ID: c.ID, Name: name, Owner: c.Labels[LabelOwner]})
	}
	ns, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("cluster: list networks: %w", err)
	}
	for _, n := range ns.Items {
		out = append(out, Leftover{Type: "network", ID: n.ID, Name: n.Name, Owner: n.Labels[LabelOwner]})
	}
	return out, nil
}

// Owner returns the value of [LabelOwner] on what this process creates:
// "<hostname>:<pid>:<start>", where start is the process's start time in clock ticks since
// boot. The start time tells this process from an earlier one that had the same PID: a
// fresh container or machine hands out the same PIDs again, and a killed run's leftovers
// must never pass for this run's own.
func Owner() string { return ownerOf(os.Getpid()) }

var ownerOnce = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	pid := os.Getpid()
	o := h + ":" + strconv.Itoa(pid)
	if st, ok := procStart(pid); ok {
		o += ":" + st
	}
	return o
})

func owner() string { return ownerOnce() }

func ownerOf(pid int) string {
	if pid == os.Getpid() {
		return owner()
	}
	h, _ := os.Hostname()
	o := h + ":" + strconv.Itoa(pid)
	if st, ok := procStart(pid); ok {
		o += ":" + st
	}
	return o
}

// procStart returns field 22 of /proc/<pid>/stat (starttime), or false where there is none.
func procStart(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from the
	// last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 { // fields 3..22
		return "", false
	}
	return f[19], true
}

// ownerAlive reports whether the process named by an owner label still runs on this host:
// a process with that PID runs and, where the label carries a start time, started then.
// Owners on other hosts (a remote Docker engine shared by several machines) count as alive.
func ownerAlive(o string) bool {
	host, rest, ok := strings.Cut(o, ":")
	if !ok {
		return false
	}
	if h, _ := os.Hostname(); h != host {
		return true
	}
	pidStr, start, hasStart := strings.Cut(rest, ":")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	if o == owner() {
		return true
	}
	if hasStart {
		st, ok := procStart(pid)
		return ok && st == start
	}
	if pid == os.Getpid() {
		return false // an earlier process with this PID: this one's labels carry a start time
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Sweep removes what runs that are gone left behind: every container and network with the
// project label whose owner process no longer runs on this host. Live runs' topologies are
// left alone. It returns how many leftovers it found; what it could not remove is in the
// error ([NotRemoved] lists it), and the rest is removed all the same.
func Sweep(ctx context.Context) (int, error) {
	return sweep(ctx, func(l Leftover) bool { return !ownerAlive(l.Owner) })
}

// SweepAll removes every container and network with the project label, whoever made it.
func SweepAll(ctx context.Context) (int, error) {
	return sweep(ctx, func(Leftover) bool { return true })
}

func sweep(ctx context.Context, match func(Leftover) bool) (int, error) {
	dc, err := dockerClient(ctx)
	if err != nil {
		return 0, err
	}
	ls, err := Leftovers(ctx, "")
	if err != nil {
		return 0, err
	}
	owners := map[string]bool{}
	n := 0
	for _, l := range ls {
		if match(l) {
			owners[l.Owner] = true
			n++
		}
	}
	var errs []error
	for o := range owners {
		errs = append(errs, removeByLabel(ctx, dc, LabelOwner+"="+o))
	}
	return n, errors.Join(errs...)
}

// Available reports whether a Docker engine answers. It returns the error otherwise.
func Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dc, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	if _, err := dc.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("cluster: docker engine does not answer: %w", err)
	}
	return nil
}

// inCI reports whether CI is set (to anything but "", "0" or "false").
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// RequireDocker skips the test when no Docker engine answers, or fails it when the CI
// environment variable is set: in CI a missing engine is an error, not a reason to skip.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	if err := Available(context.Background()); err != nil {
		if inCI() {
			tb.Fatalf("docker is required in CI: %v", err)
		}
		tb.Skipf("skipping: needs a Docker engine (%v)", err)
	}
}

// Cleanup registers t.Terminate with tb.Cleanup. Call it right after Run…, before checking
// the error: Run… returns the topology even when it fails, so what it started is removed.
func Cleanup(tb testing.TB, t interface{ Terminate(context.Context) error }) {
	tb.Helper()
	tb.Cleanup(func() {
		if isNilTopology(t) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := t.Terminate(ctx); err != nil {
			tb.Errorf("terminate topology: %v", err)
		}
	})
}

// StandaloneForTest starts a standalone Redis of the test's own (skipping without Docker,
// as RequireDocker does), removes it when the test ends, and fails the test if it does not
// start.
func StandaloneForTest(tb testing.TB, opts ...Option) *Standalone {
	tb.Helper()
	RequireDocker(tb)
	s, err := RunStandalone(tb.Context(), opts...)
	Cleanup(tb, s)
	if err != nil {
		tb.Fatalf("start a standalone Redis: %v", err)
	}
	return s
}

func isNilTopology(t any) bool {
	switch v := t.(type) {
	case nil:
		return true
	case *Standalone:
		return v == nil
	case *Sentinel:
		return v == nil
	case *Cluster:
		return v == nil
	}
	return false
}

// TestMain runs a package's tests with the topologies' housekeeping around them: a sweep
// of what killed runs left behind before; after, the shared topologies ([Shared]) are
// removed and a check makes sure nothing else this process created remains (anything
// left is removed and the run fails). Use it as
//
//	func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }
func TestMain(m interface{ Run() int }) int {
	_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if Available(ctx) == nil {
		if n, err := Sweep(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: sweep: %v\n", err)
		} else if n > 0 {
			fmt.Fprintf(os.Stderr, "cluster: swept %d resources left by earlier runs\n", n)
		}
	}
	cancel()

	// Ctrl-C: remove what this run started before exiting.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s, ok := <-sig
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = TerminateAll(ctx)
		cancel()
		fmt.Fprintf(os.Stderr, "cluster: %v: removed this run's topologies\n", s)
		os.Exit(130)
	}()

	code := m.Run()
	signal.Stop(sig)

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := terminateShared(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if Available(ctx) != nil {
		return code
	}
	left, err := Leftovers(ctx, owner())
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster: list leftovers: %v\n", err)
		return code
	}
	if len(left) > 0 {
		for _, l := range left {
			fmt.Fprintf(os.Stderr, "cluster: left behind by this run: %s %s\n", l.Type, l.Name)
		}
		_ = TerminateAll(ctx)
		_ = removeByLabel(ctx, dcVal, LabelOwner+"="+owner())
		if code == 0 {
			code = 1
		}
	}
	return code
}
