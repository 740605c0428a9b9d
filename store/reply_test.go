package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/internal/sid"
)

func resp2(ss ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(ss))
	for _, s := range ss {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(s), s)
	}
	return b.String()
}

func resp3(ss ...string) string {
	r := resp2(ss...)
	return fmt.Sprintf("%%%d", len(ss)/2) + r[strings.IndexByte(r, '\r'):]
}

func TestParseRESPFields(t *testing.T) {
	long := strings.Repeat("v", 70000)
	for _, in := range [][]string{
		{},
		{"_v", "1"},
		{"_v", "1", ".a", strings.Repeat("x", 40), ".b", "", ".c", long, ".d", "with\r\ninside"},
	} {
		for name, enc := range map[string]func(...string) string{"resp2": resp2, "resp3": resp3} {
			got, err := parseRESPFields(enc(in...))
			if err != nil {
				t.Fatalf("%s, %d fields: %v", name, len(in), err)
			}
			if len(got) != len(in) {
				t.Fatalf("%s: got %d fields, want %d", name, len(got), len(in))
			}
			for i := range in {
				if got[i] != in[i] {
					t.Fatalf("%s: field %d differs", name, i)
				}
			}
		}
	}
	for name, bad := range map[string]string{
		"empty":            "",
		"error reply":      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
		"odd count":        resp2("a"),
		"truncated":        resp2("_v", "12345")[:14],
		"trailing bytes":   resp2("_v", "1") + "x",
		"huge array":       "*9999999999\r\n",
		"huge map":         "%999999999\r\n$1\r\na\r\n",
		"huge string":      "*2\r\n$999999\r\na\r\n$1\r\nb\r\n",
		"integer element":  "*2\r\n:1\r\n:2\r\n",
		"no CRLF":          "*2\n$1\na\n$1\nb\n",
		"bad terminator":   "*2\r\n$1\r\nab\n$1\r\nb\r\n",
		"negative length":  "*2\r\n$-1\r\n$1\r\nb\r\n",
		"length no digits": "*\r\n",
	} {
		if _, err := parseRESPFields(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParseRESPFields(f *testing.F) {
	f.Add(resp2("_v", "1", "_k", "msgpack", ".a", "\x01"))
	f.Add(resp3("_v", "1", ".b", ""))
	f.Add(resp2())
	f.Add("%0\r\n")
	f.Add("*2\r\n$1\r\na\r\n$999\r\nb\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := parseRESPFields(s)
		if err != nil {
			return
		}
		if len(fields)%2 != 0 {
			t.Fatalf("odd number of fields accepted: %d", len(fields))
		}
		total := 0
		for _, f := range fields {
			total += len(f)
		}
		if total > len(s) {
			t.Fatalf("fields hold %d bytes of a %d-byte reply", total, len(s))
		}
		if len(fields) > 0 && s != resp2(fields...) && s != resp3(fields...) {
			t.Fatalf("accepted a reply that does not re-encode to itself: %q", s)
		}
	})
}

func TestForwardTokenRoundTrip(t *testing.T) {
	for range 100 {
		a, _ := sid.New()
		b, _ := sid.New()
		tok := forwardToken(a, b)
		if strings.Contains(tok, b) || strings.Contains(tok, strings.ReplaceAll(b, "-", "")) {
			t.Fatal("the token shows the new ID")
		}
		got, ok := forwardTarget(a, tok)
		if !ok || got != b {
			t.Fatalf("forwardTarget = %q, %v; want %q", got, ok, b)
		}
		if other, ok := forwardTarget(b, tok); ok && other == b {
			t.Fatal("a token opens with another ID")
		}
	}
}

func FuzzForwardTarget(f *testing.F) {
	a, _ := sid.New()
	b, _ := sid.New()
	f.Add(a, forwardToken(a, b))
	f.Add(a, "zz")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, old, tok string) {
		id, ok := forwardTarget(old, tok)
		if ok && !sid.Valid(id) {
			t.Fatalf("invalid ID %q accepted", id)
		}
	})
}

// fuzzStore is a Store for decoding only: its client is never used.
func fuzzStore(t testing.TB) *Store {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := New(rdb, WithAutoPipeline(false))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A reply at a session's key, whatever its bytes, decodes into a session whose every
// attribute can be read, or into a typed error; it never panics.
// maxErrorLen bounds the errors the fuzzed parsers return, whatever the data: each quotes
// at most MaxQuoted bytes of it (times 4 for escapes, twice for a codec error).
const maxErrorLen = 200 + 2*4*MaxQuoted

func FuzzDecodeSession(f *testing.F) {
	mp, _ := codec.MsgPack.Marshal("Ada")
	n, _ := codec.MsgPack.Marshal(map[string]any{"a": []int{1, 2}})
	f.Add(resp2("_v", "1", "_c", "1700000000000", "_a", "1800000000000", "_t", "1700000000000", "_k", "msgpack", ".name", string(mp), ".m", string(n)))
	f.Add(resp3("_v", "2", "_c", "1", "_a", "2", "_t", "1", "_k", "msgpack", "_u", "alice", ".x", "\xc1"))
	f.Add(resp2("_f", "abc"))
	f.Add(resp2("_r", "1", "_n", "x"))
	f.Add(resp2("_v", "x", "_c", "1", "_a", "2", "_t", "1", "_k", "msgpack"))
	f.Add(resp2("_v", "1", "_c", "1", "_a", "2", "_t", "1", "_k", "json", ".a", "1"))
	f.Add(resp2("foo", "bar"))
	f.Add(resp2("_v", "1", "_c", "1", "_a", "2", "_t", "1", "_k", "msgpack", strings.Repeat("_long field name ", 20), "v"))
	f.Add(resp2("_v", strings.Repeat("9", 300), "_c", "1", "_a", "2", "_t", "1", "_k", "msgpack"))
	f.Add(resp2("_v", "1", "_c", "1", "_a", "2", "_t", "1", "_k", strings.Repeat("k", 300)))
	f.Add(resp2("_v", "1", "_c", "1", "_a", "2", "_t", "1", "_k", "msgpack", "_Xnew", "v", ".a", string(mp)))
	f.Add(resp2("_v", "1", "_c", "1", "_a", "2", "_t", "1", "_k", "msgpack", "_F", "2", "_z", "?"))
	f.Add(resp2("_f", "abc", "_F", "1"))
	f.Add(resp2("_F", strings.Repeat("9", 300), "_r", "1"))
	st := fuzzStore(f)
	f.Fuzz(func(t *testing.T, raw string) {
		fields, err := parseRESPFields(raw)
		if err != nil {
			return
		}
		s := &Session{st: st, id: "00000000-0000-4000-8000-000000000000"}
		fwd, err := s.fill("k", fields)
		switch {
		case err != nil:
			var ce *CorruptError
			var ke *CodecError
			var fe *FormatError
			if !errors.As(err, &ce) && !errors.As(err, &ke) && !errors.As(err, &fe) && !errors.Is(err, ErrNotFound) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if len(err.Error()) > maxErrorLen {
				t.Fatalf("an error of %d bytes: %.100q…", len(err.Error()), err.Error())
			}
			return
		case fwd != "":
			return
		}
		for _, k := range s.Keys() {
			var v any
			_ = s.Get(k, &v)
			var str string
			_ = s.Get(k, &str)
			if !s.Has(k) {
				t.Fatalf("Keys lists %q, Has says no", k)
			}
		}
		_ = s.Set("new", 1)
		_ = s.appendChanges(nil)
	})
}

// The save script's reply, whatever it is, is a result or a typed error.
func FuzzSaveReply(f *testing.F) {
	for _, s := range []string{"ok:1:1700000000000:1800000000000:1700000000000", "dup:2:1:2:3", "notfound",
		"conflict:3", "exists", "revoked", "stale", "corrupt:missing metadata", "codec:json", "ok:1:2", "", "ok::::",
		"corrupt:" + strings.Repeat("r", 300), "codec:" + strings.Repeat("c", 300), "ok:" + strings.Repeat("1", 300),
		"format:2", "format:1", "format:", "format:" + strings.Repeat("9", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, res string) {
		r, err := parseSaveReply("k", res, "msgpack")
		if err == nil {
			if !strings.HasPrefix(res, "ok:") && !strings.HasPrefix(res, "dup:") {
				t.Fatalf("%q accepted as applied", res)
			}
			return
		}
		if r != (saveResult{}) {
			t.Fatalf("%q: an error with a result %+v", res, r)
		}
		var ce *CorruptError
		var ke *CodecError
		var fe *FormatError
		if !errors.As(err, &ce) && !errors.As(err, &ke) && !errors.As(err, &fe) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) &&
			err != errKeyExists && err != errIndexRace {
			t.Fatalf("%q: untyped error %T: %v", res, err, err)
		}
		if len(err.Error()) > maxErrorLen {
			t.Fatalf("an error of %d bytes: %.100q…", len(err.Error()), err.Error())
		}
	})
}
