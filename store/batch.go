package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Auto-pipelining: the loads and saves that requests make at the same time are sent
// together, one pipeline per Redis node, instead of one round trip each. A request alone
// is sent at once (no timer, no waiting for company); requests that arrive while a
// pipeline is in flight go in the next one. Per request this saves the system calls and
// the wake-ups of a round trip of its own, on the app server and in Redis — the bulk of a
// small command's cost.
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

// batcher sends the commands queued for one node in pipelines, through the store's
// client (so the client's hooks, redirections and pools apply as to any command).
type batcher struct {
	c       redis.UniversalClient
	q       chan *batchOp
	running atomic.Int32
	// sending counts the loops inside a pipeline; since is when the oldest of those
	// pipelines that is still running began (unix ns; 0: none).
	sending  atomic.Int32
	progress atomic.Int64 // when a pipeline last completed or began with none running (unix ns)
	idle     func(*batcher)
	stop     <-chan struct{} // closed by Store.Close: the loops end as when idle
}

// batchOp is one queued command, the context of its caller and the signal that its reply
// is in.
type batchOp struct {
	ctx  context.Context
	cmd  redis.Cmder
	done chan struct{}
}

var batchOps = sync.Pool{New: func() any { return &batchOp{done: make(chan struct{}, 1)} }}

func newBatcher(c redis.UniversalClient, idle func(*batcher), stop <-chan struct{}) *batcher {
	return &batcher{c: c, q: make(chan *batchOp, batchQueue), idle: idle, stop: stop}
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
	select {
	case <-op.done:
		op.ctx, op.cmd = nil, nil
		batchOps.Put(op)
		return cmd.Err()
	case <-ctx.Done():
		return ctx.Err() // op is left to the loop, which signals into its buffer
	}
}

// stalled reports whether every loop is stuck in a pipeline that began over batchStall
// ago with no pipeline completing since.
func (b *batcher) stalled() bool {
	if b.sending.Load() < batchLoops {
		return false
	}
	p := b.progress.Load()
	return p != 0 && time.Since(time.Unix(0, p)) > batchStall
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

// loop sends what is queued, one pipeline at a time, and ends when idle.
func (b *batcher) loop() {
	t := time.NewTimer(batchIdle)
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
			t.Reset(batchIdle)
		case <-b.stop:
			t.Reset(0) // the case below, at once: it ends the loop when nothing is queued
		case <-t.C:
			b.running.Add(-1)
			// A command queued while this loop was deciding to end saw it running: stay
			// for it if no other loop can take it. (The producer queues, then reads
			// running; this loop lowers running, then reads the queue: one of the two
			// sees the other.)
			if len(b.q) == 0 || !b.rejoin() {
				if b.idle != nil && b.running.Load() == 0 && len(b.q) == 0 {
					b.idle(b)
				}
				return
			}
			t.Reset(batchIdle)
		}
	}
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

// send runs the batch's live commands (gathered in live, a scratch slice) as one pipeline (a single command as itself) and
// signals every op. Commands whose callers have gone are not sent. The pipeline carries
// the first caller's context values (for hooks: tracing, request IDs), not its
// cancellation, and the latest deadline among its callers, so a node that hangs holds a
// loop no longer than its callers wait.
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

// batchers hands out the batcher of the node that serves a key. In a Cluster each
// master has its own, so a node that hangs holds up only its own keys' commands.
//
// Commands that go-redis must not retry (cmd.NoRetry(): a reply read into the caller's
// buffer) have batchers of their own: go-redis retries a pipeline only when none of its
// commands is of that kind, and the others should keep their retries.
type batchers struct {
	rdb      redis.UniversalClient
	single   *batcher // a *redis.Client (standalone or Sentinel): one batcher
	singleNR *batcher // and one for the commands go-redis does not retry
	nodes    sync.Map // batcherKey → *batcher, for a Cluster; dropped when idle
	stop     chan struct{}
}

// batcherKey names a Cluster node's batcher.
type batcherKey struct {
	addr    string
	noRetry bool
}

func newBatchers(rdb redis.UniversalClient) *batchers {
	bs := &batchers{rdb: rdb, stop: make(chan struct{})}
	if _, ok := rdb.(*redis.Client); ok {
		bs.single = newBatcher(rdb, nil, bs.stop)
		bs.singleNR = newBatcher(rdb, nil, bs.stop)
	}
	return bs
}

// process runs cmd, which reads or writes key, in the next pipeline to key's node. On a
// client that is neither a *redis.Client nor a *redis.ClusterClient it runs cmd alone.
func (bs *batchers) process(ctx context.Context, key string, cmd redis.Cmder) error {
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
		b, _ = bs.nodes.LoadOrStore(addr, newBatcher(cc, func(b *batcher) {
			bs.nodes.CompareAndDelete(addr, b) // a later command makes a new one
		}, bs.stop))
	}
	return b.(*batcher).do(ctx, cmd)
}
