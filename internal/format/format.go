// Package format names the fields of a session's hash in Redis, for package store, which
// writes and reads them, and for the operator CLI (cmd/hasession), which counts and
// inspects sessions without loading them.
//
// A session is one hash, <prefix>{<tag>}. Its metadata fields start with "_"; each
// attribute is a field named [AttrPrefix] + its name. A forward pointer (a rotated
// session's old key, within the grace period) holds [Forward] and a tombstone (a
// revoked or logged-out session's key, for a while) holds [Revoked]; only a session
// holds [Version]. A user's index, <prefix>u:{<user tag>}, is a sorted set of session
// tags; its logins hash, <prefix>u:{<user tag>}:l, holds one field per tag and
// [LastLogin].
//
// FORMAT.md, at the repository's root, specifies the format; a test checks that it
// documents every field named here, and names here every field it documents.
package format

// Fields of the session hash.
const (
	Version  = "_v" // the session's version, bumped by every save
	Created  = "_c" // creation, ms since the epoch (Redis time)
	Deadline = "_a" // absolute deadline, ms since the epoch (Redis time)
	Touched  = "_t" // last touch, ms since the epoch (Redis time)
	User     = "_u" // the user the session belongs to
	Codec    = "_k" // the name of the codec of the attribute values
	SaveID   = "_s" // the save IDs of the latest saves, with their answers
	Forward  = "_f" // a forward pointer: the new ID, masked with a hash of the old one
	Pending  = "_n" // a rotation in flight: the new session's tag
	Revoked  = "_r" // a tombstone left by a revoke or a logout

	// Forwarded, on a tombstone that replaced a forward pointer, holds the pointer's
	// token, so that the rotation's forward step retried after a lost reply finds its
	// rotation applied. It has the reserved form ([Reserved]): a reader that does not
	// know it ignores it.
	Forwarded = "_R"

	Idle    = "_i" // the session's own idle timeout (ms); none: the store's
	Persist = "_p" // the session's own cookie persistence: "1" persistent, "0" a session cookie

	// FormatVersion holds the format version of the key: a decimal integer, absent in
	// version 1 (absent means 1). A key whose format version is newer than [Known] is
	// refused, by every reader and writer.
	FormatVersion = "_F"

	// AttrPrefix starts every attribute's field name, so an attribute name can never
	// reach a metadata field.
	AttrPrefix = "."
)

// LastLogin is the field of a user index's logins hash that holds the last login's time
// (ms since the epoch, Redis time): every login's time is later. Its other fields are
// session tags.
const LastLogin = "#"

// Known is the format version this code reads and writes.
const Known = 1

// Reserved reports whether name is a reserved metadata field: "_" followed by an
// uppercase ASCII letter. A newer writer may add such fields; a reader ignores those it
// does not know ([FormatVersion] is one it knows), and a writer keeps them where it
// keeps the key. Any other field that is neither metadata the format names nor an
// attribute is foreign.
func Reserved(name string) bool {
	return len(name) >= 2 && name[0] == '_' && name[1] >= 'A' && name[1] <= 'Z'
}

// ParseVersion reads the value of a [FormatVersion] field: a decimal integer from 1, with
// no sign and no leading zero, of at most 18 digits. ok is false for any other value.
func ParseVersion(v string) (n int64, ok bool) {
	if len(v) == 0 || len(v) > 18 || v[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
