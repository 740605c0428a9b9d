package httpsession_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

func TestNewValidatesOptions(t *testing.T) {
	// No command is sent: the options are checked in New.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb)
	require.NoError(t, err)

	for _, c := range []struct {
		name string
		opts []httpsession.Option
		ok   bool
	}{
		{"defaults", nil, true},
		{"a nil option is ignored", []httpsession.Option{nil}, true},
		{"every cookie attribute", []httpsession.Option{httpsession.WithCookieName("sid"), httpsession.WithCookiePath("/app"),
			httpsession.WithCookieDomain("example.com"), httpsession.WithSameSite(http.SameSiteStrictMode),
			httpsession.WithPersistentCookie(false), httpsession.WithSecure(false)}, true},
		{"a __Host- cookie with its rules", []httpsession.Option{httpsession.WithCookieName("__Host-sid")}, true},
		{"a timeout", []httpsession.Option{httpsession.WithTimeout(2 * time.Second)}, true},
		{"a session header", []httpsession.Option{httpsession.WithHeader("X-Session-Id")}, true},
		{"an empty header name", []httpsession.Option{httpsession.WithHeader("")}, false},
		{"a header name with a space", []httpsession.Option{httpsession.WithHeader("X Session")}, false},
		{"a header name with a colon", []httpsession.Option{httpsession.WithHeader("X-Session:")}, false},
		{"a negative timeout", []httpsession.Option{httpsession.WithTimeout(-time.Second)}, false},
		{"an empty name", []httpsession.Option{httpsession.WithCookieName("")}, false},
		{"a name with a space", []httpsession.Option{httpsession.WithCookieName("my sid")}, false},
		{"a name with a semicolon", []httpsession.Option{httpsession.WithCookieName("sid;")}, false},
		{"a relative path", []httpsession.Option{httpsession.WithCookiePath("app")}, false},
		{"a path with a semicolon", []httpsession.Option{httpsession.WithCookiePath("/a;b")}, false},
		{"a malformed domain", []httpsession.Option{httpsession.WithCookieDomain("exa mple.com")}, false},
		{"an unknown SameSite mode", []httpsession.Option{httpsession.WithSameSite(http.SameSite(42))}, false},
		{"SameSite=None without Secure", []httpsession.Option{httpsession.WithSameSite(http.SameSiteNoneMode), httpsession.WithSecure(false)}, false},
		{"SameSite=None with Secure", []httpsession.Option{httpsession.WithSameSite(http.SameSiteNoneMode)}, true},
		{"a __Secure- cookie without Secure", []httpsession.Option{httpsession.WithCookieName("__Secure-sid"), httpsession.WithSecure(false)}, false},
		{"a __Host- cookie with a Domain", []httpsession.Option{httpsession.WithCookieName("__Host-sid"), httpsession.WithCookieDomain("example.com")}, false},
		{"a __Host- cookie with a Path", []httpsession.Option{httpsession.WithCookieName("__Host-sid"), httpsession.WithCookiePath("/app")}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := httpsession.New(st, c.opts...)
			if c.ok {
				require.NoError(t, err)
				require.NotNil(t, m)
				return
			}
			require.Error(t, err)
			require.Nil(t, m)
		})
	}
}

func TestNewPanicsOnANilStore(t *testing.T) {
	require.Panics(t, func() { _, _ = httpsession.New(nil) })
}
