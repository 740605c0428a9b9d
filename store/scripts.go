package store

import (
	"bytes"
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"

	"github.com/redis/go-redis/v9"
)

// The store's Lua scripts, one embedded file each; each file documents its KEYS and ARGV.
// Every call of a script goes through this file's runners (runScript for one key,
// pipeScript for many, evalAcked for one key with WAIT), which are the only places that
// send EVALSHA and handle NOSCRIPT.
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
	//go:embed lua/index_remove.lua
	indexRemoveLua string
	//go:embed lua/member.lua
	memberLua string
	//go:embed lua/pending.lua
	pendingLua string

	touchScript       = newScript(touchLua)
	saveScript        = newScript(saveLua, historySuffix)
	saveScriptAlone   = newScript(saveLua) // without the save history (see runSave)
	forwardScript     = newScript(forwardLua)
	destroyScript     = newScript(destroyLua)
	indexAddScript    = newScript(indexAddLua, loginsSuffix)
	indexReadScript   = newScript(indexReadLua, loginsSuffix)
	indexRemoveScript = newScript(indexRemoveLua, loginsSuffix)
	memberScript      = newScript(memberLua)
	pendingScript     = newScript(pendingLua)
)

// script is one Lua script. Its source and SHA are boxed once: a call's arguments are
// built in one allocation (see args), where go-redis's Script.Run copies them into a new
// slice and boxes the SHA and a one-key slice on every call.
//
// A call names one key, KEYS[1]; a script of more keys names the others by suffixes
// appended to it (KEYS[2] is KEYS[1] followed by the first suffix, and so on), which
// keep them in KEYS[1]'s hash slot.
type script struct {
	sha, src any // string, string
	hash     string
	suffixes []string
}

func newScript(src string, suffixes ...string) *script {
	h := sha1.Sum([]byte(src))
	hash := hex.EncodeToString(h[:])
	return &script{sha: hash, src: src, hash: hash, suffixes: suffixes}
}

// Hash returns the script's SHA1, as SCRIPT LOAD returns it.
func (s *script) Hash() string { return s.hash }

// args returns the arguments of a call on key: EVALSHA, or EVAL with the source.
func (s *script) args(eval bool, key string, argv []any) []any {
	a := make([]any, 4, 4+len(s.suffixes)+len(argv))
	if eval {
		a[0], a[1] = "eval", s.src
	} else {
		a[0], a[1] = "evalsha", s.sha
	}
	a[2], a[3] = 1+len(s.suffixes), key
	for _, suf := range s.suffixes {
		a = append(a, key+suf)
	}
	return append(a, argv...)
}

// noScript reports whether cmd was answered NOSCRIPT: the node does not hold the script
// (a new, restarted or flushed node, or a replica just promoted). A raw command carries
// the error reply as its value.
func noScript(cmd redis.Cmder) bool {
	if raw, ok := cmd.(*redis.RawCmd); ok && cmd.Err() == nil {
		return bytes.HasPrefix(raw.Val(), []byte("-NOSCRIPT"))
	}
	return redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT")
}

// How runScript sends a call.
const (
	alone   = false // through the client (its routing, redirections and retries)
	batched = true  // through the auto-pipelining batcher (the hot paths; see st.process)
)

// runScript runs s on key as one command of the type newCmd makes (a raw command on the
// hot paths, whose reply is parsed by the caller, or a typed one), and returns that
// command and its error. EVALSHA first; a node that answers NOSCRIPT gets the script
// with EVAL. With batch, the call goes through the batcher.
//
// When the context ends while the command is auto-pipelined it may still be in flight:
// the command is returned with the context's error and must be left alone.
func runScript[C redis.Cmder](st *Store, ctx context.Context, batch bool, s *script, key string, newCmd func(context.Context, ...any) C, argv ...any) (C, error) {
	send := func(eval bool) (cmd C, inFlight bool, err error) {
		cmd = newCmd(ctx, s.args(eval, key, argv)...)
		cmd.SetFirstKeyPos(3)
		if batch {
			err = st.process(ctx, key, cmd)
		} else {
			err = st.rdb.Process(ctx, cmd)
		}
		if err != nil && ctx.Err() != nil {
			return cmd, true, err // not to be read: the batcher may still write it
		}
		return cmd, false, cmd.Err()
	}
	cmd, inFlight, err := send(false)
	if !inFlight && noScript(cmd) {
		notRun(argv)
		cmd, _, err = send(true)
	}
	if st.near != nil {
		st.nearDrop(key)
	}
	return cmd, err
}

// pipeScript runs s on each key in one pipeline of c. EVALSHA in a pipeline has no EVAL
// fallback: the keys whose node answered NOSCRIPT are sent again with EVAL. With wait,
// every pipeline ends with WAIT — on the connection that sent the writes, which is the
// one WAIT counts — and acked is the lowest count WAIT returned, or -1 with WAIT's error
// in waitErr.
func (st *Store) pipeScript(ctx context.Context, c redis.Cmdable, s *script, keys []string, argv []any, wait bool) (out []cmdResult, acked int, waitErr error) {
	acked = st.o.ackReplicas
	run := func(idx []int, eval bool) {
		cmds := make([]*redis.Cmd, len(idx))
		var w *redis.Cmd
		_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range idx {
				cmds[j] = redis.NewCmd(ctx, s.args(eval, keys[i], argv)...)
				cmds[j].SetFirstKeyPos(3)
				_ = p.Process(ctx, cmds[j])
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
				acked, waitErr = -1, err
			} else if acked >= 0 {
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
	if len(again) > 0 && ctx.Err() == nil {
		for range again {
			notRun(argv)
		}
		run(again, true)
	}
	if st.near != nil {
		st.nearDrop(keys...)
	}
	return out, acked, waitErr
}

// evalAcked runs s on key's master followed by WAIT in one pipeline (see pipeScript), so
// WAIT counts the replicas that have this connection's writes, and returns the script's
// reply; with an *AckError when too few replicas confirmed.
func (st *Store) evalAcked(ctx context.Context, s *script, key string, argv ...any) (any, error) {
	node, err := st.masterFor(ctx, key)
	if err != nil {
		return nil, err
	}
	out, acked, werr := st.pipeScript(ctx, node, s, []string{key}, argv, true)
	if err := out[0].err; err != nil {
		return nil, err
	}
	if werr != nil {
		return out[0].val, werr
	}
	if acked < st.o.ackReplicas {
		return out[0].val, &AckError{Acked: acked, Want: st.o.ackReplicas}
	}
	return out[0].val, nil
}
