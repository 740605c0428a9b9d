package cluster_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

const helperEnv = "HASESSION_CLUSTER_HELPER"

// helperMain runs in a child process started by the sweep tests: it starts a standalone
// topology, says READY and then either blocks until killed ("hang", bounded at one
// minute) or fails a test midway ("fail"), so the parent can check what is left.
func helperMain() bool {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cluster.RunStandalone(ctx)
	if err != nil {
		if s != nil {
			_ = s.Terminate(context.Background())
		}
		os.Stdout.WriteString("ERROR " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Stdout.WriteString("READY " + cluster.Owner() + "\n")
	switch mode {
	case "hang":
		<-ctx.Done() // the parent SIGKILLs this process long before
	case "fail":
		// A test that fails midway: cleanup registered through TestMain's leftover check
		// and TerminateAll still removes the topology.
		code := cluster.TestMain(failingM{})
		os.Exit(code)
	}
	os.Exit(0)
	return true
}

// failingM stands in for *testing.M in the helper: one failing "test" that leaves its
// topology running.
type failingM struct{}

func (failingM) Run() int { return 1 }

func startHelper(t *testing.T, mode string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	owner, ok := strings.CutPrefix(strings.TrimSpace(line), "READY ")
	require.True(t, ok, "helper said %q", line)
	host, _ := os.Hostname()
	require.True(t, strings.HasPrefix(owner, host+":"+strconv.Itoa(cmd.Process.Pid)+":"), "the owner label %q names the helper's host, PID and start time", owner)
	return cmd, owner
}

// requireRemovedAllOf fails the test if err says that a leftover of owner could not be
// removed. Leftovers of other runs that Docker refuses to remove are reported by the
// sweep, and are no concern of this test.
func requireRemovedAllOf(t *testing.T, err error, owner string) {
	t.Helper()
	for _, l := range cluster.NotRemoved(err) {
		require.NotEqual(t, owner, l.Owner, "the sweep could not remove %s %s: %v", l.Type, l.Name, err)
	}
	if err != nil && len(cluster.NotRemoved(err)) == 0 {
		require.NoError(t, err)
	}
	if err != nil {
		t.Logf("the sweep reported other runs' leftovers it could not remove: %v", err)
	}
}

func TestSweepRemovesWhatAKilledRunLeft(t *testing.T) {
	cluster.RequireDocker(t)
	ctx := t.Context()
	cmd, owner := startHelper(t, "hang")

	left, err := cluster.Leftovers(ctx, owner)
	require.NoError(t, err)
	require.NotEmpty(t, left, "the helper's topology runs")

	// While its owner lives, a sweep leaves it alone.
	_, err = cluster.Sweep(ctx)
	requireRemovedAllOf(t, err, owner)
	still, err := cluster.Leftovers(ctx, owner)
	require.NoError(t, err)
	require.Len(t, still, len(left), "a live run's topology is not swept")

	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no cleanup code runs
	_ = cmd.Wait()
	after, err := cluster.Leftovers(ctx, owner)
	require.NoError(t, err)
	require.Len(t, after, len(left), "a killed run leaves its containers and network")

	n, err := cluster.Sweep(ctx)
	requireRemovedAllOf(t, err, owner)
	require.GreaterOrEqual(t, n, len(left))
	gone, err := cluster.Leftovers(ctx, owner)
	require.NoError(t, err)
	require.Empty(t, gone, "the sweep removed what the killed run left")
}

func TestRunThatFailsMidwayLeavesNothing(t *testing.T) {
	cluster.RequireDocker(t)
	cmd, owner := startHelper(t, "fail")
	err := cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the failing run exits non-zero")
	left, err := cluster.Leftovers(t.Context(), owner)
	require.NoError(t, err)
	require.Empty(t, left, "a failed run removes its topologies on the way out")
}

// A network that Docker will not remove because it "has active endpoints" is
// force-disconnected and removed by the sweep; the container on it, which is not the
// project's, is left running.
func TestSweepForceDisconnectsANetworkWithActiveEndpoints(t *testing.T) {
	cluster.RequireDocker(t)
	ctx := t.Context()
	dc, err := client.New(client.FromEnv)
	require.NoError(t, err)
	t.Cleanup(func() { _ = dc.Close() })
	img, err := cluster.EnsureImage(ctx)
	require.NoError(t, err)

	host, _ := os.Hostname()
	deadOwner := host + ":4194000:1" // no such process: a killed run's
	name := "hasession-sweep-endpoints-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	nw, err := dc.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{"org.hasession.project": "hasession", "org.hasession.owner": deadOwner},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = dc.NetworkRemove(context.Background(), nw.ID, client.NetworkRemoveOptions{})
	})
	// A container without the project's labels, connected to the network: the sweep must
	// not remove it, and Docker refuses to remove the network while it is connected.
	c, err := dc.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: img, Cmd: []string{"--port", "6399", "--save", ""}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(name)},
		Name:       name + "-c",
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = dc.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	})
	_, err = dc.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
	require.NoError(t, err)
	_, err = dc.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{})
	require.ErrorContains(t, err, "active endpoints", "the network cannot be removed as it is")

	_, err = cluster.Sweep(ctx)
	requireRemovedAllOf(t, err, deadOwner)
	left, err := cluster.Leftovers(ctx, deadOwner)
	require.NoError(t, err)
	require.Empty(t, left, "the sweep force-disconnected and removed the network")
	in, err := dc.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	require.NoError(t, err, "the container that is not the project's is still there")
	require.True(t, in.Container.State.Running, "and still runs")
}

// An owner label carries the process's start time, so a process that has the PID of a
// killed run is not taken for its owner.
func TestOwnerLabelTellsProcessesWithOnePIDApart(t *testing.T) {
	o := cluster.Owner()
	host, _ := os.Hostname()
	prefix := host + ":" + strconv.Itoa(os.Getpid()) + ":"
	require.True(t, strings.HasPrefix(o, prefix), "owner %q", o)
	start := strings.TrimPrefix(o, prefix)
	_, err := strconv.ParseUint(start, 10, 64)
	require.NoError(t, err, "the start time is a number of clock ticks: %q", start)
}
