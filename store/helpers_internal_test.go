package store

import (
	"testing"

	"github.com/hasession/hasession/cluster"
)

// internalStore starts a standalone Redis of its own for a test of the package's
// internals and returns a Store on it.
func internalStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	st, err := New(cluster.StandaloneForTest(t).Client(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
