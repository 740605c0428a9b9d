package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestHashedPart(t *testing.T) {
	for key, want := range map[string]string{
		"sessions": "sessions", "session_ABC": "session_ABC", "a{b}c": "b", "{x}": "x",
		"a{}b": "a{}b", "a{bc": "a{bc", "a}b{c}": "c", "x}y": "x}y", "": "",
	} {
		if got := hashedPart(key); got != want {
			t.Errorf("hashedPart(%q) = %q, want %q", key, got, want)
		}
	}
}

// Redis Cluster's own examples: CRC16("123456789") is 0x31C3, and keys of one hash tag
// share a slot.
func TestKeySlot(t *testing.T) {
	if got := crc16("123456789"); got != 0x31c3 {
		t.Fatalf("crc16 = %#x, want 0x31c3", got)
	}
	for key, slot := range map[string]int{"foo": 12182, "bar": 5061, "{user1000}.following": 3443, "{user1000}.followers": 3443} {
		if got := keySlot(key); got != slot {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, slot)
		}
	}
}

func TestSlotTagsCoverEverySlot(t *testing.T) {
	for slot := range clusterSlots {
		tag := slotTag(slot)
		if tag == "" || keySlot("{"+tag+"}:x") != slot {
			t.Fatalf("slot %d: tag %q", slot, tag)
		}
	}
}

// A claim is in its legacy key's slot, whatever the key (braces included), and one per
// legacy session; with hashed IDs its name holds no legacy ID.
func TestClaimKey(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	st, err := New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	hashed, err := New(rdb, WithHashedIDs(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ref := range []LegacyRef{
		{Key: "sessions", Field: "abc"}, {Key: "sessions", Field: "abd"}, {Key: "session_X7Q"},
		{Key: "{sess}:A"}, {Key: "{sess}:B"}, {Key: "x}y"}, {Key: "a{}b"}, {Key: "py}sessions", Field: "abc"},
	} {
		for _, s := range []*Store{st, hashed} {
			k := s.claimKey(ref)
			if keySlot(k) != keySlot(ref.Key) {
				t.Errorf("claim %q of %q: slot %d, not %d", k, ref.Key, keySlot(k), keySlot(ref.Key))
			}
			if seen[k] {
				t.Errorf("claim %q named twice", k)
			}
			seen[k] = true
			if s == hashed && (strings.Contains(k, ref.Key) || ref.Field != "" && strings.Contains(k, ref.Field)) {
				t.Errorf("hashed IDs: claim %q names %q", k, ref.Key+" "+ref.Field)
			}
		}
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
	for _, c := range [][2]string{{"", "data"}, {"sessions", ""}} {
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
