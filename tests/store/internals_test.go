package store_test

import (
	"testing"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/testhook"
	"github.com/hasession/hasession/store"
)

// internalStore starts a standalone Redis of its own for a test of the package's
// internals and returns a Store on it.
func internalStore(t *testing.T, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.New(cluster.StandaloneForTest(t).Client(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The tests of the store's internals live outside package store: what they read of it,
// they read through internal/testhook, which package store fills in.

// internals returns the internals of st: its keys, client, timeouts, codec and one
// attempt of the save script.
func internals(st *store.Store) testhook.Internals { return testhook.StoreInternals(st) }

// newSaveID returns a fresh save ID, as each save carries.
func newSaveID() string { return testhook.NewSaveID() }

// appendChanges appends the session's pending changes to the save script's arguments.
func appendChanges(s *store.Session, args []any) []any { return testhook.AppendChanges(s, args) }

// The session hash's metadata fields.
var (
	fVersion = testhook.FieldVersion
	fTouched = testhook.FieldTouched
	fSaveID  = testhook.FieldSaveID
)
