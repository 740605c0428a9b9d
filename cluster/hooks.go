package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// CommandCounter is a go-redis hook that counts the commands a client sends (each
// command of a pipeline counts), for tests that check what reaches Redis:
//
//	var n atomic.Int64
//	rdb.AddHook(cluster.CommandCounter{N: &n})
type CommandCounter struct{ N *atomic.Int64 }

// DialHook passes dials through.
func (h CommandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts one command.
func (h CommandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.N.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts every command of the pipeline.
func (h CommandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.N.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Poll calls check every interval until it returns nil or ctx ends; then it returns an
// error that wraps ctx's error and check's last error.
func Poll(ctx context.Context, interval time.Duration, check func() error) error {
	return poll(ctx, interval, check)
}
