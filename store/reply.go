package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/hasession/hasession/internal/sid"
)

// parseFields splits the load script's reply — a msgpack array of strings (cmsgpack.pack
// of HGETALL) — into its elements, without copying: each element is a substring of s.
// Every malformed input is an error; it never panics.
func parseFields(s string, buf []string) ([]string, error) {
	if len(s) == 0 {
		return nil, errors.New("empty reply")
	}
	n, off, err := arrayHeader(s)
	if err != nil {
		return nil, err
	}
	if n%2 != 0 {
		return nil, fmt.Errorf("odd number of elements (%d)", n)
	}
	if n > len(s)-off { // every element takes at least one byte
		return nil, fmt.Errorf("array of %d elements in %d bytes", n, len(s)-off)
	}
	out := buf[:0]
	if cap(out) < n {
		out = make([]string, 0, n)
	}
	for range n {
		var l int
		l, off, err = strHeader(s, off)
		if err != nil {
			return nil, err
		}
		if l > len(s)-off {
			return nil, fmt.Errorf("string of %d bytes with %d left", l, len(s)-off)
		}
		out = append(out, s[off:off+l])
		off += l
	}
	if off != len(s) {
		return nil, fmt.Errorf("%d trailing bytes", len(s)-off)
	}
	return out, nil
}

func arrayHeader(s string) (n, off int, err error) {
	b := s[0]
	switch {
	case b&0xf0 == 0x90:
		return int(b & 0x0f), 1, nil
	case b == 0xdc:
		if len(s) < 3 {
			return 0, 0, errors.New("short array16 header")
		}
		return int(binary.BigEndian.Uint16([]byte(s[1:3]))), 3, nil
	case b == 0xdd:
		if len(s) < 5 {
			return 0, 0, errors.New("short array32 header")
		}
		v := binary.BigEndian.Uint32([]byte(s[1:5]))
		if uint64(v) > uint64(len(s)) {
			return 0, 0, fmt.Errorf("array of %d elements in %d bytes", v, len(s))
		}
		return int(v), 5, nil
	}
	return 0, 0, fmt.Errorf("not a msgpack array (0x%02x)", b)
}

func strHeader(s string, off int) (l, next int, err error) {
	if off >= len(s) {
		return 0, 0, errors.New("truncated")
	}
	b := s[off]
	var size int
	switch {
	case b&0xe0 == 0xa0:
		return int(b & 0x1f), off + 1, nil
	case b == 0xd9 || b == 0xc4:
		size = 1
	case b == 0xda || b == 0xc5:
		size = 2
	case b == 0xdb || b == 0xc6:
		size = 4
	default:
		return 0, 0, fmt.Errorf("not a msgpack string (0x%02x)", b)
	}
	if len(s)-off-1 < size {
		return 0, 0, errors.New("truncated string header")
	}
	h := s[off+1 : off+1+size]
	switch size {
	case 1:
		l = int(h[0])
	case 2:
		l = int(h[0])<<8 | int(h[1])
	default:
		v := uint64(h[0])<<24 | uint64(h[1])<<16 | uint64(h[2])<<8 | uint64(h[3])
		if v > uint64(len(s)) {
			return 0, 0, fmt.Errorf("string of %d bytes in %d", v, len(s))
		}
		l = int(v)
	}
	return l, off + 1 + size, nil
}

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
