package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// saveArgs sends what Save and Rotate sent when they built save.lua's arguments by hand:
// the same values, of the same types, in the same order (and ARGV[14], the retry flag,
// empty: a retry sets it).
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
		user: s.userArg(), created: s.created, oldVersion: 0, until: until, ownIdle: "", lifetime: "", persist: ""}
	mode, expect, second, created := "u", "7", any(s.deadline), any(s.created)
	want := append([]any{"id", expect, mode, st.idleArg, second, st.codecArg, s.userArg(), created, 0, until, "", "", "", ""}, 1, ".b")
	if got := a.changes(s); !reflect.DeepEqual(got, want) {
		t.Errorf("update: %#v, want %#v", got, want)
	}
	a.mode, a.second, a.created, a.expect, a.until = saveNew, st.lifeArg, 0, "", ""
	want = append([]any{"id", "", "n", st.idleArg, st.lifeArg, st.codecArg, s.userArg(), 0, 0, "", "", "", "", ""}, 1, ".b")
	if got := a.changes(s); !reflect.DeepEqual(got, want) {
		t.Errorf("new: %#v, want %#v", got, want)
	}

	// A rotation's copy, as Rotate built it.
	c := saveArgs{saveID: "id", expect: "", mode: saveCopy, idle: st.idleArg, second: s.deadline, codec: st.codecArg,
		user: "+alice", created: s.created, oldVersion: s.version, until: until, ownIdle: "", lifetime: "", persist: ""}
	args := []any{"id", "", "c", st.idleArg, s.deadline, st.codecArg, "", s.created, s.version, until, "", "", "", ""}
	args[6] = "+" + "alice"
	want = append(args, 0, ".a", "1")
	if got := c.copyOf(s); !reflect.DeepEqual(got, want) {
		t.Errorf("copy: %#v, want %#v", got, want)
	}
}

// A session's own expiry reaches save.lua's ARGV[11] to ARGV[13] as set, and only once
// set: a session that sets nothing sends "" for each.
func TestSaveArgsCarryTheSessionsOwnExpiry(t *testing.T) {
	st, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), WithMaxLifetime(30*24*time.Hour)) // nothing is sent
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{st: st, isNew: true}
	if idle, life, persist := s.expiryArgs(); idle != "" || life != "" || persist != "" {
		t.Errorf("nothing set: %#v %#v %#v, want '' each", idle, life, persist)
	}
	if err := s.SetIdleTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLifetime(30 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	s.SetPersistent(false)
	a := saveArgs{saveID: "id", expect: "", mode: saveNew, idle: st.idleArg, second: st.lifeArg, codec: st.codecArg,
		user: "", created: 0, oldVersion: 0, until: ""}
	a.ownIdle, a.lifetime, a.persist = s.expiryArgs()
	want := []any{"id", "", "n", st.idleArg, st.lifeArg, st.codecArg, "", 0, 0, "", int64(2000), int64(30 * 24 * 3600 * 1000), "0", "", 0}
	if got := a.changes(s); !reflect.DeepEqual(got, want) {
		t.Errorf("expiry: %#v, want %#v", got, want)
	}
	s.SetPersistent(true)
	if _, _, persist := s.expiryArgs(); persist != "1" {
		t.Errorf("persistent: %q, want \"1\"", persist)
	}
	// Saved, they are no change any more.
	s.applyChanges()
	if idle, life, persist := s.expiryArgs(); idle != "" || life != "" || persist != "" || s.modified() {
		t.Errorf("after the save: %#v %#v %#v (modified %v), want '' each", idle, life, persist, s.modified())
	}
	if s.idle != 2000 || s.persist != 1 {
		t.Errorf("after the save: idle %d, persist %d; want 2000, 1", s.idle, s.persist)
	}
}
