package cli

import (
	"flag"
	"io"
	"slices"
	"strings"
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

func TestParseFlags(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Int("n", 1, "")
		return fs
	}
	if ok, err := ParseFlags(newFS(), []string{"-n", "2"}); !ok || err != nil {
		t.Fatalf("flags: %v %v", ok, err)
	}
	if ok, err := ParseFlags(newFS(), []string{"-h"}); ok || err != nil {
		t.Fatalf("-h: %v %v, want false and no error", ok, err)
	}
	if ok, err := ParseFlags(newFS(), []string{"-n", "x"}); ok || err == nil {
		t.Fatalf("bad value: %v %v, want an error", ok, err)
	}
	if ok, err := ParseFlags(newFS(), []string{"extra"}); ok || err == nil || !strings.Contains(err.Error(), "unexpected arguments: extra") {
		t.Fatalf("positional: %v %v", ok, err)
	}
}
