package store

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func push(keys ...string) string {
	s := ">2\r\n$10\r\ninvalidate\r\n"
	if keys == nil {
		return s + "_\r\n"
	}
	return s + resp2(keys...)
}

func TestReadValue(t *testing.T) {
	for _, v := range []string{
		"+OK\r\n", "-ERR x\r\n", ":12\r\n", "_\r\n", "#t\r\n", ",1.5\r\n", "(123\r\n",
		"$3\r\nabc\r\n", "$-1\r\n", "$0\r\n\r\n", "!3\r\nerr\r\n", "=7\r\ntxt:abc\r\n",
		resp2("a", "b"), resp3("_v", "1", ".a", "x"), "%0\r\n", "*0\r\n", "~1\r\n:1\r\n",
		"*2\r\n*1\r\n$1\r\na\r\n%1\r\n+k\r\n:1\r\n", push("k1", "k2"), push(),
	} {
		br := bufio.NewReader(strings.NewReader(v + "+NEXT\r\n"))
		got, err := readValue(br, nil)
		require.NoError(t, err, "%q", v)
		require.Equal(t, v, string(got))
		next, err := readValue(br, nil)
		require.NoError(t, err)
		require.Equal(t, "+NEXT\r\n", string(next), "after %q", v)
	}
	// An attribute is dropped: the value it describes is what is read.
	br := bufio.NewReader(strings.NewReader("|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n+NEXT\r\n"))
	got, err := readValue(br, nil)
	require.NoError(t, err)
	require.Equal(t, "$1\r\nv\r\n", string(got))
	for _, v := range []string{"", "?x\r\n", "$3\r\nab", "$3\r\nabcde", "*2\r\n+a\r\n", "$x\r\n", "+OK\n", "$600000000\r\n", strings.Repeat("*1\r\n", 100) + ":1\r\n"} {
		_, err := readValue(bufio.NewReader(strings.NewReader(v)), nil)
		require.Error(t, err, "%q", v)
	}
}

func TestParseInvalidation(t *testing.T) {
	keys, all, ok := parseInvalidation([]byte(push("hs:{a}", "hs:{b}")))
	require.True(t, ok)
	require.False(t, all)
	require.Equal(t, []string{"hs:{a}", "hs:{b}"}, keys)
	_, all, ok = parseInvalidation([]byte(push()))
	require.True(t, ok && all)
	_, _, ok = parseInvalidation([]byte(">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"))
	require.False(t, ok)
	// An invalidation of a shape not known drops everything.
	for _, v := range []string{">2\r\n$10\r\ninvalidate\r\n~1\r\n$1\r\nk\r\n", ">2\r\n$10\r\ninvalidate\r\n*-1\r\n", ">2\r\n$10\r\ninvalidate\r\n"} {
		_, all, ok := parseInvalidation([]byte(v))
		require.True(t, ok && all, "%q", v)
	}
}

func FuzzReadValue(f *testing.F) {
	f.Add(push("k"))
	f.Add(resp3("_v", "1"))
	f.Add("|1\r\n+a\r\n:1\r\n+b\r\n")
	f.Add("*1\r\n$-1\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := readValue(bufio.NewReader(strings.NewReader(s)), nil)
		if err != nil {
			return
		}
		if !strings.Contains(s, string(got)) {
			t.Fatalf("value %q is not what was read from %q", got, s)
		}
		if got[0] == '>' {
			keys, _, ok := parseInvalidation(got)
			for _, k := range keys {
				if !ok || !bytes.Contains(got, []byte(k)) {
					t.Fatalf("key %q not in %q", k, got)
				}
			}
		}
	})
}

func FuzzParseInvalidation(f *testing.F) {
	f.Add(push("a", "b"))
	f.Add(push())
	f.Add(">2\r\n$10\r\ninvalidate\r\n*3\r\n$1\r\na\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		keys, all, ok := parseInvalidation([]byte(s))
		if !ok && (all || keys != nil) {
			t.Fatalf("not an invalidation, yet keys %q all %t", keys, all)
		}
	})
}

// A fill whose reply comes after a local write of its key (sent before the write's reply)
// is not cached: the store reads its own writes.
func TestNearFence(t *testing.T) {
	st := &Store{}
	nc := &nearCache{st: st, size: 2, lease: int64(time.Second), entries: map[string]*nearEntry{},
		fills: map[string]int{}, fences: map[string]uint64{}}
	st.near = nc
	tc := &trackConn{}
	raw := []byte(resp3("_v", "1"))

	nc.fills["k"]++
	early := nc.seq.Add(1) // a fill sent
	st.nearDrop("k")       // a local write returned
	nc.keep(tc, "k", early, raw, true)
	require.NotContains(t, nc.entries, "k", "a fill older than the local write")
	require.Empty(t, nc.fences)

	nc.fills["k"]++
	st.nearDrop("k")
	late := nc.seq.Add(1) // sent after the write
	nc.keep(tc, "k", late, raw, true)
	require.Contains(t, nc.entries, "k")

	// The size limit: an arbitrary entry goes.
	for _, k := range []string{"a", "b"} {
		nc.fills[k]++
		nc.keep(tc, k, nc.seq.Add(1), raw, true)
	}
	require.Len(t, nc.entries, 2)
	require.Equal(t, int64(1), nc.evCapacity.Load())

	nc.invalidate(tc, []string{"a", "b", "k"}, false)
	require.Empty(t, nc.entries)
	require.Empty(t, nc.fills)
}

func TestReplicationOf(t *testing.T) {
	role, id := replicationOf("txt:# Replication\r\nrole:master\r\nconnected_slaves:2\r\nmaster_replid:4f1e\r\nmaster_replid2:0000\r\n")
	require.Equal(t, "master", role)
	require.Equal(t, "4f1e", id)
	role, id = replicationOf("")
	require.Empty(t, role+id)
}

func TestIsMasterRole(t *testing.T) {
	require.True(t, isMasterRole([]byte("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")))
	require.False(t, isMasterRole([]byte("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:1\r\n")))
	require.False(t, isMasterRole([]byte("-NOPERM\r\n")))
	require.False(t, isMasterRole([]byte("$6\r\nmaster\r\n")))
}

// Stats.Add sums every field: a field added to Stats and forgotten in Add fails here.
func TestStatsAdd(t *testing.T) {
	var one Stats
	v := reflect.ValueOf(&one).Elem()
	for i := range v.NumField() {
		v.Field(i).SetInt(int64(i + 1))
	}
	sum := one.Add(one)
	sv := reflect.ValueOf(sum)
	for i := range sv.NumField() {
		require.Equal(t, 2*int64(i+1), sv.Field(i).Int(), sv.Type().Field(i).Name)
	}
	// Sub takes every field back.
	require.Equal(t, one, sum.Sub(one))
	require.Equal(t, Stats{}, one.Sub(one))
}
