package batch

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// Hooks are for tests only: they shorten the package's waits and stop or observe a loop at
// the moments its races happen, so that a test can make them happen every time. The
// product never sets them (New sets none). Every field is optional.
type Hooks struct {
	// Idle replaces how long a loop with nothing to send waits before it ends (0: 2 s).
	Idle time.Duration
	// Stall replaces how long every loop of a node must have been in its pipeline for
	// commands to stop queueing and go alone (0: 250 ms).
	Stall time.Duration
	// QueueLen replaces how many commands a node's queue holds; beyond it a command goes
	// alone (0: 4096).
	QueueLen int

	// Queued is called by Process after it has queued a command and made sure a loop will
	// take it (by starting one, or by seeing the most loops running), just before it waits
	// for the reply. It is not called for a command that goes alone.
	Queued func()
	// Ending is called by a loop that has decided to end (idle or closed), before it
	// stops counting itself as running and looks at the queue again.
	Ending func()
	// Sending is called by a loop just before it sends a pipeline (or a single command):
	// the loop counts as in its pipeline. It gets the commands the loop sends, without
	// those whose callers have gone (it may get none: then nothing is sent).
	Sending func(cmds []redis.Cmder)
	// Alone lets a command with nothing to be pipelined with go alone on its caller's
	// goroutine, as it does without hooks. Otherwise, with hooks, every command queues for
	// the loops, so that the hooks above see it (and can hold it).
	Alone bool
}

// NewWithHooks is New with test hooks.
func NewWithHooks(rdb redis.UniversalClient, h Hooks) *Batchers {
	return newBatchers(rdb, &h)
}

// Loops returns how many sending loops are running, over all nodes, for tests that check
// that the loops end.
func (bs *Batchers) Loops() int {
	n := 0
	for _, b := range []*batcher{bs.single, bs.singleNR} {
		if b != nil {
			n += int(b.running.Load())
		}
	}
	bs.nodes.Range(func(_, b any) bool {
		n += int(b.(*batcher).running.Load())
		return true
	})
	return n
}

// sending calls the Sending hook with the commands of live.
func (h *Hooks) sending(live []*batchOp) {
	cmds := make([]redis.Cmder, len(live))
	for i, op := range live {
		cmds[i] = op.cmd
	}
	h.Sending(cmds)
}
