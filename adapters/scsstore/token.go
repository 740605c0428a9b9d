package scsstore

import "github.com/hasession/hasession/internal/legacy"

// TokenLen is the length of an scs session token: 32 bytes from crypto/rand in unpadded
// base64url (scs's generateToken), or the same encoding of a SHA-256 when the
// SessionManager's HashTokenInStore is set.
const TokenLen = legacy.SCSTokenLen

// ValidToken reports whether t is exactly what scs generates: 43 base64url digits (A-Z,
// a-z, 0-9, '-', '_'), the canonical unpadded encoding of 32 bytes. Anything else —
// another length, '{', '}', spaces, '+', '/', '=' or non-zero padding bits in the last
// digit — is false, and the Store sends nothing to Redis for it. ValidToken does not
// allocate.
func ValidToken(t string) bool { return legacy.ValidSCSToken(t) }
