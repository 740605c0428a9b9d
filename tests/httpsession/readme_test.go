package httpsession_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

// readmeApp returns the README's first Go code block: the quick start's complete app.
func readmeApp(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "\n```go\n")
	require.True(t, ok, "README.md has a Go code block")
	src, _, ok := strings.Cut(rest, "\n```\n")
	require.True(t, ok)
	require.True(t, strings.HasPrefix(src, "package main\n"), "the first Go code block is a program")
	return src + "\n"
}

// The README's quick start compiles and runs as it is printed: built from the README,
// run on a Redis container, and used as a browser would (the cookies kept by hand: they
// are Secure, and the app runs on plain HTTP here) — a cart before login kept across
// it, the login's new ID (the old one leads nowhere), a second device, and "log out
// everywhere" ending both.
func TestReadmeQuickStart(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	// The program is built in this module (a directory of its own, removed after), so
	// that it gets the module's hasession and go-redis.
	dir, err := os.MkdirTemp(".", "readme-app-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(readmeApp(t)), 0o644))
	bin := filepath.Join(t.TempDir(), "app")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./"+filepath.Base(dir)).CombinedOutput()
	require.NoError(t, err, "go build of the README's app: %s", out)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	app := exec.CommandContext(ctx, bin)
	app.Env = append(os.Environ(), "REDIS_ADDR="+topo.UniversalOptions().Addrs[0], "ADDR="+addr)
	app.Stdout, app.Stderr = os.Stderr, os.Stderr
	require.NoError(t, app.Start())
	t.Cleanup(func() { _ = app.Process.Kill(); _ = app.Wait() })
	require.NoError(t, cluster.Poll(ctx, 20*time.Millisecond, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err
	}), "the app listens")

	// call sends a request with the cookie (if any) and returns the body and the
	// session cookie the response sets (or the one sent).
	call := func(method, path, cookie string, form url.Values) (string, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", "hasession="+cookie)
		}
		resp, body := send(t, http.DefaultClient, req)
		for _, c := range resp.Cookies() {
			if c.Name == "hasession" && c.MaxAge >= 0 {
				cookie = c.Value
			}
		}
		return strings.TrimSpace(body), cookie
	}

	body, anon := call("POST", "/cart", "", url.Values{"item": {"book"}})
	require.Equal(t, "1 item(s)", body)
	require.NotEmpty(t, anon)
	body, _ = call("GET", "/cart", anon, nil)
	require.Equal(t, "[book]", body)

	body, ada := call("POST", "/login", anon, url.Values{"user": {"ada"}})
	require.Equal(t, "hello ada", body)
	require.NotEqual(t, anon, ada, "a login gives the session a new ID")
	body, _ = call("GET", "/cart", ada, nil)
	require.Equal(t, "[book]", body, "the cart is kept across the login")
	body, _ = call("GET", "/cart", anon, nil)
	require.Equal(t, "[]", body, "the old ID leads nowhere")

	_, phone := call("POST", "/login", "", url.Values{"user": {"ada"}})
	_, phone = call("POST", "/cart", phone, url.Values{"item": {"pen"}})
	body, _ = call("GET", "/cart", phone, nil)
	require.Equal(t, "[pen]", body)

	body, _ = call("POST", "/logout", ada, url.Values{"everywhere": {"1"}})
	require.Equal(t, "bye", body)
	body, _ = call("GET", "/cart", phone, nil)
	require.Equal(t, "[]", body, "the other device is logged out too")
	body, _ = call("GET", "/cart", ada, nil)
	require.Equal(t, "[]", body)
}
