package store_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

// Two requests loaded one session and rotate it, one after the other: the first wins,
// the second returns ErrRotated (which matches ErrNotFound) and leaves no session of its
// own behind; the old ID still leads to the winner's session, with nothing lost.
func TestSecondRotationOfOneSessionLoses(t *testing.T) {
	standaloneAndCluster(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("rot-twice:"), store.WithGracePeriod(time.Minute))
		s := login(t, ctx, st, "ida", "laptop")
		require.NoError(t, s.Set("cart", "book"))
		require.NoError(t, st.Save(ctx, s))
		oldID := s.ID()

		first, err := st.Load(ctx, oldID)
		require.NoError(t, err)
		second, err := st.Load(ctx, oldID)
		require.NoError(t, err)
		require.NoError(t, second.Set("theme", "dark"))

		require.NoError(t, st.Rotate(ctx, first))
		winner := first.ID()
		require.NotEqual(t, oldID, winner)

		err = st.Rotate(ctx, second)
		require.ErrorIs(t, err, store.ErrRotated, "the second rotation loses")
		require.ErrorIs(t, err, store.ErrNotFound)
		require.Equal(t, oldID, second.ID(), "the loser keeps the old ID")
		require.True(t, second.Modified(), "the loser keeps its unsaved changes")

		// The old ID leads to the winner's session, the only one.
		viaOld, err := st.Load(ctx, oldID)
		require.NoError(t, err)
		require.Equal(t, winner, viaOld.ID())
		var cart string
		require.NoError(t, viaOld.Get("cart", &cart))
		require.Equal(t, "book", cart)
		infos, err := st.Sessions(ctx, "ida")
		require.NoError(t, err)
		require.Len(t, infos, 1, "no orphan listed for the user")

		// What an app does with ErrRotated: load the old ID again (it follows the
		// forward) and redo the request on the winner's session.
		again, err := st.Load(ctx, second.ID())
		require.NoError(t, err)
		require.NoError(t, again.Set("theme", "dark"))
		require.NoError(t, st.Save(ctx, again))
		require.Equal(t, winner, again.ID())
	})
}

// Pairs of requests rotate one session at the same moment: exactly one of each pair
// succeeds, the old ID forwards to its new session, and the loser left nothing live.
func TestConcurrentRotationsOfOneSessionOneWins(t *testing.T) {
	standaloneAndCluster(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		st := newStore(t, rdb, store.WithPrefix("rot-race:"), store.WithGracePeriod(time.Minute))
		const pairs = 40
		for i := range pairs {
			s := login(t, ctx, st, "race", "device")
			oldID := s.ID()
			var sessions [2]*store.Session
			for j := range sessions {
				var err error
				sessions[j], err = st.Load(ctx, oldID)
				require.NoError(t, err)
			}
			var errs [2]error
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j := range sessions {
				wg.Go(func() {
					<-start
					errs[j] = st.Rotate(ctx, sessions[j])
				})
			}
			close(start)
			wg.Wait()
			var won []string
			for j, err := range errs {
				if err == nil {
					won = append(won, sessions[j].ID())
					continue
				}
				require.ErrorIs(t, err, store.ErrRotated, "pair %d", i)
			}
			require.Len(t, won, 1, "pair %d: exactly one rotation wins: %v", i, errs)
			viaOld, err := st.Load(ctx, oldID)
			require.NoError(t, err)
			require.Equal(t, won[0], viaOld.ID(), "pair %d", i)
			require.NoError(t, st.Destroy(ctx, oldID))
			for _, s := range sessions {
				_, err := st.Load(ctx, s.ID())
				require.ErrorIs(t, err, store.ErrNotFound, "pair %d: nothing outlives the logout", i)
			}
		}
	})
}

// A session rotated twice within the grace period (A→B→C, same user): destroying it by
// its first ID ends the live end of the chain. A rotation that changed the user leaves a
// tombstone, which still leads nowhere: destroying the old ID leaves the new session.
func TestDestroyOfASessionRotatedTwice(t *testing.T) {
	standaloneAndCluster(t, func(t *testing.T, _ cluster.Topology, rdb redis.UniversalClient) {
		ctx := t.Context()
		st := newStore(t, rdb, store.WithPrefix("rot-chain:"), store.WithGracePeriod(time.Minute))
		s := login(t, ctx, st, "kai", "laptop")
		a := s.ID()
		require.NoError(t, st.Rotate(ctx, s))
		b := s.ID()
		require.NoError(t, st.Rotate(ctx, s))
		c := s.ID()
		viaA, err := st.Load(ctx, a)
		require.NoError(t, err)
		require.Equal(t, c, viaA.ID())

		require.NoError(t, st.Destroy(ctx, a))
		for _, id := range []string{a, b, c} {
			_, err := st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound, "%s after Destroy of the first ID", id)
		}
		infos, err := st.Sessions(ctx, "kai")
		require.NoError(t, err)
		require.Empty(t, infos)

		// A login (user changes) then a renewal: the old anonymous ID leads nowhere, and
		// destroying it ends nothing.
		anon, err := st.NewSession()
		require.NoError(t, err)
		require.NoError(t, anon.Set("cart", "pen"))
		require.NoError(t, st.Save(ctx, anon))
		planted := anon.ID()
		anon.SetUser("kai")
		require.NoError(t, st.Rotate(ctx, anon))
		require.NoError(t, st.Rotate(ctx, anon))
		require.NoError(t, st.Destroy(ctx, planted))
		live, err := st.Load(ctx, anon.ID())
		require.NoError(t, err, "the tombstone of a login leads nowhere")
		require.Equal(t, "kai", live.User())
	})
}

// lostDestroyReply is a client hook that, once armed, lets the next call of the destroy
// script apply and then reports its reply lost (io.EOF, as a dropped connection would):
// the store retries it.
type lostDestroyReply struct {
	sha   string
	armed atomic.Bool
}

func (h *lostDestroyReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lostDestroyReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		destroy := len(a) > 1 && a[0] == "evalsha" && a[1] == h.sha
		err := next(ctx, cmd)
		if destroy && err == nil && h.armed.CompareAndSwap(true, false) {
			cmd.SetErr(io.EOF)
			return io.EOF
		}
		return err
	}
}

func (h *lostDestroyReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A logout of a rotated session's old ID whose first reply is lost: the retry finds the
// old key already deleted, and must still end the session it forwarded to.
func TestDestroyRetriedAfterALostReplyEndsTheRotatedSession(t *testing.T) {
	src, err := os.ReadFile("../../store/lua/destroy.lua")
	require.NoError(t, err)
	sum := sha1.Sum(src)
	standaloneAndCluster(t, func(t *testing.T, topo cluster.Topology, _ redis.UniversalClient) {
		ctx := t.Context()
		rdb := client(t, topo)
		h := &lostDestroyReply{sha: hex.EncodeToString(sum[:])}
		rdb.AddHook(h)
		st := newStore(t, rdb, store.WithPrefix("rot-lost-destroy:"), store.WithGracePeriod(time.Minute))
		s := login(t, ctx, st, "lia", "laptop")
		a := s.ID()
		require.NoError(t, st.Rotate(ctx, s))
		b := s.ID()
		// The script is in every node's cache: the first call is the EVALSHA the hook
		// watches, not a NOSCRIPT followed by an EVAL.
		require.NoError(t, rdb.ScriptLoad(ctx, string(src)).Err())
		h.armed.Store(true)
		require.NoError(t, st.Destroy(ctx, a))
		require.False(t, h.armed.Load(), "the reply was lost")
		for _, id := range []string{a, b} {
			_, err := st.Load(ctx, id)
			require.ErrorIs(t, err, store.ErrNotFound, "%s after Destroy of the first ID", id)
		}
	})
}
