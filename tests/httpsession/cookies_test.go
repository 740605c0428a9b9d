package httpsession_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/httpsession"
)

// A request that carries several cookies of the session's name (a stale one set for a
// parent domain or another path, a malformed one) gets the session of the first one that
// names a live session: the stale or malformed cookie does not log the user out. At most
// three well-formed cookies are loaded; beyond that the request gets a new session.
func TestDuplicateSessionCookies(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			topo := cluster.Shared(t, kind)
			a := newApp(t, client(t, topo), true)
			c := a.srv.Client() // no jar: the test sends the cookies itself
			resp, _ := a.get(t, c, "/login?user=erin")
			live := a.sessionCookie(resp)
			require.NotNil(t, live)
			name := a.m.CookieName()
			stale := func() *http.Cookie { return &http.Cookie{Name: name, Value: uuid.NewString()} }
			bad := &http.Cookie{Name: name, Value: "not-a-session-id"}

			for _, tc := range []struct {
				name    string
				cookies []*http.Cookie
				want    string
			}{
				{"live only", []*http.Cookie{live}, "new=false user=erin"},
				{"stale first", []*http.Cookie{stale(), live}, "new=false user=erin"},
				{"malformed first", []*http.Cookie{bad, live}, "new=false user=erin"},
				{"malformed and stale first", []*http.Cookie{bad, stale(), stale(), live}, "new=false user=erin"},
				{"three stale first", []*http.Cookie{stale(), stale(), stale(), live}, "new=true user="},
			} {
				before := a.cmds.n.Load()
				_, body := a.get(t, c, "/whoami", tc.cookies...)
				require.Contains(t, body, tc.want, tc.name)
				loads := 0
				for _, ck := range tc.cookies {
					if ck != bad {
						loads++
					}
				}
				require.LessOrEqual(t, a.cmds.n.Load()-before, int64(min(loads, 3)), "%s: commands sent (malformed cookies cost none, at most 3 loads)", tc.name)
			}
		})
	}
}

// A Secure cookie set in answer to a plain-HTTP request for a host that is not localhost
// is dropped by browsers: the Manager warns once. Not for localhost or a loopback
// address, not behind a proxy that received HTTPS, not over TLS, not when Secure is off.
func TestSecureCookieOverPlainHTTPWarnsOnce(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	rdb := client(t, topo)
	logs := &logRecorder{}
	a := newApp(t, rdb, false, httpsession.WithLogger(slog.New(logs)))
	c := a.srv.Client()
	get := func(host string, hdr map[string]string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.srv.URL+"/set?k=a&v=1", nil)
		require.NoError(t, err)
		req.Host = host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotNil(t, a.sessionCookie(resp), "the cookie was set")
	}
	for _, host := range []string{"localhost:8080", "app.localhost", "127.0.0.1:8080", "[::1]:8080"} {
		get(host, nil)
	}
	get("192.168.1.20:8080", map[string]string{"X-Forwarded-Proto": "https"})
	get("192.168.1.20:8080", map[string]string{"Forwarded": "for=10.0.0.1;proto=https"})
	require.Empty(t, logs.lines(), "no warning yet")
	get("192.168.1.20:8080", nil)
	get("shop.example:8080", nil)
	lines := logs.lines()
	require.Len(t, lines, 1, "one warning")
	require.True(t, strings.HasPrefix(lines[0], "WARN "), lines[0])
	require.Contains(t, lines[0], "plain-HTTP request")

	quiet := &logRecorder{}
	b := newApp(t, rdb, false, httpsession.WithLogger(slog.New(quiet)), httpsession.WithSecure(false))
	resp, _ := b.get(t, b.srv.Client(), "/set?k=a&v=1")
	require.NotNil(t, b.sessionCookie(resp))
	require.Empty(t, quiet.lines(), "Secure off: nothing to warn about")
}
