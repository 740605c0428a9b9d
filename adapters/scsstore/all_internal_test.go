package scsstore

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/internal/legacy"
	"github.com/hasession/hasession/store"
)

// fakeNode serves SCAN pages from a table and fails the calls it is told to.
type fakeNode struct {
	pages map[uint64]page
	fail  map[int]bool // call number → fail it
	calls []uint64     // the cursors asked for
}

func (f *fakeNode) Scan(ctx context.Context, cursor uint64, _ string, _ int64) *redis.ScanCmd {
	cmd := redis.NewScanCmd(ctx, nil)
	f.calls = append(f.calls, cursor)
	if f.fail[len(f.calls)] {
		cmd.SetErr(io.EOF) // retryable
		return cmd
	}
	p := f.pages[cursor]
	cmd.SetVal(p.keys, p.next)
	return cmd
}

func newTestStore(t *testing.T) *Store {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(rdb, store.WithRetryPolicy(store.RetryPolicy{MaxRetries: 3}))
	require.NoError(t, err)
	s, err := New(st)
	require.NoError(t, err)
	return s
}

func TestScanStartsOverAfterARetriedPage(t *testing.T) {
	s := newTestStore(t)
	node := &fakeNode{
		pages: map[uint64]page{0: {[]string{"a", "b"}, 5}, 5: {[]string{"c"}, 9}, 9: {[]string{"d"}, 0}},
		fail:  map[int]bool{2: true}, // the page at cursor 5, first attempt
	}
	var got []string
	require.NoError(t, s.scanNode(t.Context(), node, nil, func(keys []string) { got = append(got, keys...) }))
	require.Equal(t, []uint64{0, 5, 5, 0, 5, 9}, node.calls, "the retried page's cursor may belong to another node: start over")
	slices.Sort(got)
	require.Equal(t, []string{"a", "a", "b", "b", "c", "c", "d"}, got)
}

func TestScanStopsWhenTheNodeIsNoLongerMaster(t *testing.T) {
	s := newTestStore(t)
	node := &fakeNode{
		pages: map[uint64]page{0: {[]string{"a"}, 5}, 5: {[]string{"b"}, 0}},
		fail:  map[int]bool{2: true},
	}
	checks := 0
	err := s.scanNode(t.Context(), node, func(context.Context) error {
		checks++
		return errMasterGone
	}, func([]string) {})
	require.ErrorIs(t, err, errMasterGone)
	require.Equal(t, 1, checks, "checked before the second attempt only")
	require.Equal(t, []uint64{0, 5}, node.calls)
}

func TestGlobEscape(t *testing.T) {
	require.Equal(t, `a\*b\?c\[d\]e\\f:`, legacy.GlobEscape(`a*b?c[d]e\f:`))
	s := newTestStore(t)
	require.Equal(t, "scs:session:{*}", s.pattern())
	tok := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	got, ok := s.token("scs:session:{" + tok + "}")
	require.True(t, ok)
	require.Equal(t, tok, got)
	for _, k := range []string{"scs:session:" + tok, "scs:session:{" + tok, "other:{" + tok + "}", "scs:session:{x}"} {
		_, ok := s.token(k)
		require.False(t, ok, k)
	}
}
