package httpsession

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Option configures a Manager. New validates every option and returns the first error.
type Option func(*config) error

// ErrorHandler answers a request whose session could not be loaded or saved: a Redis
// failure, the request's context ending, a session over the size limit. It is called at
// most once per request, before any byte of the response was sent, with the response
// writer the middleware was given (not the wrapper); the handler's own response is
// discarded after it.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

type config struct {
	name       string
	path       string
	domain     string
	secure     bool
	sameSite   http.SameSite
	persistent bool
	timeout    time.Duration
	onError    ErrorHandler
	logger     *slog.Logger
	header     string // WithHeader's; "" for the cookie alone
}

// DefaultCookieName is the session cookie's name unless WithCookieName says otherwise.
const DefaultCookieName = "hasession"

func defaultConfig() config {
	return config{
		name:       DefaultCookieName,
		path:       "/",
		secure:     true,
		sameSite:   http.SameSiteLaxMode,
		persistent: true,
	}
}

// validate checks the cookie attributes together, as a browser will.
func (c *config) validate() error {
	probe := http.Cookie{Name: c.name, Value: "x", Path: c.path, Domain: c.domain}
	if err := probe.Valid(); err != nil {
		return fmt.Errorf("hasession: cookie: %w", err)
	}
	if c.sameSite == http.SameSiteNoneMode && !c.secure {
		return errors.New("hasession: SameSite=None needs a Secure cookie (browsers reject it otherwise)")
	}
	if strings.HasPrefix(c.name, "__Secure-") && !c.secure {
		return fmt.Errorf("hasession: cookie %q needs Secure", c.name)
	}
	if strings.HasPrefix(c.name, "__Host-") && (!c.secure || c.path != "/" || c.domain != "") {
		return fmt.Errorf("hasession: cookie %q needs Secure, Path=/ and no Domain", c.name)
	}
	return nil
}

// WithCookieName sets the session cookie's name. Default "hasession". A name starting
// with "__Host-" requires Secure, Path "/" and no Domain; "__Secure-" requires Secure.
func WithCookieName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("hasession: empty cookie name")
		}
		c.name = name
		return nil
	}
}

// WithHeader makes the Manager carry the session's ID in a header as well as in the
// cookie, for API and mobile clients that keep no cookies (Spring Session's
// HeaderHttpSessionIdResolver does the same): a request's header, when present, names
// its session first, validated as a cookie is (a malformed ID costs no round trip and
// gets a new session; one that names no live session falls back to the cookies); a
// response that gives the client an ID — a session saved for the first time, or rotated
// — carries it in that header, and the response to a Destroy carries the header empty.
// Responses carry Vary with the header's name. name is a header field name such as
// "X-Session-Id"; an empty or malformed one is an error at New.
func WithHeader(name string) Option {
	return func(c *config) error {
		if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			return fmt.Errorf("hasession: invalid header name %q", name)
		}
		c.header = http.CanonicalHeaderKey(name)
		return nil
	}
}

// isTokenChar reports whether r may appear in a header field name (RFC 9110 token).
func isTokenChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// WithCookiePath sets the cookie's Path attribute. Default "/". It must start with "/".
func WithCookiePath(path string) Option {
	return func(c *config) error {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("hasession: cookie path %q does not start with /", path)
		}
		c.path = path
		return nil
	}
}

// WithCookieDomain sets the cookie's Domain attribute, which shares the cookie with
// subdomains. Default "": a host-only cookie, the safer choice.
func WithCookieDomain(domain string) Option {
	return func(c *config) error {
		c.domain = domain
		return nil
	}
}

// WithSecure sets the cookie's Secure attribute. Default true: the cookie is only sent
// over HTTPS. Turn it off only for local development over plain HTTP (browsers accept a
// Secure cookie from http://localhost, not from a LAN address: the Manager logs a warning
// once when it sets one in answer to such a request).
func WithSecure(secure bool) Option {
	return func(c *config) error {
		c.secure = secure
		return nil
	}
}

// WithSameSite sets the cookie's SameSite attribute. Default http.SameSiteLaxMode.
// http.SameSiteNoneMode requires Secure; http.SameSiteDefaultMode leaves the attribute
// out.
func WithSameSite(mode http.SameSite) Option {
	return func(c *config) error {
		switch mode {
		case http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode, http.SameSiteNoneMode:
			c.sameSite = mode
			return nil
		}
		return fmt.Errorf("hasession: unknown SameSite mode %d", mode)
	}
}

// WithPersistentCookie chooses between a persistent cookie (true, the default), whose
// Max-Age and Expires follow the session's expiry and which survives a browser restart,
// and a session cookie (false), which has neither and which the browser drops when it
// closes (the session in Redis still expires on its own). A session that chose with
// [Session.SetPersistent] ("remember me") gets its own choice instead.
func WithPersistentCookie(persistent bool) Option {
	return func(c *config) error {
		c.persistent = persistent
		return nil
	}
}

// WithTimeout bounds the middleware's own load and save of the session, each, with a
// deadline under the request's context. Default 0: the request's context alone, which
// net/http gives no deadline, so while Redis is unreachable a request waits as long as the
// store's retry policy keeps trying (see store.RetryPolicy). Choose it longer than a
// failover takes, so users ride one out, and short enough for the error handler to answer
// while the client still waits. Rotate and Destroy use the context the handler gives them.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("hasession: negative timeout %s", d)
		}
		c.timeout = d
		return nil
	}
}

// WithErrorHandler sets the handler that answers when the session cannot be loaded or
// saved. Default: 409 Conflict for a save refused because another request changed the
// session since this one loaded it (store.ErrConflict, with the store's
// WithVersionCheck), logged at level Warn — the client may retry, nothing failed; 500
// Internal Server Error for anything else, logged at level Error (Warn when the client
// went away), through the Manager's logger (see WithLogger: by default, none). A nil
// handler restores the default; a handler of your own tells a conflict by
// errors.Is(err, store.ErrConflict).
func WithErrorHandler(h ErrorHandler) Option {
	return func(c *config) error {
		c.onError = h
		return nil
	}
}

// WithLogger sets the Manager's logger: the default error handler logs through it, and
// so do events worth an operator's attention (a session that could not be read and was
// replaced). Default, and with a nil logger: none, the Manager logs nothing (as the store
// logs nothing without store.WithLogger). Pass slog.Default() to log through the
// program's default logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}
