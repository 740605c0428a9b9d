package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hasession/hasession/internal/sid"
)

// Update's retry bound and backoff.
const (
	// UpdateAttempts is how many times Update loads the session and runs fn before it
	// gives up on a session that keeps changing under it and returns ErrConflict.
	UpdateAttempts = 20
	// updateBackoffBase and updateBackoffMax bound the wait before each new attempt:
	// random (full jitter) up to base·2^(attempt−1), at most max. Twenty attempts wait at
	// most about 1.3 s in all, 0.6 s on average.
	updateBackoffBase = time.Millisecond
	updateBackoffMax  = 80 * time.Millisecond
)

// Update changes the session with the given ID atomically: it loads the session, runs fn
// on it and saves what fn changed with a version check, whatever WithVersionCheck says.
// If another save reached the session in between (ErrConflict), nothing of this attempt
// is written: Update waits a short random backoff and starts again with a fresh load,
// up to [UpdateAttempts] times. fn may therefore run more than once and must only read and
// change the session it is given (not save, rotate or destroy it, nor keep it); a
// read-modify-write in fn — a counter, a cart — loses nothing to concurrent Updates, from
// this Store or any other on the same Redis.
//
// A save whose reply was lost (a failover, a broken connection) is retried; when the retry
// finds that another save made the version this attempt would have made, the attempt is
// not in the session (it never applied, or a failover lost it, after other requests may
// have read it), and Update starts again too: the change ends up in the session once.
// When Redis no longer shows which save made that version (the session saved more than
// 1024 times, or for longer than 60 s, since), Update returns ErrOutcomeUnknown.
//
// Saves that do not check versions (Save with WithVersionCheck off) still bump the
// version, so Update never overwrites their changes with a stale value; they, in turn,
// overwrite what Update wrote to the same attribute (the last writer wins).
//
// When fn returns an error, nothing is saved and Update returns that error. When fn
// changes nothing, nothing is sent after the load. The session's ID may have been
// rotated: the load follows the old ID to the new session as Load does, and the save
// goes to the new ID.
//
// Errors: ErrInvalidID (nothing sent), ErrNotFound (the session is gone: it is never
// brought back), an error matching ErrConflict when every attempt met a concurrent save,
// ErrOutcomeUnknown (above), fn's error, the context's error (checked between attempts as well), and Load's and
// Save's other errors.
func (st *Store) Update(ctx context.Context, id string, fn func(*Session) error) error {
	if fn == nil {
		return errors.New("hasession: update session: nil function")
	}
	if !sid.Valid(id) {
		return ErrInvalidID
	}
	for attempt := range UpdateAttempts {
		if attempt > 0 {
			if err := updateBackoff(ctx, attempt); err != nil {
				return fmt.Errorf("hasession: update session: %w", err)
			}
		}
		s, err := st.Load(ctx, id)
		if err != nil {
			return err
		}
		id = s.ID() // a rotated session: skip the forward next time
		if err := fn(s); err != nil {
			return err
		}
		if !s.Modified() {
			return nil
		}
		err = st.saveChecked(ctx, s)
		var lost *lostSaveError
		if !errors.Is(err, ErrConflict) && !errors.As(err, &lost) {
			return err
		}
	}
	return fmt.Errorf("hasession: update session: %d attempts: %w", UpdateAttempts, ErrConflict)
}

// updateBackoff waits before attempt (≥ 1) of Update, or until ctx ends.
func updateBackoff(ctx context.Context, attempt int) error {
	limit := min(updateBackoffBase<<min(attempt-1, 16), updateBackoffMax)
	t := time.NewTimer(rand.N(limit) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// saveChecked is Save with the version check on: the save applies only if the session's
// version in Redis is still the one s was loaded with (ErrConflict otherwise).
func (st *Store) saveChecked(ctx context.Context, s *Session) error {
	return st.saveSession(ctx, s, true)
}
