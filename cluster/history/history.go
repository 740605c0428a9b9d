// Package history records what callers of the session store saw — every operation with
// its invoke and return time, its inputs and its output, or "unknown" when it ended in an
// error or a timeout — and checks the history with porcupine against a model of the
// store's documented consistency (store's package documentation, "Consistency").
//
// A history is partitioned per user: each user owns a few sessions, and no operation
// reads or writes two users' sessions. Within a partition the model is a small map from
// session ID to absent, live{version, attributes a and b}, forwarded-to (a rotated
// session's old ID) or gone (destroyed or revoked). An operation whose outcome is unknown
// may or may not have taken effect: it is checked as one that never returned (porcupine
// may place it anywhere after its invocation, or after everything else). Loads and
// listings with an unknown outcome change nothing and are left out.
//
// Sessions (a listing of the user's sessions) and RevokeAll are not atomic across the
// user's sessions: they read and write one session after the other. They are recorded
// as one operation per session the caller knew, with the interval of the call: "listed"
// or not, and a revoke of that one session. A session whose creation was still running
// when RevokeAll began may survive it or not.
//
// # Bounded staleness (the near-cache)
//
// With [store.WithNearCache] a Load is served from the app server's memory and may be
// stale: a write another store instance made up to the cache's lease before the Load
// may be missing from it. A revocation (Destroy, Revoke, RevokeAll) is strict instead:
// it returns only after its write and then the lease and a margin, so no instance serves
// the session it ended once it returned. [Config.LoadStaleness] (the recorder's
// [Recorder.SetLoadStaleness]) encodes that guarantee, and should be set to what a
// revocation waits (the lease + a tenth + 1 ms, see [store.NearCache]):
//   - a Load is recorded as invoked LoadStaleness before it was: porcupine may place it
//     at any point from then on, so a read that misses writes made within LoadStaleness
//     before the call passes, and one that misses an older write does not;
//   - a revocation that returned OK is recorded as returning LoadStaleness before it
//     did (not before its call): its writes were done by then, as the store waited that
//     long after them. A Load invoked after the revocation returned is thus, even moved
//     earlier, after the revocation: a revoked or destroyed session it returns is a
//     violation. (Moving Loads alone would let a Load up to LoadStaleness after the
//     revocation returned be placed before it.)
//
// Zero (no cache) records every call as it happened.
//
// [Run] drives such a workload through several store instances; [Check] checks it and
// explains each violation in one line; [Result.WriteHTML] writes porcupine's
// visualisation of the partitions that failed.
package history

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Kind is the kind of an operation.
type Kind uint8

// Operation kinds.
const (
	// Create saves a new session of the user with attribute a = Val.
	Create Kind = iota + 1
	// Load loads ID (following forward pointers).
	Load
	// Save sets attribute Attr of ID to Val (a delta save); Expect > 0 makes it
	// version-checked.
	Save
	// Rotate gives ID's session a new ID; the caller's copy had version SnapVer and
	// attributes SnapA, SnapB, which the new session gets.
	Rotate
	// Destroy destroys ID (and the session a forward pointer at ID leads to).
	Destroy
	// Revoke revokes ID of the user (and what its forward pointer leads to).
	Revoke
	// RevokeOne is RevokeAll's part for one session the caller knew.
	RevokeOne
	// Listed is Sessions' part for one session the caller knew: listed or not.
	Listed
)

var kindNames = [...]string{Create: "create", Load: "load", Save: "save", Rotate: "rotate",
	Destroy: "destroy", Revoke: "revoke", RevokeOne: "revoke-all", Listed: "listed"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Input is what an operation was asked to do.
type Input struct {
	Kind   Kind
	User   string // the partition
	ID     string // the session ID the operation names
	Attr   byte   // Save: 'a' or 'b'
	Val    int64  // Save, Create: the value written (unique in a history)
	Expect int64  // Save: the version the caller loaded, when version-checked (else 0)
	// Rotate: the caller's copy of the session.
	SnapVer, SnapA, SnapB int64
	// Seq numbers the operation in its history (set by the Recorder).
	Seq int
}

// Status is how an operation ended.
type Status uint8

// Statuses.
const (
	// Unknown: an error or a timeout; the operation may or may not have taken effect.
	Unknown Status = iota
	// OK: it returned nil.
	OK
	// NotFound: ErrNotFound.
	NotFound
	// Conflict: ErrConflict.
	Conflict
	// Failed: an error the model never allows (a corrupt session, a codec mismatch).
	Failed
)

var statusNames = [...]string{Unknown: "unknown", OK: "ok", NotFound: "notfound", Conflict: "conflict", Failed: "failed"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// Output is what an operation returned.
type Output struct {
	Status Status
	ID     string // Load: the ID the session came back under; Rotate: the new ID
	Ver    int64  // Load, Save, Rotate: the session's version
	A, B   int64  // Load: the attributes (0: absent)
	Listed bool   // Listed
	Err    string // the error, when not OK
}

// Op is one recorded operation. Call and Return are nanoseconds on the recorder's
// monotonic clock (a Load's Call and a revocation's Return moved by the recorder's load
// staleness, if any); Return is math.MaxInt64 while the operation runs.
type Op struct {
	Client       int
	In           Input
	Out          Output
	Call, Return int64
	// Moved is how much earlier than it happened the recorder recorded the Load's Call
	// or the revocation's Return (its load staleness; 0 without).
	Moved int64
}

// Pending reports whether the operation has not returned yet.
func (o Op) Pending() bool { return o.Return == math.MaxInt64 }

// Recorder collects a history; it is safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
	stale int64 // ns: SetLoadStaleness
}

// SetLoadStaleness makes the recorder record every Load as invoked d earlier (not before
// the recorder's start), and every revocation (Destroy, Revoke, RevokeOne) that returns
// OK as returning d earlier (not before its call): the encoding of the near-cache's
// bounded staleness and strict revocations (package documentation, "Bounded
// staleness"). Set it before the first operation is recorded.
func (r *Recorder) SetLoadStaleness(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stale = max(int64(d), 0)
}

// revocation reports whether an operation of kind k ends sessions (and, with the
// near-cache, waits the lease before it returns).
func revocation(k Kind) bool { return k == Destroy || k == Revoke || k == RevokeOne }

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now returns the recorder's monotonic clock: nanoseconds since NewRecorder.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// At converts a recorder timestamp to a time.
func (r *Recorder) At(ns int64) time.Time { return r.start.Add(time.Duration(ns)) }

// Invoke records the start of an operation and returns its handle for Return.
func (r *Recorder) Invoke(client int, in Input) int {
	return r.InvokeAt(client, in, r.Now())
}

// InvokeAt is Invoke with a given call time (for the parts of one call).
func (r *Recorder) InvokeAt(client int, in Input, call int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	in.Seq = len(r.ops)
	var moved int64
	if in.Kind == Load {
		moved = min(r.stale, max(call, 0))
	}
	r.ops = append(r.ops, Op{Client: client, In: in, Call: call - moved, Return: math.MaxInt64, Moved: moved})
	return in.Seq
}

// Return records the end of the operation h, with its output.
func (r *Recorder) Return(h int, out Output) { r.ReturnAt(h, out, r.Now()) }

// ReturnAt is Return with a given return time.
func (r *Recorder) ReturnAt(h int, out Output, ret int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if out.Status == OK && revocation(r.ops[h].In.Kind) {
		moved := min(r.stale, max(ret-r.ops[h].Call, 0))
		ret -= moved
		r.ops[h].Moved = moved
	}
	r.ops[h].Out = out
	r.ops[h].Return = ret
}

// SetID replaces the session ID of operation h's input.
func (r *Recorder) SetID(h int, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops[h].In.ID = id
}

// Len returns the number of operations recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Ops returns a copy of the history. Operations still running have Return
// math.MaxInt64 and an Unknown output.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}
