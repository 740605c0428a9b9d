package otel_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

// The Prometheus example builds, serves a session app on a Redis container, answers
// /metrics with the store's instruments, and ends on SIGINT (or after --for).
func TestPrometheusExample(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "example")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "otel", "example", "prometheus")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build of the example: %s", out)

	app := exec.CommandContext(ctx, bin, "--redis", topo.UniversalOptions().Addrs[0], "--listen", "127.0.0.1:0", "--for", "2m")
	app.Stderr = os.Stderr
	stdout, err := app.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, app.Start())
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = app.Process.Kill()
			_ = app.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	t.Logf("example: %s", strings.TrimSpace(line))
	addr, _, ok := strings.Cut(strings.TrimPrefix(line, "listening on "), " ")
	require.True(t, ok, "first line %q names the address", line)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) string {
		resp, err := c.Get("http://" + addr + path)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
		return string(b)
	}
	for i := 1; i <= 3; i++ {
		require.Equal(t, "visits: "+string(rune('0'+i))+"\n", get("/"))
	}
	metrics := get("/metrics")
	for _, want := range []string{
		`hasession_operation_duration_seconds_bucket{db_operation_name="hasession.load",db_system_name="redis",hasession_outcome="hit"`,
		`hasession_operation_duration_seconds_count{db_operation_name="hasession.save",db_system_name="redis",hasession_outcome="ok"`,
		`hasession_sessions_created_total{db_system_name="redis"`,
		`hasession_bytes_sent_total{db_operation_name="hasession.save",db_system_name="redis"`,
	} {
		require.Contains(t, metrics, want)
	}
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "hasession_") && !strings.Contains(l, "_bucket") {
			t.Logf("  %s", l)
		}
	}
	require.NoError(t, app.Process.Signal(os.Interrupt))
	require.NoError(t, app.Wait(), "the example exits cleanly on SIGINT")
	exited = true
}
