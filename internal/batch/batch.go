// Package batch is the store's auto-pipelining: the commands that concurrent requests
// make at the same time are sent together, one pipeline per Redis node, instead of one
// round trip each. A command alone (nothing queued, no pipeline in flight) is sent at once
// from its caller's goroutine, as the client sends any command (no timer, no waiting for
// company, no hand-off to a sending loop); commands that arrive while a pipeline or such
// a command is in flight queue for the next pipeline. Per command this
// saves the system calls and the wake-ups of a round trip of its own, on the app server
// and in Redis — the bulk of a small command's cost.
//
// The commands go through the store's client ([redis.UniversalClient.Pipelined] and
// [redis.UniversalClient.Process]), so the client's hooks, redirections, retries and
// pools apply to them as to any command.
//
// # Why not go-redis's AutoPipeliner
//
// go-redis 9.23 has an auto-pipeliner of its own ([redis.Client.AutoPipeline], marked
// experimental). On the project's bench, comparing the store's loads through each, this
// package made 84k loads/s against 60k with AutoPipeliner. Beyond speed, the store
// relies on these properties of this package: a caller whose context ends while its
// command is queued or pipelined gets the context's error at once and its command, if not
// yet sent, is never sent; a pipeline
// carries the latest deadline of its callers, so a node that hangs holds a loop no
// longer than its callers wait; when every loop is stuck in a pipeline, commands stop
// queueing behind them (see [Batchers.Process]); and commands that go-redis must not
// retry travel in pipelines of their own, so that the others keep their retries.
package batch

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/testhook"
)

const (
	batchLoops = 4               // pipelines in flight per node at most
	batchMax   = 128             // commands per pipeline at most
	batchQueue = 4096            // queued commands per node beyond which a command goes alone
	batchIdle  = 2 * time.Second // a loop with nothing to send for this long ends
	// batchStall: when every loop has been in its pipeline this long (a node that hangs),
	// commands stop queueing behind them and go alone, through the client's own routing
	// (after a failover, to the new master).
	batchStall = 250 * time.Millisecond
)

// Batchers sends the commands given to [Batchers.Process] in pipelines, one sender per
// Redis node. In a Cluster each master has its own, so a node that hangs holds up only
// its own keys' commands.
//
// Commands that go-redis must not retry (cmd.NoRetry(): a reply read into the caller's
// buffer) have senders of their own: go-redis retries a pipeline only when none of its
// commands is of that kind, and the others should keep their retries.
//
// A Batchers is safe for concurrent use. Its zero value is not usable: see [New].
type Batchers struct {
	rdb      redis.UniversalClient
	single   *batcher // a *redis.Client (standalone or Sentinel): one batcher
	singleNR *batcher // and one for the commands go-redis does not retry
	nodes    sync.Map // batcherKey → *batcher, for a Cluster; dropped when idle
	hooks    *Hooks   // nil but in tests (see NewWithHooks)

	closeOnce sync.Once
	isClosed  atomic.Bool
	closed    chan struct{} // closed by Close
}

// batcherKey names a Cluster node's batcher.
type batcherKey struct {
	addr    string
	noRetry bool
}

// New returns the Batchers of a client. Commands are pipelined on a *redis.Client
// (standalone or Sentinel) and a *redis.ClusterClient; on any other client (a
// *redis.Ring) [Batchers.Process] runs each command alone. New starts no goroutine: a
// node's sending loops start with its first commands and end when it has none for a
// while (2 s) or when the Batchers is closed.
func New(rdb redis.UniversalClient) *Batchers {
	return newBatchers(rdb, nil)
}

func newBatchers(rdb redis.UniversalClient, h *Hooks) *Batchers {
	bs := &Batchers{rdb: rdb, hooks: h, closed: make(chan struct{})}
	if _, ok := rdb.(*redis.Client); ok {
		bs.single = bs.newBatcher(nil)
		bs.singleNR = bs.newBatcher(nil)
	}
	return bs
}

// Process runs cmd, which reads or writes key, in the next pipeline to key's node, and
// returns cmd's error. On a client that is neither a *redis.Client nor a
// *redis.ClusterClient, and after [Batchers.Close], it runs cmd alone.
//
// A caller whose queued or pipelined command is not answered yet gets its context's error
// at once when the context ends. If its command has not been sent by then, it is never
// sent; if it has, the pipeline may still write the command's reply into cmd (and into
// any buffer cmd writes to) after Process has returned: the caller must then leave cmd
// alone. A command that goes alone on its caller's goroutine (nothing queued, no pipeline
// or other such command in flight) is sent as the client's own Process sends it: it
// returns when the client does, by the context's deadline where the client applies
// context deadlines to its sockets (ContextTimeoutEnabled), else by its own timeouts.
//
// A command goes alone, through the client's own routing and retries, instead of
// queueing when the node's queue is full (4096 commands) or when every one of the node's
// sending loops (4) has been in its pipeline for over 250 ms with none completing (a node
// that hangs: after a failover the client reaches the new master).
func (bs *Batchers) Process(ctx context.Context, key string, cmd redis.Cmder) error {
	if bs.isClosed.Load() {
		return bs.rdb.Process(ctx, cmd)
	}
	noRetry := cmd.NoRetry()
	if bs.single != nil {
		if noRetry {
			return bs.singleNR.do(ctx, cmd)
		}
		return bs.single.do(ctx, cmd)
	}
	cc, ok := bs.rdb.(*redis.ClusterClient)
	if !ok {
		return bs.rdb.Process(ctx, cmd)
	}
	node, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return cc.Process(ctx, cmd) // the client's own routing and retries
	}
	addr := batcherKey{node.Options().Addr, noRetry}
	b, ok := bs.nodes.Load(addr)
	if !ok {
		b, _ = bs.nodes.LoadOrStore(addr, bs.newBatcher(func(b *batcher) {
			bs.nodes.CompareAndDelete(addr, b) // a later command makes a new one
		}))
	}
	return b.(*batcher).do(ctx, cmd)
}

// Close stops the sending loops: a loop waiting for commands ends at once, once the
// commands already queued are sent; a loop in a pipeline ends when its pipeline
// completes. Close does not wait for them. Commands processed after Close are sent alone.
// Close does not close the client. It may be called more than once.
func (bs *Batchers) Close() {
	bs.closeOnce.Do(func() {
		bs.isClosed.Store(true)
		close(bs.closed)
	})
}

// batcher sends the commands queued for one node in pipelines, through the client.
type batcher struct {
	c       redis.UniversalClient
	q       chan *batchOp
	running atomic.Int32 // the loops running
	// sending counts the loops inside a pipeline. progress is when a pipeline last
	// completed, or began while none was running (unix ns; 0: never): with every loop
	// sending, a progress older than batchStall means they have all been stuck that long.
	sending  atomic.Int32
	progress atomic.Int64
	alone    atomic.Bool    // a command is going alone on its caller's goroutine (see goAlone)
	idle     func(*batcher) // called by the last loop to end, with nothing queued
	closed   <-chan struct{}
	hooks    *Hooks
	idleFor  time.Duration // batchIdle, or Hooks.Idle
	stall    time.Duration // batchStall, or Hooks.Stall
}

// batchOp is one queued command, the context of its caller and the signal that its reply
// is in.
type batchOp struct {
	ctx  context.Context
	cmd  redis.Cmder
	done chan struct{}
}

var batchOps = sync.Pool{New: func() any { return &batchOp{done: make(chan struct{}, 1)} }}

func (bs *Batchers) newBatcher(idle func(*batcher)) *batcher {
	queue, idleFor, stall := batchQueue, batchIdle, batchStall
	if h := bs.hooks; h != nil {
		if h.QueueLen > 0 {
			queue = h.QueueLen
		}
		if h.Idle > 0 {
			idleFor = h.Idle
		}
		if h.Stall > 0 {
			stall = h.Stall
		}
	}
	return &batcher{
		c:       bs.rdb,
		q:       make(chan *batchOp, queue),
		idle:    idle,
		closed:  bs.closed,
		hooks:   bs.hooks,
		idleFor: idleFor,
		stall:   stall,
	}
}

// do sends cmd in the next pipeline and waits for its reply or for ctx to end. A caller
// whose context ends gets the context's error at once, and must not touch cmd after that
// (the pipeline may still write its reply); a command whose caller has gone is not sent.
func (b *batcher) do(ctx context.Context, cmd redis.Cmder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.stalled() {
		return b.c.Process(ctx, cmd)
	}
	if b.goAlone() {
		// Nothing to pipeline it with: sent at once from the caller's goroutine, as a loop
		// would send it (a pipeline of one is the command itself), without the two
		// goroutine hand-offs of the queue.
		defer b.alone.Store(false)
		return b.c.Process(ctx, cmd)
	}
	op := batchOps.Get().(*batchOp)
	op.ctx, op.cmd = ctx, cmd
	select {
	case b.q <- op:
	default: // the node is far behind: no queueing beyond the bound
		op.ctx, op.cmd = nil, nil
		batchOps.Put(op)
		return b.c.Process(ctx, cmd)
	}
	b.ensureLoop()
	if b.hooks != nil && b.hooks.Queued != nil {
		b.hooks.Queued()
	}
	select {
	case <-op.done:
		op.ctx, op.cmd = nil, nil
		batchOps.Put(op)
		return cmd.Err()
	case <-ctx.Done():
		// op is left to the loop, which signals into its buffer; it never goes back to
		// the pool, where another caller could take it while the loop still holds it.
		return ctx.Err()
	}
}

// goAlone reports whether a command may go alone, on its caller's goroutine: nothing is
// queued, no loop is in a pipeline and no other command is going alone. It then counts
// the command as the one going alone; the caller clears b.alone when it is done. Under
// load the next commands find one going alone and queue, so they are still pipelined.
func (b *batcher) goAlone() bool {
	if b.hooks != nil && !b.hooks.Alone || testhook.QueueLoneCommands.Load() {
		return false // a test that drives the loops, or a benchmark: every command queues
	}
	return len(b.q) == 0 && b.sending.Load() == 0 && b.alone.CompareAndSwap(false, true)
}

// stalled reports whether every loop is stuck in a pipeline that began over batchStall
// ago with no pipeline completing since.
func (b *batcher) stalled() bool {
	if b.sending.Load() < batchLoops {
		return false
	}
	p := b.progress.Load()
	return p != 0 && time.Since(time.Unix(0, p)) > b.stall
}

// ensureLoop starts a sending loop unless batchLoops are running.
func (b *batcher) ensureLoop() {
	for {
		n := b.running.Load()
		if n >= batchLoops {
			return
		}
		if b.running.CompareAndSwap(n, n+1) {
			go b.loop()
			return
		}
	}
}

// loop sends what is queued, one pipeline at a time, and ends when idle or closed.
func (b *batcher) loop() {
	t := time.NewTimer(b.idleFor)
	defer t.Stop()
	batch := make([]*batchOp, 0, batchMax)
	live := make([]*batchOp, 0, batchMax)
	for {
		select {
		case op := <-b.q:
			batch = append(batch[:0], op)
			if len(b.q) == 0 {
				// Let requests that are about to queue do so: one yield (nothing to run:
				// no wait) makes the pipelines markedly fuller under load.
				runtime.Gosched()
			}
		drain:
			for len(batch) < batchMax {
				select {
				case op := <-b.q:
					batch = append(batch, op)
				default:
					break drain
				}
			}
			b.send(batch, live)
			clear(batch)
			clear(live[:cap(live)])
			t.Reset(b.idleFor)
		case <-t.C:
			if !b.end() {
				return
			}
			t.Reset(b.idleFor)
		case <-b.closed:
			if !b.end() {
				return
			}
		}
	}
}

// end is a loop's decision to end (idle or closed). It reports whether the loop must
// stay after all: for a command queued while it was deciding, that no other loop will
// take.
func (b *batcher) end() (stay bool) {
	if b.hooks != nil && b.hooks.Ending != nil {
		b.hooks.Ending()
	}
	b.running.Add(-1)
	// A command queued while this loop was deciding to end saw it running: stay for it
	// if no other loop can take it. (The producer queues, then reads running; this loop
	// lowers running, then reads the queue: one of the two sees the other.)
	if len(b.q) == 0 || !b.rejoin() {
		if b.idle != nil && b.running.Load() == 0 && len(b.q) == 0 {
			b.idle(b)
		}
		return false
	}
	return true
}

// rejoin counts the loop as running again, unless batchLoops already are.
func (b *batcher) rejoin() bool {
	for {
		n := b.running.Load()
		if n >= batchLoops {
			return false
		}
		if b.running.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// send runs the batch's live commands (gathered in live, a scratch slice) as one
// pipeline (a single command as itself) and signals every op. Commands whose callers
// have gone are not sent. The pipeline carries the first caller's context values (for
// hooks: tracing, request IDs), not its cancellation, and the latest deadline among its
// callers, so a node that hangs holds a loop no longer than its callers wait.
func (b *batcher) send(batch, live []*batchOp) {
	live = live[:0]
	var latest time.Time
	noDeadline := false
	for _, op := range batch {
		if op.ctx.Err() != nil {
			continue
		}
		live = append(live, op)
		if dl, ok := op.ctx.Deadline(); !ok {
			noDeadline = true
		} else if dl.After(latest) {
			latest = dl
		}
	}
	defer func() {
		if r := recover(); r != nil { // a panicking hook: fail the batch, not the process
			err := fmt.Errorf("hasession: panic while sending a pipeline: %v", r)
			for _, op := range live {
				if op.cmd.Err() == nil {
					op.cmd.SetErr(err)
				}
			}
		}
		b.sending.Add(-1)
		b.progress.Store(time.Now().UnixNano())
		for _, op := range batch {
			op.done <- struct{}{}
		}
	}()
	if b.sending.Add(1) == 1 {
		b.progress.Store(time.Now().UnixNano())
	}
	if b.hooks != nil && b.hooks.Sending != nil {
		b.hooks.sending(live)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		_ = b.c.Process(live[0].ctx, live[0].cmd)
		return
	}
	ctx := context.WithoutCancel(live[0].ctx)
	if !noDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, latest)
		defer cancel()
	}
	_, _ = b.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, op := range live {
			_ = p.Process(ctx, op.cmd)
		}
		return nil
	})
}
