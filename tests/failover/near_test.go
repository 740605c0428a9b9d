package hasession_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// nearFailoverResult is what nearAcrossFailover saw.
type nearFailoverResult struct {
	rounds, stale, staleHits int
	hits                     int64
}

// nearAcrossFailover runs a SENTINEL FAILOVER (the old master stays up, a master until
// Sentinel demotes it seconds later) while app server c loads sessions written before it
// into its near-cache and app server a destroys them one after the other: a hit on c
// after the Destroy returned nil is a stale hit (the cache served what the old master
// holds).
func nearAcrossFailover(t *testing.T, s *cluster.Sentinel, aOpts ...store.Option) nearFailoverResult {
	ctx := t.Context()
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.WaitHealthy(hctx))
	newStore := func(opts ...store.Option) *store.Store {
		st, err := store.New(tunedClient(t, s), append(opts, store.WithNearCache(store.NearCache{}))...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	a, c := newStore(aOpts...), newStore()
	var ids []string
	for range 800 {
		sess, err := a.NewSession()
		require.NoError(t, err)
		require.NoError(t, sess.Set("n", 1))
		require.NoError(t, a.Save(ctx, sess))
		ids = append(ids, sess.ID())
	}
	done := make(chan error, 1)
	go func() {
		_, err := cluster.RunEpisode(ctx, s, cluster.FaultFailover, cluster.EpisodeOptions{Logf: t.Logf})
		done <- err
	}()
	var r nearFailoverResult
	deadline := time.Now().Add(3 * time.Minute)
	for episodeOver := false; !episodeOver; {
		select {
		case err := <-done:
			require.NoError(t, err)
			episodeOver = true
		default:
		}
		require.True(t, time.Now().Before(deadline), "the failover episode ends")
		if r.rounds == len(ids) {
			continue // the sessions are used up: wait for the episode's end
		}
		id := ids[r.rounds]
		r.rounds++
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		for range 2 {
			_, _ = c.Load(cctx, id)
		}
		if a.Destroy(cctx, id) == nil {
			before := c.Stats().NearHits
			if _, err := c.Load(cctx, id); err == nil {
				r.stale++
				if c.Stats().NearHits > before {
					r.staleHits++
				}
			}
		}
		cancel()
	}
	r.hits = c.Stats().NearHits
	return r
}

// Across a SENTINEL FAILOVER, the near-cache never serves a session whose Destroy
// returned nil with WAIT on every replica (the guarantee Sentinel gives: see the store's
// Consistency): the old master has it when it returns (as a replica: the replication
// stream brought the invalidation, or its connection closed on ROLE).
func TestNearCacheSentinelFailover(t *testing.T) {
	s := cluster.Shared(t, cluster.KindSentinel).(*cluster.Sentinel)
	r := nearAcrossFailover(t, s, store.WithWriteAck(2, 500*time.Millisecond))
	t.Logf("SENTINEL FAILOVER, WAIT 2, near-cache: %d rounds, %d hits on the reading app server, %d destroyed sessions loaded (%d from its cache)", r.rounds, r.hits, r.stale, r.staleHits)
	require.Positive(t, r.hits)
	require.Zero(t, r.stale)
}

// Without WAIT, the old master serves the client that has not yet switched to the new one,
// cache or not (Sentinel tells the clients one after the other). The check of the
// client's master keeps the cache from serving the old master any longer than the client
// reads it: a build without it serves destroyed sessions from its cache for as long as
// the old master stays a master (seconds), many times more.
func TestNearCacheSentinelFailoverBrokenNoMasterCheck(t *testing.T) {
	s := cluster.Shared(t, cluster.KindSentinel).(*cluster.Sentinel)
	with := nearAcrossFailover(t, s)
	testhook.NearNoMasterCheck.Store(true)
	defer testhook.NearNoMasterCheck.Store(false)
	without := nearAcrossFailover(t, s)
	t.Logf("SENTINEL FAILOVER, no WAIT: with the master check %d rounds, %d destroyed sessions loaded (%d from the cache); without it %d rounds, %d loaded (%d from the cache)",
		with.rounds, with.stale, with.staleHits, without.rounds, without.stale, without.staleHits)
	require.Greater(t, without.staleHits, 2*with.staleHits+10)
}
