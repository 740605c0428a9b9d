package store

import (
	"context"
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
)

// batcher sends the commands queued for one node in pipelines, through the store's
// client (so the client's hooks, redirections and pools apply as to any command).
type batcher struct {
	c       redis.UniversalClient
	q       chan *batchOp
	running atomic.Int32
}

// batchOp is one queued command and the signal that its reply is in.
type batchOp struct {
	cmd  redis.Cmder
	done chan struct{}
}

var batchOps = sync.Pool{New: func() any { return &batchOp{done: make(chan struct{}, 1)} }}

func newBatcher(c redis.UniversalClient) *batcher {
	return &batcher{c: c, q: make(chan *batchOp, batchQueue)}
}

// do sends cmd in the next pipeline and waits for its reply or for ctx to end. The
// pipeline runs on the client's own timeouts, not on ctx (it carries other requests'
// commands): a caller whose context ends gets the context's error at once, and must not
// touch cmd after that (the pipeline may still write its reply).
func (b *batcher) do(ctx context.Context, cmd redis.Cmder) error {
	op := batchOps.Get().(*batchOp)
	op.cmd = cmd
	select {
	case b.q <- op:
	default: // the node is far behind: no queueing beyond the bound
		op.cmd = nil
		batchOps.Put(op)
		return b.c.Process(ctx, cmd)
	}
	b.ensureLoop()
	select {
	case <-op.done:
		op.cmd = nil
		batchOps.Put(op)
		return cmd.Err()
	case <-ctx.Done():
		return ctx.Err() // op is left to the loop, which signals into its buffer
	}
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
			b.send(batch)
			clear(batch)
			t.Reset(batchIdle)
		case <-t.C:
			b.running.Add(-1)
			// A command queued while this loop was deciding to end saw it running: stay
			// for it if no other loop can take it.
			if len(b.q) == 0 || !b.rejoin() {
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

// send runs the batch as one pipeline (a single command as itself) and signals every op.
func (b *batcher) send(batch []*batchOp) {
	ctx := context.Background()
	if len(batch) == 1 {
		_ = b.c.Process(ctx, batch[0].cmd)
	} else {
		_, _ = b.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, op := range batch {
				_ = p.Process(ctx, op.cmd)
			}
			return nil
		})
	}
	for _, op := range batch {
		op.done <- struct{}{}
	}
}

// batchers hands out the batcher of the node that serves a key. In a Cluster each
// master has its own, so a node that hangs holds up only its own keys' commands.
type batchers struct {
	rdb    redis.UniversalClient
	single *batcher // a *redis.Client (standalone or Sentinel): one batcher
	nodes  sync.Map // node address → *batcher, for a Cluster
}

func newBatchers(rdb redis.UniversalClient) *batchers {
	bs := &batchers{rdb: rdb}
	if _, ok := rdb.(*redis.Client); ok {
		bs.single = newBatcher(rdb)
	}
	return bs
}

// process runs cmd, which reads or writes key, in the next pipeline to key's node. On a
// client that is neither a *redis.Client nor a *redis.ClusterClient it runs cmd alone.
func (bs *batchers) process(ctx context.Context, key string, cmd redis.Cmder) error {
	if bs.single != nil {
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
	addr := node.Options().Addr
	b, ok := bs.nodes.Load(addr)
	if !ok {
		b, _ = bs.nodes.LoadOrStore(addr, newBatcher(cc))
	}
	return b.(*batcher).do(ctx, cmd)
}
