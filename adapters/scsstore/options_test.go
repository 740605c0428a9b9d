package scsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/adapters/scsstore"
	"github.com/hasession/hasession/store"
)

func newAdapter(t *testing.T, rdb redis.UniversalClient, opts ...scsstore.Option) *scsstore.Store {
	t.Helper()
	st, err := store.New(rdb)
	require.NoError(t, err)
	ad, err := scsstore.New(st, opts...)
	require.NoError(t, err)
	return ad
}

// scsToken returns a token as scs makes one.
func scsToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestContextEndsTheRetries(t *testing.T) {
	// A server that does not exist: the retry policy keeps trying until the context ends.
	rdb := store.NewFailoverClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}})
	t.Cleanup(func() { _ = rdb.Close() })
	ad := newAdapter(t, rdb)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := ad.FindCtx(ctx, scsToken())
	took := time.Since(start)
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.GreaterOrEqual(t, took, 1400*time.Millisecond, "retried until the context ended: %v", err)
	require.Less(t, took, 5*time.Second, "and no longer")
}

func TestNewValidatesOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb)
	require.NoError(t, err)
	_, err = scsstore.New(st, scsstore.WithPrefix("a{b"))
	require.Error(t, err)
	ad, err := scsstore.New(st)
	require.NoError(t, err)
	key, err := ad.Key(strings.Repeat("A", scsstore.TokenLen))
	require.NoError(t, err)
	require.Equal(t, scsstore.DefaultPrefix+"{"+strings.Repeat("A", scsstore.TokenLen)+"}", key)
	require.Panics(t, func() { _, _ = scsstore.New(nil) })
}
