package httpsession_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

// devices parses /devices: device name → ref, and the current session's device.
func devices(t *testing.T, body string) (refs map[string]string, current string) {
	t.Helper()
	refs = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		require.Len(t, f, 3, "line %q", line)
		refs[f[1]] = f[0]
		if f[2] == "true" {
			current = f[1]
		}
	}
	return refs, current
}

// Three browsers log in as one user; the laptop lists them, revokes the phone, then
// logs out everywhere else: the revoked browsers get a fresh, anonymous session at their
// next request, the laptop stays logged in.
func TestLogOutEverywhere(t *testing.T) {
	for _, kind := range cluster.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			a := newApp(t, client(t, cluster.Shared(t, kind)), true)
			user := "kim-" + string(kind)
			names := []string{"laptop", "phone", "tablet"}
			cs := map[string]*httpClient{}
			for _, d := range names {
				c := a.user(t)
				a.get(t, c, "/set?k=cart&v=1") // an anonymous session first
				a.get(t, c, "/login?user="+user+"&device="+d)
				_, who := a.get(t, c, "/whoami")
				require.Contains(t, who, "user="+user)
				cs[d] = &httpClient{c, a.jarCookie(t, c).Value}
			}
			laptop := cs["laptop"].c
			_, body := a.get(t, laptop, "/devices")
			refs, current := devices(t, body)
			require.Len(t, refs, 3)
			require.Equal(t, "laptop", current)

			a.get(t, laptop, "/revoke?ref="+refs["phone"])
			_, who := a.get(t, cs["phone"].c, "/whoami")
			require.Equal(t, "new=true user= keys=", who, "the revoked phone starts over")
			_, body = a.get(t, laptop, "/devices")
			refs, _ = devices(t, body)
			require.ElementsMatch(t, []string{"laptop", "tablet"}, slices.Collect(maps.Keys(refs)))

			a.get(t, laptop, "/revoke-others")
			_, who = a.get(t, cs["tablet"].c, "/whoami")
			require.Equal(t, "new=true user= keys=", who, "the tablet starts over")
			_, who = a.get(t, laptop, "/whoami")
			require.Contains(t, who, "new=false user="+user)
			_, body = a.get(t, laptop, "/devices")
			refs, current = devices(t, body)
			require.Len(t, refs, 1)
			require.Equal(t, "laptop", current)
		})
	}
}

type httpClient struct {
	c  *http.Client
	id string
}
