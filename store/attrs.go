package store

import "errors"

// Getter is what reads an attribute: a *Session, or a request's session in package
// httpsession.
type Getter interface {
	Get(key string, dst any) error
}

// Get returns the attribute key of s decoded as a T: Get[string](s, "name"). It returns
// ErrNoAttribute when there is no such attribute, or the codec's error when the value
// does not decode into a T; the zero T with either.
func Get[T any](s Getter, key string) (T, error) {
	var v T
	if err := s.Get(key, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// GetOr returns the attribute key of s decoded as a T, or def when the session has no
// such attribute. A value that does not decode into a T is an error, as with Get.
func GetOr[T any](s Getter, key string, def T) (T, error) {
	v, err := Get[T](s, key)
	if errors.Is(err, ErrNoAttribute) {
		return def, nil
	}
	return v, err
}

// Pop returns the attribute key decoded into dst and deletes it (a change to save), in
// one step: a flash message, shown once. ErrNoAttribute when there is none; when the
// value does not decode into dst, the codec's error, and the attribute stays.
func (s *Session) Pop(key string, dst any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.encodedLocked(key)
	if !ok {
		return ErrNoAttribute
	}
	if err := s.decode(key, data, dst); err != nil {
		return err
	}
	s.deleteLocked(key)
	return nil
}

// Clear deletes every attribute (changes to save), in one step; the session, its ID, user
// and expiry stay.
func (s *Session) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.changes {
		if !c.del {
			s.deleteLocked(k)
		}
	}
	for i := 0; i+1 < len(s.attrs); i += 2 {
		s.deleteLocked(s.attrs[i])
	}
}
