package scsstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/legacy"
	"github.com/hasession/hasession/store"
)

// ErrInvalidToken is returned by Commit and CommitCtx for a token that is not an scs
// token (see [ValidToken]). Nothing was sent to Redis. Find and Delete treat such a token
// as missing instead, as scs asks of stores.
var ErrInvalidToken = errors.New("scsstore: malformed session token")

// ErrDeleted is returned (wrapped) by Commit and CommitCtx for a session deleted since it
// was loaded — a logout (scs's Destroy) or a new token (RenewToken) in another request:
// nothing was written, so a request in flight during a logout cannot log the user back
// in. scs's LoadAndSave hands it to the SessionManager's ErrorFunc, whose default answers
// 500; an ErrorFunc that matches it with errors.Is can answer otherwise (the session is
// gone, the browser's next request gets a new one).
var ErrDeleted = errors.New("scsstore: session deleted meanwhile; not saved")

// tombstoneMin is the least time a deleted session's tombstone lasts (see DeleteCtx).
const tombstoneMin = time.Minute

var (
	//go:embed lua/commit.lua
	commitLua string
	//go:embed lua/delete.lua
	deleteLua string

	commitScript = redis.NewScript(commitLua)
	deleteScript = redis.NewScript(deleteLua)
)

// Store keeps scs sessions in Redis through a hasession store's client and retry policy.
// It implements scs.Store, scs.CtxStore, scs.IterableStore and scs.IterableCtxStore. It
// is safe for concurrent use.
type Store struct {
	st     *store.Store
	rdb    redis.UniversalClient
	prefix string
	legacy *legacy.SCS // nil without WithLegacy
}

var (
	_ scs.Store            = (*Store)(nil)
	_ scs.CtxStore         = (*Store)(nil)
	_ scs.IterableStore    = (*Store)(nil)
	_ scs.IterableCtxStore = (*Store)(nil)
)

// New returns a Store that talks to Redis with st.Client() — any go-redis v9 client:
// single server, Sentinel (NewFailoverClient) or Cluster — and runs every command with
// st's retry policy ([store.Store.Retry]), so it rides out a failover as the hasession
// store does. Only the client and the retry policy are taken from st: scs encodes the
// session and decides its expiry itself, so st's codec, timeouts, size limit and hashed
// IDs do not apply (scs's HashTokenInStore keeps raw tokens out of Redis).
//
// Invalid options are an error. New panics on a nil store (programmer error).
func New(st *store.Store, opts ...Option) (*Store, error) {
	if st == nil {
		panic("scsstore: New with a nil store")
	}
	o := options{prefix: DefaultPrefix}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	s := &Store{st: st, rdb: st.Client(), prefix: o.prefix}
	if o.legacy {
		codec := o.legacyCodec
		l, err := legacy.NewSCS(s.rdb, func(ctx context.Context, name string, op func(context.Context) (any, error)) (any, error) {
			return store.RetryValue(ctx, st, name, op)
		}, legacy.SCSConfig{
			LegacyPrefix: o.legacyPrefix,
			Prefix:       o.prefix,
			Decode: func(b []byte) (time.Time, error) {
				deadline, _, err := codec.Decode(b)
				return deadline, err
			},
		})
		if err != nil {
			return nil, fmt.Errorf("scsstore: %w", err)
		}
		s.legacy = l
	}
	return s, nil
}

// LegacyStats counts what the Store did with goredisstore's sessions (see [WithLegacy]).
type LegacyStats struct {
	// Imported is the number of sessions moved from goredisstore's keys to the Store's.
	// Of concurrent requests with one cookie, one moves the session.
	Imported uint64
	// Corrupt is the number of times a goredisstore key was met that the codec cannot
	// decode, or that is not a string: the request got a new session, and the key was
	// left as it is.
	Corrupt uint64
}

// LegacyStats returns what the Store has done with goredisstore's sessions since New;
// zero without [WithLegacy].
func (s *Store) LegacyStats() LegacyStats {
	if s.legacy == nil {
		return LegacyStats{}
	}
	st := s.legacy.Stats()
	return LegacyStats{Imported: st.Imported, Corrupt: st.Corrupt}
}

// Key returns the Redis key of the session with the given token: <prefix>{<token>}, one
// hash slot per session. It returns ErrInvalidToken for a malformed token.
func (s *Store) Key(token string) (string, error) {
	if !ValidToken(token) {
		return "", ErrInvalidToken
	}
	return s.key(token), nil
}

func (s *Store) key(token string) string { return s.prefix + "{" + token + "}" }

// tombKey is the key of the tombstone a deleted session leaves: in the session's slot,
// and never a session key (see token).
func (s *Store) tombKey(token string) string { return s.key(token) + ":deleted" }

// FindCtx returns the data of the session with the given token: one GET. A missing or
// expired session, and a malformed token (nothing is sent then), are (nil, false, nil).
//
// With [WithLegacy], a miss reads goredisstore's key for the token, and a session found
// there is moved to the Store's key (same bytes, the TTL it had left) and returned; of
// concurrent requests with the token, one moves it and the others return what it
// wrote. A session deleted here since (a tombstone) is not brought back. A goredisstore
// value the codec cannot decode, or a key that is not a string, is a miss: the key is
// left as it is and counted in [Store.LegacyStats].
//
// Errors: the context's error or a Redis error, once the retry policy gave up.
func (s *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	if !ValidToken(token) {
		return nil, false, nil
	}
	key := s.key(token)
	type found struct {
		b  []byte
		ok bool
	}
	f, err := store.RetryValue(ctx, s.st, "scs find", func(ctx context.Context) (found, error) {
		b, err := s.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return found{}, nil
		}
		return found{b, err == nil}, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("scsstore: find session: %w", err)
	}
	if f.ok || s.legacy == nil {
		return f.b, f.ok, nil
	}
	b, ok, err := s.legacy.Find(ctx, token)
	var corrupt *legacy.CorruptError
	switch {
	case errors.As(err, &corrupt):
		return nil, false, nil // counted; the user gets a new session
	case err != nil:
		return nil, false, fmt.Errorf("scsstore: find goredisstore session: %w", err)
	}
	return b, ok, nil
}

// CommitCtx stores the session's data until expiry, in one script: a SET with the TTL, in
// milliseconds, rounded up and computed again on each attempt. An expiry that has passed
// deletes the session instead. A session deleted since it was loaded (its tombstone is
// there, see DeleteCtx) is not written back: CommitCtx returns ErrDeleted. Errors:
// ErrInvalidToken (nothing sent), ErrDeleted, the context's error or a Redis error, once
// the retry policy gave up.
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	if !ValidToken(token) {
		return ErrInvalidToken
	}
	keys := []string{s.key(token), s.tombKey(token)}
	done, err := store.RetryValue(ctx, s.st, "scs commit", func(ctx context.Context) (int64, error) {
		ms := int64((time.Until(expiry) + time.Millisecond - 1) / time.Millisecond)
		return commitScript.Run(ctx, s.rdb, keys, b, ms).Int64()
	})
	switch {
	case err != nil:
		return fmt.Errorf("scsstore: commit session: %w", err)
	case done == 0:
		return fmt.Errorf("scsstore: commit session: %w", ErrDeleted)
	}
	return nil
}

// DeleteCtx deletes the session with the given token and leaves a tombstone in its
// place, for as long as the session would have lived and at least a minute: a request
// that loaded the session before the delete (a logout in another tab) cannot write it
// back with its commit (see CommitCtx). A new scs session never meets a tombstone: its
// token is new. A missing session, or a malformed token (nothing is sent then), is not
// an error. With [WithLegacy], goredisstore's key for the token is deleted too.
// Errors: the context's error or a Redis error, once the retry policy gave up.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	if !ValidToken(token) {
		return nil
	}
	keys := []string{s.key(token), s.tombKey(token)}
	err := s.st.Retry(ctx, "scs delete", func(ctx context.Context) error {
		if err := deleteScript.Run(ctx, s.rdb, keys, tombstoneMin.Milliseconds()).Err(); err != nil || s.legacy == nil {
			return err
		}
		return s.rdb.Del(ctx, s.legacy.LegacyKey(token)).Err()
	})
	if err != nil {
		return fmt.Errorf("scsstore: delete session: %w", err)
	}
	return nil
}

// Find is FindCtx with context.Background(): it waits as long as the retry policy lets
// it. scs's SessionManager calls FindCtx; Find is for code that calls the store itself.
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit is CommitCtx with context.Background() (see Find).
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx with context.Background() (see Find).
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// All is AllCtx with context.Background() (see Find).
func (s *Store) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}
