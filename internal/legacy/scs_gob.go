package legacy

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"time"
)

// ErrNoDeadline is returned (wrapped) by [GobDeadline] for a value that decodes but has
// no Deadline: not a session scs's GobCodec encoded.
var ErrNoDeadline = errors.New("legacy: scs session has no deadline")

// GobDeadline returns the deadline of a session encoded by scs's default codec
// (scs.GobCodec: the gob of struct{Deadline time.Time; Values map[string]interface{}}),
// without the session's values: their types need not be registered with gob, so a
// program that does not know the application's types (the CLI) can check a session and
// learn its deadline. The values are still parsed, and skipped: a truncated or malformed
// value is an error, never a panic.
//
// Errors: the gob decoder's error (wrapped), or [ErrNoDeadline].
func GobDeadline(b []byte) (time.Time, error) {
	var aux struct{ Deadline time.Time }
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&aux); err != nil {
		return time.Time{}, fmt.Errorf("legacy: decode scs session: %w", err)
	}
	if aux.Deadline.IsZero() {
		return time.Time{}, fmt.Errorf("legacy: decode scs session: %w", ErrNoDeadline)
	}
	return aux.Deadline, nil
}
