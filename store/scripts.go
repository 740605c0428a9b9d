package store

import (
	"context"
	_ "embed"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/touch.lua
	touchLua string
	//go:embed lua/save.lua
	saveLua string
	//go:embed lua/forward.lua
	forwardLua string
	//go:embed lua/destroy.lua
	destroyLua string
	//go:embed lua/index_add.lua
	indexAddLua string
	//go:embed lua/index_read.lua
	indexReadLua string
	//go:embed lua/member.lua
	memberLua string
	//go:embed lua/pending.lua
	pendingLua string

	touchScript     = redis.NewScript(touchLua)
	saveScript      = redis.NewScript(saveLua)
	forwardScript   = redis.NewScript(forwardLua)
	destroyScript   = redis.NewScript(destroyLua)
	indexAddScript  = redis.NewScript(indexAddLua)
	indexReadScript = redis.NewScript(indexReadLua)
	memberScript    = redis.NewScript(memberLua)
	pendingScript   = redis.NewScript(pendingLua)
)

// The SHAs of the scripts on the hot paths, boxed once (see evalShaArgs).
var touchSHA, saveSHA any = touchScript.Hash(), saveScript.Hash()

// evalShaArgs returns the arguments of an EVALSHA of the script with the given SHA on one
// key, in one allocation: go-redis's Script.Run copies the arguments into a new slice and
// boxes the SHA and a one-key slice on every call.
func evalShaArgs(sha any, key string, args ...any) []any {
	a := make([]any, 4, 4+len(args))
	a[0], a[1], a[2], a[3] = "evalsha", sha, 1, key
	return append(a, args...)
}

// pipeScript runs script on each key in one pipeline of c. EVALSHA in a pipeline has no
// EVAL fallback: the keys whose node answered NOSCRIPT are sent again with EVAL. With
// wait, every pipeline ends with WAIT — on the connection that sent the writes, which is
// the one WAIT counts — and acked is the lowest count WAIT returned (-1 on an error).
func (st *Store) pipeScript(ctx context.Context, c redis.Cmdable, script *redis.Script, keys []string, args []any, wait bool) (out []cmdResult, acked int) {
	acked = st.o.ackReplicas
	run := func(idx []int, eval bool) {
		cmds := make([]*redis.Cmd, len(idx))
		var w *redis.Cmd
		_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range idx {
				if eval {
					cmds[j] = script.Eval(ctx, p, []string{keys[i]}, args...)
				} else {
					cmds[j] = script.EvalSha(ctx, p, []string{keys[i]}, args...)
				}
			}
			if wait {
				w = p.Do(ctx, "wait", st.o.ackReplicas, st.o.ackTimeout.Milliseconds())
			}
			return nil
		})
		for j, i := range idx {
			out[i] = cmdResult{cmds[j].Val(), cmds[j].Err()}
		}
		if w != nil {
			if n, err := w.Int(); err != nil {
				acked = -1
			} else {
				acked = min(acked, n)
			}
		}
	}
	out = make([]cmdResult, len(keys))
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	run(all, false)
	var again []int
	for i, r := range out {
		if redis.HasErrorPrefix(r.err, "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		run(again, true)
	}
	return out, acked
}
