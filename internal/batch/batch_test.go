package batch

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// These tests drive the loops' accounting without a server: the client's hooks answer
// every command themselves (a GET gets its key back), so nothing is dialled. The
// behaviour against Redis is tested in the tests module (tests/batch).

// fakeRedis answers commands in place of a server and counts those it gets alone and in
// pipelines.
type fakeRedis struct{ alone, pipelined atomic.Int64 }

func (f *fakeRedis) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *fakeRedis) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(_ context.Context, cmd redis.Cmder) error {
		f.alone.Add(1)
		answer(cmd)
		return nil
	}
}

func (f *fakeRedis) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(_ context.Context, cmds []redis.Cmder) error {
		f.pipelined.Add(int64(len(cmds)))
		for _, cmd := range cmds {
			answer(cmd)
		}
		return nil
	}
}

func answer(cmd redis.Cmder) {
	if c, ok := cmd.(*redis.StringCmd); ok {
		c.SetVal(c.Args()[len(c.Args())-1].(string))
	}
}

// fakeClient returns a *redis.Client whose commands fakeRedis answers.
func fakeClient(t *testing.T) (*redis.Client, *fakeRedis) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	f := &fakeRedis{}
	rdb.AddHook(f)
	return rdb, f
}

// get runs a GET of key through bs and checks its reply.
func get(ctx context.Context, bs *Batchers, key string) error {
	cmd := redis.NewStringCmd(ctx, "get", key)
	if err := bs.Process(ctx, key, cmd); err != nil {
		return err
	}
	if cmd.Val() != key {
		return &wrongReply{key, cmd.Val()}
	}
	return nil
}

type wrongReply struct{ want, got string }

func (e *wrongReply) Error() string { return "reply " + e.got + ", want " + e.want }

// A command queued while every loop is deciding to end (their idle timers fired) is sent:
// the producer saw batchLoops running and started none, so one of the ending loops stays
// for it.
func TestBatchIdleRejoin(t *testing.T) {
	rdb, _ := fakeClient(t)
	release := make(chan struct{})
	var ending, queued atomic.Int32
	bs := NewWithHooks(rdb, Hooks{
		Idle: 10 * time.Millisecond,
		Ending: func() {
			ending.Add(1)
			<-release
		},
		Queued: func() { queued.Add(1) },
	})
	t.Cleanup(bs.Close)
	ctx := t.Context()

	// Each command starts a loop (fewer than batchLoops run), which sends it, goes idle
	// and stops at Ending, still counted as running.
	for i := range batchLoops {
		require.NoError(t, get(ctx, bs, "warm"))
		require.Eventually(t, func() bool { return ending.Load() == int32(i+1) }, 5*time.Second, time.Millisecond)
	}
	require.Equal(t, batchLoops, bs.Loops())

	// Queued now, the command sees batchLoops running and starts no loop.
	errc := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		errc <- get(cctx, bs, "late")
	}()
	require.Eventually(t, func() bool { return queued.Load() == batchLoops+1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, batchLoops, bs.Loops(), "no loop was started for the late command")
	require.Len(t, bs.single.q, 1)

	close(release) // the loops end, but one of them sees the command and stays
	select {
	case err := <-errc:
		require.NoError(t, err, "the command queued while the loops were ending is sent")
	case <-time.After(10 * time.Second):
		t.Fatal("the command queued while the loops were ending is never sent")
	}
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, 5*time.Second, time.Millisecond,
		"the loops end when idle")
}

// Close ends the loops at once, not after their idle time, and the commands that come
// after it go alone.
func TestBatchClose(t *testing.T) {
	rdb, f := fakeClient(t)
	var queued atomic.Int32
	bs := NewWithHooks(rdb, Hooks{Queued: func() { queued.Add(1) }}) // loops idle for 2 s
	ctx := t.Context()
	for range batchLoops {
		require.NoError(t, get(ctx, bs, "warm"))
	}
	require.Positive(t, bs.Loops())

	start := time.Now()
	bs.Close()
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, batchIdle/2, time.Millisecond,
		"the loops end at Close, not after their idle time")
	require.Less(t, time.Since(start), batchIdle)

	q, alone := queued.Load(), f.alone.Load()
	require.NoError(t, get(ctx, bs, "after"))
	require.Equal(t, q, queued.Load(), "not queued after Close")
	require.Equal(t, alone+1, f.alone.Load(), "sent alone after Close")
	require.Zero(t, bs.Loops())
	bs.Close() // again: no panic
}

// A command queued while the loops are ending at Close (by a Process that found the
// Batchers open just before Close) is sent: one of the loops stays for it.
func TestBatchCloseRejoin(t *testing.T) {
	rdb, _ := fakeClient(t)
	release := make(chan struct{})
	var ending, queued atomic.Int32
	bs := NewWithHooks(rdb, Hooks{
		Idle: time.Hour, // the loops end at Close only
		Ending: func() {
			ending.Add(1)
			<-release
		},
		Queued: func() { queued.Add(1) },
	})
	ctx := t.Context()
	for range batchLoops {
		require.NoError(t, get(ctx, bs, "warm"))
	}
	require.Equal(t, batchLoops, bs.Loops())

	bs.Close()
	require.Eventually(t, func() bool { return ending.Load() == batchLoops }, 5*time.Second, time.Millisecond,
		"at Close, every loop decides to end")
	errc := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cmd := redis.NewStringCmd(cctx, "get", "late")
		err := bs.single.do(cctx, cmd) // past Process's check of Close
		if err == nil && cmd.Val() != "late" {
			err = &wrongReply{"late", cmd.Val()}
		}
		errc <- err
	}()
	require.Eventually(t, func() bool { return queued.Load() == batchLoops+1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, batchLoops, bs.Loops(), "no loop was started for the late command")

	close(release)
	select {
	case err := <-errc:
		require.NoError(t, err, "the command queued while the loops were ending is sent")
	case <-time.After(10 * time.Second):
		t.Fatal("the command queued while the loops were ending is never sent")
	}
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, batchIdle/2, time.Millisecond,
		"closed, the loops end once the queue is empty")
}

// holdingRedis is fakeRedis whose commands on the key "slow" wait for release.
type holdingRedis struct {
	fakeRedis
	held    atomic.Int32
	release chan struct{}
}

func (h *holdingRedis) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(_ context.Context, cmd redis.Cmder) error {
		if cmd.Args()[1] == "slow" {
			h.held.Add(1)
			<-h.release
		}
		h.alone.Add(1)
		answer(cmd)
		return nil
	}
}

// A command with nothing to be pipelined with (nothing queued, no pipeline and no other
// lone command in flight) is sent at once on its caller's goroutine: not queued, no loop
// started. While it is in flight, the commands that come queue for the loops.
func TestBatchLoneCommandGoesAlone(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	h := &holdingRedis{release: make(chan struct{})}
	rdb.AddHook(h)
	var queued atomic.Int32
	bs := NewWithHooks(rdb, Hooks{Alone: true, Idle: 10 * time.Millisecond, Queued: func() { queued.Add(1) }})
	t.Cleanup(bs.Close)
	ctx := t.Context()

	require.NoError(t, get(ctx, bs, "lone"))
	require.Zero(t, queued.Load(), "a lone command does not queue")
	require.Zero(t, bs.Loops(), "nor start a loop")
	require.EqualValues(t, 1, h.alone.Load())

	slow := make(chan error, 1)
	go func() { slow <- get(ctx, bs, "slow") }()
	require.Eventually(t, func() bool { return h.held.Load() == 1 }, 5*time.Second, time.Millisecond)
	require.Zero(t, queued.Load(), "the slow command went alone")
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- get(ctx, bs, "k"+strconv.Itoa(i)) }()
	}
	for range n {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a command behind the lone one in flight is not answered")
		}
	}
	require.EqualValues(t, n, queued.Load(), "with a lone command in flight, the others queue for the loops")
	close(h.release)
	require.NoError(t, <-slow)
	require.Eventually(t, func() bool { return bs.Loops() == 0 }, 5*time.Second, time.Millisecond)

	require.NoError(t, get(ctx, bs, "lone again"))
	require.EqualValues(t, n, queued.Load(), "once nothing is in flight, a command goes alone again")
}
