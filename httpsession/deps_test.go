package httpsession_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/hasession/hasession/internal/modcheck"
)

// The middleware never imports the test harness's weight, nor the libraries the
// benchmark compares it with.
func TestProductImportsNoContainerPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hasession/hasession/httpsession").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"testcontainers", "github.com/docker/", "github.com/moby/", "hasession/cluster",
			"github.com/alexedwards/", "github.com/gorilla/", "github.com/rbcervilla/"} {
			if strings.Contains(dep, banned) {
				t.Errorf("httpsession depends on %s", dep)
			}
		}
	}
}

// A module that uses the store and the middleware gets no module of the test harness,
// the benchmark or the peer libraries, not even in its module graph, and a short go.sum.
func TestConsumerModuleGetsNoHarnessModule(t *testing.T) {
	c := modcheck.NewConsumer(t, "github.com/hasession/hasession/store", "github.com/hasession/hasession/httpsession")
	t.Logf("a module importing store and httpsession: %d go.sum lines, %d modules in go list -m all:\n%s",
		c.SumLines, len(c.Modules), strings.Join(c.Modules, "\n"))
	if bad := c.BannedModules(); len(bad) > 0 {
		t.Errorf("a module importing store and httpsession gets %d modules it must not:\n%s\nits go.mod:\n%s",
			len(bad), strings.Join(bad, "\n"), c.GoMod)
	}
	if c.SumLines > modcheck.MaxSumLines {
		t.Errorf("a module importing store and httpsession has %d go.sum lines, want at most %d",
			c.SumLines, modcheck.MaxSumLines)
	}
}
