package cluster

import "testing"

func TestSlotMaster(t *testing.T) {
	// Two views during a failover: the old master (epoch 1) still claims the slots in
	// one, the promoted replica (epoch 4) in the other; a failed master is never chosen.
	views := [][]ClusterNode{
		{
			{Addr: "10.0.0.1:6379", Flags: []string{"master"}, ConfigEpoch: 1, Slots: [][2]int{{0, 8191}}},
			{Addr: "10.0.0.2:6379", Flags: []string{"master"}, ConfigEpoch: 2, Slots: [][2]int{{8192, 16383}}},
		},
		{
			{Addr: "10.0.0.1:6379", Flags: []string{"master", "fail"}, ConfigEpoch: 9, Slots: [][2]int{{0, 8191}}},
			{Addr: "10.0.0.3:6379", Flags: []string{"myself", "master"}, ConfigEpoch: 4, Slots: [][2]int{{0, 8191}}},
			{Addr: "10.0.0.4:6379", Flags: []string{"slave"}, ConfigEpoch: 5, Slots: nil},
		},
	}
	for slot, want := range map[int]string{0: "10.0.0.3:6379", 8191: "10.0.0.3:6379", 8192: "10.0.0.2:6379"} {
		if got := slotMaster(views, slot); got == nil || got.Addr != want {
			t.Errorf("slot %d: got %v, want %s", slot, got, want)
		}
	}
	if got := slotMaster(views[:0], 0); got != nil {
		t.Errorf("no views: got %v", got)
	}
}

func TestMajority(t *testing.T) {
	for _, c := range []struct {
		answers []string
		total   int
		want    string // "" for an error
	}{
		{[]string{"a:1", "a:1", "b:1"}, 3, "a:1"},
		{[]string{"a:1", "", "a:1"}, 3, "a:1"}, // one sentinel did not answer
		{[]string{"a:1", "b:1"}, 3, ""},
		{[]string{"a:1", "a:1"}, 4, ""}, // half is not a majority
		{[]string{"a:1"}, 1, "a:1"},
		{nil, 3, ""},
	} {
		got, err := majority(c.answers, c.total)
		if c.want == "" {
			if err == nil {
				t.Errorf("%v of %d: got %q, want an error", c.answers, c.total, got)
			}
		} else if err != nil || got != c.want {
			t.Errorf("%v of %d: got %q, %v; want %q", c.answers, c.total, got, err, c.want)
		}
	}
}
