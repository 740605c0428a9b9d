package scsstore_test

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/hasession/hasession/adapters/scsstore"
)

func TestValidToken(t *testing.T) {
	for range 1000 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		tok := base64.RawURLEncoding.EncodeToString(b)
		if !scsstore.ValidToken(tok) {
			t.Fatalf("scs token %q rejected", tok)
		}
	}
	ok := strings.Repeat("A", 42) + "w" // 'w' is 48: low bits zero
	for _, c := range []struct {
		tok  string
		want bool
	}{
		{ok, true},
		{strings.Repeat("_", 42) + "Q", true},
		{"", false},
		{ok[:42], false},
		{ok + "A", false},
		{strings.Repeat("A", 42) + "B", false}, // padding bits set
		{"{" + ok[2:] + "}", false},
		{ok[:41] + " A", false},
		{ok[:42] + "=", false},
		{ok[:10] + "+" + ok[11:], false},
		{ok[:10] + "/" + ok[11:], false},
		{ok[:10] + "é" + ok[12:], false},
		{ok[:10] + "\x00" + ok[11:], false},
	} {
		if got := scsstore.ValidToken(c.tok); got != c.want {
			t.Errorf("ValidToken(%q) = %v, want %v", c.tok, got, c.want)
		}
	}
}

// FuzzValidToken checks ValidToken against the standard library's strict decoder: a
// token is valid exactly when it is the canonical unpadded base64url of 32 bytes.
func FuzzValidToken(f *testing.F) {
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("A", 42) + "B")
	f.Add("{" + strings.Repeat("A", 41) + "}")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		want := err == nil && len(b) == 32 && !strings.ContainsAny(s, "\r\n")
		if got := scsstore.ValidToken(s); got != want {
			t.Fatalf("ValidToken(%q) = %v, strict decoding says %v", s, got, want)
		}
	})
}
