package history

import (
	"math"
	"strings"
	"testing"
	"time"
)

const (
	s1 = "11111111-1111-4111-8111-111111111111"
	s2 = "22222222-2222-4222-8222-222222222222"
	s3 = "33333333-3333-4333-8333-333333333333"
)

// op builds a recorded operation on user "u"; ret < 0 means it never returned.
func op(client int, call, ret int64, in Input, out Output) Op {
	in.User = "u"
	if ret < 0 {
		ret = math.MaxInt64
	}
	return Op{Client: client, In: in, Out: out, Call: call, Return: ret}
}

func seq(ops []Op) []Op {
	for i := range ops {
		ops[i].In.Seq = i
	}
	return ops
}

func TestCheckLinearizable(t *testing.T) {
	ops := seq([]Op{
		op(0, 0, 10, Input{Kind: Create, ID: s1, Val: 1}, Output{Status: OK, Ver: 1}),
		op(0, 11, 20, Input{Kind: Save, ID: s1, Attr: 'b', Val: 2}, Output{Status: OK, Ver: 2}),
		// A concurrent load may see the save or not.
		op(1, 12, 19, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 1, A: 1}),
		op(1, 21, 30, Input{Kind: Save, ID: s1, Attr: 'a', Val: 3, Expect: 1}, Output{Status: Conflict}),
		// A save whose outcome is unknown, then loads that show it applied.
		op(2, 31, -1, Input{Kind: Save, ID: s1, Attr: 'a', Val: 4}, Output{Status: Unknown}),
		op(1, 40, 41, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 3, A: 4, B: 2}),
		// A rotation of unknown outcome, revealed by a load of the old ID.
		op(0, 50, -1, Input{Kind: Rotate, ID: s1, SnapVer: 3, SnapA: 4, SnapB: 2}, Output{Status: Unknown}),
		op(1, 60, 61, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s2, Ver: 4, A: 4, B: 2}),
		op(1, 62, 63, Input{Kind: Save, ID: s2, Attr: 'a', Val: 5}, Output{Status: OK, Ver: 5}),
		op(2, 64, 65, Input{Kind: Listed, ID: s2}, Output{Status: OK, Listed: true}),
		op(2, 64, 65, Input{Kind: Listed, ID: s1}, Output{Status: OK, Listed: false}),
		// Destroying the old ID ends the new session too.
		op(0, 70, 71, Input{Kind: Destroy, ID: s1}, Output{Status: OK}),
		op(1, 72, 73, Input{Kind: Load, ID: s2}, Output{Status: NotFound}),
		op(1, 74, 75, Input{Kind: Save, ID: s2, Attr: 'a', Val: 6}, Output{Status: NotFound}),
	})
	res := Check(ops)
	if !res.Consistent || len(res.Violations) != 0 {
		t.Fatalf("a linearizable history: %s %v", res.Summary(), res.Violations)
	}
	if res.Ops != len(ops) || res.Unknown != 2 || res.Partitions != 1 {
		t.Fatalf("counts: %s", res.Summary())
	}
}

func TestCheckViolations(t *testing.T) {
	create := op(0, 0, 10, Input{Kind: Create, ID: s1, Val: 1}, Output{Status: OK, Ver: 1})
	save := op(0, 11, 20, Input{Kind: Save, ID: s1, Attr: 'b', Val: 2}, Output{Status: OK, Ver: 2})
	for _, tc := range []struct {
		name string
		ops  []Op
		kind string
		line string
	}{
		{"lost save", []Op{create, save,
			op(1, 30, 31, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 1, A: 1}),
		}, KindAckedSaveLost, "model v2 a=1 b=2"},
		{"lost session", []Op{create, save,
			op(1, 30, 31, Input{Kind: Load, ID: s1}, Output{Status: NotFound}),
		}, KindAckedSaveLost, "not found"},
		{"applied twice", []Op{create,
			op(0, 11, 20, Input{Kind: Save, ID: s1, Attr: 'b', Val: 2}, Output{Status: OK, Ver: 3}),
		}, KindAppliedTwice, "made it v3"},
		{"revoked served", []Op{create,
			op(1, 11, 12, Input{Kind: Revoke, ID: s1}, Output{Status: OK}),
			op(1, 13, 14, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 1, A: 1}),
		}, KindRevokedServed, "revoked by revoke"},
		{"rotated twice", []Op{create,
			op(1, 11, 20, Input{Kind: Rotate, ID: s1, SnapVer: 1, SnapA: 1}, Output{Status: OK, ID: s2, Ver: 2}),
			op(2, 12, 21, Input{Kind: Rotate, ID: s1, SnapVer: 1, SnapA: 1}, Output{Status: OK, ID: s3, Ver: 2}),
		}, KindRotatedTwice, "rotated again"},
		{"forward lost", []Op{create,
			op(1, 11, 20, Input{Kind: Rotate, ID: s1, SnapVer: 1, SnapA: 1}, Output{Status: OK, ID: s2, Ver: 2}),
			op(1, 21, 22, Input{Kind: Load, ID: s1}, Output{Status: NotFound}),
		}, KindForwardLost, "forwards to live session"},
		{"revoked listed", []Op{create,
			op(1, 11, 12, Input{Kind: RevokeOne, ID: s1}, Output{Status: OK}),
			op(2, 13, 14, Input{Kind: Listed, ID: s1}, Output{Status: OK, Listed: true}),
		}, KindRevokedServed, "revoked session"},
		{"unlisted", []Op{create,
			op(2, 13, 14, Input{Kind: Listed, ID: s1}, Output{Status: OK, Listed: false}),
		}, KindListing, "not listed"},
		{"corrupt", []Op{create,
			op(1, 11, 12, Input{Kind: Load, ID: s1}, Output{Status: Failed, Err: "corrupt"}),
		}, KindUnexpectedError, "corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := seq(append([]Op(nil), tc.ops...))
			res := Check(ops)
			if res.Consistent || len(res.Violations) != 1 {
				t.Fatalf("want one violation: %s", res.Summary())
			}
			v := res.Violations[0]
			if v.Kind != tc.kind || !strings.Contains(v.Line, tc.line) || v.Partition != "u" {
				t.Fatalf("violation %q, want kind %q with %q", v, tc.kind, tc.line)
			}
			dir := t.TempDir()
			paths, err := res.WriteHTML(dir, 0)
			if err != nil || len(paths) != 1 {
				t.Fatalf("visualisation: %v %v", paths, err)
			}
		})
	}
}

// An unknown save may not have applied: a later load that does not see it is fine, and
// so is one that does; but once seen, it cannot vanish.
func TestCheckUnknownSave(t *testing.T) {
	base := []Op{
		op(0, 0, 10, Input{Kind: Create, ID: s1, Val: 1}, Output{Status: OK, Ver: 1}),
		op(0, 11, -1, Input{Kind: Save, ID: s1, Attr: 'a', Val: 2}, Output{Status: Unknown}),
	}
	notSeen := op(1, 20, 21, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 1, A: 1})
	seen := op(1, 22, 23, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 2, A: 2})
	if r := Check(seq(append(append([]Op(nil), base...), notSeen, seen))); !r.Consistent {
		t.Fatalf("not yet applied, then applied: %s", r.Summary())
	}
	seenFirst := op(1, 18, 19, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 2, A: 2})
	if r := Check(seq(append(append([]Op(nil), base...), seenFirst, notSeen))); r.Consistent {
		t.Fatalf("applied, then gone: %s", r.Summary())
	}
}

// A write whose caller got an error (unknown outcome) that other callers saw, and that a
// failover then lost, is flagged UnknownWriter; the same with an acknowledged write is not.
func TestCheckUnknownWriterSeenThenLost(t *testing.T) {
	for _, unknown := range []bool{true, false} {
		save := op(1, 11, -1, Input{Kind: Save, ID: s1, Attr: 'b', Val: 2}, Output{Status: Unknown})
		if !unknown {
			save = op(1, 11, 15, Input{Kind: Save, ID: s1, Attr: 'b', Val: 2}, Output{Status: OK, Ver: 2})
		}
		ops := seq([]Op{
			op(0, 0, 10, Input{Kind: Create, ID: s1, Val: 1}, Output{Status: OK, Ver: 1}),
			save,
			op(2, 20, 21, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 2, A: 1, B: 2}),
			op(2, 22, 30, Input{Kind: Save, ID: s1, Attr: 'b', Val: 3, Expect: 2}, Output{Status: Conflict}),
			op(0, 40, 41, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s1, Ver: 1, A: 1}),
		})
		res := Check(ops)
		if len(res.Violations) != 1 {
			t.Fatalf("unknown=%t: %s %v, want one violation", unknown, res.Summary(), res.Violations)
		}
		if v := res.Violations[0]; v.UnknownWriter != unknown {
			t.Errorf("unknown=%t: violation %s: UnknownWriter %t", unknown, v, v.UnknownWriter)
		}
	}
}

// A rotation whose caller got an error (unknown outcome), seen by a load that followed its
// pointer, then lost in a failover (the old ID listed again): the listing that disagrees
// is flagged UnknownWriter, as the loss of that write; with the rotation acknowledged it
// is not. (Seen in a SENTINEL FAILOVER history with WAIT 2: the explanation of a listing
// did not name the write behind the model's record.)
func TestCheckUnknownRotationSeenThenLostInAListing(t *testing.T) {
	for _, unknown := range []bool{true, false} {
		rot := op(1, 11, -1, Input{Kind: Rotate, ID: s1, SnapVer: 1, SnapA: 1}, Output{Status: Unknown})
		if !unknown {
			rot = op(1, 11, 15, Input{Kind: Rotate, ID: s1, SnapVer: 1, SnapA: 1}, Output{Status: OK, ID: s2, Ver: 2})
		}
		ops := seq([]Op{
			op(0, 0, 10, Input{Kind: Create, ID: s1, Val: 1}, Output{Status: OK, Ver: 1}),
			rot,
			op(2, 20, 21, Input{Kind: Load, ID: s1}, Output{Status: OK, ID: s2, Ver: 2, A: 1}),
			op(2, 30, 31, Input{Kind: Listed, ID: s1}, Output{Status: OK, Listed: true}),
		})
		res := Check(ops)
		if len(res.Violations) != 1 {
			t.Fatalf("unknown=%t: %s %v, want one violation", unknown, res.Summary(), res.Violations)
		}
		v := res.Violations[0]
		if v.Kind != KindListing || v.UnknownWriter != unknown {
			t.Errorf("unknown=%t: violation %s: kind %s, UnknownWriter %t", unknown, v, v.Kind, v.UnknownWriter)
		}
	}
}

// A drill's history (user u12): a session rotated four times (5 keys, one more than a
// load follows), a logout of the oldest ID (it ends the first four keys and leaves the
// session past them alive: loads of it still find it), then a revoke of the second ID.
// That ID leads nowhere now (a load of it finds nothing), so the revoke ends nothing: a
// load of the session afterwards must find it. The store once ended it (the logout's
// last tombstone kept its rotation mark, which the revoke followed), which the checker
// reports as the session lost.
func TestCheckRevokeOfALoggedOutIDEndsNothing(t *testing.T) {
	ids := []string{s1, s2, s3,
		"44444444-4444-4444-8444-444444444444", "55555555-5555-4555-8555-555555555555"}
	var ops []Op
	at := int64(0)
	next := func() (int64, int64) { at += 10; return at, at + 5 }
	c, r := next()
	ops = append(ops, op(0, c, r, Input{Kind: Create, ID: ids[0], Val: 1}, Output{Status: OK, Ver: 1}))
	for i := range 4 {
		c, r := next()
		ops = append(ops, op(0, c, r, Input{Kind: Rotate, ID: ids[i], SnapVer: int64(i + 1), SnapA: 1},
			Output{Status: OK, ID: ids[i+1], Ver: int64(i + 2)}))
	}
	last := ids[4]
	live := Output{Status: OK, ID: last, Ver: 5, A: 1}
	for _, o := range []struct {
		kind Kind
		id   string
		out  Output
	}{
		{Load, ids[0], Output{Status: NotFound}}, // 5 keys: past what a load follows
		{Load, ids[1], live},
		{Destroy, ids[0], Output{Status: OK}},
		{Load, ids[1], Output{Status: NotFound}},
		{Load, last, live},
		{Revoke, ids[1], Output{Status: OK}},
	} {
		c, r := next()
		ops = append(ops, op(1, c, r, Input{Kind: o.kind, ID: o.id}, o.out))
	}
	c, r = next()
	after := op(2, c, r, Input{Kind: Load, ID: last}, live)
	if res := Check(seq(append(append([]Op(nil), ops...), after))); !res.Consistent {
		t.Fatalf("the session outlives the revoke of an ID that leads nowhere: %s %v", res.Summary(), res.Violations)
	}
	after.Out = Output{Status: NotFound}
	res := Check(seq(append(append([]Op(nil), ops...), after)))
	if len(res.Violations) != 1 {
		t.Fatalf("the revoke of an ID that leads nowhere ended the session: %s, want one violation", res.Summary())
	}
	t.Logf("reported as: %s", res.Violations[0])
}

// With the near-cache a Load may miss writes made up to the lease before it, and a
// revocation waits the lease before it returns. A recorder with LoadStaleness lets a Load
// return an older version within the bound, not beyond it, and never a session revoked
// or destroyed before the Load was called.
func TestCheckLoadStaleness(t *testing.T) {
	const ms = int64(time.Millisecond)
	stale := 56 * time.Millisecond // the default lease (50 ms) + a tenth + 1 ms
	type call struct {
		client    int
		call, ret int64 // ms; ret < 0: never returned
		in        Input
		out       Output
	}
	record := func(stale time.Duration, calls []call) []Op {
		r := NewRecorder()
		r.SetLoadStaleness(stale)
		for _, c := range calls {
			c.in.User = "u"
			h := r.InvokeAt(c.client, c.in, c.call*ms)
			if c.ret >= 0 {
				r.ReturnAt(h, c.out, c.ret*ms)
			}
		}
		return r.Ops()
	}
	const at = 1000 // ms: the history's operations start here (a Load is not moved before 0)
	create := call{0, at, at + 2, Input{Kind: Create, ID: s1, Val: 1}, Output{Status: OK, Ver: 1}}
	save := call{0, at + 3, at + 5, Input{Kind: Save, ID: s1, Attr: 'b', Val: 2}, Output{Status: OK, Ver: 2}}
	old := Output{Status: OK, ID: s1, Ver: 1, A: 1}
	loadOld := func(client int, at int64) call {
		return call{client, at, at + 1, Input{Kind: Load, ID: s1}, old}
	}
	for _, tc := range []struct {
		name  string
		calls []call
		kind  string // "": consistent
	}{
		// The save returned at 1005 ms; a load called 50 ms later (within 56 ms) misses it.
		{"stale within the bound", []call{create, save, loadOld(1, at+55)}, ""},
		// Called 60 ms after the save returned: beyond the bound.
		{"stale beyond the bound", []call{create, save, loadOld(1, at+65)}, KindAckedSaveLost},
		// A revoke's write, then its wait of the lease: a load concurrent with it may
		// still serve the session.
		{"load during a revoke", []call{create,
			{1, at + 10, at + 70, Input{Kind: Revoke, ID: s1}, Output{Status: OK}},
			loadOld(2, at+40)}, ""},
		// A load called after the revoke returned does not, even 1 ms after.
		{"load after a revoke returned", []call{create,
			{1, at + 10, at + 70, Input{Kind: Revoke, ID: s1}, Output{Status: OK}},
			loadOld(2, at+71)}, KindRevokedServed},
		{"load after a destroy returned", []call{create,
			{1, at + 10, at + 70, Input{Kind: Destroy, ID: s1}, Output{Status: OK}},
			loadOld(2, at+71)}, KindDestroyedServed},
		{"load after a revoke-all returned", []call{create,
			{1, at + 10, at + 70, Input{Kind: RevokeOne, ID: s1}, Output{Status: OK}},
			loadOld(2, at+71)}, KindRevokedServed},
		// A revoke that failed (unknown outcome) may apply later: nothing is moved.
		{"load after a failed revoke", []call{create,
			{1, at + 10, at + 70, Input{Kind: Revoke, ID: s1}, Output{Status: Unknown, Err: "timeout"}},
			loadOld(2, at+71)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(record(stale, tc.calls))
			if tc.kind == "" {
				if !res.Consistent {
					t.Fatalf("want consistent: %s %v", res.Summary(), res.Violations)
				}
				return
			}
			if len(res.Violations) != 1 || res.Violations[0].Kind != tc.kind {
				t.Fatalf("want one violation of kind %q: %s %v", tc.kind, res.Summary(), res.Violations)
			}
			t.Logf("reported as: %s", res.Violations[0])
		})
	}
	// Without staleness the stale load within the bound is a violation.
	res := Check(record(0, []call{create, save, loadOld(1, at+55)}))
	if len(res.Violations) != 1 || res.Violations[0].Kind != KindAckedSaveLost {
		t.Fatalf("no staleness allowed: %s %v", res.Summary(), res.Violations)
	}
	// A load is not moved before the recorder's start; a revocation not before its call.
	ops := record(stale, []call{
		{0, 10, 12, Input{Kind: Load, ID: s1}, Output{Status: NotFound}},
		{0, 13, 20, Input{Kind: Destroy, ID: s1}, Output{Status: OK}},
	})
	if ops[0].Call != 0 || ops[0].Return != 12*ms || ops[1].Call != 13*ms || ops[1].Return != 13*ms {
		t.Fatalf("clamped times: %+v", ops)
	}
}
