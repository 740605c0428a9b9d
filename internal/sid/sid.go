package sid

import (
	"crypto/rand"
	"fmt"
)

// Len is the length of a session ID in bytes.
const Len = 36

const hexDigits = "0123456789abcdef"

// New returns a new session ID: a canonical lowercase UUIDv4 string (36
// chars) from crypto/rand (122 random bits). It returns an error only if
// crypto/rand fails.
func New() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("sid: reading random bytes: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10 (RFC 9562)

	var b [Len]byte
	j := 0
	for i, c := range u {
		switch i {
		case 4, 6, 8, 10:
			b[j] = '-'
			j++
		}
		b[j] = hexDigits[c>>4]
		b[j+1] = hexDigits[c&0x0f]
		j += 2
	}
	return string(b[:]), nil
}

// Valid reports whether s is exactly a canonical lowercase UUIDv4: length
// 36, hyphens at 8, 13, 18 and 23, lowercase hex elsewhere, version nibble
// '4' at index 14, variant one of '8', '9', 'a', 'b' at index 19. Anything
// else (uppercase, braces, spaces, other versions, wrong length) is false.
// Valid does not allocate.
func Valid(s string) bool {
	if len(s) != Len ||
		s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' ||
		s[14] != '4' {
		return false
	}
	switch s[19] {
	case '8', '9', 'a', 'b':
	default:
		return false
	}
	return lowerHex(s[0:8]) && lowerHex(s[9:13]) && lowerHex(s[15:18]) &&
		lowerHex(s[20:23]) && lowerHex(s[24:36])
}

// isLowerHex[c] reports whether c is one of 0-9 and a-f.
var isLowerHex = func() (t [256]bool) {
	for _, c := range hexDigits {
		t[c] = true
	}
	return t
}()

// lowerHex reports whether every byte of s is a lowercase hex digit.
func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLowerHex[s[i]] {
			return false
		}
	}
	return true
}
