package store

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu     sync.Mutex
	starts []Op
	ends   []OpEvent
	events []Notice
}

type obsKey struct{}

func (r *recorder) OpStart(ctx context.Context, op Op) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, op)
	return context.WithValue(ctx, obsKey{}, op)
}

func (r *recorder) OpEnd(ctx context.Context, e OpEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Value(obsKey{}) != e.Op {
		panic("OpEnd without OpStart's context")
	}
	r.ends = append(r.ends, e)
}

func (r *recorder) Notify(_ context.Context, e Notice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Every operation of the retry loop has an Op of its own, named as metrics give it.
func TestObserverOps(t *testing.T) {
	want := map[opKind]string{
		opCaller: "other", opLoad: "load", opSave: "save", opRotate: "rotate", opDestroy: "destroy",
		opIndex: "index", opUnindex: "unindex", opReadIndex: "read_index", opListSessions: "list_sessions", opRevoke: "revoke",
	}
	if len(want) != len(opNames) {
		t.Fatalf("%d op kinds, %d tested", len(opNames), len(want))
	}
	for k, name := range want {
		if got := k.obsOp().String(); got != name {
			t.Errorf("%s: Op %q, want %q", k, got, name)
		}
	}
	for oc, name := range map[Outcome]string{OutcomeOK: "ok", OutcomeHit: "hit", OutcomeNotFound: "not_found", OutcomeConflict: "conflict", OutcomeError: "error"} {
		if oc.String() != name {
			t.Errorf("outcome %d: %q", oc, oc.String())
		}
	}
	for _, c := range []struct {
		op   Op
		err  error
		want Outcome
	}{
		{OpLoad, nil, OutcomeHit}, {OpSave, nil, OutcomeOK}, {OpLoad, ErrNotFound, OutcomeNotFound},
		{OpSave, ErrConflict, OutcomeConflict}, {OpSave, io.EOF, OutcomeError},
	} {
		if got := outcomeOf(c.op, c.err); got != c.want {
			t.Errorf("outcomeOf(%s, %v) = %s, want %s", c.op, c.err, got, c.want)
		}
	}
}

// The observer sees an operation's start and end, with the context it gave the
// attempts, its retries and its recovery; without Redis (a refused connection fails
// every attempt, Retry's function fails once).
func TestObserverSeesRetriesAndRecovery(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	rec := &recorder{}
	st, err := New(rdb, WithAutoPipeline(false), WithObserver(rec),
		WithRetryPolicy(RetryPolicy{MaxRetries: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Load(ctx, "6ba7b810-9dad-41d1-80b4-00c04fd430c8"); err == nil {
		t.Fatal("a load from a refused connection succeeded")
	}
	calls := 0
	err = st.Retry(ctx, "adapter op", func(ctx context.Context) error {
		if ctx.Value(obsKey{}) != OpOther {
			t.Error("the attempt does not run with OpStart's context")
		}
		calls++
		if calls == 1 {
			return io.EOF
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.starts) != 2 || rec.starts[0] != OpLoad || rec.starts[1] != OpOther {
		t.Fatalf("starts %v", rec.starts)
	}
	load, other := rec.ends[0], rec.ends[1]
	if load.Op != OpLoad || load.Outcome != OutcomeError || load.Attempts != 3 || load.Retries() != 2 || load.Err == nil ||
		load.Node != "127.0.0.1:1" || load.Duration <= 0 {
		t.Errorf("load: %+v", load)
	}
	if other.Op != OpOther || other.Name != "adapter op" || other.Outcome != OutcomeOK || other.Attempts != 2 || other.Err != nil {
		t.Errorf("Retry: %+v", other)
	}
	var kinds []NoticeKind
	for _, e := range rec.events {
		kinds = append(kinds, e.Kind)
	}
	want := []NoticeKind{NoticeRetry, NoticeRetry, NoticeRetry, NoticeRecovered}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
	if e := rec.events[0]; e.Op != OpLoad || e.Attempt != 1 || e.Err == nil {
		t.Errorf("first retry: %+v", e)
	}
	if e := rec.events[3]; e.Op != OpOther || e.Attempt != 2 {
		t.Errorf("recovery: %+v", e)
	}
	if s := st.Stats(); s.Retries != 3 || s.Recovered != 1 {
		t.Errorf("stats %+v: the events and the counters disagree", s)
	}
}
