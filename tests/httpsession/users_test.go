package httpsession_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
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

// WithMaxSessions over HTTP: with RefuseLogin, a login beyond the maximum is answered 409
// by the handler and the browser stays anonymous with its cart (the middleware's save
// after it writes the handler's other change, not the refused login); with EvictOldest,
// the oldest browser is logged out.
func TestMaxSessionsOverHTTP(t *testing.T) {
	for _, kind := range cluster.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			rdb := client(t, cluster.Shared(t, kind))
			for _, p := range []store.LimitPolicy{store.RefuseLogin, store.EvictOldest} {
				a := newAppOn(t, rdb, true, []store.Option{store.WithGracePeriod(time.Second), store.WithMaxSessions(2, p)})
				user := fmt.Sprintf("max-%s-%d-%d", kind, p, time.Now().UnixNano())
				var cs []*http.Client
				for i := range 3 {
					c := a.user(t)
					a.get(t, c, "/set?k=cart&v=1")
					resp, err := c.Get(a.srv.URL + "/login?user=" + user + "&device=d" + strconv.Itoa(i))
					require.NoError(t, err)
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					require.NoError(t, err)
					if p == store.RefuseLogin && i == 2 {
						require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)
					} else {
						require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
					}
					cs = append(cs, c)
				}
				who := make([]string, 3)
				for i, c := range cs {
					_, who[i] = a.get(t, c, "/whoami")
				}
				in := "new=false user=" + user + " keys=cart,device"
				if p == store.RefuseLogin {
					require.Equal(t, []string{in, in, "new=false user= keys=cart,device"}, who, "%v: the third login is refused, its browser stays anonymous with its cart (and the handler's other change)", p)
				} else {
					require.Equal(t, []string{"new=true user= keys=", in, in}, who, "%v: the first browser is logged out", p)
				}
			}
		})
	}
}
