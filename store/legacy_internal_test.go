package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestSlotTag(t *testing.T) {
	for _, c := range []struct {
		key, tag string
		ok       bool
	}{
		{"sessions", "sessions", true},
		{"session_ABC", "session_ABC", true},
		{"a{b}c", "b", true},
		{"{x}", "x", true},
		{"a{}b", "", false},   // hashed whole: no tag names its slot
		{"a{bc", "", false},   // no '}'
		{"a}b{c}", "c", true}, // the first '{' counts
		{"", "", false},
	} {
		tag, ok := slotTag(c.key)
		if tag != c.tag || ok != c.ok {
			t.Errorf("slotTag(%q) = %q, %v; want %q, %v", c.key, tag, ok, c.tag, c.ok)
		}
	}
}

func TestClaimKeyIsInTheLegacyKeysSlot(t *testing.T) {
	st, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []LegacyRef{{Key: "sessions", Field: "abc"}, {Key: "session_X7Q"}, {Key: "app:{tenant}:s"}} {
		k, err := st.claimKey(ref)
		if err != nil {
			t.Fatal(err)
		}
		tag, _ := slotTag(ref.Key)
		if got, _ := slotTag(k); got != tag {
			t.Errorf("claim %q of %q hashes %q, not %q", k, ref.Key, got, tag)
		}
	}
	if _, err := st.claimKey(LegacyRef{Key: "a{}b"}); err == nil {
		t.Error("a key with '{' and no hash tag: no error")
	}
}

func TestValidLegacyID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "3f2504e0-4f89-41d3-9a0c-0305e82c3301": true, "x_-~!": true,
		"": false, "a b": false, "a\x00": false, "é": false, "a\n": false,
		strings.Repeat("a", maxLegacyIDLen): true, strings.Repeat("a", maxLegacyIDLen+1): false,
	} {
		if got := validLegacyID(id); got != want {
			t.Errorf("validLegacyID(%q) = %v", id, got)
		}
	}
}

func TestWithLegacyHashValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	for _, c := range [][2]string{{"", "data"}, {"sessions", ""}, {"a{}b", "data"}} {
		if _, err := New(rdb, WithLegacyHash(c[0], c[1])); err == nil {
			t.Errorf("WithLegacyHash(%q, %q): no error", c[0], c[1])
		}
	}
	st, err := New(rdb, WithLegacyHash("sessions", "data"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.ValidID("legacy-token") || st.ValidID("a b") {
		t.Error("ValidID with a legacy hash")
	}
	plain, _ := New(rdb)
	if plain.ValidID("legacy-token") || !plain.ValidID("3f2504e0-4f89-41d3-9a0c-0305e82c3301") {
		t.Error("ValidID without a legacy hash")
	}
	if _, err := plain.Load(t.Context(), "legacy-token"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Load of a legacy ID without the option: %v", err)
	}
}

func TestLegacyError(t *testing.T) {
	err := error(&LegacyError{Key: "sessions", Field: "abc", Reason: "does not decode", Err: errors.New("gob: bad")})
	if !errors.Is(err, ErrLegacyCorrupt) || errors.Is(err, ErrCorrupt) {
		t.Error("LegacyError matches ErrLegacyCorrupt only")
	}
	if got, want := err.Error(), `hasession: legacy session "sessions" field "abc": does not decode: gob: bad`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
