package history

import (
	"math"
	"strings"
	"testing"
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
