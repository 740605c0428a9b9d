package batch_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/internal/batch"
)

// The tests hold the sending loops inside their pipelines (batch.Hooks.Sending) to make
// the auto-pipelining's races happen every time: a full queue, loops that stall, callers
// that give up while their command waits or is in flight. The commands go to a real
// Redis.

const loops = 4 // the sending loops per node at most (internal/batch)

// gate holds every pipeline a loop is about to send until the test lets it go, and
// records the keys of the commands of each pipeline.
type gate struct {
	open  chan struct{} // closed: every pipeline goes
	token chan struct{} // one pipeline goes
	once  sync.Once
	held  atomic.Int32 // loops held

	mu      sync.Mutex
	batches [][]string
}

// newGate returns a closed gate, opened when the test ends.
func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{}), token: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

// sending is the Sending hook.
func (g *gate) sending(cmds []redis.Cmder) {
	keys := make([]string, len(cmds))
	for i, c := range cmds {
		keys[i] = fmt.Sprint(c.Args()[1])
	}
	g.mu.Lock()
	g.batches = append(g.batches, keys)
	g.mu.Unlock()
	g.held.Add(1)
	defer g.held.Add(-1)
	select {
	case <-g.open:
	case <-g.token:
	}
}

// release lets every pipeline go, now and later.
func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// sent returns how many times the loops sent key.
func (g *gate) sent(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, b := range g.batches {
		for _, k := range b {
			if k == key {
				n++
			}
		}
	}
	return n
}

// lastBatch returns the keys of the last pipeline a loop began.
func (g *gate) lastBatch() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batches) == 0 {
		return nil
	}
	return g.batches[len(g.batches)-1]
}

// keyPrefix returns a prefix for the test's keys, unique to this run.
func keyPrefix(t *testing.T) string {
	return fmt.Sprintf("batchtest:%s:%d:", t.Name(), time.Now().UnixNano())
}

// set returns a SET of key to "v" that expires.
func set(ctx context.Context, key string) *redis.StatusCmd {
	return redis.NewStatusCmd(ctx, "set", key, "v", "ex", 300)
}

// async runs f in a goroutine; its error arrives on the channel.
func async(f func() error) <-chan error {
	c := make(chan error, 1)
	go func() { c <- f() }()
	return c
}

// wait returns what arrives on c, or fails the test after d.
func wait(t *testing.T, c <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(d):
		t.Fatalf("%s: no answer after %s", what, d)
		return nil
	}
}

// holdLoops starts loops sending one command each and holds them all in their
// pipelines. The commands' errors arrive on the channel once the gate lets them go.
func holdLoops(t *testing.T, bs *batch.Batchers, g *gate, prefix string) <-chan error {
	t.Helper()
	errc := make(chan error, loops)
	for i := range loops {
		key := prefix + "hold:" + strconv.Itoa(i)
		go func() { errc <- bs.Process(t.Context(), key, set(t.Context(), key)) }()
		require.Eventually(t, func() bool { return g.held.Load() == int32(i+1) && g.sent(key) == 1 },
			5*time.Second, time.Millisecond, "a loop holding %s", key)
	}
	require.Equal(t, loops, bs.Loops())
	return errc
}

// A command for a node whose queue is full goes alone, at once, instead of waiting for
// room behind loops that are stuck.
func TestBatchFullQueue(t *testing.T) {
	rdb := client(t)
	ctx := t.Context()
	prefix := keyPrefix(t)
	g := newGate(t)
	var queued atomic.Int32
	const queueLen = 8
	bs := batch.NewWithHooks(rdb, batch.Hooks{
		QueueLen: queueLen,
		Stall:    time.Hour, // the loops held do not count as stalled: only the full queue
		Idle:     50 * time.Millisecond,
		Sending:  g.sending,
		Queued:   func() { queued.Add(1) },
	})
	t.Cleanup(bs.Close)

	heldc := holdLoops(t, bs, g, prefix)
	queuedc := make(chan error, queueLen)
	for i := range queueLen {
		key := prefix + "queued:" + strconv.Itoa(i)
		go func() { queuedc <- bs.Process(ctx, key, set(ctx, key)) }()
	}
	require.Eventually(t, func() bool { return queued.Load() == loops+queueLen }, 5*time.Second, time.Millisecond)

	key := prefix + "alone"
	cmd := set(ctx, key)
	err := wait(t, async(func() error { return bs.Process(ctx, key, cmd) }), 5*time.Second,
		"a command beyond the full queue (it must go alone)")
	require.NoError(t, err)
	require.Equal(t, "OK", cmd.Val())
	require.EqualValues(t, loops, g.held.Load(), "the loops are still held")
	require.Zero(t, g.sent(key), "it went alone, not through a loop")
	require.Equal(t, "v", rdb.Get(ctx, key).Val())
	require.EqualValues(t, loops+queueLen, queued.Load(), "it was not queued")

	g.release()
	for range loops {
		require.NoError(t, wait(t, heldc, 10*time.Second, "a held command"))
	}
	for range queueLen {
		require.NoError(t, wait(t, queuedc, 10*time.Second, "a queued command"))
	}
	for i := range queueLen {
		key := prefix + "queued:" + strconv.Itoa(i)
		require.Equal(t, 1, g.sent(key), "the queued commands go through the loops")
		require.Equal(t, "v", rdb.Get(ctx, key).Val())
	}
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, 5*time.Second, time.Millisecond)
}

// When every loop has been stuck in its pipeline for the stall time (250 ms), commands
// stop queueing behind them and go alone; once a pipeline completes, they queue again.
func TestBatchStall(t *testing.T) {
	rdb := client(t)
	ctx := t.Context()
	prefix := keyPrefix(t)
	g := newGate(t)
	bs := batch.NewWithHooks(rdb, batch.Hooks{Idle: 50 * time.Millisecond, Sending: g.sending})
	t.Cleanup(bs.Close)

	heldAt := time.Now()
	heldc := holdLoops(t, bs, g, prefix)
	// Until the loops have been held for the stall time, a command queues behind them; its
	// caller gives up and the command is never sent. After, a command goes alone.
	var key string
	var gaveUp []string
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; key == ""; i++ {
		require.True(t, time.Now().Before(deadline), "no command went alone while every loop was stuck")
		k := prefix + "try:" + strconv.Itoa(i)
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err := wait(t, async(func() error { return bs.Process(cctx, k, set(cctx, k)) }), 5*time.Second,
			"a caller whose context ends")
		cancel()
		if err == nil {
			key = k
			break
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)
		gaveUp = append(gaveUp, k)
	}
	require.GreaterOrEqual(t, time.Since(heldAt), 250*time.Millisecond, "not before the stall time")
	require.EqualValues(t, loops, g.held.Load(), "the loops are still held")
	require.Zero(t, g.sent(key), "it went alone, not through a loop")
	require.Equal(t, "v", rdb.Get(ctx, key).Val())

	g.release()
	for range loops {
		require.NoError(t, wait(t, heldc, 10*time.Second, "a held command"))
	}
	// A pipeline completed: the node is no longer stalled.
	after := prefix + "after"
	require.NoError(t, bs.Process(ctx, after, set(ctx, after)))
	require.Equal(t, 1, g.sent(after), "after a pipeline completes, commands go through the loops again")
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, 5*time.Second, time.Millisecond)
	for _, k := range gaveUp {
		require.Zero(t, g.sent(k), "the command of a caller that gave up is not sent")
	}
}

// A caller that gives up while its command is queued gets its context's error at once,
// and its command is never sent.
func TestBatchCancelQueued(t *testing.T) {
	rdb := client(t)
	ctx := t.Context()
	prefix := keyPrefix(t)
	g := newGate(t)
	var queued atomic.Int32
	bs := batch.NewWithHooks(rdb, batch.Hooks{
		Stall:   time.Hour,
		Idle:    50 * time.Millisecond,
		Sending: g.sending,
		Queued:  func() { queued.Add(1) },
	})
	t.Cleanup(bs.Close)

	heldc := holdLoops(t, bs, g, prefix)
	key := prefix + "gone"
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := set(cctx, key)
	errc := async(func() error { return bs.Process(cctx, key, cmd) })
	require.Eventually(t, func() bool { return queued.Load() == loops+1 }, 5*time.Second, time.Millisecond)
	cancel()
	err := wait(t, errc, 2*time.Second, "a caller that gave up while its command was queued")
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, loops, g.held.Load(), "it did not wait for the loops")

	g.release()
	for range loops {
		require.NoError(t, wait(t, heldc, 10*time.Second, "a held command"))
	}
	// The loops end when nothing is left in the queue: the command has been through one.
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, 5*time.Second, time.Millisecond)
	require.Zero(t, g.sent(key), "the command of a caller that gave up is not sent")
	require.ErrorIs(t, rdb.Get(ctx, key).Err(), redis.Nil)
	require.NoError(t, cmd.Err(), "the command is left as it was")
	require.Empty(t, cmd.Val())
}

// A caller that gives up while its command is in a pipeline gets its context's error at
// once; the pipeline still sends the command (it cannot be recalled) and writes its
// reply into it after the caller has gone.
func TestBatchCancelInFlight(t *testing.T) {
	rdb := client(t)
	ctx := t.Context()
	prefix := keyPrefix(t)
	g := newGate(t)
	var queued atomic.Int32
	bs := batch.NewWithHooks(rdb, batch.Hooks{
		Stall:   time.Hour,
		Idle:    50 * time.Millisecond,
		Sending: g.sending,
		Queued:  func() { queued.Add(1) },
	})
	t.Cleanup(bs.Close)

	heldc := holdLoops(t, bs, g, prefix)
	// Two commands queue; one loop is let go, and takes both into its next pipeline.
	gone, stays := prefix+"gone", prefix+"stays"
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	goneCmd, staysCmd := set(cctx, gone), set(ctx, stays)
	goneErr := async(func() error { return bs.Process(cctx, gone, goneCmd) })
	require.Eventually(t, func() bool { return queued.Load() == loops+1 }, 5*time.Second, time.Millisecond)
	staysErr := async(func() error { return bs.Process(ctx, stays, staysCmd) })
	require.Eventually(t, func() bool { return queued.Load() == loops+2 }, 5*time.Second, time.Millisecond)
	select {
	case g.token <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("no loop held")
	}
	require.NoError(t, wait(t, heldc, 10*time.Second, "a held command"))
	require.Eventually(t, func() bool { return g.held.Load() == loops && len(g.lastBatch()) == 2 },
		5*time.Second, time.Millisecond, "a loop holds the pipeline of the two commands")
	require.Equal(t, []string{gone, stays}, g.lastBatch())

	cancel()
	err := wait(t, goneErr, 2*time.Second, "a caller that gave up while its command was in flight")
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, loops, g.held.Load(), "it did not wait for the pipeline")

	g.release()
	require.NoError(t, wait(t, staysErr, 10*time.Second, "the other command of the pipeline"))
	require.Equal(t, "OK", staysCmd.Val())
	for range loops - 1 {
		require.NoError(t, wait(t, heldc, 10*time.Second, "a held command"))
	}
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, 5*time.Second, time.Millisecond)
	require.Equal(t, "v", rdb.Get(ctx, gone).Val(), "the command in flight was sent")
	require.Equal(t, "OK", goneCmd.Val(), "its reply was written after its caller had gone")
}

// The callers that come after others gave up never get a gone caller's queued command in
// place of their own: each command is sent once, and each caller gets its own reply.
func TestBatchCancelThenReuse(t *testing.T) {
	rdb := client(t)
	ctx := t.Context()
	prefix := keyPrefix(t)
	g := newGate(t)
	var queued atomic.Int32
	bs := batch.NewWithHooks(rdb, batch.Hooks{
		Stall:   time.Hour,
		Idle:    50 * time.Millisecond,
		Sending: g.sending,
		Queued:  func() { queued.Add(1) },
	})
	t.Cleanup(bs.Close)

	heldc := holdLoops(t, bs, g, prefix)
	const n = 50
	incr := func(ctx context.Context, key string) (int64, error) {
		cmd := redis.NewIntCmd(ctx, "incr", key)
		err := bs.Process(ctx, key, cmd)
		return cmd.Val(), err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	goneErrs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := incr(cctx, prefix+"gone:"+strconv.Itoa(i))
			goneErrs <- err
		}()
	}
	require.Eventually(t, func() bool { return queued.Load() == loops+n }, 5*time.Second, time.Millisecond)
	cancel()
	for range n {
		require.ErrorIs(t, wait(t, goneErrs, 5*time.Second, "a caller that gave up"), context.Canceled)
	}

	replies := make([]int64, n)
	nextErrs := make(chan error, n)
	for i := range n {
		go func() {
			var err error
			replies[i], err = incr(ctx, prefix+"next:"+strconv.Itoa(i))
			nextErrs <- err
		}()
	}
	require.Eventually(t, func() bool { return queued.Load() == loops+2*n }, 5*time.Second, time.Millisecond)
	g.release()
	for range n {
		require.NoError(t, wait(t, nextErrs, 10*time.Second, "a caller that came after"))
	}
	for range loops {
		require.NoError(t, wait(t, heldc, 10*time.Second, "a held command"))
	}
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, 5*time.Second, time.Millisecond)
	for i := range n {
		next, gone := prefix+"next:"+strconv.Itoa(i), prefix+"gone:"+strconv.Itoa(i)
		require.EqualValues(t, 1, replies[i], "%s: its own reply", next)
		require.Equal(t, 1, g.sent(next), "%s: sent once", next)
		require.Equal(t, "1", rdb.Get(ctx, next).Val())
		require.Zero(t, g.sent(gone), "%s: the command of a caller that gave up is not sent", gone)
	}
}
