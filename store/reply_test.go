package store

import (
	"fmt"
	"strings"
	"testing"

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
