package legacy

// SCSTokenLen is the length of an scs session token: 32 bytes from crypto/rand in
// unpadded base64url (scs's generateToken), or the same encoding of a SHA-256 when the
// SessionManager's HashTokenInStore is set.
const SCSTokenLen = 43

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// b64val[c] is 1 + the value of the base64url digit c, or 0 when c is not one.
var b64val = func() (t [256]uint8) {
	for i := range len(b64url) {
		t[b64url[i]] = uint8(i + 1)
	}
	return t
}()

// ValidSCSToken reports whether t is exactly what scs generates: 43 base64url digits
// (A-Z, a-z, 0-9, '-', '_'), the canonical unpadded encoding of 32 bytes. Anything else —
// another length, '{', '}', ':', spaces, '+', '/', '=' or non-zero padding bits in the
// last digit — is false. It does not allocate.
func ValidSCSToken(t string) bool {
	if len(t) != SCSTokenLen {
		return false
	}
	for i := range len(t) {
		if b64val[t[i]] == 0 {
			return false
		}
	}
	// 43 digits carry 258 bits for 256: the last digit's two low bits are padding, zero
	// in the canonical encoding.
	return (b64val[t[SCSTokenLen-1]]-1)&3 == 0
}

// scsTokenGlob is a Redis glob that matches exactly the strings ValidSCSToken accepts:
// 42 base64url digits, then one whose two low bits are zero. '-' comes first in a class,
// where Redis takes it literally (elsewhere it makes a range).
var scsTokenGlob = func() string {
	const digit = "[-_a-zA-Z0-9]"
	var last []byte
	for i := 0; i < 64; i += 4 {
		last = append(last, b64url[i])
	}
	s := ""
	for range SCSTokenLen - 1 {
		s += digit
	}
	return s + "[" + string(last) + "]"
}()
