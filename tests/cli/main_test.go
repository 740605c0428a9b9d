package cli_test

import (
	"os"
	"testing"

	"github.com/hasession/hasession/cluster"
)

// The package's tests share one topology of each kind (cluster.Shared), started on first
// use and removed by cluster.TestMain after the last test.
func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }
