package store

import (
	"errors"
	"slices"
	"testing"
)

// fill ignores the reserved fields a newer writer adds (FORMAT.md, "Evolution"), refuses
// a key of a newer format with a *FormatError whatever else it holds, and keeps every
// other unknown field corrupt.
func TestFillReservedFieldsAndFormatVersion(t *testing.T) {
	st := fuzzStore(t)
	meta := []string{"_v", "3", "_c", "1", "_a", "99999999999999", "_t", "1", "_k", "msgpack"}
	with := func(extra ...string) []string { return append(slices.Clone(meta), extra...) }
	fill := func(fields []string) (*Session, string, error) {
		s := &Session{st: st, id: "00000000-0000-4000-8000-000000000000"}
		fwd, err := s.fill("k", fields)
		return s, fwd, err
	}
	newer := func(t *testing.T, err error, version int64) {
		t.Helper()
		var fe *FormatError
		if !errors.As(err, &fe) || !errors.Is(err, ErrFormatVersion) {
			t.Fatalf("got %v (%T), want a *FormatError", err, err)
		}
		if fe.Version != version || fe.Known != 1 || fe.Key != "k" {
			t.Fatalf("got %+v, want version %d, known 1, key k", fe, version)
		}
		if errors.Is(err, ErrCorrupt) {
			t.Fatal("a newer format is not corrupt")
		}
	}
	corrupt := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v (%T), want a *CorruptError", err, err)
		}
	}

	t.Run("reserved fields are ignored", func(t *testing.T) {
		for _, name := range []string{"_X", "_Xfoo", "_Z", "_A_b", "_Q\x00"} {
			s, fwd, err := fill(with(name, "whatever", ".a", "\xa1x"))
			if err != nil || fwd != "" {
				t.Fatalf("%q: %v %q", name, err, fwd)
			}
			if s.version != 3 || !slices.Equal(s.Keys(), []string{"a"}) {
				t.Fatalf("%q: version %d, keys %q", name, s.version, s.Keys())
			}
		}
	})
	t.Run("in a forward pointer and a tombstone too", func(t *testing.T) {
		if _, fwd, err := fill([]string{"_Xnew", "1", "_f", "tok"}); err != nil || fwd != "tok" {
			t.Fatalf("pointer: %v %q", err, fwd)
		}
		if _, _, err := fill([]string{"_r", "1", "_Xnew", "1"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("tombstone: %v", err)
		}
	})
	t.Run("other unknown fields stay corrupt", func(t *testing.T) {
		for _, name := range []string{"_x", "_xA", "_", "_1", "_@", "_[", "foo", "!", "X"} {
			_, _, err := fill(with(name, "v"))
			corrupt(t, err)
		}
		// wherever they are in a pointer or tombstone
		_, _, err := fill([]string{"_f", "tok", "_x", "1"})
		corrupt(t, err)
		_, _, err = fill([]string{"_r", "1", "foo", "1"})
		corrupt(t, err)
	})
	t.Run("format version 1 is read", func(t *testing.T) {
		if _, _, err := fill(with("_F", "1")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a newer format is refused", func(t *testing.T) {
		_, _, err := fill(with("_F", "2"))
		newer(t, err, 2)
		_, fwd, err := fill([]string{"_f", "tok", "_F", "7"})
		newer(t, err, 7)
		if fwd != "" {
			t.Fatal("a pointer of a newer format was followed")
		}
		_, _, err = fill([]string{"_F", "2", "_r", "1"})
		newer(t, err, 2)
	})
	t.Run("whatever else the newer format holds", func(t *testing.T) {
		for _, fields := range [][]string{
			with("_F", "2", "_w", "new"),                      // a field of its own, after it
			append([]string{"_w", "new"}, with("_F", "3")...), // before it
			{"_v", "x", "_F", "2"},                            // a value of its own
			{"_F", "2", "_i", "-1"},                           // idle timeout
			{"_p", "maybe", "_F", "2"},                        // persistence
			{"_F", "2"},                                       // metadata missing
			{"_F", "2", "_v", "1", "_c", "1", "_a", "2", "_t", "1", "_k", "json"}, // another codec
		} {
			_, _, err := fill(fields)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%q: got %v, want a *FormatError", fields, err)
			}
		}
	})
	t.Run("an attribute named _F is not the version", func(t *testing.T) {
		// fill rewrites attribute pairs over the fields it has read: the name "._F"
		// becomes "_F" there, which must not be taken for the version.
		_, _, err := fill(append([]string{"._F", "2"}, with("_x", "1")...))
		corrupt(t, err)
		s, _, err := fill(with("._F", "2"))
		if err != nil || !slices.Equal(s.Keys(), []string{"_F"}) {
			t.Fatalf("%v %q", err, s.Keys())
		}
	})
	t.Run("a malformed version is corrupt", func(t *testing.T) {
		for _, v := range []string{"", "0", "01", "+2", "-1", "1.0", "two", "1234567890123456789"} {
			_, _, err := fill(with("_F", v))
			corrupt(t, err)
		}
	})
}
