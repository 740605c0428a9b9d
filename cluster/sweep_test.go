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
	os.Stdout.WriteString("READY " + s.ID() + "\n")
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
	require.True(t, strings.HasPrefix(line, "READY "), "helper said %q", line)
	host, _ := os.Hostname()
	return cmd, host + ":" + strconv.Itoa(cmd.Process.Pid)
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
	require.NoError(t, err)
	still, err := cluster.Leftovers(ctx, owner)
	require.NoError(t, err)
	require.Len(t, still, len(left), "a live run's topology is not swept")

	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no cleanup code runs
	_ = cmd.Wait()
	after, err := cluster.Leftovers(ctx, owner)
	require.NoError(t, err)
	require.Len(t, after, len(left), "a killed run leaves its containers and network")

	n, err := cluster.Sweep(ctx)
	require.NoError(t, err)
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
