package httpsession_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// An attacker who plants a session cookie in the victim's browser before the victim logs
// in must not reach the logged-in session with that cookie, not even within the
// rotation's grace period, nor end it.
func TestSessionFixation(t *testing.T) {
	topo := cluster.Shared(t, cluster.KindStandalone)
	a := newAppOn(t, client(t, topo), true, []store.Option{store.WithGracePeriod(30 * time.Second)})

	// (1) The attacker gets a session of their own: cookie A.
	attacker := a.user(t)
	resp, _ := a.get(t, attacker, "/set?k=theme&v=dark")
	planted := a.sessionCookie(resp)
	require.NotNil(t, planted)
	cookieA := &http.Cookie{Name: planted.Name, Value: planted.Value}

	// ... and plants it in the victim's browser.
	victim := a.user(t)
	u, err := url.Parse(a.srv.URL)
	require.NoError(t, err)
	victim.Jar.SetCookies(u, []*http.Cookie{cookieA})

	// (2) The victim logs in (SetUser + Rotate), and the session gets the victim's data.
	resp, _ = a.get(t, victim, "/login?user=alice&device=laptop")
	rotated := a.sessionCookie(resp)
	require.NotNil(t, rotated)
	cookieB := rotated.Value
	require.NotEqual(t, cookieA.Value, cookieB)
	a.get(t, victim, "/set?k=secret&v=s3cret")
	_, body := a.get(t, victim, "/whoami")
	require.Equal(t, "new=false user=alice keys=device,secret,theme", body)

	// (3) Within the grace period the attacker sends cookie A.
	anon := a.srv.Client()
	t.Run("the old cookie does not lead to the logged-in session", func(t *testing.T) {
		resp, body := a.get(t, anon, "/whoami", cookieA)
		require.Equal(t, "new=true user= keys=", body)
		for _, sc := range resp.Header.Values("Set-Cookie") {
			require.NotContains(t, sc, cookieB, "the victim's cookie handed to the attacker")
		}
		require.Nil(t, a.sessionCookie(resp))
		_, body = a.get(t, anon, "/get?k=secret", cookieA)
		require.Equal(t, "-", body)
	})

	t.Run("a change sent with the old cookie goes to a new session of its own", func(t *testing.T) {
		resp, _ := a.get(t, anon, "/set?k=evil&v=1", cookieA)
		ck := a.sessionCookie(resp)
		require.NotNil(t, ck)
		require.NotEqual(t, cookieB, ck.Value)
		require.NotEqual(t, cookieA.Value, ck.Value)
		_, body := a.get(t, victim, "/whoami")
		require.Equal(t, "new=false user=alice keys=device,secret,theme", body)
	})

	t.Run("a logout sent with the old cookie does not end the logged-in session", func(t *testing.T) {
		a.get(t, anon, "/logout", cookieA)
		_, body := a.get(t, victim, "/whoami")
		require.Equal(t, "new=false user=alice keys=device,secret,theme", body)
		key, err := a.st.Key(cookieB)
		require.NoError(t, err)
		require.EqualValues(t, 1, a.rdb.Exists(t.Context(), key).Val())
		require.Equal(t, cookieB, a.jarCookie(t, victim).Value)
	})
}
