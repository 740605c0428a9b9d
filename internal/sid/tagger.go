package sid

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"sync"
)

// MinKeyLen is the minimum length of a non-empty Tagger key in bytes.
const MinKeyLen = 32

// TagLen is the length of a tag produced by a keyed Tagger:
// base64.RawURLEncoding of a 32-byte HMAC-SHA256.
const TagLen = 43

// Tagger maps a session ID to the Redis hash tag used in its keys.
//
// An unkeyed Tagger returns the ID itself. A keyed Tagger returns
// base64.RawURLEncoding(HMAC-SHA256(key, id)), which is 43 characters from
// [A-Za-z0-9_-] and so never contains '{' or '}'.
//
// A Tagger is safe for concurrent use and must not be copied after first
// use. The zero value and a nil *Tagger behave as an unkeyed Tagger.
type Tagger struct {
	hashed bool
	pool   sync.Pool // of *tagState, for keyed Taggers
}

// tagState is the reusable per-call state of a keyed Tagger.
type tagState struct {
	mac hash.Hash
	in  []byte
	sum [sha256.Size]byte
	out [TagLen]byte
}

// NewTagger returns a Tagger. If key is nil or empty, Tag returns the ID
// itself. Otherwise Tag returns base64.RawURLEncoding of HMAC-SHA256(key,
// id) (43 chars, never contains '{' or '}'); a non-empty key shorter than
// MinKeyLen (32) bytes is rejected with an error. The key is copied.
func NewTagger(key []byte) (*Tagger, error) {
	if len(key) == 0 {
		return &Tagger{}, nil
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("sid: tag key is %d bytes, need at least %d", len(key), MinKeyLen)
	}
	key = append([]byte(nil), key...)
	t := &Tagger{hashed: true}
	t.pool.New = func() any {
		return &tagState{mac: hmac.New(sha256.New, key)}
	}
	return t, nil
}

// Tag returns the hash tag for id. It is deterministic for a given key and
// safe for concurrent use. A keyed Tagger allocates only the returned
// string; an unkeyed one returns id unchanged.
func (t *Tagger) Tag(id string) string {
	if t == nil || !t.hashed {
		return id
	}
	s := t.pool.Get().(*tagState)
	s.mac.Reset()
	s.in = append(s.in[:0], id...)
	s.mac.Write(s.in)
	base64.RawURLEncoding.Encode(s.out[:], s.mac.Sum(s.sum[:0]))
	tag := string(s.out[:])
	if cap(s.in) <= 4*Len { // do not keep buffers grown by unusual input
		t.pool.Put(s)
	}
	return tag
}

// Hashed reports whether t has a key, that is whether Tag returns an HMAC
// rather than the ID itself.
func (t *Tagger) Hashed() bool { return t != nil && t.hashed }
