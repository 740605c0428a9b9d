package store

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// An error quotes at most MaxQuoted bytes of data from Redis, however much there is: a
// 1 MB field name must not become a 1 MB error string.
func TestErrorsQuoteBoundedData(t *testing.T) {
	const huge = 1 << 20
	big := strings.Repeat("x", huge)
	st, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})) // nothing is sent
	if err != nil {
		t.Fatal(err)
	}
	fill := func(fields ...string) error {
		s := &Session{st: st}
		_, err := s.fill("k", fields)
		return err
	}
	meta := []string{fVersion, "1", fCreated, "1", fDeadline, "1", fTouched, "1"}
	_, saveCorrupt := parseSaveReply("k", "corrupt:"+big, "msgpack")
	_, saveMalformed := parseSaveReply("k", "ok:"+big, "msgpack")
	_, saveUnexpected := parseSaveReply("k", big, "msgpack")
	_, saveCodec := parseSaveReply("k", "codec:"+big, "msgpack")
	for name, err := range map[string]error{
		"unknown field":          fill(append(meta, big, "v")...),
		"metadata not a number":  fill(fVersion, big, fCreated, "1", fDeadline, "1", fTouched, "1"),
		"codec of the session":   fill(append(meta, fCodec, big)...),
		"save reply corrupt":     saveCorrupt,
		"save reply malformed":   saveMalformed,
		"save reply unexpected":  saveUnexpected,
		"save reply codec":       saveCodec,
		"member reply":           parseMember("k", []any{big}).err,
		"member reply not array": parseMember("k", big).err,
	} {
		t.Run(name, func(t *testing.T) {
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrCodecMismatch) {
				t.Errorf("error %v matches neither ErrCorrupt nor ErrCodecMismatch", err)
			}
			msg := err.Error()
			if len(msg) > 300 {
				t.Fatalf("error of %d bytes quoting %d bytes of data: %.200s…", len(msg), huge, msg)
			}
			if !lengthNote.MatchString(msg) {
				t.Errorf("error %q does not give the data's length", msg)
			}
		})
	}
}

var lengthNote = regexp.MustCompile(`"…\(10485\d\d bytes\)`)

func TestQuoteData(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"_x", `"_x"`},
		{strings.Repeat("a", MaxQuoted), `"` + strings.Repeat("a", MaxQuoted) + `"`},
		{strings.Repeat("a", MaxQuoted+1), `"` + strings.Repeat("a", MaxQuoted) + `"…(65 bytes)`},
		{"\x00" + strings.Repeat("é", 40), `"\x00` + strings.Repeat("é", 31) + `\xc3"…(81 bytes)`}, // cut inside a rune
	} {
		if got := quoteData(tc.in); got != tc.want {
			t.Errorf("quoteData(%.20q…) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
