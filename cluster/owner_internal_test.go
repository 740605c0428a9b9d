package cluster

import (
	"os"
	"strconv"
	"testing"
)

// A leftover whose owner label names this process's PID but another start time was left
// by an earlier process that had the same PID: it is not alive, so it is swept, and it is
// never taken for this run's own.
func TestOwnerAliveTellsAReusedPIDApart(t *testing.T) {
	host, _ := os.Hostname()
	me := Owner()
	if !ownerAlive(me) {
		t.Fatalf("this process (%s) is not alive", me)
	}
	pid := strconv.Itoa(os.Getpid())
	for _, o := range []string{host + ":" + pid + ":1", host + ":" + pid, host + ":4194000:5", host + ":x"} {
		if ownerAlive(o) {
			t.Errorf("ownerAlive(%q) = true; want false", o)
		}
	}
	if !ownerAlive("another-host:1:1") {
		t.Error("an owner on another host counts as alive")
	}
}
