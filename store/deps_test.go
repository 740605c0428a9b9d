package store_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/hasession/hasession/internal/modcheck"
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

// A module that uses the store gets no module of the test harness, the benchmark or the
// peer libraries, not even in its module graph, and a short go.sum.
func TestConsumerModuleGetsNoHarnessModule(t *testing.T) {
	c := modcheck.NewConsumer(t, "github.com/hasession/hasession/store", "github.com/hasession/hasession/codec")
	t.Logf("a module importing store and codec: %d go.sum lines, %d modules in go list -m all:\n%s",
		c.SumLines, len(c.Modules), strings.Join(c.Modules, "\n"))
	if bad := c.BannedModules(); len(bad) > 0 {
		t.Errorf("a module importing store gets %d modules it must not:\n%s\nits go.mod:\n%s",
			len(bad), strings.Join(bad, "\n"), c.GoMod)
	}
	if c.SumLines > modcheck.MaxSumLines {
		t.Errorf("a module importing store has %d go.sum lines, want at most %d", c.SumLines, modcheck.MaxSumLines)
	}
}

// A module that imports only store — with the Observer hook in it — gets no OpenTelemetry
// module at all (the observer that uses OpenTelemetry is a module of its own, and its
// SDK is the application's choice).
func TestConsumerOfStoreGetsNoOpenTelemetry(t *testing.T) {
	c := modcheck.NewConsumer(t, "github.com/hasession/hasession/store")
	t.Logf("go list -m all of a module importing store:\n%s", strings.Join(c.Modules, "\n"))
	for _, m := range c.Modules {
		if strings.HasPrefix(m, "go.opentelemetry.io/") {
			t.Errorf("a module importing store gets %s", m)
		}
	}
}
