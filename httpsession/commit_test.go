package httpsession_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/httpsession"
	"github.com/hasession/hasession/store"
)

// errNoRedis is what the refusing client answers every command with.
var errNoRedis = errors.New("test: no Redis here")

// refusingHook records the commands a client is asked to send, and sends none: it dials
// nothing and answers every command with errNoRedis.
type refusingHook struct {
	mu   sync.Mutex
	cmds []string
}

func (h *refusingHook) DialHook(redis.DialHook) redis.DialHook {
	return func(context.Context, string, string) (net.Conn, error) { return nil, errNoRedis }
}

func (h *refusingHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(_ context.Context, cmd redis.Cmder) error {
		h.record(cmd)
		cmd.SetErr(errNoRedis)
		return errNoRedis
	}
}

func (h *refusingHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(_ context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.record(cmd)
			cmd.SetErr(errNoRedis)
		}
		return errNoRedis
	}
}

func (h *refusingHook) record(cmd redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmds = append(h.cmds, cmd.Name())
}

func (h *refusingHook) sent() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.cmds)
}

// mutator is one change of the request's session.
type mutator struct {
	name string
	do   func(ctx context.Context, s *httpsession.Session) error
}

// mutators are every method of httpsession.Session that changes the request's session
// (TestSessionMethods checks that none is missing).
var mutators = []mutator{
	{"Set", func(_ context.Context, s *httpsession.Session) error { return s.Set("k", "v") }},
	{"Delete", func(_ context.Context, s *httpsession.Session) error { return s.Delete("k") }},
	{"Pop", func(_ context.Context, s *httpsession.Session) error { return s.Pop("k", new(string)) }},
	{"Clear", func(_ context.Context, s *httpsession.Session) error { return s.Clear() }},
	{"SetUser", func(_ context.Context, s *httpsession.Session) error { return s.SetUser("ada") }},
	{"SetIdleTimeout", func(_ context.Context, s *httpsession.Session) error { return s.SetIdleTimeout(10 * time.Minute) }},
	{"SetLifetime", func(_ context.Context, s *httpsession.Session) error { return s.SetLifetime(time.Hour) }},
	{"SetPersistent", func(_ context.Context, s *httpsession.Session) error { return s.SetPersistent(true) }},
	{"Rotate", func(ctx context.Context, s *httpsession.Session) error { return s.Rotate(ctx) }},
	{"Destroy", func(ctx context.Context, s *httpsession.Session) error { return s.Destroy(ctx) }},
	{"Update", func(ctx context.Context, s *httpsession.Session) error {
		return s.Update(ctx, func(*store.Session) error {
			return errors.New("Update ran its function after the response started")
		})
	}},
}

// TestMutatorsAfterCommit checks that once the response has started — however the
// handler starts it, and also when the save failed — every mutator of the request's
// session returns ErrCommitted and does nothing: the session is as it was, no command
// is sent to Redis, and the response carries no cookie. (tests/httpsession checks the
// same on a session stored in Redis.)
func TestMutatorsAfterCommit(t *testing.T) {
	starts := []struct {
		name  string
		start func(w http.ResponseWriter) error
	}{
		{"Write", func(w http.ResponseWriter) error { _, err := io.WriteString(w, "ok"); return err }},
		{"WriteHeader", func(w http.ResponseWriter) error { w.WriteHeader(http.StatusOK); return nil }},
		{"ReadFrom", func(w http.ResponseWriter) error {
			_, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("ok"))
			return err
		}},
		{"Flush", func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }},
	}
	newManager := func(t *testing.T, opts ...httpsession.Option) (*httpsession.Manager, *refusingHook) {
		hook := &refusingHook{}
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		rdb.AddHook(hook)
		t.Cleanup(func() { _ = rdb.Close() })
		st, err := store.New(rdb)
		require.NoError(t, err)
		m, err := httpsession.New(st, opts...)
		require.NoError(t, err)
		return m, hook
	}

	for _, start := range starts {
		for _, mut := range mutators {
			t.Run(start.name+" then "+mut.name, func(t *testing.T) {
				m, hook := newManager(t)
				var err error
				h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s := httpsession.FromContext(r.Context())
					id := s.ID()
					require.NoError(t, start.start(w))
					err = mut.do(r.Context(), s)
					require.Equal(t, id, s.ID(), "the session's ID")
					require.True(t, s.IsNew())
					require.False(t, s.Modified())
					require.Empty(t, s.Keys())
					require.Empty(t, s.User())
					require.Equal(t, store.DefaultIdleTimeout, s.IdleTimeout())
					require.Equal(t, store.DefaultLifetime, s.Lifetime())
					_, chose := s.Persistent()
					require.False(t, chose, "no persistence chosen")
				}))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				require.ErrorIs(t, err, httpsession.ErrCommitted)
				require.Empty(t, hook.sent(), "commands sent to Redis")
				require.Equal(t, http.StatusOK, rec.Code)
				require.Empty(t, rec.Header().Values("Set-Cookie"))
			})
		}
	}

	// A failed save commits the session too: the error handler has answered.
	for _, mut := range mutators {
		t.Run("a failed save then "+mut.name, func(t *testing.T) {
			m, hook := newManager(t, httpsession.WithTimeout(100*time.Millisecond),
				httpsession.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, _ error) {
					w.WriteHeader(http.StatusServiceUnavailable)
				}))
			var writeErr, err error
			var before []string
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := httpsession.FromContext(r.Context())
				require.NoError(t, s.Set("k", "before"))
				_, writeErr = io.WriteString(w, "ok")
				before = hook.sent()
				err = mut.do(r.Context(), s)
				var v string
				require.NoError(t, s.Get("k", &v))
				require.Equal(t, "before", v)
				require.Empty(t, s.User())
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			require.ErrorIs(t, writeErr, httpsession.ErrNotSaved)
			require.NotEmpty(t, before, "the save was tried")
			require.ErrorIs(t, err, httpsession.ErrCommitted)
			require.Equal(t, before, hook.sent(), "commands sent to Redis after the save")
			require.Equal(t, http.StatusServiceUnavailable, rec.Code)
			require.Empty(t, rec.Header().Values("Set-Cookie"))
		})
	}
}

// TestSessionMethods checks that httpsession.Session offers every method of store.Session
// with the same parameters — the readers with the same results, the mutators with an
// error only, for ErrCommitted — and that every method is known here: a mutator is in
// the table TestMutatorsAfterCommit runs.
func TestSessionMethods(t *testing.T) {
	var muts []string
	for _, m := range mutators {
		muts = append(muts, m.name)
	}
	// The methods that neither read nor change the request's session.
	others := []string{"Ref", "RevokeOthers"}
	errType := reflect.TypeFor[error]()

	hs, ss := reflect.TypeFor[*httpsession.Session](), reflect.TypeFor[*store.Session]()
	for sm := range ss.Methods() {
		hm, ok := hs.MethodByName(sm.Name)
		if !assert.Truef(t, ok, "store.Session.%s is not on httpsession.Session", sm.Name) {
			continue
		}
		in := func(m reflect.Method) []reflect.Type { return slices.Collect(m.Type.Ins())[1:] }
		require.Equal(t, in(sm), in(hm), "%s's parameters", sm.Name)
		if slices.Contains(muts, sm.Name) {
			require.Equal(t, []reflect.Type{errType}, slices.Collect(hm.Type.Outs()), "%s's results", sm.Name)
		} else {
			require.Equal(t, slices.Collect(sm.Type.Outs()), slices.Collect(hm.Type.Outs()), "%s's results", sm.Name)
		}
	}
	for hm := range hs.Methods() {
		_, reader := ss.MethodByName(hm.Name)
		assert.Truef(t, reader || slices.Contains(muts, hm.Name) || slices.Contains(others, hm.Name),
			"httpsession.Session.%s is new here: a mutator goes in the table of TestMutatorsAfterCommit", hm.Name)
	}
}
