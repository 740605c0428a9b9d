package httpsession_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
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
