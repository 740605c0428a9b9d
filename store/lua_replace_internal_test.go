package store

import (
	"strings"
	"testing"
)

// destroy.lua, member.lua and forward.lua each carry the same replace function: a script
// is one self-contained file (Redis has no include, and the Python client and other
// implementations load each file as it is), so the copies are kept identical here.
func TestReplaceIsTheSameInEveryScript(t *testing.T) {
	fn := func(name, src string) string {
		start := strings.Index(src, "-- replace writes t over the key")
		end := strings.Index(src[max(start, 0):], "\nend\n")
		if start < 0 || end < 0 {
			t.Fatalf("%s: no replace function", name)
		}
		return src[start : start+end]
	}
	want := fn("destroy.lua", destroyLua)
	for name, src := range map[string]string{"member.lua": memberLua, "forward.lua": forwardLua} {
		if got := fn(name, src); got != want {
			t.Errorf("%s's replace differs from destroy.lua's:\n%s\n---\n%s", name, got, want)
		}
	}
}
