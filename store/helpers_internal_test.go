package store

import (
	"testing"

	"github.com/hasession/hasession/cluster"
)

// internalStore starts a standalone Redis of its own for a test of the package's
// internals and returns a Store on it.
func internalStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	cluster.RequireDocker(t)
	s0, err := cluster.RunStandalone(t.Context())
	cluster.Cleanup(t, s0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(s0.Client(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
