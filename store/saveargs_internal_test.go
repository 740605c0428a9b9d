package store

import (
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"
)

// saveArgs sends what Save and Rotate sent when they built save.lua's arguments by hand:
// the same values, of the same types, in the same order.
func TestSaveArgsAsBuiltByHand(t *testing.T) {
	st, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})) // nothing is sent
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{st: st, attrs: []string{"a", "1", "b", "2"}, version: 7, created: 1000, deadline: 9000}
	s.changes = map[string]change{"b": {del: true}} // one change: map order does not matter
	s.user, s.userSet = "alice", true

	// An update (with the version check) and a new session, as Save built them.
	var until any = int64(123)
	a := saveArgs{saveID: "id", expect: "7", mode: saveUpdate, idle: st.idleArg, second: s.deadline, codec: st.codecArg,
		user: s.userArg(), created: s.created, oldVersion: 0, until: until}
	mode, expect, second, created := "u", "7", any(s.deadline), any(s.created)
	want := append([]any{"id", expect, mode, st.idleArg, second, st.codecArg, s.userArg(), created, 0, until}, 1, ".b")
	if got := a.changes(s); !reflect.DeepEqual(got, want) {
		t.Errorf("update: %#v, want %#v", got, want)
	}
	a.mode, a.second, a.created, a.expect, a.until = saveNew, st.lifeArg, 0, "", ""
	want = append([]any{"id", "", "n", st.idleArg, st.lifeArg, st.codecArg, s.userArg(), 0, 0, ""}, 1, ".b")
	if got := a.changes(s); !reflect.DeepEqual(got, want) {
		t.Errorf("new: %#v, want %#v", got, want)
	}

	// A rotation's copy, as Rotate built it.
	c := saveArgs{saveID: "id", expect: "", mode: saveCopy, idle: st.idleArg, second: s.deadline, codec: st.codecArg,
		user: "+alice", created: s.created, oldVersion: s.version, until: until}
	args := []any{"id", "", "c", st.idleArg, s.deadline, st.codecArg, "", s.created, s.version, until}
	args[6] = "+" + "alice"
	want = append(args, 0, ".a", "1")
	if got := c.copyOf(s); !reflect.DeepEqual(got, want) {
		t.Errorf("copy: %#v, want %#v", got, want)
	}
}
