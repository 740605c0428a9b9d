package store

import (
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"
)

// Session is one user's session: metadata and attributes. Attributes are encoded one by
// one when set and decoded lazily, into the caller's type, when read. A Session is safe
// for concurrent use, but it is meant for one request: load it, read and change it, save
// it.
type Session struct {
	st *Store

	mu       sync.Mutex
	id       string
	attrs    []string // name, encoded value, name, value, … as loaded (names without prefix)
	changes  map[string]change
	version  int64
	created  int64 // ms since epoch, Redis time
	deadline int64 // absolute deadline, ms since epoch
	touched  int64 // last touch, ms since epoch
	user     string
	userSet  bool // SetUser called since the last save
	// storedUser is the user as last read or written: the index the session is in.
	storedUser string
	isNew      bool // never saved
	gone       bool
	// shared: attrs is shared with the near-cache's parsed copy of the session (and its
	// other copies), and is copied before it is changed in place (applyChanges).
	shared bool

	// The session's own expiry (see expiry.go), as stored: idle ('_i', ms; 0: the
	// store's) and persist ('_p': 1 persistent, -1 a session cookie, 0 not chosen). Its
	// own lifetime is deadline − created.
	idle    int64
	persist int8
	// Changes to them not saved yet (0: none): newLife (ms) sets the deadline to
	// created-at + newLife.
	newIdle, newLife int64
	newPersist       int8
}

type change struct {
	val []byte // encoded value; nil when deleted
	del bool
}

// ID returns the session's ID: what the cookie carries.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// IsNew reports whether the session has never been saved.
func (s *Session) IsNew() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isNew
}

// Version returns the session's version: 0 before the first save, then one more for each
// save.
func (s *Session) Version() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// CreatedAt returns when the session was first saved (Redis time); zero before that.
func (s *Session) CreatedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.created == 0 {
		return time.Time{}
	}
	return time.UnixMilli(s.created)
}

// ExpiresAt returns when the session expires unless it is touched or saved again: the
// earlier of the last touch plus the idle timeout (its own, as saved, or the store's) and
// the absolute deadline. Zero before the first save.
func (s *Session) ExpiresAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isNew {
		return time.Time{}
	}
	idle := s.st.idleMs
	if s.idle != 0 { // its own, as saved
		idle = s.idle
	}
	return time.UnixMilli(min(s.touched+idle, s.deadline))
}

// User returns the user the session belongs to ("" for an anonymous session).
func (s *Session) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// SetUser sets the user the session belongs to (on login; "" clears it). It is kept
// through Rotate. Call Rotate when a user logs in, against session fixation.
func (s *Session) SetUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.userSet = user, true
}

// Modified reports whether the session has changes Save would write.
func (s *Session) Modified() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modified()
}

func (s *Session) modified() bool {
	return len(s.changes) > 0 || s.userSet || s.newIdle != 0 || s.newLife != 0 || s.newPersist != 0
}

// find returns the stored encoded value of an attribute.
func (s *Session) find(key string) (string, bool) {
	for i := 0; i+1 < len(s.attrs); i += 2 {
		if s.attrs[i] == key {
			return s.attrs[i+1], true
		}
	}
	return "", false
}

// Has reports whether the session has the attribute.
func (s *Session) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.changes[key]; ok {
		return !c.del
	}
	_, ok := s.find(key)
	return ok
}

// Get decodes the attribute into dst, a non-nil pointer of the type it was set with (or
// one the codec can convert to). It returns ErrNoAttribute when the session has no such
// attribute, or the codec's error when the value does not decode into dst.
func (s *Session) Get(key string, dst any) error {
	s.mu.Lock()
	data, ok := s.encodedLocked(key)
	s.mu.Unlock()
	if !ok {
		return ErrNoAttribute
	}
	return s.decode(key, data, dst)
}

// encodedLocked returns the attribute's encoded value as this request sees it (a pending
// change first), with s.mu held; false when there is none. A stored value is a read-only
// view of the reply's bytes: codecs copy what they keep.
func (s *Session) encodedLocked(key string) ([]byte, bool) {
	if c, ok := s.changes[key]; ok {
		return c.val, !c.del
	}
	if v, ok := s.find(key); ok {
		return unsafe.Slice(unsafe.StringData(v), len(v)), true
	}
	return nil, false
}

// decode decodes the attribute key's encoded value into dst.
func (s *Session) decode(key string, data []byte, dst any) error {
	if err := s.st.o.codec.Unmarshal(data, dst); err != nil {
		return fmt.Errorf("hasession: attribute %q: %w", key, err)
	}
	return nil
}

// Set encodes v and records it as a change to save. When v cannot be encoded it returns a
// *ValueError (ErrUnencodable) wrapping the codec's error; the session is unchanged then. A value nested deeper than
// [codec.MaxDepth] levels, which no codec would read back, is refused with an error
// wrapping [codec.ErrTooDeep]; so is, with the default msgpack codec, a value that
// contains itself, also through pointers and interfaces alone.
func (s *Session) Set(key string, v any) error {
	b, err := s.st.o.codec.Marshal(v)
	if err != nil {
		return &ValueError{Key: key, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changes == nil {
		s.changes = make(map[string]change, 4)
	}
	s.changes[key] = change{val: b}
	return nil
}

// Delete removes the attribute (a change to save). Deleting a missing attribute is a
// no-op.
func (s *Session) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(key)
}

// deleteLocked is Delete with s.mu held.
func (s *Session) deleteLocked(key string) {
	_, stored := s.find(key)
	if !stored {
		delete(s.changes, key)
		return
	}
	if s.changes == nil {
		s.changes = make(map[string]change, 4)
	}
	s.changes[key] = change{del: true}
}

// Keys returns the names of the session's attributes, sorted.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.attrs)/2+len(s.changes))
	for i := 0; i+1 < len(s.attrs); i += 2 {
		if _, changed := s.changes[s.attrs[i]]; !changed {
			keys = append(keys, s.attrs[i])
		}
	}
	for k, c := range s.changes {
		if !c.del {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// sizeLocked returns the bytes the attributes would take after the pending changes.
func (s *Session) sizeLocked() int {
	n := 0
	for i := 0; i+1 < len(s.attrs); i += 2 {
		if _, changed := s.changes[s.attrs[i]]; !changed {
			n += len(s.attrs[i]) + len(s.attrs[i+1])
		}
	}
	for k, c := range s.changes {
		if !c.del {
			n += len(k) + len(c.val)
		}
	}
	return n
}

// userArg encodes the user change for the save script.
func (s *Session) userArg() string {
	switch {
	case !s.userSet:
		return ""
	case s.user == "":
		return "-"
	}
	return "+" + s.user
}

// appendChanges appends the save script's tail: the number of deleted attributes, their
// fields, then field/value pairs of the set ones.
func (s *Session) appendChanges(args []any) []any {
	ndel := 0
	for _, c := range s.changes {
		if c.del {
			ndel++
		}
	}
	args = append(args, ndel)
	for k, c := range s.changes {
		if c.del {
			args = append(args, attrPrefix+k)
		}
	}
	for k, c := range s.changes {
		if !c.del {
			args = append(args, attrPrefix+k, c.val)
		}
	}
	return args
}

// appendAll appends every attribute after the pending changes, as a save with no
// deletions (a rotation's copy).
func (s *Session) appendAll(args []any) []any {
	args = append(args, 0)
	for i := 0; i+1 < len(s.attrs); i += 2 {
		if _, changed := s.changes[s.attrs[i]]; !changed {
			args = append(args, attrPrefix+s.attrs[i], s.attrs[i+1])
		}
	}
	for k, c := range s.changes {
		if !c.del {
			args = append(args, attrPrefix+k, c.val)
		}
	}
	return args
}

// applyChanges folds the saved changes into attrs, in place where it can.
func (s *Session) applyChanges() {
	if len(s.changes) > 0 {
		if s.shared {
			s.attrs, s.shared = slices.Clone(s.attrs), false
		}
		del := false
		for i := 0; i+1 < len(s.attrs); i += 2 {
			if c, ok := s.changes[s.attrs[i]]; ok {
				if c.del {
					del = true
					continue
				}
				// c.val is never written again: share it instead of copying.
				s.attrs[i+1] = unsafe.String(unsafe.SliceData(c.val), len(c.val))
			}
		}
		if del {
			out := s.attrs[:0]
			for i := 0; i+1 < len(s.attrs); i += 2 {
				if c, ok := s.changes[s.attrs[i]]; !ok || !c.del {
					out = append(out, s.attrs[i], s.attrs[i+1])
				}
			}
			s.attrs = out
		}
		for k, c := range s.changes {
			if c.del {
				continue
			}
			if _, ok := s.find(k); !ok {
				s.attrs = append(s.attrs, k, unsafe.String(unsafe.SliceData(c.val), len(c.val)))
			}
		}
	}
	s.changes = nil
	s.userSet = false
	s.applyExpiry()
}

// Deadline returns the session's absolute deadline: it is gone then, however active.
// Zero before the first save.
func (s *Session) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isNew {
		return time.Time{}
	}
	return time.UnixMilli(s.deadline)
}

// LastTouch returns when the session's TTL was last extended (by a save or a load whose
// touch was due), in Redis time. Zero before the first save.
func (s *Session) LastTouch() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isNew {
		return time.Time{}
	}
	return time.UnixMilli(s.touched)
}

// sharedCopy returns a new session with what s was loaded with (ID, attributes, metadata;
// no changes), sharing its attributes: the copy is marked shared (see Session.shared).
// s is the near-cache's parsed session, never changed, or one just parsed, whose copy
// nearKeep then gives an attribute list of its own.
func (s *Session) sharedCopy() *Session {
	return &Session{
		st: s.st, id: s.id, attrs: s.attrs, version: s.version, created: s.created, deadline: s.deadline,
		touched: s.touched, user: s.user, storedUser: s.storedUser, idle: s.idle, persist: s.persist, shared: true,
	}
}
