package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/store"
)

func TestRetryableClassifiesFailoverErrors(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, err := range []error{
		io.EOF, io.ErrUnexpectedEOF, opErr, fmt.Errorf("wrapped: %w", syscall.ECONNRESET),
		syscall.EHOSTUNREACH, context.DeadlineExceeded, redis.ErrPoolTimeout, fmt.Errorf("wrapped: %w", redis.ErrPoolTimeout),
	} {
		require.True(t, store.Retryable(err), "%v", err)
	}
	for _, err := range []error{nil, context.Canceled, store.ErrNotFound, store.ErrConflict, errors.New("boom"), redis.Nil} {
		require.False(t, store.Retryable(err), "%v", err)
	}
}

func TestRetryErrorWrapsContextAndLastError(t *testing.T) {
	last := syscall.ECONNREFUSED
	err := error(&store.RetryError{Op: "load session", Attempts: 3, Ctx: context.DeadlineExceeded, Last: last})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.Contains(t, err.Error(), "3 attempts")
}

func TestRetryPolicyValidation(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, p := range []store.RetryPolicy{
		{MaxRetries: -1},
		{AttemptTimeout: -time.Second},
		{MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		_, err := store.New(rdb, store.WithRetryPolicy(p))
		require.Error(t, err, "%+v", p)
	}
	_, err := store.New(rdb, store.WithRetryPolicy(store.RetryPolicy{}))
	require.NoError(t, err, "zero values take the defaults; 0 retries means one attempt")
	_, err = store.New(rdb, store.WithWriteAck(0, time.Second))
	require.Error(t, err)
}

// With nothing listening, a load retries until the caller's deadline and then returns
// within a few milliseconds of it, wrapping both the deadline and the last error.
func TestRetriesStopAtTheCallersDeadline(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialerRetries: 1})
	defer rdb.Close()
	st, err := store.New(rdb)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = st.Load(ctx, "6f1c2a9e-2b0d-4a8e-9a51-3c7d9f0e4b21")
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var re *store.RetryError
	require.ErrorAs(t, err, &re)
	require.Error(t, re.Last)
	require.Greater(t, re.Attempts, 1)
	require.Less(t, took, 300*time.Millisecond+50*time.Millisecond)
	require.Positive(t, st.Stats().Retries)

	none, _ := store.New(rdb, store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 0}))
	before := time.Now()
	_, err = none.Load(t.Context(), "6f1c2a9e-2b0d-4a8e-9a51-3c7d9f0e4b21")
	require.Error(t, err)
	require.False(t, errors.As(err, &re), "no retries: the Redis error itself")
	require.Less(t, time.Since(before), 2*time.Second)
}

// RetryValue returns what the attempt that succeeded produced, after retryable errors;
// a non-retryable error ends it at once.
func TestRetryValueReturnsTheSuccessfulAttempt(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	st, err := store.New(rdb, store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 5, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	require.NoError(t, err)
	attempts := 0
	v, err := store.RetryValue(t.Context(), st, "count", func(ctx context.Context) (int, error) {
		attempts++
		if attempts < 3 {
			return attempts, syscall.ECONNRESET
		}
		return 10 * attempts, nil
	})
	require.NoError(t, err)
	require.Equal(t, 30, v)
	require.EqualValues(t, 2, st.Stats().Retries)

	attempts = 0
	v, err = store.RetryValue(t.Context(), st, "refused", func(ctx context.Context) (int, error) {
		attempts++
		return 7, store.ErrConflict
	})
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, 1, attempts, "not retryable")
	require.Equal(t, 7, v, "a non-retryable error returns the attempt's value as it is")
}
