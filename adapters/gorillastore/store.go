package gorillastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"
	"weak"

	"github.com/gorilla/sessions"

	"github.com/hasession/hasession/store"
)

// ErrKeyNotString is returned (wrapped, with the key) by Save when a key of
// Session.Values is not a string: each value is stored as an attribute named by its key.
// Nothing was sent to Redis.
var ErrKeyNotString = errors.New("gorillastore: session value key is not a string")

// Store is a gorilla/sessions store on a hasession [store.Store]. It is safe for
// concurrent use; the sessions it returns, as with any gorilla store, are not.
type Store struct {
	st     *store.Store
	cookie sessions.Options
	types  map[string]reflect.Type
	legacy *legacy // nil: no legacy store's sessions to move
	logger *slog.Logger

	mu     sync.Mutex
	states map[weak.Pointer[sessions.Session]]*state // nil: registered, nothing known
}

var _ sessions.Store = (*Store)(nil)

// state is what the Store knows of a gorilla session it loaded or saved: the hasession
// session behind it and the attributes Redis holds for it.
type state struct {
	hs     *store.Session
	stored map[string]snapshot
}

// snapshot is what an attribute held when it was loaded.
type snapshot struct {
	v     any  // decoded apart from the value in Values, so changes to that one show
	known bool // false: not known (loaded by Save itself); Save writes the value
}

// New returns a Store that keeps gorilla sessions in st: the cookie carries the
// hasession session ID, each value of Session.Values is one attribute, encoded with st's
// codec, and sessions expire after st's idle timeout and their absolute lifetime:
// Options.MaxAge, by default st's lifetime. Invalid options are an error, also a default
// MaxAge over st's maximum lifetime (store.WithMaxLifetime): one matching
// store.ErrInvalidExpiry. New panics on a nil store (programmer error).
func New(st *store.Store, opts ...Option) (*Store, error) {
	if st == nil {
		panic("gorillastore: New with a nil store")
	}
	o := options{cookie: DefaultOptions}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.cookie.MaxAge == 0 {
		o.cookie.MaxAge = max(1, int(st.Lifetime()/time.Second))
	} else if err := checkMaxAge(st, o.cookie.MaxAge); err != nil {
		return nil, fmt.Errorf("gorillastore: default MaxAge: %w", err)
	}
	if o.legacyJSON {
		if o.legacy == nil || o.legacy.codecs == nil {
			return nil, errors.New("gorillastore: WithLegacyJSON without WithLegacyRedistore")
		}
		o.legacy.json = true
	}
	return &Store{
		st:     st,
		cookie: o.cookie,
		types:  o.types,
		legacy: o.legacy,
		logger: o.logger,
		states: make(map[weak.Pointer[sessions.Session]]*state),
	}, nil
}

// Get returns the session of the given name for the request, loading it on the first
// call and returning the same session after that (gorilla's per-request registry). See
// New for what it returns.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session named by the request's cookie, without the registry: one round
// trip (see store.Store.Load), with the values decoded into Values (see the package
// documentation for their types). It returns a new session (IsNew, empty Values, the
// Store's default options) when there is no cookie, when the cookie is not a
// well-formed session ID (nothing is sent to Redis), or when the session does not exist
// or expired. On any other error — Redis unreachable past the retry policy, a value that
// does not decode — it returns a new session and the error, as gorilla stores do.
//
// With a legacy store configured ([WithLegacyRedistore], [WithLegacyRedisstore]), a
// cookie that is not a hasession session ID is read as the legacy store's cookie: one
// that names a legacy session moves it (once, however many requests bring it) and
// returns the hasession session it became, with a new ID (IsNew false) that Save sends in
// the cookie. A cookie that does not verify or names no legacy session (nothing is sent
// to Redis for one that is not a legacy ID), and a legacy session that does not move
// (store.ErrLegacyCorrupt: left as it is, logged), give a new session and no error.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	opts := s.cookie
	sess.Options = &opts
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	hs, err := s.st.Load(r.Context(), c.Value)
	if errors.Is(err, store.ErrInvalidID) && s.legacy != nil {
		hs, err = s.adopt(r.Context(), name, c)
		if hs == nil && err == nil {
			return sess, nil
		}
	}
	switch {
	case errors.Is(err, store.ErrInvalidID), errors.Is(err, store.ErrNotFound):
		return sess, nil
	case err != nil:
		return sess, fmt.Errorf("gorillastore: load session %q: %w", name, err)
	}
	values := make(map[any]any)
	stored := make(map[string]snapshot)
	for _, k := range hs.Keys() {
		v, err := s.decode(hs, k)
		if err != nil {
			return sess, fmt.Errorf("gorillastore: load session %q: %w", name, err)
		}
		snap, err := s.decode(hs, k)
		if err != nil {
			return sess, fmt.Errorf("gorillastore: load session %q: %w", name, err)
		}
		values[k] = v
		stored[k] = snapshot{v: snap, known: true}
	}
	sess.ID = hs.ID()
	sess.Values = values
	sess.IsNew = false
	// MaxAge is the session's lifetime: the one it was saved with, so that saving it
	// again keeps its deadline.
	opts.MaxAge = max(1, int(hs.Lifetime()/time.Second))
	s.attach(sess, &state{hs: hs, stored: stored})
	return sess, nil
}

// Save writes the session and sets its cookie (call it before writing the response),
// with Cache-Control: no-cache="Set-Cookie" so that shared caches do not keep it.
//
// Options.MaxAge > 0 is the session's absolute lifetime in Redis, from its creation, as
// well as the cookie's Max-Age: a session saved with MaxAge 60 is gone 60 s after it was
// created however active, and one whose MaxAge changed gets its deadline moved (see
// store.Session.SetLifetime). A MaxAge over the hasession store's maximum lifetime
// (store.WithMaxLifetime; by default its lifetime) is an error matching
// store.ErrInvalidExpiry, and nothing is sent. A loaded session's MaxAge is the lifetime
// it was saved with, and saving it with that MaxAge keeps it, also over a maximum lowered
// since.
//
// With Options.MaxAge > 0 it writes, in one script, the values that changed since the
// session was loaded (compared with reflect.DeepEqual) and deletes the attributes whose
// keys were removed from Values; an unchanged session sends nothing, and a new one is
// written even without values. With Options.MaxAge ≤ 0 it destroys the session in Redis
// and expires the cookie.
//
// A session that is gone from Redis since it was loaded — logged out (a Save with
// MaxAge ≤ 0 or store.Store.Destroy elsewhere), revoked (store.Store.RevokeAll),
// expired, rotated away — is not brought back, and its values do not move to a new
// session either: a request still in flight when the user logged out must not log them
// back in. Save then writes nothing, sets no cookie and returns an error matching
// store.ErrNotFound; the browser's cookie leads to a new, empty session at its next
// request. A handler that wants to keep the values in a new session sets sess.ID to ""
// and saves again.
//
// Errors: an error matching store.ErrNotFound (the session is gone); store.ErrInvalidExpiry
// (a *store.ExpiryError: MaxAge over the maximum lifetime); ErrKeyNotString,
// and codec errors for a value the codec cannot encode or that would not load back (see
// the package documentation), with nothing sent; *store.SizeError; the context's or
// Redis's error once the store's retry policy gave up. After an error the next Save
// writes every value again.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	opts := sess.Options
	if opts == nil {
		o := s.cookie
		opts = &o
	}
	if opts.MaxAge <= 0 {
		return s.destroy(ctx, w, sess, opts)
	}
	names := make([]string, 0, len(sess.Values))
	for k := range sess.Values {
		name, ok := k.(string)
		if !ok {
			return fmt.Errorf("%w: %#v (%T) in session %q", ErrKeyNotString, k, k, sess.Name())
		}
		names = append(names, name)
	}
	slices.Sort(names)
	if err := checkMaxAge(s.st, opts.MaxAge); err != nil && !s.keepsLifetime(sess, opts.MaxAge) {
		return fmt.Errorf("gorillastore: save session %q: %w", sess.Name(), err)
	}
	// A session destroyed, revoked, expired or rotated away since it was loaded is
	// ErrNotFound: neither it nor its values come back, under its ID or another.
	stt, err := s.stateFor(ctx, sess)
	if err == nil {
		err = s.write(ctx, stt, sess, names, opts.MaxAge)
	}
	if err != nil {
		s.detach(sess)
		return fmt.Errorf("gorillastore: save session %q: %w", sess.Name(), err)
	}
	sess.ID = stt.hs.ID()
	s.attach(sess, stt)
	setCookie(w, sessions.NewCookie(sess.Name(), sess.ID, opts))
	return nil
}

// setCookie adds the cookie and, as scs does, asks shared caches not to store it.
func setCookie(w http.ResponseWriter, c *http.Cookie) {
	http.SetCookie(w, c)
	w.Header().Add("Cache-Control", `no-cache="Set-Cookie"`)
}

// write applies Values and the lifetime (maxAge, seconds) to the hasession session and
// saves it.
func (s *Store) write(ctx context.Context, stt *state, sess *sessions.Session, names []string, maxAge int) error {
	hs := stt.hs
	if int(hs.Lifetime()/time.Second) != maxAge {
		if err := hs.SetLifetime(time.Duration(maxAge) * time.Second); err != nil {
			return err
		}
	}
	set := make(map[string]any)
	for _, k := range names {
		v := sess.Values[k]
		if snap, ok := stt.stored[k]; ok && snap.known && reflect.DeepEqual(v, snap.v) {
			continue
		}
		if err := hs.Set(k, v); err != nil {
			return err
		}
		// Decode it as a load will: a value that would not load back is refused now,
		// not on the next request.
		back, err := s.decode(hs, k)
		if err != nil {
			return fmt.Errorf("value %q would not load back (register its type with WithValueType): %w", k, err)
		}
		set[k] = back
	}
	for k := range stt.stored {
		if _, ok := sess.Values[k]; !ok {
			hs.Delete(k)
		}
	}
	if hs.IsNew() {
		// A new session is written even without values, so the next request finds it (the
		// store skips unmodified sessions).
		hs.SetUser("")
	}
	if err := s.st.Save(ctx, hs); err != nil {
		return err
	}
	for k := range stt.stored {
		if _, ok := sess.Values[k]; !ok {
			delete(stt.stored, k)
		}
	}
	for k, back := range set {
		stt.stored[k] = snapshot{v: back, known: true}
	}
	return nil
}

// checkMaxAge returns a *store.ExpiryError when a positive MaxAge (seconds) is over the
// store's maximum lifetime.
func checkMaxAge(st *store.Store, maxAge int) error {
	if maxAge <= 0 || int64(maxAge) <= int64(st.MaxLifetime()/time.Second) {
		return nil
	}
	d := time.Duration(math.MaxInt64) // a MaxAge past what a Duration holds
	if int64(maxAge) < int64(math.MaxInt64/time.Second) {
		d = time.Duration(maxAge) * time.Second
	}
	return &store.ExpiryError{Setting: "lifetime", Value: d, Min: time.Second, Max: st.MaxLifetime()}
}

// keepsLifetime reports whether maxAge is the lifetime sess was loaded with: a session
// saved before the store's maximum was lowered keeps its lifetime (nothing changes it),
// and saving it is no error.
func (s *Store) keepsLifetime(sess *sessions.Session, maxAge int) bool {
	stt := s.lookup(sess)
	return stt != nil && stt.hs.ID() == sess.ID && int(stt.hs.Lifetime()/time.Second) == maxAge
}

// destroy deletes the session in Redis and expires its cookie.
func (s *Store) destroy(ctx context.Context, w http.ResponseWriter, sess *sessions.Session, opts *sessions.Options) error {
	if sess.ID != "" {
		if err := s.st.Destroy(ctx, sess.ID); err != nil && !errors.Is(err, store.ErrInvalidID) {
			return fmt.Errorf("gorillastore: delete session %q: %w", sess.Name(), err)
		}
	}
	s.detach(sess)
	sess.ID = ""
	expired := *opts
	expired.MaxAge = -1
	setCookie(w, sessions.NewCookie(sess.Name(), "", &expired))
	return nil
}

// stateFor returns what the Store knows of the session: what New or the last Save
// recorded, or else what Redis holds under its ID (every value is then written). A
// session with an ID that Redis no longer holds is ErrNotFound: its values are not
// written under another ID.
func (s *Store) stateFor(ctx context.Context, sess *sessions.Session) (*state, error) {
	if stt := s.lookup(sess); stt != nil && stt.hs.ID() == sess.ID {
		return stt, nil
	}
	if sess.ID == "" {
		return s.fresh()
	}
	hs, err := s.st.Load(ctx, sess.ID)
	switch {
	case errors.Is(err, store.ErrInvalidID):
		return s.fresh()
	case err != nil:
		return nil, err
	}
	stored := make(map[string]snapshot)
	for _, k := range hs.Keys() {
		stored[k] = snapshot{}
	}
	return &state{hs: hs, stored: stored}, nil
}

// fresh returns the state of a new session.
func (s *Store) fresh() (*state, error) {
	hs, err := s.st.NewSession()
	if err != nil {
		return nil, err
	}
	return &state{hs: hs, stored: make(map[string]snapshot)}, nil
}

// decode returns the attribute's value: of the registered type (WithValueType), or
// decoded into any (a map with other than string keys into map[any]any) and
// normalized.
func (s *Store) decode(hs *store.Session, key string) (any, error) {
	if t, ok := s.types[key]; ok {
		p := reflect.New(t)
		if err := hs.Get(key, p.Interface()); err != nil {
			return nil, err
		}
		return p.Elem().Interface(), nil
	}
	var v any
	err := hs.Get(key, &v)
	if err != nil {
		// MessagePack decodes a map into any only with string keys; try any keys.
		var m map[any]any
		if hs.Get(key, &m) != nil {
			return nil, err
		}
		v = m
	}
	return normalize(v), nil
}

// normalize turns the integer types a MessagePack decode into any yields (int8 … uint64,
// by magnitude) into int64 (uint64 above math.MaxInt64) and float32 into float64, in
// nested slices and maps too.
func normalize(v any) any {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x)
		}
		return uint64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return x
	case float32:
		return float64(x)
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case map[any]any:
		m := make(map[any]any, len(x))
		for k, e := range x {
			m[normalize(k)] = normalize(e)
		}
		return m
	}
	return v
}

// The Store keeps a state per gorilla session it loaded or saved, keyed weakly: an entry
// goes when its session is garbage collected, so nothing leaks when sessions are dropped
// without a Save.

func (s *Store) lookup(sess *sessions.Session) *state {
	wp := weak.Make(sess)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[wp]
}

func (s *Store) attach(sess *sessions.Session, stt *state) {
	wp := weak.Make(sess)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.states[wp]; !ok {
		runtime.AddCleanup(sess, s.forget, wp)
	}
	s.states[wp] = stt
}

func (s *Store) detach(sess *sessions.Session) {
	wp := weak.Make(sess)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.states[wp]; ok {
		s.states[wp] = nil
	}
}

func (s *Store) forget(wp weak.Pointer[sessions.Session]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.states, wp)
}
