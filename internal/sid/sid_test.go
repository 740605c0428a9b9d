package sid_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/hasession/hasession/internal/sid"
)

func TestNew(t *testing.T) {
	const n = 10000
	seen := make(map[string]struct{}, n)
	for range n {
		id, err := sid.New()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != sid.Len {
			t.Fatalf("New() = %q, length %d", id, len(id))
		}
		if !sid.Valid(id) {
			t.Fatalf("New() = %q is not Valid", id)
		}
		if strings.ToLower(id) != id {
			t.Fatalf("New() = %q is not lowercase", id)
		}
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("uuid.Parse(%q): %v", id, err)
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("New() = %q has version %d, variant %v", id, u.Version(), u.Variant())
		}
		if u.String() != id {
			t.Fatalf("New() = %q, canonical form %q", id, u.String())
		}
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate ID %q after %d IDs", id, len(seen))
		}
		seen[id] = struct{}{}
	}
}

func TestNewUsesAllRandomBits(t *testing.T) {
	// Every one of the 122 random bits must take both values across a few
	// hundred IDs; a stuck bit would indicate a formatting bug.
	var or, and [16]byte
	for i := range and {
		and[i] = 0xff
	}
	for range 500 {
		id, err := sid.New()
		if err != nil {
			t.Fatal(err)
		}
		u := uuid.MustParse(id)
		for i, b := range u {
			or[i] |= b
			and[i] &= b
		}
	}
	want := [16]byte{}
	for i := range want {
		want[i] = 0xff
	}
	want[6], want[8] = 0x0f, 0x3f // version and variant bits are fixed
	for i := range or {
		if changing := or[i] &^ and[i]; changing != want[i] {
			t.Errorf("byte %d: varying bits %08b, want %08b", i, changing, want[i])
		}
	}
	if and[6]&0xf0 != 0x40 || or[6]&0xf0 != 0x40 {
		t.Errorf("version nibble not fixed at 4")
	}
	if and[8]&0xc0 != 0x80 || or[8]&0xc0 != 0x80 {
		t.Errorf("variant bits not fixed at 10")
	}
}

func TestValid(t *testing.T) {
	valid := []string{
		"3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		"00000000-0000-4000-8000-000000000000",
		"ffffffff-ffff-4fff-bfff-ffffffffffff",
		"12345678-9abc-4def-8123-456789abcdef",
		"12345678-9abc-4def-9123-456789abcdef",
		"12345678-9abc-4def-a123-456789abcdef",
		"12345678-9abc-4def-b123-456789abcdef",
	}
	for _, s := range valid {
		if !sid.Valid(s) {
			t.Errorf("Valid(%q) = false, want true", s)
		}
	}

	const good = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	invalid := []struct {
		name, s string
	}{
		{"empty", ""},
		{"uppercase", strings.ToUpper(good)},
		{"one uppercase hex", "3F2504e0-4f89-41d3-9a0c-0305e82c3301"},
		{"braces", "{" + good + "}"},
		{"urn", "urn:uuid:" + good},
		{"leading space", " " + good[1:]},
		{"trailing space", good[:35] + " "},
		{"surrounding spaces", " " + good + " "},
		{"v1", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
		{"v3", "3f2504e0-4f89-31d3-9a0c-0305e82c3301"},
		{"v5", "3f2504e0-4f89-51d3-9a0c-0305e82c3301"},
		{"v7", "3f2504e0-4f89-71d3-9a0c-0305e82c3301"},
		{"nil uuid", "00000000-0000-0000-0000-000000000000"},
		{"max uuid", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{"variant 0", "3f2504e0-4f89-41d3-0a0c-0305e82c3301"},
		{"variant 7", "3f2504e0-4f89-41d3-7a0c-0305e82c3301"},
		{"variant c (microsoft)", "3f2504e0-4f89-41d3-ca0c-0305e82c3301"},
		{"variant f", "3f2504e0-4f89-41d3-fa0c-0305e82c3301"},
		{"variant uppercase B", "3f2504e0-4f89-41d3-Ba0c-0305e82c3301"},
		{"35 chars", good[:35]},
		{"37 chars", good + "0"},
		{"non-hex g", "3f2504e0-4f89-41d3-9a0c-0305e82c330g"},
		{"non-hex symbol", "3f2504e0-4f89-41d3-9a0c-0305e82c33/1"},
		{"missing hyphens", "3f2504e04f8941d39a0c0305e82c3301"},
		{"hyphens replaced", "3f2504e0_4f89_41d3_9a0c_0305e82c3301"},
		{"hyphen moved", "3f2504e-04f89-41d3-9a0c-0305e82c3301"},
		{"unicode digit", "3f2504e0-4f89-41d3-9a0c-0305e82c33０1"[:36]},
		{"unicode letter", "3f2504e0-4f89-41d3-9a0c-0305e82c33é"},
		{"unicode 36 bytes", "3f2504e0-4f89-41d3-9a0c-0305e82c3é01"[:36]},
		{"nul byte", "3f2504e0-4f89-41d3-9a0c-0305e82c330\x00"},
		{"newline", "3f2504e0-4f89-41d3-9a0c-0305e82c330\n"},
	}
	for _, tt := range invalid {
		if sid.Valid(tt.s) {
			t.Errorf("%s: Valid(%q) = true, want false", tt.name, tt.s)
		}
	}
}

var testKey = bytes.Repeat([]byte("k"), 32)

func TestTaggerWithoutKey(t *testing.T) {
	for _, key := range [][]byte{nil, {}} {
		tg, err := sid.NewTagger(key)
		if err != nil {
			t.Fatalf("NewTagger(%q): %v", key, err)
		}
		if tg.Hashed() {
			t.Error("Hashed() = true for a Tagger without key")
		}
		id, _ := sid.New()
		if got := tg.Tag(id); got != id {
			t.Errorf("Tag(%q) = %q, want the ID itself", id, got)
		}
	}
	var zero sid.Tagger
	var nilTagger *sid.Tagger
	if zero.Hashed() || nilTagger.Hashed() {
		t.Error("zero or nil Tagger reports Hashed")
	}
	if zero.Tag("x") != "x" || nilTagger.Tag("x") != "x" {
		t.Error("zero or nil Tagger does not return the ID")
	}
}

func TestTaggerWithKey(t *testing.T) {
	tg, err := sid.NewTagger(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if !tg.Hashed() {
		t.Fatal("Hashed() = false for a keyed Tagger")
	}
	for range 100 {
		id, _ := sid.New()
		tag := tg.Tag(id)
		if len(tag) != sid.TagLen {
			t.Fatalf("Tag(%q) = %q, length %d, want %d", id, tag, len(tag), sid.TagLen)
		}
		if strings.ContainsAny(tag, "{}") {
			t.Fatalf("Tag(%q) = %q contains a brace", id, tag)
		}
		if tag == id {
			t.Fatalf("Tag(%q) returned the ID", id)
		}
		if again := tg.Tag(id); again != tag {
			t.Fatalf("Tag(%q) not deterministic: %q then %q", id, tag, again)
		}
		mac := hmac.New(sha256.New, testKey)
		mac.Write([]byte(id))
		if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); tag != want {
			t.Fatalf("Tag(%q) = %q, want %q", id, tag, want)
		}
	}

	// A second Tagger with the same key agrees.
	tg2, err := sid.NewTagger(bytes.Clone(testKey))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sid.New()
	if tg.Tag(id) != tg2.Tag(id) {
		t.Error("two Taggers with the same key disagree")
	}

	// Different IDs give different tags.
	id2, _ := sid.New()
	if tg.Tag(id) == tg.Tag(id2) {
		t.Errorf("IDs %q and %q share a tag", id, id2)
	}
}

func TestTaggerKeyIsCopied(t *testing.T) {
	key := bytes.Clone(testKey)
	tg, err := sid.NewTagger(key)
	if err != nil {
		t.Fatal(err)
	}
	const id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	before := tg.Tag(id)
	key[0] ^= 0xff
	if after := tg.Tag(id); after != before {
		t.Error("changing the caller's key slice changed the tags")
	}
}

func TestTaggerDifferentKeys(t *testing.T) {
	other := bytes.Clone(testKey)
	other[31] ^= 1
	a, err := sid.NewTagger(testKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sid.NewTagger(other)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sid.New()
	if a.Tag(id) == b.Tag(id) {
		t.Errorf("keys differing in one bit give the same tag for %q", id)
	}
}

func TestNewTaggerShortKey(t *testing.T) {
	for _, n := range []int{1, 16, 31} {
		tg, err := sid.NewTagger(bytes.Repeat([]byte{1}, n))
		if err == nil || tg != nil {
			t.Errorf("NewTagger(%d-byte key) = %v, %v; want nil, error", n, tg, err)
		}
	}
	if _, err := sid.NewTagger(bytes.Repeat([]byte{1}, 64)); err != nil {
		t.Errorf("NewTagger(64-byte key): %v", err)
	}
}

func TestTaggerConcurrent(t *testing.T) {
	tg, err := sid.NewTagger(testKey)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 64)
	want := make([]string, len(ids))
	for i := range ids {
		ids[i], _ = sid.New()
		want[i] = tg.Tag(ids[i])
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % len(ids)
				if got := tg.Tag(ids[k]); got != want[k] {
					t.Errorf("Tag(%q) = %q, want %q", ids[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzValid(f *testing.F) {
	for _, s := range []string{
		"",
		"3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		"3F2504E0-4F89-41D3-9A0C-0305E82C3301",
		"{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",
		"urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		"3f2504e04f8941d39a0c0305e82c3301",
		"3f2504e0-4f89-11d3-9a0c-0305e82c3301",
		"3f2504e0-4f89-41d3-ca0c-0305e82c3301",
		"3f2504e0-4f89-41d3-9a0c-0305e82c33é",
		"00000000-0000-4000-8000-000000000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := uuid.Parse(s)
		canonicalV4 := err == nil && u.Version() == 4 && u.Variant() == uuid.RFC4122 && u.String() == s
		if !sid.Valid(s) {
			if canonicalV4 {
				t.Fatalf("Valid(%q) = false for a canonical lowercase UUIDv4", s)
			}
			return
		}
		if len(s) != sid.Len {
			t.Fatalf("Valid(%q) with length %d", s, len(s))
		}
		if strings.ToLower(s) != s {
			t.Fatalf("Valid(%q) but not lowercase", s)
		}
		if err != nil {
			t.Fatalf("Valid(%q) but uuid.Parse: %v", s, err)
		}
		if u.Version() != 4 {
			t.Fatalf("Valid(%q) but version %d", s, u.Version())
		}
		if u.Variant() != uuid.RFC4122 {
			t.Fatalf("Valid(%q) but variant %v", s, u.Variant())
		}
		if u.String() != s {
			t.Fatalf("Valid(%q) but canonical form is %q", s, u.String())
		}
	})
}

func BenchmarkValid(b *testing.B) {
	id, err := sid.New()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !sid.Valid(id) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkTag(b *testing.B) {
	tg, err := sid.NewTagger(testKey)
	if err != nil {
		b.Fatal(err)
	}
	id, err := sid.New()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		tg.Tag(id)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sid.New(); err != nil {
			b.Fatal(err)
		}
	}
}
