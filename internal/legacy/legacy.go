// Package legacy moves sessions that another Redis session store wrote into hasession's
// format: one at a time when a request meets one (read-through, in the adapters and the
// store), or all of them up front (the CLI's import command).
//
// A [Layout] knows one store's keys and values. Moving a session writes it in hasession's
// format with the remaining lifetime it had, then deletes the legacy key; a value that
// does not decode, or a key of the wrong type, is counted as corrupt and left as it is.
// Moving is idempotent: a session already moved is skipped.
package legacy

import "context"

// Outcome is what moving one legacy session did (or, in a dry run, would do).
type Outcome uint8

const (
	// Imported: written in hasession's format; the legacy key deleted.
	Imported Outcome = iota + 1
	// Skipped: nothing to move — already moved, deleted or expired meanwhile, or
	// deleted in hasession since. Whatever the legacy key held was not needed.
	Skipped
	// Corrupt: the legacy value does not decode, or the key is of the wrong type. It
	// is left untouched.
	Corrupt
)

// String returns "imported", "skipped" or "corrupt".
func (o Outcome) String() string {
	switch o {
	case Imported:
		return "imported"
	case Skipped:
		return "skipped"
	case Corrupt:
		return "corrupt"
	}
	return "unknown"
}

// Result is the outcome of moving the session of one legacy key.
type Result struct {
	Key     string
	Outcome Outcome
	Err     error // why the session is Corrupt; nil otherwise
}

// A Layout moves the sessions of one legacy layout. Implementations are safe for
// concurrent use.
type Layout interface {
	// Name is the layout's name on the command line ("scs", ...).
	Name() string
	// Match is the SCAN MATCH pattern of the layout's keys.
	Match() string
	// Move moves the sessions of the given legacy keys, which SCAN found on one node,
	// pipelined, and returns their outcomes in order. With dryRun it reads and decodes
	// only, writes nothing, and reports what it would do. The error is for the batch as
	// a whole (Redis unreachable, the context's end): the keys' outcomes are then
	// unknown and moving them again is safe.
	Move(ctx context.Context, keys []string, dryRun bool) ([]Result, error)
}
