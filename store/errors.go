package store

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hasession/hasession/internal/format"
)

// Errors returned by the store. Match them with errors.Is; the typed ones with errors.As.
var (
	// ErrNotFound: no such session — it never existed, expired (idle or absolute), was
	// destroyed, or was rotated away and its grace period is over. Missing and expired
	// are the same to the caller.
	ErrNotFound = errors.New("hasession: session not found")
	// ErrInvalidID: the ID is not a canonical lowercase UUIDv4. Nothing was sent to Redis.
	ErrInvalidID = errors.New("hasession: malformed session ID")
	// ErrConflict: the session changed since it was loaded (version check on).
	ErrConflict = errors.New("hasession: session changed concurrently")
	// ErrNoAttribute: the session has no attribute of that name.
	ErrNoAttribute = errors.New("hasession: no such attribute")
	// ErrCodecMismatch: the session was written with another codec. Read it with the
	// codec it was written with; its data is left untouched.
	ErrCodecMismatch = errors.New("hasession: session written with another codec")
	// ErrCorrupt: the key holds something that is not a hasession session (another type,
	// missing metadata, a malformed field). The data is left untouched.
	ErrCorrupt = errors.New("hasession: corrupt or foreign data at the session key")
	// ErrDestroyed: the Session value was destroyed or rotated away; use the session
	// Rotate returned.
	ErrDestroyed = errors.New("hasession: session was destroyed")
	// ErrRotated: Rotate lost to another rotation of the same session (two requests that
	// loaded it rotated it concurrently, or one after the other): exactly one rotation
	// of a session wins, and the loser wrote nothing that stays. It matches ErrNotFound
	// (the loaded ID is no session any more), but the user is still logged in: the old
	// ID forwards to the winner's session for the grace period. The Session keeps its
	// old ID and its unsaved changes; load the old ID again (Load follows the forward)
	// and redo the request's changes there — or answer with the winner's cookie, which
	// the other request sets.
	ErrRotated = fmt.Errorf("%w: rotated by another request first (load the old ID again: it leads to the new session)", ErrNotFound)
	// ErrWrongStore: the Session was made by another Store (a programmer error). Nothing
	// was sent.
	ErrWrongStore = errors.New("hasession: session belongs to another store")
	// ErrClosed: the Store was closed (see Store.Close); the call sent nothing more to
	// Redis.
	ErrClosed = errors.New("hasession: store closed")
	// ErrOutcomeUnknown: a write retried after an attempt whose reply was lost found the
	// key without what would show whether that attempt applied (the session, its forward
	// pointer or tombstone, expired or deleted meanwhile): it may have applied or not.
	// Save and Rotate return it where the retry would otherwise have said "not found"
	// (ErrNotFound, which it does not match) of a write that may have applied.
	ErrOutcomeUnknown = errors.New("hasession: outcome unknown")
)

// ErrInvalidExpiry: a session's own idle timeout or lifetime is out of range (see
// [ExpiryError]). The session is unchanged.
var ErrInvalidExpiry = errors.New("hasession: invalid session expiry")

// ExpiryError reports an idle timeout or lifetime given to a session that is out of
// range: under Min (1 s; zero and negative included) or over Max, the store's maximum
// ([WithMaxIdleTimeout], [WithMaxLifetime]). It matches [ErrInvalidExpiry]. The session
// is unchanged, and nothing was sent to Redis.
type ExpiryError struct {
	Setting string        // "idle timeout" or "lifetime"
	Value   time.Duration // what was asked
	Min     time.Duration // the shortest allowed: 1 s
	Max     time.Duration // the longest allowed: the store's maximum
}

func (e *ExpiryError) Error() string {
	opt := "WithMaxIdleTimeout"
	if e.Setting == "lifetime" {
		opt = "WithMaxLifetime"
	}
	if e.Value > e.Max {
		return fmt.Sprintf("hasession: session %s %s is over the store's maximum of %s (store.%s)", e.Setting, e.Value, e.Max, opt)
	}
	return fmt.Sprintf("hasession: session %s %s is under %s", e.Setting, e.Value, e.Min)
}

// Is makes errors.Is(err, ErrInvalidExpiry) true.
func (e *ExpiryError) Is(target error) bool { return target == ErrInvalidExpiry }

// ErrUnencodable: Set (a flash value, an attribute) was given a value the codec cannot
// encode — a channel, a function, a value nested deeper than codec.MaxDepth or, with
// msgpack, one that contains itself. The session is unchanged; the error is a
// *ValueError.
var ErrUnencodable = errors.New("hasession: value cannot be encoded")

// ValueError reports an attribute value the codec refused; it matches ErrUnencodable and
// wraps the codec's error (errors.Is(err, codec.ErrTooDeep), say).
type ValueError struct {
	Key string // the attribute
	Err error  // the codec's error
}

func (e *ValueError) Error() string { return fmt.Sprintf("hasession: attribute %q: %v", e.Key, e.Err) }

// Unwrap returns the codec's error.
func (e *ValueError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnencodable) true.
func (e *ValueError) Is(target error) bool { return target == ErrUnencodable }

// ErrFormatVersion: the key was written in a newer format than this package knows (see
// [FormatError]). Its data is left untouched.
var ErrFormatVersion = errors.New("hasession: session written in a newer format")

// FormatError reports a key written in a newer format (FORMAT.md, "Evolution"): its
// format version field says Version, and this package knows formats up to Known. It
// matches [ErrFormatVersion]. Nothing was read from the key but its version, and nothing
// was written to it: run a newer version of this package, on every app server, before
// writing that format.
type FormatError struct {
	Key     string
	Version int64 // the format version found at the key
	Known   int64 // the newest format version this package reads and writes
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("hasession: key %s is in format version %d; this version of hasession knows versions up to %d", quoteData(e.Key), e.Version, e.Known)
}

// Is makes errors.Is(err, ErrFormatVersion) true.
func (e *FormatError) Is(target error) bool { return target == ErrFormatVersion }

// checkFormat checks the value of a key's format version field (format.FormatVersion):
// nil for a version this package knows, a *FormatError for a newer one, a *CorruptError
// for a malformed value.
func checkFormat(key, v string) error {
	n, ok := format.ParseVersion(v)
	if !ok {
		return &CorruptError{Key: key, Reason: "malformed format version " + quoteData(v)}
	}
	if n > format.Known {
		return &FormatError{Key: key, Version: n, Known: format.Known}
	}
	return nil
}

// SizeError reports a session whose encoded attributes exceed the size limit. Nothing was
// sent to Redis.
type SizeError struct {
	Size  int // bytes the attributes would take
	Limit int // the store's limit
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("hasession: session is %d bytes, over the limit of %d", e.Size, e.Limit)
}

// CodecError is returned when the stored codec differs from the store's; it matches
// ErrCodecMismatch.
type CodecError struct {
	Stored string // the codec the session was written with
	Want   string // the store's codec
}

func (e *CodecError) Error() string {
	return fmt.Sprintf("hasession: session written with codec %s, store uses %s", quoteData(e.Stored), quoteData(e.Want))
}

// Is makes errors.Is(err, ErrCodecMismatch) true.
func (e *CodecError) Is(target error) bool { return target == ErrCodecMismatch }

// CorruptError tells what is wrong with the data at a session key; it matches ErrCorrupt.
// Data from Redis that it quotes (a field name, a value, a reply) is cut to its first
// [MaxQuoted] bytes and its length, so a huge foreign field does not make a huge error.
type CorruptError struct {
	Key    string
	Reason string
	Err    error // the Redis error, if any (e.g. WRONGTYPE)
}

// MaxQuoted is how many bytes of data from Redis an error quotes at most.
const MaxQuoted = 64

// quoteData quotes s as %q does, but only its first MaxQuoted bytes, followed by its
// length: `"abc…"…(1048576 bytes)`.
func quoteData(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:MaxQuoted]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// quoteValue is quoteData of a value's default format (a reply of unexpected shape).
func quoteValue(v any) string { return quoteData(fmt.Sprint(v)) }

// numberError is the error of a metadata field that does not parse as a number: the
// field's value quoted with quoteData, and strconv's reason (ErrSyntax, ErrRange) without
// the whole value strconv.NumError would quote.
func numberError(field, val string, err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		err = ne.Err
	}
	return fmt.Errorf("field %s is not a number: %s: %w", field, quoteData(val), err)
}

func (e *CorruptError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("hasession: key %s: %s: %v", e.Key, e.Reason, e.Err)
	}
	return fmt.Sprintf("hasession: key %s: %s", e.Key, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the Redis error.
func (e *CorruptError) Unwrap() error { return e.Err }

// ErrPermission: Redis refused a command for lack of permission (ACL): the user the
// client logs in as may not run the command or touch the key. Retrying does not help;
// the store returns it at once, as a [*PermissionError].
var ErrPermission = errors.New("hasession: permission denied by Redis")

// PermissionError is returned when Redis refused a command of the store, or a command one
// of its scripts ran, for lack of permission: the user the client logs in as lacks a
// command or a key pattern (see [ACLRules]). It matches [ErrPermission] and wraps the
// error Redis returned. The store does not retry it.
type PermissionError struct {
	// Command is the command refused, as Redis names it ("evalsha", "hset"); empty
	// when a key was refused, or when Redis did not name the command a script ran.
	Command string
	// InScript is true when the command was refused inside one of the store's scripts.
	InScript bool
	// Err is the error as the store would have returned it.
	Err error
}

func (e *PermissionError) Error() string {
	what := "a key or command"
	if e.Command != "" {
		what = "command '" + e.Command + "'"
	}
	where := ""
	if e.InScript {
		where = " in a script"
	}
	return fmt.Sprintf("hasession: Redis refused %s%s for lack of permission (ACL): %v", what, where, e.Err)
}

// Is makes errors.Is(err, ErrPermission) true.
func (e *PermissionError) Is(target error) bool { return target == ErrPermission }

// Unwrap returns the error Redis returned.
func (e *PermissionError) Unwrap() error { return e.Err }

// RetryError is returned when the caller's context ended (or the retries ran out)
// while an operation kept failing: it wraps both the context's error and the last Redis
// error, so errors.Is works for either.
type RetryError struct {
	Op       string
	Attempts int
	Ctx      error // the caller's context error; nil when retries ran out
	Last     error // the last attempt's error
}

func (e *RetryError) Error() string {
	if e.Ctx != nil {
		return fmt.Sprintf("hasession: %s: %v after %d attempts (last error: %v)", e.Op, e.Ctx, e.Attempts, e.Last)
	}
	return fmt.Sprintf("hasession: %s: gave up after %d attempts: %v", e.Op, e.Attempts, e.Last)
}

// Unwrap returns the context's error and the last Redis error.
func (e *RetryError) Unwrap() []error {
	if e.Ctx != nil {
		return []error{e.Ctx, e.Last}
	}
	return []error{e.Last}
}

// RevokeError lists the sessions a revoke could not reach; it wraps the last error.
// Revoking again is safe: what was revoked stays revoked.
type RevokeError struct {
	User   string
	Failed []string // the sessions' Refs
	Err    error
}

func (e *RevokeError) Error() string {
	return fmt.Sprintf("hasession: %d session(s) of the user could not be revoked: %v", len(e.Failed), e.Err)
}

// Unwrap returns the last error.
func (e *RevokeError) Unwrap() error { return e.Err }

// ErrNoUser is returned by the user index methods for an empty user.
var ErrNoUser = errors.New("hasession: no user given")

// errIndexRace: a save that gives a session a user lost a race with a revoke, or came
// later than the pending window after its index entry. Save and Rotate list it again.
var errIndexRace = errors.New("hasession: session index race")

// errKeyExists: a new session's key is taken (by a session or a forward pointer). It
// matches ErrConflict: an earlier save of the session, whose reply was lost, may have
// written it.
var errKeyExists = fmt.Errorf("%w: the new session's key exists already (an earlier save of it may have applied: load it)", ErrConflict)
