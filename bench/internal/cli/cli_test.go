package cli

import (
	"slices"
	"testing"

	"github.com/hasession/hasession/cluster"
)

func TestParseList(t *testing.T) {
	got, err := ParseList(" cluster, sentinel,,cluster ", cluster.ParseKind)
	if err != nil || !slices.Equal(got, []cluster.Kind{cluster.KindCluster, cluster.KindSentinel}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, s := range []string{"", "none"} {
		if got, err := ParseList(s, cluster.ParseFaultKind); err != nil || len(got) != 0 {
			t.Errorf("%q: got %v, %v; want nothing", s, got, err)
		}
	}
	if _, err := ParseList("kill,explode", cluster.ParseFaultKind); err == nil {
		t.Error("an unknown fault was accepted")
	}
}
