package history

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// maxHops is the number of keys a load, a destroy or a revoke reads along forward
// pointers (the store's limit).
const maxHops = 4

// rec is the model's view of one session ID.
type rec struct {
	live bool   // a session
	fwd  string // a forward pointer to this ID (a rotated session's old ID)
	gone Kind   // destroyed (Destroy) or revoked (Revoke, RevokeOne); 0: not gone
	ver  int64
	a, b int64
	by   int // Seq of the operation that wrote this record (not part of the state's identity)
}

func (r rec) same(o rec) bool {
	return r.live == o.live && r.fwd == o.fwd && (r.gone != 0) == (o.gone != 0) && r.ver == o.ver && r.a == o.a && r.b == o.b
}

// state is a partition's sessions by ID. A session a rotation of unknown outcome wrote is
// named "?<seq>" until a load reveals its ID. States are never modified: step copies.
type state map[string]rec

func (s state) with(id string, r rec) state {
	n := maps.Clone(s)
	if n == nil {
		n = state{}
	}
	n[id] = r
	return n
}

// resolve follows forward pointers from id as a load does; it returns the keys read and
// the record of the last one.
func (s state) resolve(id string) (path []string, r rec, ok bool) {
	for range maxHops {
		path = append(path, id)
		r, ok = s[id]
		if !ok || r.gone != 0 {
			return path, r, false
		}
		if r.live {
			return path, r, true
		}
		id = r.fwd
	}
	return path, rec{}, false
}

func placeholder(seq int) string { return "?" + strconv.Itoa(seq) }

func isPlaceholder(id string) bool { return strings.HasPrefix(id, "?") }

// step is the sequential specification: whether an operation with this input could
// return this output in state s, and the state after it. An Unknown output is allowed
// whatever the state; the operation then has its effect (that it had none is checked by
// placing it after every other operation).
func step(s state, in Input, out Output) (bool, state) {
	unknown := out.Status == Unknown
	if out.Status == Failed {
		return false, s
	}
	switch in.Kind {
	case Create:
		if _, taken := s[in.ID]; taken {
			return out.Status == NotFound || unknown, s
		}
		if out.Status == NotFound { // an index race it gave up on: nothing written
			return true, s
		}
		return out.Status == OK || unknown, s.with(in.ID, rec{live: true, ver: 1, a: in.Val, by: in.Seq})

	case Load:
		path, r, live := s.resolve(in.ID)
		if !live {
			return out.Status == NotFound, s
		}
		if out.Status != OK || out.Ver != r.ver || out.A != r.a || out.B != r.b {
			return false, s
		}
		last := path[len(path)-1]
		if out.ID == last {
			return true, s
		}
		if !isPlaceholder(last) {
			return false, s
		}
		if _, taken := s[out.ID]; taken || out.ID == "" {
			return false, s
		}
		// The load reveals the ID a rotation of unknown outcome gave the session.
		n := maps.Clone(s)
		delete(n, last)
		n[out.ID] = r
		for id, x := range n {
			if x.fwd == last {
				x.fwd = out.ID
				n[id] = x
			}
		}
		return true, n

	case Save:
		r, ok := s[in.ID]
		if !ok || !r.live {
			return out.Status == NotFound || unknown, s
		}
		if in.Expect > 0 && r.ver != in.Expect {
			return out.Status == Conflict || unknown, s
		}
		n := r
		n.ver++
		n.by = in.Seq
		if in.Attr == 'b' {
			n.b = in.Val
		} else {
			n.a = in.Val
		}
		if !unknown && (out.Status != OK || out.Ver != n.ver) {
			return false, s
		}
		return true, s.with(in.ID, n)

	case Rotate:
		// A rotation carries the session as Redis holds it when it applies (a save that
		// landed after the caller's load included), one version up. An ID that is no
		// session (rotated away by a rotation that won, destroyed, revoked) is not found.
		r, live := s[in.ID]
		if !live || !r.live {
			return out.Status == NotFound || unknown, s
		}
		if !unknown && (out.Status != OK || out.Ver != r.ver+1 || out.ID == "") {
			return false, s
		}
		newID := out.ID
		if unknown {
			newID = placeholder(in.Seq)
		}
		if _, taken := s[newID]; taken {
			return false, s
		}
		n := maps.Clone(s)
		n[newID] = rec{live: true, ver: r.ver + 1, a: r.a, b: r.b, by: in.Seq}
		n[in.ID] = rec{fwd: newID, by: in.Seq}
		return true, n

	case Revoke, RevokeOne:
		// A revoke ends the session a load of the ID finds (and the pointers on the way
		// lead to nothing after it); where a load finds none, it ends nothing.
		if out.Status != OK && !unknown {
			return false, s
		}
		path, _, live := s.resolve(in.ID)
		if !live {
			return true, s
		}
		n := maps.Clone(s)
		for _, id := range path {
			n[id] = rec{gone: in.Kind, by: in.Seq}
		}
		return true, n

	case Destroy:
		if out.Status != OK && !unknown {
			return false, s
		}
		var n state
		id := in.ID
		for range maxHops {
			r, ok := s[id]
			if !ok || r.gone != 0 {
				break
			}
			if n == nil {
				n = maps.Clone(s)
			}
			n[id] = rec{gone: in.Kind, by: in.Seq}
			if r.live {
				break
			}
			id = r.fwd
		}
		if n == nil {
			return true, s
		}
		return true, n

	case Listed:
		r := s[in.ID]
		return out.Status == OK && out.Listed == r.live, s
	}
	return false, s
}

func equal(a, b state) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !x.same(y) {
			return false
		}
	}
	return true
}

func hash(s state) uint64 {
	var sum uint64
	for k, r := range s {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s|%t|%s|%t|%d|%d|%d", k, r.live, r.fwd, r.gone != 0, r.ver, r.a, r.b)
		sum += h.Sum64()
	}
	return sum
}

func short(id string) string {
	if len(id) > 8 && !isPlaceholder(id) {
		return id[:8]
	}
	return id
}

func describeOp(in Input, out Output) string {
	var b strings.Builder
	switch in.Kind {
	case Save:
		fmt.Fprintf(&b, "save(%s, %c=%d", short(in.ID), in.Attr, in.Val)
		if in.Expect > 0 {
			fmt.Fprintf(&b, ", if v%d", in.Expect)
		}
		b.WriteString(")")
	case Create:
		fmt.Fprintf(&b, "create(%s, a=%d)", short(in.ID), in.Val)
	case Rotate:
		fmt.Fprintf(&b, "rotate(%s v%d a=%d b=%d)", short(in.ID), in.SnapVer, in.SnapA, in.SnapB)
	default:
		fmt.Fprintf(&b, "%s(%s)", in.Kind, short(in.ID))
	}
	b.WriteString(" → ")
	switch {
	case out.Status != OK:
		b.WriteString(out.Status.String())
	case in.Kind == Load:
		fmt.Fprintf(&b, "%s v%d a=%d b=%d", short(out.ID), out.Ver, out.A, out.B)
	case in.Kind == Save:
		fmt.Fprintf(&b, "v%d", out.Ver)
	case in.Kind == Rotate:
		fmt.Fprintf(&b, "%s v%d", short(out.ID), out.Ver)
	case in.Kind == Listed:
		fmt.Fprintf(&b, "%t", out.Listed)
	default:
		b.WriteString("ok")
	}
	return b.String()
}

func describeState(s state) string {
	ids := slices.Sorted(maps.Keys(s))
	var b strings.Builder
	for _, id := range ids {
		r := s[id]
		switch {
		case r.live:
			fmt.Fprintf(&b, "%s: v%d a=%d b=%d\n", short(id), r.ver, r.a, r.b)
		case r.fwd != "":
			fmt.Fprintf(&b, "%s → %s\n", short(id), short(r.fwd))
		default:
			fmt.Fprintf(&b, "%s: %s\n", short(id), goneWord(r.gone))
		}
	}
	return b.String()
}

func goneWord(k Kind) string {
	if k == Destroy {
		return "destroyed"
	}
	return "revoked"
}

// Model returns the porcupine model of one partition. Inputs are [Input], outputs
// [Output].
func Model() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return state{} },
		Step: func(s, in, out any) (bool, any) {
			return step(s.(state), in.(Input), out.(Output))
		},
		Equal:             func(a, b any) bool { return equal(a.(state), b.(state)) },
		Hash:              func(s any) uint64 { return hash(s.(state)) },
		DescribeOperation: func(in, out any) string { return describeOp(in.(Input), out.(Output)) },
		DescribeState:     func(s any) string { return describeState(s.(state)) },
	}
}
