package httpsession_test

import (
	"os/exec"
	"strings"
	"testing"
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
