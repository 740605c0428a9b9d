package httpsession

import (
	"net/http"
	"testing"
	"time"
)

// The fast Set-Cookie value is http.Cookie.String's, byte for byte, for every cookie
// configuration the options allow and expiries across the range it handles; outside it
// (a value http.Cookie.String would quote or change, a year before 1601 or after 9999)
// it declines.
func TestCookieFormatIsHTTPCookieString(t *testing.T) {
	configs := []config{}
	for _, path := range []string{"/", "", "/app", "/a;b"} {
		for _, domain := range []string{"", "example.com", ".example.com"} {
			for _, secure := range []bool{true, false} {
				for _, ss := range []http.SameSite{0, http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode, http.SameSiteNoneMode} {
					configs = append(configs, config{name: "hasession", path: path, domain: domain, secure: secure, sameSite: ss})
				}
			}
		}
	}
	configs = append(configs, config{name: "__Host-sid", path: "/", secure: true, sameSite: http.SameSiteLaxMode})
	times := []time.Time{
		time.Unix(0, 0), time.Unix(1, 0), time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC), time.Date(2000, 2, 29, 12, 0, 0, 0, time.FixedZone("X", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	for ts := int64(-1e10); ts < 2.5e11; ts += 7_777_777_777 {
		times = append(times, time.Unix(ts, 0))
	}
	values := []string{"0b7c5a2e-4f1d-4c3b-9a8e-1f2d3c4b5a69", "abc_DEF.1-2"}
	for _, cfg := range configs {
		f := newCookieFormat(&cfg)
		for _, v := range values {
			for _, exp := range times {
				for _, maxAge := range []int{1, 1800, 1 << 40} {
					got, ok := f.persistent(v, exp, maxAge)
					if !ok {
						t.Fatalf("%+v %q %v: declined", cfg, v, exp)
					}
					c := http.Cookie{Name: cfg.name, Value: v, Path: cfg.path, Domain: cfg.domain, Secure: cfg.secure,
						HttpOnly: true, SameSite: cfg.sameSite, MaxAge: maxAge, Expires: exp}
					if want := c.String(); got != want {
						t.Fatalf("got  %q\nwant %q", got, want)
					}
				}
			}
		}
	}
	f := newCookieFormat(&config{name: "hasession", path: "/"})
	for _, tc := range []struct {
		v   string
		exp time.Time
	}{
		{"", time.Unix(1, 0)}, {"a b", time.Unix(1, 0)}, {`a"b`, time.Unix(1, 0)}, {"a,b", time.Unix(1, 0)},
		{"id", time.Date(1600, 12, 31, 0, 0, 0, 0, time.UTC)}, {"id", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if got, ok := f.persistent(tc.v, tc.exp, 1); ok {
			t.Errorf("%q %v: formatted %q, want declined", tc.v, tc.exp, got)
		}
	}
}

// Fuzzing: whatever it is given, the fast value is http.Cookie.String's, or declined.
func FuzzCookieFormat(f *testing.F) {
	f.Add("hasession", "/", "", "0b7c5a2e-4f1d-4c3b-9a8e-1f2d3c4b5a69", int64(1_800_000_000), 1800)
	f.Fuzz(func(t *testing.T, name, path, domain, value string, unix int64, maxAge int) {
		cfg := config{name: name, path: path, domain: domain, secure: true, sameSite: http.SameSiteLaxMode}
		if (&http.Cookie{Name: name, Value: "x", Path: path, Domain: domain}).Valid() != nil {
			return // refused by New
		}
		exp := time.Unix(unix, 0)
		cf := newCookieFormat(&cfg)
		got, ok := cf.persistent(value, exp, maxAge)
		if !ok {
			return
		}
		c := http.Cookie{Name: name, Value: value, Path: path, Domain: domain, Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: maxAge, Expires: exp}
		if want := c.String(); got != want {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
	})
}

// http.Cookie.String decides whether to write Expires by the year in the time's own
// location (validCookieExpires: t.Year() >= 1601), and writes it in UTC: near the 1601
// boundary the fast path must decide the same way (setCookie's times are time.Unix's,
// in time.Local).
func TestCookieFormatExpiresYearInItsLocation(t *testing.T) {
	f := newCookieFormat(&config{name: "hasession", path: "/", secure: true, sameSite: http.SameSiteLaxMode})
	for _, exp := range []time.Time{
		time.Date(1601, 1, 1, 2, 0, 0, 0, time.UTC).In(time.FixedZone("W", -5*3600)),   // 1600 there
		time.Date(1600, 12, 31, 22, 0, 0, 0, time.UTC).In(time.FixedZone("E", 5*3600)), // 1601 there
	} {
		c := http.Cookie{Name: "hasession", Value: "id", Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: 1, Expires: exp}
		if got, ok := f.persistent("id", exp, 1); ok && got != c.String() {
			t.Errorf("%v: got  %q\nwant %q", exp, got, c.String())
		}
	}
}
