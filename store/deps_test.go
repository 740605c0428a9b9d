package store_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The product packages never import the test harness's weight.
func TestProductImportsNoContainerPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"github.com/hasession/hasession/store", "github.com/hasession/hasession/codec").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"testcontainers", "github.com/docker/", "github.com/moby/", "hasession/cluster"} {
			if strings.Contains(dep, banned) {
				t.Errorf("a product package depends on %s", dep)
			}
		}
	}
}
