package store

import (
	"errors"
	"fmt"
)

// parseRESPFields splits a raw HGETALL reply — a RESP2 array (*2n) or a RESP3 map (%n)
// of bulk strings — into its elements without copying: each element is a substring of s.
// Every malformed input is an error; it never panics.
func parseRESPFields(s string) ([]string, error) {
	if len(s) == 0 {
		return nil, errors.New("empty reply")
	}
	kind := s[0]
	n, off, err := respLen(s, 1)
	if err != nil {
		return nil, err
	}
	switch kind {
	case '*':
		if n%2 != 0 {
			return nil, fmt.Errorf("odd number of elements (%d)", n)
		}
	case '%':
		if n > len(s) {
			return nil, fmt.Errorf("map of %d pairs in %d bytes", n, len(s))
		}
		n *= 2
	default:
		return nil, fmt.Errorf("not an array or map reply (%q)", kind)
	}
	if n > (len(s)-off)/4 { // every element takes at least 4 bytes ($0\r\n\r\n is 6)
		return nil, fmt.Errorf("%d elements in %d bytes", n, len(s)-off)
	}
	if n == 0 {
		if off != len(s) {
			return nil, fmt.Errorf("%d trailing bytes", len(s)-off)
		}
		return nil, nil
	}
	out := make([]string, 0, n)
	for range n {
		if off >= len(s) || s[off] != '$' {
			return nil, errors.New("element is not a bulk string")
		}
		var l int
		l, off, err = respLen(s, off+1)
		if err != nil {
			return nil, err
		}
		if l > len(s)-off-2 {
			return nil, fmt.Errorf("bulk string of %d bytes with %d left", l, len(s)-off)
		}
		if s[off+l] != '\r' || s[off+l+1] != '\n' {
			return nil, errors.New("bulk string not terminated by CRLF")
		}
		out = append(out, s[off:off+l])
		off += l + 2
	}
	if off != len(s) {
		return nil, fmt.Errorf("%d trailing bytes", len(s)-off)
	}
	return out, nil
}

// respLen parses a non-negative decimal length at s[off:] up to CRLF; it returns the
// length and the offset after the CRLF.
func respLen(s string, off int) (int, int, error) {
	n, i := 0, off
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i-off >= 10 {
			return 0, 0, errors.New("length too long")
		}
		n = n*10 + int(s[i]-'0')
	}
	if i == off || i+1 >= len(s) || s[i] != '\r' || s[i+1] != '\n' {
		return 0, 0, errors.New("malformed length")
	}
	if s[off] == '0' && i-off > 1 {
		return 0, 0, errors.New("length with a leading zero") // Redis never sends one
	}
	return n, i + 2, nil
}
