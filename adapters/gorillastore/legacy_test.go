package gorillastore

import (
	"bytes"
	"encoding/base32"
	"encoding/gob"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/store"
)

func offlineStore(t *testing.T) *store.Store {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb)
	require.NoError(t, err)
	return st
}

// legacyID returns an ID as the legacy store's default generator makes one of n random
// bytes.
func legacyID(n int) string {
	return strings.TrimRight(base32.StdEncoding.EncodeToString(securecookie.GenerateRandomKey(n)), "=")
}

func TestLegacyOptionsValidate(t *testing.T) {
	st := offlineStore(t)
	hashKey, blockKey := []byte("0123456789abcdef0123456789abcdef"), []byte("0123456789abcdef")
	for name, opts := range map[string][]Option{
		"no keys":                    {WithLegacyRedistore(RedistorePrefix)},
		"an empty hash key":          {WithLegacyRedistore(RedistorePrefix, nil, blockKey)},
		"a block key of 5 bytes":     {WithLegacyRedistore(RedistorePrefix, hashKey, []byte("short"))},
		"a '{' without a hash tag":   {WithLegacyRedisstore("s{")},
		"two legacy stores":          {WithLegacyRedisstore(RedisstorePrefix), WithLegacyRedistore(RedistorePrefix, hashKey)},
		"JSON without redistore":     {WithLegacyJSON()},
		"JSON with redisstore (gob)": {WithLegacyRedisstore(RedisstorePrefix), WithLegacyJSON()},
	} {
		_, err := New(st, opts...)
		require.Error(t, err, name)
	}
	for name, opts := range map[string][]Option{
		"a hash key":               {WithLegacyRedistore(RedistorePrefix, hashKey)},
		"hash and block keys":      {WithLegacyRedistore(RedistorePrefix, hashKey, blockKey, hashKey, nil)},
		"JSON":                     {WithLegacyRedistore("", hashKey), WithLegacyJSON()},
		"a prefix with a hash tag": {WithLegacyRedisstore("app{s}:")},
	} {
		_, err := New(st, opts...)
		require.NoError(t, err, name)
	}
}

func TestLegacyCookieCarriesTheID(t *testing.T) {
	st := offlineStore(t)
	hashKey, blockKey := []byte("0123456789abcdef0123456789abcdef"), []byte("0123456789abcdef")
	gs, err := New(st, WithLegacyRedistore(RedistorePrefix, []byte("old-hash-key"), nil, hashKey, blockKey))
	require.NoError(t, err)
	id := legacyID(32)
	// As redistore's Save encodes it, with the second (rotated) pair of keys.
	enc, err := securecookie.EncodeMulti("sess", id, securecookie.CodecsFromPairs(hashKey, blockKey)...)
	require.NoError(t, err)
	got, ok := gs.legacy.id("sess", enc)
	require.True(t, ok)
	require.Equal(t, id, got)
	_, ok = gs.legacy.id("other", enc)
	require.False(t, ok, "the cookie's name is part of what is signed")
	wrong, err := securecookie.EncodeMulti("sess", id, securecookie.New([]byte("another-hash-key"), nil))
	require.NoError(t, err)
	_, ok = gs.legacy.id("sess", wrong)
	require.False(t, ok, "signed with other keys")
	for _, bad := range []string{"", strings.ToLower(id), id[:51], id + "A", strings.Repeat("1", 52)} {
		enc, err := securecookie.EncodeMulti("sess", bad, securecookie.CodecsFromPairs(hashKey, blockKey)...)
		require.NoError(t, err)
		_, ok = gs.legacy.id("sess", enc)
		require.False(t, ok, "ID %q", bad)
	}

	gs, err = New(st, WithLegacyRedisstore(RedisstorePrefix))
	require.NoError(t, err)
	id = legacyID(64)
	got, ok = gs.legacy.id("sess", id)
	require.True(t, ok)
	require.Equal(t, id, got)
	for _, bad := range []string{"", id[:102], id + "A", strings.ToLower(id), "3f2504e0-4f89-41d3-9a0c-0305e82c3301"} {
		_, ok = gs.legacy.id("sess", bad)
		require.False(t, ok, "ID %q", bad)
	}
}

func gobOf(t *testing.T, values map[any]any) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, gob.NewEncoder(&b).Encode(values))
	return b.Bytes()
}

type legacyCart struct{ Items []string }

func TestConvertLegacy(t *testing.T) {
	gob.Register(legacyCart{})
	gob.Register(map[int]string{})
	gob.Register(map[string]any{})
	st := offlineStore(t)
	gs, err := New(st, WithLegacyRedisstore(RedisstorePrefix), WithValueType("cart", legacyCart{}))
	require.NoError(t, err)
	attrs, life, err := gs.convertLegacy(gobOf(t, map[any]any{"user": "ada", "n": 3, "cart": legacyCart{Items: []string{"x"}}}), time.Hour)
	require.NoError(t, err)
	require.Equal(t, time.Hour, life)
	require.Equal(t, map[string]any{"user": "ada", "n": 3, "cart": legacyCart{Items: []string{"x"}}}, attrs)

	_, _, err = gs.convertLegacy(gobOf(t, map[any]any{"user": "ada", 7: "seven"}), time.Hour)
	require.ErrorIs(t, err, ErrKeyNotString)
	_, _, err = gs.convertLegacy([]byte("not gob"), time.Hour)
	require.Error(t, err)
	_, _, err = gs.convertLegacy(gobOf(t, map[any]any{"m": map[int]string{1: "a"}, "x": map[string]any{"in": map[int]string{1: "a"}}}), time.Hour)
	require.ErrorContains(t, err, `value "x" would not load back`)

	gs, err = New(st, WithLegacyRedistore(RedistorePrefix, []byte("k")), WithLegacyJSON())
	require.NoError(t, err)
	attrs, _, err = gs.convertLegacy([]byte(`{"user":"ada","n":3}`), time.Minute)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"user": "ada", "n": 3.0}, attrs)
	for _, bad := range []string{`null`, `[1]`, `{"a":`} {
		_, _, err = gs.convertLegacy([]byte(bad), time.Minute)
		require.Error(t, err, bad)
		require.False(t, errors.Is(err, ErrKeyNotString))
	}
}
