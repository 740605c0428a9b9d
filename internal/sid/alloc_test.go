//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only checked in normal builds.

package sid_test

import (
	"testing"

	"github.com/hasession/hasession/internal/sid"
)

func TestValidDoesNotAllocate(t *testing.T) {
	id, err := sid.New()
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { sid.Valid(id) }); n != 0 {
		t.Errorf("Valid allocates %v times per call", n)
	}
}

func TestTagAllocations(t *testing.T) {
	tg, err := sid.NewTagger(testKey)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sid.New()
	tg.Tag(id) // warm the pool
	if n := testing.AllocsPerRun(100, func() { tg.Tag(id) }); n > 1 {
		t.Errorf("Tag allocates %v times per call, want at most 1 (the result)", n)
	}
}
