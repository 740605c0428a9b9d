package store

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The operations keep the names errors and logs gave them when they were strings, and
// exactly the writes that may wait for WAIT get the WAIT timeout on top of the attempt
// timeout.
func TestOpKinds(t *testing.T) {
	want := map[opKind]struct {
		name  string
		waits bool
	}{
		opLoad:         {"load session", false},
		opSave:         {"save session", true},
		opRotate:       {"rotate session", true},
		opDestroy:      {"destroy session", true},
		opIndex:        {"index session", true},
		opUnindex:      {"unindex session", false},
		opReadIndex:    {"read session index", false},
		opListSessions: {"list sessions", false},
		opRevoke:       {"revoke sessions", true},
		opCaller:       {"operation", false},
	}
	if len(want) != len(opNames) {
		t.Fatalf("%d op kinds, %d tested", len(opNames), len(want))
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing is sent
	defer rdb.Close()
	plain, err := New(rdb, WithAutoPipeline(false))
	if err != nil {
		t.Fatal(err)
	}
	acked, err := New(rdb, WithAutoPipeline(false), WithWriteAck(1, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		if got := k.String(); got != w.name {
			t.Errorf("opKind %d: name %q, want %q", k, got, w.name)
		}
		if got := k.waitsForAck(); got != w.waits {
			t.Errorf("%s: waitsForAck %v, want %v", k, got, w.waits)
		}
		if d := plain.extraAttemptTime(k); d != 0 {
			t.Errorf("%s without write ack: %s more per attempt", k, d)
		}
		wantExtra := time.Duration(0)
		if w.waits {
			wantExtra = 200 * time.Millisecond
		}
		if d := acked.extraAttemptTime(k); d != wantExtra {
			t.Errorf("%s with write ack: %s more per attempt, want %s", k, d, wantExtra)
		}
	}
	if got := opKind(200).String(); got != "opKind(200)" {
		t.Errorf("unknown kind: %q", got)
	}
	boom := errors.New("boom")
	if got := plain.redisErr(opLoad, "k", boom).Error(); got != "hasession: load session: boom" {
		t.Errorf("redisErr: %q", got)
	}
	if _, err := indexRace(opRotate, errIndexRace, maxIndexRaces); err == nil || err.Error() != "hasession: rotate session: hasession: session not found" {
		t.Errorf("indexRace: %v", err)
	}
}
