package httpsession

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hasession/hasession/store"
)

// Manager is the session middleware: it carries the session's ID in a cookie and the
// session in the request's context. It is safe for concurrent use.
type Manager struct {
	st      *store.Store
	cfg     config
	onError ErrorHandler
	logger  *slog.Logger // WithLogger's, or one that discards: never nil
	cookie  cookieFormat // the session cookie's Set-Cookie value, formatted fast

	warnedInsecure atomic.Bool // the plain-HTTP warning went out (see warnInsecure)
}

// New returns a Manager on the store. Invalid options are an error here, never later.
// New panics on a nil store (programmer error).
func New(st *store.Store, opts ...Option) (*Manager, error) {
	if st == nil {
		panic("hasession: httpsession.New with a nil store")
	}
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Manager{st: st, cfg: cfg, onError: cfg.onError, logger: cfg.logger, cookie: newCookieFormat(&cfg)}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	if m.onError == nil {
		m.onError = m.defaultError
	}
	return m, nil
}

// Store returns the store the Manager keeps its sessions in.
func (m *Manager) Store() *store.Store { return m.st }

// CookieName returns the name of the session cookie.
func (m *Manager) CookieName() string { return m.cfg.name }

// Handler returns middleware that gives next's requests a session (see [FromContext]).
//
// Before next runs it loads the session the cookie names, with the request's context:
// without a cookie, or with one that is malformed (nothing is sent to Redis then),
// unknown or expired, the request gets a new session that costs nothing until something
// is stored in it. A session that cannot be read (foreign data at its key, another codec)
// is logged and replaced by a new one; its data is left untouched.
//
// The session is saved, if it changed, before the first byte of the response: at next's
// first Write, WriteHeader (other than 1xx informational), ReadFrom, Flush or Hijack, or
// when next returns without writing; from then on the [Session]'s mutators return
// [ErrCommitted] and do nothing. Then the response gets Vary: Cookie and, when it
// sets the cookie, Cache-Control: no-cache="Set-Cookie". The cookie is set when the
// session first reaches Redis or changes ID (Rotate, or an old ID the store forwarded to
// the new one) and, for a persistent cookie, with every response that carries a stored
// session, so that its expiry follows the session's sliding expiry; Destroy expires it.
// Whether it is persistent is the session's own choice where it made one
// ([Session.SetPersistent]), else [WithPersistentCookie]'s.
// A visitor whose session stays empty gets no cookie and costs no Redis write.
//
// If the session cannot be loaded or saved (a Redis failure, the request's context
// ending, the bound set by [WithTimeout] passing), the error handler answers instead of
// next (see [WithErrorHandler]); nothing panics. The response writer next gets
// implements http.Flusher, http.Hijacker (a hijacked connection carries no cookie: the
// Set-Cookie header is in w.Header() for a handler that writes its own response) and
// io.ReaderFrom, and has an Unwrap method, so http.ResponseController reaches the
// server's writer.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs := &requestState{}
		h := &rs.sess
		h.outer = FromContext(r.Context())
		if err := m.load(r, h); err != nil {
			m.onError(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, h))
		rs.rw = responseWriter{ResponseWriter: w, m: m, r: r, h: h}
		next.ServeHTTP(&rs.rw, r)
		rs.rw.commit()
	})
}

// requestState is what one request needs, in one allocation.
type requestState struct {
	sess Session
	rw   responseWriter
}

// maxCookieTries bounds the session cookies of one request that load reads from Redis
// (see load): a request carrying more is not a browser's.
const maxCookieTries = 3

// load fills h with the session the request's cookie names, or a new one. A request may
// carry several cookies of the session's name (one set for a parent domain or another
// path beside the current one; browsers send the most specific path first): load takes
// the first that names a live session, so that a stale or malformed one does not log the
// user out. Malformed values are skipped without a round trip; at most maxCookieTries
// well-formed ones are loaded.
func (m *Manager) load(r *http.Request, h *Session) error {
	h.m = m
	tries := 0
	if m.cfg.header != "" {
		if v := r.Header.Get(m.cfg.header); v != "" {
			h.cookieID, h.hadCookie = v, true
			if m.st.ValidID(v) {
				tries++
				if found, err := m.loadID(r, h, v); found || err != nil {
					return err
				}
			}
		}
	}
	for _, c := range r.CookiesNamed(m.cfg.name) {
		if c.Value == "" || !m.st.ValidID(c.Value) {
			if !h.hadCookie {
				h.cookieID, h.hadCookie = c.Value, c.Value != ""
			}
			continue
		}
		if tries == maxCookieTries {
			break
		}
		tries++
		h.cookieID, h.hadCookie = c.Value, true
		if found, err := m.loadID(r, h, c.Value); found || err != nil {
			return err
		}
	}
	s, err := m.st.NewSession()
	if err != nil {
		return err
	}
	h.s = s
	return nil
}

// loadID loads the session id names into h; found is false when there is none (gone, or
// unreadable: logged), err an error the request fails with.
func (m *Manager) loadID(r *http.Request, h *Session, id string) (found bool, err error) {
	ctx, cancel := m.opContext(r.Context())
	s, err := m.st.Load(ctx, id)
	cancel()
	switch {
	case err == nil:
		h.s = s
		return true, nil
	case errors.Is(err, store.ErrInvalidID), errors.Is(err, store.ErrNotFound):
	case errors.Is(err, store.ErrCorrupt), errors.Is(err, store.ErrCodecMismatch), errors.Is(err, store.ErrLegacyCorrupt):
		m.logger.LogAttrs(r.Context(), slog.LevelWarn, "hasession: unreadable session replaced by a new one", slog.Any("err", err))
	default:
		return false, err
	}
	return false, nil
}

// commit saves the session if it changed and adds the cookie to the response's headers.
// It runs once per request.
func (m *Manager) commit(r *http.Request, hdr http.Header, h *Session) error {
	ctx := r.Context()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.committed {
		return nil
	}
	h.committed = true
	s := h.s
	if s.Modified() {
		ctx, cancel := m.opContext(ctx)
		err := m.st.Save(ctx, s)
		cancel()
		if err != nil {
			return err
		}
	}
	addVary(hdr, "Cookie")
	if m.cfg.header != "" {
		addVary(hdr, m.cfg.header)
	}
	switch {
	case !s.IsNew():
		id := s.ID()
		persistent := m.cfg.persistent
		if p, ok := s.Persistent(); ok { // the session's own choice (SetPersistent)
			persistent = p
		}
		if persistent || id != h.cookieID || h.persistSet {
			m.setCookie(hdr, id, s.ExpiresAt(), persistent)
			m.warnInsecure(r)
		}
		if m.cfg.header != "" && id != h.cookieID {
			hdr.Set(m.cfg.header, id)
		}
	case h.destroyed && h.hadCookie:
		m.setCookie(hdr, "", time.Time{}, false)
		if m.cfg.header != "" {
			hdr.Set(m.cfg.header, "")
		}
	}
	return nil
}

// warnInsecure logs, once per Manager, that a Secure session cookie went out in answer
// to a plain-HTTP request for a host other than localhost (or a loopback address, which
// browsers treat as secure): the browser drops the cookie, so every request of that
// visitor starts a new session. A request a proxy received over HTTPS
// (X-Forwarded-Proto: https, or Forwarded: proto=https) is not plain.
func (m *Manager) warnInsecure(r *http.Request) {
	if !m.cfg.secure || r.TLS != nil || m.warnedInsecure.Load() {
		return
	}
	if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") ||
		strings.Contains(strings.ToLower(r.Header.Get("Forwarded")), "proto=https") {
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	if m.warnedInsecure.Swap(true) {
		return
	}
	m.logger.LogAttrs(r.Context(), slog.LevelWarn, "hasession: a Secure session cookie was set in answer to a plain-HTTP request: browsers drop it, so every request starts a new session; serve over HTTPS, or use WithSecure(false) for local development over HTTP",
		slog.String("host", r.Host))
}

// opContext returns the context of one load or save (see WithTimeout).
func (m *Manager) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.cfg.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, m.cfg.timeout)
}

// setCookie adds the session cookie, persistent (Max-Age and Expires from expires) or
// not; an empty value expires it.
func (m *Manager) setCookie(hdr http.Header, value string, expires time.Time, persistent bool) {
	c := http.Cookie{
		Name:     m.cfg.name,
		Value:    value,
		Path:     m.cfg.path,
		Domain:   m.cfg.domain,
		Secure:   m.cfg.secure,
		HttpOnly: true,
		SameSite: m.cfg.sameSite,
	}
	switch {
	case value == "":
		c.MaxAge, c.Expires = -1, time.Unix(1, 0)
	case persistent && !expires.IsZero():
		// Round up to the second, and never below one: a cookie about to expire is
		// still the session's (the store decides when it is gone).
		secs := max(int64((time.Until(expires)+time.Second-1)/time.Second), 1)
		c.MaxAge = int(secs)
		c.Expires = time.Unix(expires.Add(time.Second-1).Unix(), 0)
		if v, ok := m.cookie.persistent(value, c.Expires, c.MaxAge); ok {
			addHeader(hdr, "Set-Cookie", v)
			addHeader(hdr, "Cache-Control", `no-cache="Set-Cookie"`)
			return
		}
	}
	addHeader(hdr, "Set-Cookie", c.String())
	addHeader(hdr, "Cache-Control", `no-cache="Set-Cookie"`)
}

// addHeader adds v to the header named key, which is in canonical form (Header.Add
// without canonicalising the key again).
func addHeader(hdr http.Header, key, v string) {
	hdr[key] = append(hdr[key], v)
}

// addVary adds name to the Vary header unless it is there already.
func addVary(hdr http.Header, name string) {
	for _, v := range hdr["Vary"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, name) {
				return
			}
		}
	}
	addHeader(hdr, "Vary", name)
}

// defaultError logs the error and answers: 409 Conflict, logged as a warning, for a save
// that met a concurrent change (store.ErrConflict: WithVersionCheck); 500 otherwise,
// logged as an error, or as a warning when the client went away.
func (m *Manager) defaultError(w http.ResponseWriter, r *http.Request, err error) {
	status, level, msg := http.StatusInternalServerError, slog.LevelError, "hasession: session unavailable"
	switch {
	case errors.Is(err, store.ErrConflict):
		status, level, msg = http.StatusConflict, slog.LevelWarn, "hasession: session changed by a concurrent request; not saved"
	case errors.Is(err, context.Canceled):
		level = slog.LevelWarn
	}
	m.logger.LogAttrs(r.Context(), level, msg,
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	http.Error(w, http.StatusText(status), status)
}

// Sessions returns the user's live sessions, most recently used first, with the named
// attributes (see store.Store.Sessions).
func (m *Manager) Sessions(ctx context.Context, user string, attrs ...string) ([]store.SessionInfo, error) {
	return m.st.Sessions(ctx, user, attrs...)
}

// Revoke ends one session of the user, given its Ref or ID (see store.Store.Revoke). A
// browser that still carries it gets a new, empty session at its next request.
func (m *Manager) Revoke(ctx context.Context, user, ref string) error {
	return m.st.Revoke(ctx, user, ref)
}

// RevokeAll ends every session of the user except those named (IDs or Refs); see
// store.Store.RevokeAll.
func (m *Manager) RevokeAll(ctx context.Context, user string, except ...string) error {
	return m.st.RevokeAll(ctx, user, except...)
}
