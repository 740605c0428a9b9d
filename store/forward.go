package store

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/hasession/hasession/internal/sid"
)

// forwardMask is what a rotated session's new ID is XORed with in the forward pointer: a
// hash of the old ID, which Redis does not hold when IDs are hashed at rest, so a dump of
// Redis reveals no live ID through a forward pointer.
func forwardMask(oldID string) [16]byte {
	h := sha256.Sum256([]byte("hasession/forward\x00" + oldID))
	var m [16]byte
	copy(m[:], h[:16])
	return m
}

// uuidBytes parses a canonical UUID string (already validated) into its 16 bytes.
func uuidBytes(id string) ([16]byte, bool) {
	var b [16]byte
	j := 0
	for i := 0; i < len(id) && j < 32; i++ {
		if id[i] == '-' {
			continue
		}
		v, ok := unhex(id[i])
		if !ok {
			return b, false
		}
		if j%2 == 0 {
			b[j/2] = v << 4
		} else {
			b[j/2] |= v
		}
		j++
	}
	return b, j == 32
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// forwardToken masks newID for storage at oldID's key.
func forwardToken(oldID, newID string) string {
	b, _ := uuidBytes(newID)
	m := forwardMask(oldID)
	for i := range b {
		b[i] ^= m[i]
	}
	return hex.EncodeToString(b[:])
}

// forwardTarget recovers the new ID from a forward token found at oldID's key.
func forwardTarget(oldID, token string) (string, bool) {
	raw, err := hex.DecodeString(token)
	if err != nil || len(raw) != 16 {
		return "", false
	}
	m := forwardMask(oldID)
	for i := range raw {
		raw[i] ^= m[i]
	}
	h := hex.EncodeToString(raw)
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	return id, sid.Valid(id)
}
