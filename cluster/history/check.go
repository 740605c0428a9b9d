package history

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Violation kinds, as Check names them.
const (
	KindAckedSaveLost   = "acknowledged save lost"
	KindAppliedTwice    = "save applied twice"
	KindRevokedServed   = "revoked session served"
	KindDestroyedServed = "destroyed session served"
	KindForwardLost     = "forward not followed"
	KindRotatedTwice    = "session rotated twice"
	KindGoneWritten     = "gone session written"
	KindListing         = "listing wrong"
	KindConflict        = "spurious conflict"
	KindCheckIgnored    = "version check ignored"
	KindUnexpectedError = "unexpected error"
	KindOther           = "not linearizable"
)

// LostWriteKinds are the kinds an acknowledged write lost in a failover shows as: a save
// (an older version, or no session, or a version-checked save refused as a conflict with
// the version it expected, or applied on the older version), a login's index entry (a live
// session not listed), a revoke or a destroy (the session served, saved or rotated again),
// a rotation (the old ID forwards to nothing, or the session is rotated a second time).
// Without WAIT a failover may lose any of them.
var LostWriteKinds = map[string]bool{
	KindAckedSaveLost: true, KindListing: true, KindRevokedServed: true, KindDestroyedServed: true, KindForwardLost: true,
	KindConflict: true, KindGoneWritten: true, KindCheckIgnored: true, KindRotatedTwice: true,
}

// Violation is one partition whose history is not linearizable, explained in one line.
// Only the first violation of a partition is found: the check of a partition stops there.
type Violation struct {
	Kind      string // one of the Kind… constants
	Partition string // the user
	Line      string // what happened, with times in seconds since the history began
	// UnknownWriter: the write the violation says was lost (or undone) is one whose
	// caller got an error (unknown outcome), not an acknowledgement: it applied on a
	// master, was seen, and a failover lost it. For a violation of kind KindOther (no
	// writer named): a write of the same session with an unknown outcome came before it.
	UnknownWriter bool
}

func (v Violation) String() string { return v.Kind + ": " + v.Line }

// Result is the verdict on a history.
type Result struct {
	// Consistent: every partition was checked and is linearizable.
	Consistent bool
	// Ops is the number of operations checked (loads and listings with an unknown
	// outcome are not counted: they constrain nothing).
	Ops int
	// Unknown is the number of checked operations whose outcome was unknown.
	Unknown int
	// Partitions is the number of partitions (users).
	Partitions int
	// Undecided lists the partitions whose check timed out: neither linearizable nor
	// shown not to be.
	Undecided []string
	// Violations lists the partitions shown not to be linearizable.
	Violations []Violation

	parts map[string]checked
}

type checked struct {
	ops   []porcupine.Operation
	moved map[int]int64 // Op.Moved by Seq, where not 0
	info  porcupine.LinearizationInfo
	res   porcupine.CheckResult
}

// when describes an operation's interval: "called …, returned …", saying by how much
// the recorder moved one end (Op.Moved).
func (c checked) when(o porcupine.Operation) string {
	call, ret := secs(o.Call), secs(o.Return)
	if m := c.moved[o.Input.(Input).Seq]; m != 0 {
		if o.Input.(Input).Kind == Load {
			call = fmt.Sprintf("%s (at %s, moved by the load staleness)", call, secs(o.Call+m))
		} else if o.Return != math.MaxInt64 {
			ret = fmt.Sprintf("%s (at %s, moved by the load staleness)", ret, secs(o.Return+m))
		}
	}
	return "called " + call + ", returned " + ret
}

// Kinds counts the violations by kind.
func (r Result) Kinds() map[string]int {
	m := map[string]int{}
	for _, v := range r.Violations {
		m[v.Kind]++
	}
	return m
}

// Summary is one line: operations, unknown outcomes, violations by kind, undecided.
func (r Result) Summary() string {
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(r.Kinds())) {
		kinds = append(kinds, fmt.Sprintf("%d %s", r.Kinds()[k], k))
	}
	v := "0 violations"
	if len(kinds) > 0 {
		v = fmt.Sprintf("%d violations (%s)", len(r.Violations), strings.Join(kinds, ", "))
	}
	return fmt.Sprintf("%d operations (%d unknown outcome) in %d partitions: %s, %d undecided",
		r.Ops, r.Unknown, r.Partitions, v, len(r.Undecided))
}

// DefaultTimeout bounds the search of one partition.
const DefaultTimeout = 5 * time.Second

// Check checks a history, partition by partition, each search bounded by DefaultTimeout.
func Check(ops []Op) Result { return CheckTimeout(ops, DefaultTimeout) }

// CheckTimeout is Check with the bound of one partition's search.
func CheckTimeout(ops []Op, timeout time.Duration) Result {
	byUser := map[string][]porcupine.Operation{}
	moved := map[string]map[int]int64{}
	var res Result
	for _, o := range ops {
		unknown := o.Out.Status == Unknown
		if unknown && (o.In.Kind == Load || o.In.Kind == Listed) {
			continue
		}
		ret := o.Return
		if unknown {
			ret = math.MaxInt64
			res.Unknown++
		}
		res.Ops++
		if o.Moved != 0 && !unknown {
			if moved[o.In.User] == nil {
				moved[o.In.User] = map[int]int64{}
			}
			moved[o.In.User][o.In.Seq] = o.Moved
		}
		byUser[o.In.User] = append(byUser[o.In.User], porcupine.Operation{
			ClientId: o.Client, Input: o.In, Call: o.Call, Output: o.Out, Return: ret})
	}
	res.Partitions = len(byUser)
	res.parts = make(map[string]checked, len(byUser))
	model := Model()
	users := slices.Sorted(maps.Keys(byUser))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for _, u := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p := byUser[u]
			cr, info := porcupine.CheckOperationsVerbose(model, p, timeout)
			mu.Lock()
			res.parts[u] = checked{ops: p, moved: moved[u], info: info, res: cr}
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, u := range users {
		c := res.parts[u]
		switch c.res {
		case porcupine.Unknown:
			res.Undecided = append(res.Undecided, u)
		case porcupine.Illegal:
			res.Violations = append(res.Violations, explain(u, c))
		}
	}
	res.Consistent = len(res.Undecided) == 0 && len(res.Violations) == 0
	return res
}

func secs(ns int64) string {
	if ns == math.MaxInt64 {
		return "never"
	}
	return fmt.Sprintf("%.3fs", float64(ns)/1e9)
}

// explain finds the operation that could not be linearized after the longest linearizable
// prefix porcupine found, replays the model to that point and names what went wrong.
func explain(user string, c checked) Violation {
	v := Violation{Kind: KindOther, Partition: user}
	var best []int
	for _, part := range c.info.PartialLinearizations() {
		for _, lin := range part {
			if len(lin) > len(best) {
				best = lin
			}
		}
	}
	s := state{}
	done := make(map[int]bool, len(best))
	for _, i := range best {
		in, out := c.ops[i].Input.(Input), c.ops[i].Output.(Output)
		_, s = step(s, in, out)
		done[i] = true
	}
	// The culprit: of the operations left, the one returning first that cannot be the
	// next step.
	var rest []int
	for i := range c.ops {
		if !done[i] {
			rest = append(rest, i)
		}
	}
	slices.SortFunc(rest, func(a, b int) int { return cmp.Compare(c.ops[a].Return, c.ops[b].Return) })
	culprit := -1
	for _, i := range rest {
		if ok, _ := step(s, c.ops[i].Input.(Input), c.ops[i].Output.(Output)); !ok {
			culprit = i
			break
		}
	}
	if culprit < 0 {
		if len(rest) > 0 {
			culprit = rest[0]
		} else {
			v.Line = fmt.Sprintf("user %s: no linearization found", user)
			return v
		}
	}
	op := c.ops[culprit]
	in, out := op.Input.(Input), op.Output.(Output)
	e := explainer{c: c}
	v.Kind, v.Line = e.classify(s, in, out)
	v.UnknownWriter = e.unknownWriter
	if v.Kind == KindOther && !v.UnknownWriter {
		// No writer named: the operation contradicts every state the model reaches. When
		// a write of the same session with an unknown outcome came before it, that write
		// may have applied, been seen, and been lost in a failover.
		for _, o := range c.ops {
			oin, oout := o.Input.(Input), o.Output.(Output)
			if oin.ID == in.ID && oout.Status == Unknown && o.Call < op.Return && oin.Kind != Load && oin.Kind != Listed {
				v.UnknownWriter = true
				break
			}
		}
	}
	v.Line = fmt.Sprintf("%s (user %s: %s, %s)", v.Line, user, describeOp(in, out), c.when(op))
	return v
}

// explainer names what a partition's culprit operation shows, from the partition's
// operations; unknownWriter records whether the write it names had an unknown outcome.
type explainer struct {
	c             checked
	unknownWriter bool
}

// writer describes the operation that wrote r, from the partition's history.
func (e *explainer) writer(r rec) string {
	for _, o := range e.c.ops {
		in := o.Input.(Input)
		if in.Seq == r.by {
			out := o.Output.(Output)
			e.unknownWriter = out.Status == Unknown
			return fmt.Sprintf("%s, %s", describeOp(in, out), e.c.when(o))
		}
	}
	return "?"
}

// classify names what an operation that cannot follow state s shows.
func (e *explainer) classify(s state, in Input, out Output) (kind, line string) {
	if out.Status == Failed {
		return KindUnexpectedError, fmt.Sprintf("%s of session %s failed: %s", in.Kind, short(in.ID), out.Err)
	}
	switch in.Kind {
	case Load:
		path, r, live := s.resolve(in.ID)
		last := path[len(path)-1]
		if !live {
			if out.Status == OK {
				gone := s[last]
				switch gone.gone {
				case Destroy:
					return KindDestroyedServed, fmt.Sprintf("session %s destroyed by %s, then served as v%d", short(last), e.writer(gone), out.Ver)
				case Revoke, RevokeOne:
					return KindRevokedServed, fmt.Sprintf("session %s revoked by %s, then served as v%d", short(last), e.writer(gone), out.Ver)
				}
				return KindOther, fmt.Sprintf("session %s served, but the model has no such session", short(last))
			}
			return KindOther, "load disagrees with the model"
		}
		if out.Status == NotFound {
			if len(path) > 1 {
				return KindForwardLost, fmt.Sprintf("%s forwards to live session %s (v%d, written by %s), but the load found nothing", short(in.ID), short(last), r.ver, e.writer(r))
			}
			return KindAckedSaveLost, fmt.Sprintf("session %s (v%d, written by %s) not found", short(last), r.ver, e.writer(r))
		}
		return e.versionKind(r, out.Ver, out.A, out.B)
	case Save:
		r, ok := s[in.ID]
		if !ok || !r.live {
			if out.Status == OK {
				if r.gone != 0 {
					return KindGoneWritten, fmt.Sprintf("save of %s session %s applied", goneWord(r.gone), short(in.ID))
				}
				if r.fwd != "" {
					return KindGoneWritten, fmt.Sprintf("save of rotated-away session %s applied", short(in.ID))
				}
			}
			return KindOther, "save disagrees with the model"
		}
		switch out.Status {
		case NotFound:
			return KindAckedSaveLost, fmt.Sprintf("session %s (v%d, written by %s): save found nothing", short(in.ID), r.ver, e.writer(r))
		case Conflict:
			if in.Expect > 0 && in.Expect < r.ver {
				return KindOther, "conflict disagrees with the model"
			}
			return KindConflict, fmt.Sprintf("session %s is at v%d (written by %s), the version the save expected", short(in.ID), r.ver, e.writer(r))
		case OK:
			if in.Expect > 0 && in.Expect != r.ver {
				return KindCheckIgnored, fmt.Sprintf("save(%s) expected v%d, the session was at v%d (written by %s): applied as v%d instead of a conflict", short(in.ID), in.Expect, r.ver, e.writer(r), out.Ver)
			}
			if out.Ver > r.ver+1 {
				return KindAppliedTwice, fmt.Sprintf("session %s was at v%d (written by %s): the save made it v%d", short(in.ID), r.ver, e.writer(r), out.Ver)
			}
			if out.Ver <= r.ver {
				return KindAckedSaveLost, fmt.Sprintf("session %s is at v%d (written by %s): the save made it v%d", short(in.ID), r.ver, e.writer(r), out.Ver)
			}
		}
	case Rotate:
		r, ok := s[in.ID]
		if out.Status == OK && (!ok || !r.live) {
			if r.fwd != "" {
				return KindRotatedTwice, fmt.Sprintf("session %s was rotated to %s by %s, and rotated again to %s", short(in.ID), short(r.fwd), e.writer(r), short(out.ID))
			}
			if r.gone != 0 {
				return KindGoneWritten, fmt.Sprintf("rotation of %s session %s (by %s) succeeded", goneWord(r.gone), short(in.ID), e.writer(r))
			}
		}
		if out.Status == NotFound && ok && r.live {
			return KindAckedSaveLost, fmt.Sprintf("session %s (v%d, written by %s): rotation found nothing", short(in.ID), r.ver, e.writer(r))
		}
	case Listed:
		r := s[in.ID]
		if out.Listed && r.gone == Destroy {
			return KindDestroyedServed, fmt.Sprintf("destroyed session %s listed (%s)", short(in.ID), e.writer(r))
		}
		if out.Listed && r.gone != 0 {
			return KindRevokedServed, fmt.Sprintf("%s session %s listed (%s)", goneWord(r.gone), short(in.ID), e.writer(r))
		}
		// (The writer of the model's record is named: a listing that disagrees with a
		// write whose outcome was unknown, seen and then lost in a failover, is that
		// write's loss.)
		if !out.Listed && r.live {
			return KindListing, fmt.Sprintf("live session %s (v%d, %s) not listed", short(in.ID), r.ver, e.writer(r))
		}
		return KindListing, fmt.Sprintf("session %s listed: %t, model: %s (%s)", short(in.ID), out.Listed, strings.TrimSpace(describeState(state{in.ID: r})), e.writer(r))
	}
	return KindOther, "disagrees with the model"
}

func (e *explainer) versionKind(r rec, ver, a, b int64) (string, string) {
	switch {
	case ver < r.ver:
		return KindAckedSaveLost, fmt.Sprintf("model v%d a=%d b=%d after %s; read v%d a=%d b=%d", r.ver, r.a, r.b, e.writer(r), ver, a, b)
	case ver > r.ver:
		return KindAppliedTwice, fmt.Sprintf("model v%d a=%d b=%d after %s; read v%d a=%d b=%d (more versions than saves)", r.ver, r.a, r.b, e.writer(r), ver, a, b)
	}
	return KindOther, fmt.Sprintf("model v%d a=%d b=%d after %s; read v%d a=%d b=%d", r.ver, r.a, r.b, e.writer(r), ver, a, b)
}

// WriteHTML writes porcupine's visualisation of every partition that is not
// linearizable or undecided (at most max of them; 0: all) into dir, one file per
// partition, and returns the files' paths.
func (r Result) WriteHTML(dir string, max int) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	model := Model()
	var paths []string
	users := slices.Sorted(maps.Keys(r.parts))
	for _, u := range users {
		c := r.parts[u]
		if c.res == porcupine.Ok {
			continue
		}
		if max > 0 && len(paths) == max {
			break
		}
		p := filepath.Join(dir, "history-"+sanitize(u)+".html")
		if err := porcupine.VisualizePath(model, c.info, p); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// Dump describes the history of a partition, one operation a line in call order, for a
// report.
func (r Result) Dump(partition string) string {
	c, ok := r.parts[partition]
	if !ok {
		return ""
	}
	ops := slices.Clone(c.ops)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var b strings.Builder
	for _, o := range ops {
		fmt.Fprintf(&b, "%s–%s c%d %s", secs(o.Call), secs(o.Return), o.ClientId, describeOp(o.Input.(Input), o.Output.(Output)))
		if m := c.moved[o.Input.(Input).Seq]; m != 0 {
			fmt.Fprintf(&b, " (moved %s by the load staleness)", time.Duration(m))
		}
		b.WriteString("\n")
	}
	return b.String()
}
