package httpsession

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cookieFormat writes the session cookie's Set-Cookie value as http.Cookie.String does,
// byte for byte, without its per-call work: the name, path, domain and flags are checked
// and formatted once, by http.Cookie.String itself, and only the value, Expires and
// Max-Age are written per response (a persistent cookie goes out with every response
// that carries a stored session).
type cookieFormat struct {
	head  string // "name="
	scope string // "; Path=…; Domain=…", as http.Cookie.String writes them
	flags string // "; HttpOnly; Secure; SameSite=…"
}

// newCookieFormat splits what http.Cookie.String writes for the configured cookie into
// the parts around the value and the expiry.
func newCookieFormat(cfg *config) cookieFormat {
	c := http.Cookie{Name: cfg.name, HttpOnly: true, Secure: cfg.secure, SameSite: cfg.sameSite}
	head := cfg.name + "="
	flags := strings.TrimPrefix(c.String(), head)
	c.Path, c.Domain = cfg.path, cfg.domain
	scope := strings.TrimSuffix(strings.TrimPrefix(c.String(), head), flags)
	return cookieFormat{head: head, scope: scope, flags: flags}
}

// plainValue reports whether http.Cookie.String writes v as it is (no quotes, nothing
// dropped): a session ID is.
func plainValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// persistent returns the Set-Cookie value of a cookie holding value that expires at
// expires (whole seconds), with Max-Age maxAge (> 0), as http.Cookie.String writes it.
// ok is false when value is not plainValue, or expires is before 1601 (in its location
// or in UTC: http.Cookie.String omits such an Expires) or after 9999: the caller formats
// that cookie with http.Cookie.String.
func (f *cookieFormat) persistent(value string, expires time.Time, maxAge int) (string, bool) {
	// http.Cookie.String writes Expires when its year in its own location is 1601 or
	// later, and writes it in UTC: both years are checked.
	if y, u := expires.Year(), expires.UTC().Year(); !plainValue(value) || y < 1601 || u < 1601 || u > 9999 || maxAge <= 0 {
		return "", false
	}
	var buf [256]byte
	b := buf[:0]
	b = append(b, f.head...)
	b = append(b, value...)
	b = append(b, f.scope...)
	b = append(b, "; Expires="...)
	b = appendHTTPDate(b, expires.UTC())
	b = append(b, "; Max-Age="...)
	b = strconv.AppendInt(b, int64(maxAge), 10)
	b = append(b, f.flags...)
	return string(b), true
}

// appendHTTPDate appends t (UTC) in http.TimeFormat, "Mon, 02 Jan 2006 15:04:05 GMT",
// for years 1000 to 9999.
func appendHTTPDate(b []byte, t time.Time) []byte {
	const days, months = "SunMonTueWedThuFriSat", "JanFebMarAprMayJunJulAugSepOctNovDec"
	y, mo, d := t.Date()
	hh, mm, ss := t.Clock()
	wd := int(t.Weekday())
	b = append(b, days[3*wd:3*wd+3]...)
	b = append(b, ", "...)
	b = append2(b, d)
	b = append(b, ' ')
	b = append(b, months[3*(int(mo)-1):3*int(mo)]...)
	b = append(b, ' ')
	b = append2(b, y/100)
	b = append2(b, y%100)
	b = append(b, ' ')
	b = append2(b, hh)
	b = append(b, ':')
	b = append2(b, mm)
	b = append(b, ':')
	b = append2(b, ss)
	return append(b, " GMT"...)
}

// append2 appends n (0 to 99) as two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}
