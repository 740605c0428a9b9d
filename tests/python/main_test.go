// Package python_test runs the Python reference module (python/hasession) against the
// shared topologies beside the Go store: Go writes and Python reads, Python writes and Go
// reads, concurrent saves of both, and Python's touch, destroy and listing.
package python_test

import (
	"os"
	"testing"

	"github.com/hasession/hasession/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }
