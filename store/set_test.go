package store_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/store"
)

func newStore(t *testing.T, rdb redis.UniversalClient, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.New(rdb, opts...)
	require.NoError(t, err)
	return st
}

// Set refuses a value that could never be read back — nested deeper than the decoders
// accept, or containing itself — with an error wrapping codec.ErrTooDeep, and leaves
// the session unchanged. (Set sends nothing: the client points nowhere.)
func TestSetRefusesValuesTooDeepToRead(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	deep := func(n int) any {
		var v any = "leaf"
		for range n {
			v = map[string]any{"k": v}
		}
		return v
	}
	self := map[string]any{}
	self["self"] = self
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			st := newStore(t, rdb, store.WithCodec(c))
			s, err := st.NewSession()
			require.NoError(t, err)
			require.NoError(t, s.Set("ok", deep(codec.MaxDepth)), "as deep as a load can read")
			s2, _ := st.NewSession()
			values := map[string]any{"one level too deep": deep(codec.MaxDepth + 1)}
			if c == codec.MsgPack {
				values["a map holding itself"] = self
			}
			for name, v := range values {
				err := s2.Set("a", v)
				require.ErrorIs(t, err, codec.ErrTooDeep, name)
				require.False(t, s2.Modified(), "%s: the session is unchanged", name)
			}
		})
	}
}
