package gorillastore

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/hasession/hasession/store"
)

// The key prefixes the legacy stores use by default.
const (
	// RedistorePrefix is github.com/boj/redistore's default key prefix.
	RedistorePrefix = "session_"
	// RedisstorePrefix is github.com/rbcervilla/redisstore's default key prefix.
	RedisstorePrefix = "session:"
)

// legacy is a legacy store's layout (see WithLegacyRedistore, WithLegacyRedisstore).
type legacy struct {
	name   string // the option that configured it, for errors and logs
	prefix string
	codecs []securecookie.Codec // nil: the cookie holds the ID as it is
	idLen  int                  // the IDs' length: base32 (A-Z, 2-7) of the default generator
	json   bool                 // values written with redistore's JSONSerializer
}

// WithLegacyRedistore moves the sessions that github.com/boj/redistore wrote into the
// hasession store the first time a request brings their cookie, so that switching from
// redistore logs nobody out (see the package documentation). keyPrefix is the prefix
// redistore's keys have: [RedistorePrefix] unless the app called SetKeyPrefix (it is
// taken as it is; "" means keys without a prefix). keyPairs are the hash and block keys
// the app gave redistore.NewRediStore, in the same order: the cookie is verified (and
// decrypted) with them as redistore did, by securecookie.CodecsFromPairs — but not its
// age: the legacy session's TTL in Redis bounds it, as it bounded it with redistore.
//
// Values are read as redistore's default GobSerializer wrote them: types the app
// registered with gob.Register for redistore must still be registered. With
// [WithLegacyJSON], as its JSONSerializer wrote them.
//
// It is an error without keys, with an empty hash key or a block key of another length
// than 16, 24 or 32 bytes, with a keyPrefix that has a '{' but no hash tag, and together
// with [WithLegacyRedisstore].
func WithLegacyRedistore(keyPrefix string, keyPairs ...[]byte) Option {
	return func(o *options) error {
		const name = "WithLegacyRedistore"
		if len(keyPairs) == 0 {
			return errors.New("gorillastore: " + name + ": no keys")
		}
		for i := 0; i < len(keyPairs); i += 2 {
			if len(keyPairs[i]) == 0 {
				return fmt.Errorf("gorillastore: %s: hash key %d is empty", name, i/2)
			}
		}
		codecs := securecookie.CodecsFromPairs(keyPairs...)
		for _, c := range codecs {
			// The cookie's age is the legacy session's TTL's business (see above).
			c.(*securecookie.SecureCookie).MaxAge(0)
		}
		// securecookie reports a bad key at its first use.
		if _, err := securecookie.EncodeMulti("k", "v", codecs...); err != nil {
			return fmt.Errorf("gorillastore: %s: %w", name, err)
		}
		return o.setLegacy(&legacy{name: name, prefix: keyPrefix, codecs: codecs, idLen: 52})
	}
}

// WithLegacyRedisstore moves the sessions that github.com/rbcervilla/redisstore/v9 wrote
// into the hasession store the first time a request brings their cookie, so that
// switching from redisstore logs nobody out (see the package documentation). keyPrefix is
// the prefix redisstore's keys have: [RedisstorePrefix] unless the app called KeyPrefix
// (it is taken as it is; "" means keys without a prefix). redisstore's cookie holds the
// session ID as it is; IDs of its default key generator are taken (103 characters of
// base32), and a cookie with another ID (an app's own KeyGen) is no legacy session.
// Values are read as its GobSerializer wrote them: types the app registered with
// gob.Register must still be registered.
//
// It is an error with a keyPrefix that has a '{' but no hash tag, and together with
// [WithLegacyRedistore].
func WithLegacyRedisstore(keyPrefix string) Option {
	return func(o *options) error {
		return o.setLegacy(&legacy{name: "WithLegacyRedisstore", prefix: keyPrefix, idLen: 103})
	}
}

// WithLegacyJSON says that the legacy sessions were written with redistore's
// JSONSerializer (RediStore.SetSerializer(redistore.JSONSerializer{})) rather than its
// default GobSerializer: a JSON object, whose values come back as encoding/json gave them
// to the app (numbers as float64, objects as map[string]any). A key registered with
// [WithValueType] must hold a value that decodes into its type (a number into a float
// type, an object into a struct), or the session does not move. It needs
// [WithLegacyRedistore] (an error from New otherwise).
func WithLegacyJSON() Option {
	return func(o *options) error {
		o.legacyJSON = true
		return nil
	}
}

// WithLogger sets a logger for what an operator should hear of: a legacy session that
// does not move (see [WithLegacyRedistore]). Default: none.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		return nil
	}
}

func (o *options) setLegacy(l *legacy) error {
	if o.legacy != nil {
		return fmt.Errorf("gorillastore: %s: a legacy store is configured already (%s)", l.name, o.legacy.name)
	}
	if !hasTagOrNoBrace(l.prefix) {
		return fmt.Errorf("gorillastore: %s: key prefix %q has a '{' but no hash tag", l.name, l.prefix)
	}
	o.legacy = l
	return nil
}

// hasTagOrNoBrace reports whether a key beginning with prefix can be named by Redis
// Cluster's hashing: prefix has no '{', or a hash tag (a '{', then a '}' with something
// between).
func hasTagOrNoBrace(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	return i < 0 || strings.IndexByte(prefix[i+1:], '}') > 0
}

// id returns the legacy session ID the cookie value carries, or false when it carries
// none: the cookie does not verify, or the ID is not one the legacy store makes.
func (l *legacy) id(name, value string) (string, bool) {
	id := value
	if l.codecs != nil {
		id = ""
		if securecookie.DecodeMulti(name, value, &id, l.codecs...) != nil {
			return "", false
		}
	}
	if len(id) != l.idLen {
		return "", false
	}
	for i := range len(id) {
		if c := id[i]; (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return "", false
		}
	}
	return id, true
}

// adopt returns the hasession session the legacy session of the cookie became, moving
// it if nobody has (store.Store.Adopt); nil, nil when there is none to move: the cookie
// names none, the legacy session does not exist (or expired), or it does not move
// (store.ErrLegacyCorrupt: logged, left as it is). Other errors are Redis's or the
// context's.
func (s *Store) adopt(ctx context.Context, name string, c *http.Cookie) (*store.Session, error) {
	l := s.legacy
	id, ok := l.id(name, c.Value)
	if !ok {
		return nil, nil
	}
	ref := store.LegacyRef{Key: l.prefix + id}
	hs, err := s.st.Adopt(ctx, ref, s.convertLegacy)
	switch {
	case err == nil:
		return hs, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case errors.Is(err, store.ErrLegacyCorrupt):
		if s.logger != nil {
			s.logger.Warn("gorillastore: a legacy session does not move: the request gets a new session, the legacy one is left as it is",
				"store", l.name, "err", err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("gorillastore: move legacy session: %w", err)
}

// convertLegacy decodes a legacy session's value into attributes (a store.LegacyConvert):
// the gob (or JSON) of Values, whose keys must all be strings, and whose values must
// load back through this Store as they will be loaded (see decode). The new session
// lives what the legacy one had left (ttl).
func (s *Store) convertLegacy(raw []byte, ttl time.Duration) (map[string]any, time.Duration, error) {
	var attrs map[string]any
	if s.legacy.json {
		if err := json.Unmarshal(raw, &attrs); err != nil {
			return nil, 0, err
		}
		if attrs == nil {
			return nil, 0, errors.New("not a JSON object")
		}
	} else {
		var values map[any]any
		if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&values); err != nil {
			return nil, 0, err
		}
		attrs = make(map[string]any, len(values))
		for k, v := range values {
			key, ok := k.(string)
			if !ok {
				return nil, 0, fmt.Errorf("%w: %#v (%T)", ErrKeyNotString, k, k)
			}
			attrs[key] = v
		}
	}
	// Each value must load back, or the session would move and then fail every load.
	scratch, err := s.st.NewSession()
	if err != nil {
		return nil, 0, err
	}
	for k, v := range attrs {
		if err := scratch.Set(k, v); err != nil {
			return nil, 0, err
		}
		if _, err := s.decode(scratch, k); err != nil {
			return nil, 0, fmt.Errorf("value %q would not load back: %w", k, err)
		}
	}
	return attrs, ttl, nil
}
