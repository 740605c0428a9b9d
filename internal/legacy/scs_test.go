package legacy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/gob"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/internal/legacy"
)

func scsToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestValidSCSToken(t *testing.T) {
	for range 1000 {
		if tok := scsToken(); !legacy.ValidSCSToken(tok) {
			t.Fatalf("scs token %q rejected", tok)
		}
	}
	ok := strings.Repeat("A", 42) + "w"
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
		{ok[:41] + ":A", false},
		{ok[:42] + "=", false},
		{ok[:10] + "+" + ok[11:], false},
		{ok[:10] + "é" + ok[12:], false},
	} {
		if got := legacy.ValidSCSToken(c.tok); got != c.want {
			t.Errorf("ValidSCSToken(%q) = %v, want %v", c.tok, got, c.want)
		}
	}
}

// The token filter: only <legacy prefix><token> is a legacy key — not the adapter's keys
// or tombstones under the same prefix, nor anything longer or shorter.
func TestSCSTokenFiltersLegacyKeys(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := legacy.NewSCS(rdb, nil, legacy.DefaultSCSConfig())
	require.NoError(t, err)
	tok := scsToken()
	for _, c := range []struct {
		key  string
		want bool
	}{
		{"scs:session:" + tok, true},
		{"scs:session:{" + tok + "}", false},
		{"scs:session:{" + tok + "}:deleted", false},
		{"scs:session:" + tok + "x", false},
		{"scs:session:" + tok[1:], false},
		{"scs:other:" + tok, false},
		{tok, false},
	} {
		got, ok := l.Token(c.key)
		require.Equal(t, c.want, ok, c.key)
		if ok {
			require.Equal(t, tok, got)
		}
	}
	require.Equal(t, "scs:session:"+tok, l.LegacyKey(tok))
	require.True(t, strings.HasPrefix(l.Match(), "scs:session:["), l.Match())

	_, err = legacy.NewSCS(rdb, nil, legacy.SCSConfig{Prefix: "a{b"})
	require.ErrorIs(t, err, legacy.ErrBraceInPrefix)
	o, err := legacy.NewSCS(rdb, nil, legacy.SCSConfig{LegacyPrefix: "a*[?]\\"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(o.Match(), `a\*\[\?\]\\[`), o.Match())
}

// The blob is scs.GobCodec's output for a session holding a value of a type registered
// in the scs adapter's tests (which check that), and not registered here.
func TestGobDeadlineSkipsUnregisteredValues(t *testing.T) {
	b, err := os.ReadFile("testdata/gobcodec_custom_type.bin")
	require.NoError(t, err)
	var full struct {
		Deadline time.Time
		Values   map[string]any
	}
	err = gob.NewDecoder(bytes.NewReader(b)).Decode(&full)
	require.Error(t, err, "the value's type is not registered here")

	deadline, err := legacy.GobDeadline(b)
	require.NoError(t, err)
	require.True(t, deadline.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), "%v", deadline)

	for _, bad := range [][]byte{nil, []byte("not gob"), b[:len(b)/2], b[:len(b)-1]} {
		_, err := legacy.GobDeadline(bad)
		require.Error(t, err, "%q", bad)
	}
	var other bytes.Buffer
	require.NoError(t, gob.NewEncoder(&other).Encode(struct{ Values map[string]string }{map[string]string{"a": "b"}}))
	_, err = legacy.GobDeadline(other.Bytes())
	require.Error(t, err, "another struct")
	var zero bytes.Buffer
	require.NoError(t, gob.NewEncoder(&zero).Encode(struct {
		Deadline time.Time
		Values   map[string]string
	}{Values: map[string]string{"a": "b"}}))
	_, err = legacy.GobDeadline(zero.Bytes())
	require.True(t, errors.Is(err, legacy.ErrNoDeadline), "%v", err)
}

// FuzzGobDeadline: any input is a deadline or an error, never a panic.
func FuzzGobDeadline(f *testing.F) {
	b, err := os.ReadFile("testdata/gobcodec_custom_type.bin")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Add(b[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := legacy.GobDeadline(b)
		if err == nil && d.IsZero() {
			t.Fatal("no error and no deadline")
		}
	})
}

func TestCorruptError(t *testing.T) {
	err := error(&legacy.CorruptError{Key: "k", Err: legacy.ErrWrongType})
	require.ErrorIs(t, err, legacy.ErrWrongType)
	var ce *legacy.CorruptError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, `legacy: corrupt session at key "k": legacy: key is not a string`, err.Error())
	for o, s := range map[legacy.Outcome]string{legacy.Imported: "imported", legacy.Skipped: "skipped", legacy.Corrupt: "corrupt"} {
		require.Equal(t, s, o.String())
	}
}
