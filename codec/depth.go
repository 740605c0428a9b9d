package codec

import (
	"errors"
	"fmt"
)

// MaxDepth is the deepest container nesting (arrays, maps, structs) the codecs accept, in
// both directions: Unmarshal rejects deeper input, and Marshal refuses a deeper value,
// which could never be read back, with an error wrapping [ErrTooDeep]. It is the limit
// encoding/json applies when decoding, so both codecs agree.
const MaxDepth = 10000

// ErrTooDeep is wrapped by the error Marshal returns for a value nested deeper than
// [MaxDepth] levels. With [MsgPack] that includes a value that contains itself (a map
// holding itself, a pointer cycle between structs, a slice holding itself through an
// interface), which is infinitely deep, and a value holding more than [MaxDepth]
// pointers and interfaces in a row, which a cycle of them with no container on it is (an
// any holding a pointer to itself, alone or inside a slice, map or struct). [JSON]
// reports such a cycle as encoding/json does (*json.UnsupportedValueError).
var ErrTooDeep = fmt.Errorf("codec: value nested deeper than %d levels", MaxDepth)

// errTooDeep is the decoding side's error for the same bound.
var errTooDeep = fmt.Errorf("nesting deeper than %d levels", MaxDepth)

// depthBuffer is the MessagePack encoder's output. It looks at the nesting of what has
// been written only when the output grows past a threshold that starts at MaxDepth bytes
// (a value nested deeper than MaxDepth takes more bytes than that: each level writes its
// header) and doubles after each look, so the looks cost O(n) in all and nothing for the
// common small value. A value that contains itself makes the encoder recurse for ever,
// writing headers as it goes: a look then finds the nesting too deep and stops it by
// panicking with errTooDeepPanic, long before the goroutine's stack runs out.
type depthBuffer struct {
	b    []byte
	next int // the length at which to look again
}

// errTooDeepPanic is what depthBuffer panics with; Marshal recovers it.
var errTooDeepPanic = errors.New("codec: value nested too deep")

func (d *depthBuffer) reset() {
	d.b = d.b[:0]
	d.next = MaxDepth
}

func (d *depthBuffer) Write(p []byte) (int, error) {
	d.b = append(d.b, p...)
	if len(d.b) >= d.next {
		d.look()
	}
	return len(p), nil
}

func (d *depthBuffer) WriteByte(c byte) error {
	d.b = append(d.b, c)
	if len(d.b) >= d.next {
		d.look()
	}
	return nil
}

func (d *depthBuffer) look() {
	if msgpackTooDeep(d.b) {
		panic(errTooDeepPanic)
	}
	d.next = 2 * len(d.b)
}

// msgpackTooDeep reports whether the MessagePack data in b, a whole value or the start of
// one, nests containers deeper than MaxDepth. It trusts b to be well formed (the
// encoder's output) and never reads past its end.
func msgpackTooDeep(b []byte) bool {
	if len(b) <= MaxDepth {
		return false
	}
	var stackBuf [32]uint64
	stack := stackBuf[:0] // values still expected by each enclosing container
	var remaining uint64 = 1
	off := 0
	for off < len(b) {
		for remaining == 0 {
			if len(stack) == 0 {
				return false
			}
			remaining = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		}
		remaining--
		payload, items, n := msgpackHeader(b[off:])
		if n == 0 {
			return false // the rest of a header not written yet
		}
		off += n + int(min(payload, uint64(len(b))))
		if items > 0 {
			if len(stack) >= MaxDepth {
				return true
			}
			stack = append(stack, remaining)
			remaining = items
		}
	}
	return false
}

// msgpackHeader reads the header of the value at the start of b: the bytes of payload
// that follow it, the nested values that follow them and the header's own size (0 when b
// ends inside the header or the code is invalid).
func msgpackHeader(b []byte) (payload, items uint64, n int) {
	c := b[0]
	be := func(size int) (uint64, bool) {
		if len(b) < 1+size {
			return 0, false
		}
		var v uint64
		for _, x := range b[1 : 1+size] {
			v = v<<8 | uint64(x)
		}
		return v, true
	}
	switch {
	case c <= 0x7f || c >= 0xe0:
		return 0, 0, 1
	case c <= 0x8f:
		return 0, 2 * uint64(c&0x0f), 1
	case c <= 0x9f:
		return 0, uint64(c & 0x0f), 1
	case c <= 0xbf:
		return uint64(c & 0x1f), 0, 1
	}
	var size int
	var fixed uint64
	var ext, isMap, isArray bool
	switch c {
	case 0xc0, 0xc2, 0xc3:
		return 0, 0, 1
	case 0xc4, 0xd9:
		size = 1
	case 0xc5, 0xda:
		size = 2
	case 0xc6, 0xdb:
		size = 4
	case 0xc7:
		size, ext = 1, true
	case 0xc8:
		size, ext = 2, true
	case 0xc9:
		size, ext = 4, true
	case 0xcc, 0xd0:
		fixed = 1
	case 0xcd, 0xd1:
		fixed = 2
	case 0xca, 0xce, 0xd2:
		fixed = 4
	case 0xcb, 0xcf, 0xd3:
		fixed = 8
	case 0xd4:
		fixed = 2
	case 0xd5:
		fixed = 3
	case 0xd6:
		fixed = 5
	case 0xd7:
		fixed = 9
	case 0xd8:
		fixed = 17
	case 0xdc:
		size, isArray = 2, true
	case 0xdd:
		size, isArray = 4, true
	case 0xde:
		size, isMap = 2, true
	case 0xdf:
		size, isMap = 4, true
	default: // 0xc1, never used
		return 0, 0, 0
	}
	if size == 0 {
		return fixed, 0, 1
	}
	v, ok := be(size)
	if !ok {
		return 0, 0, 0
	}
	switch {
	case isArray:
		return 0, v, 1 + size
	case isMap:
		return 0, 2 * v, 1 + size
	case ext:
		return v + 1, 0, 1 + size // the type byte, then the data
	}
	return v, 0, 1 + size
}

// jsonTooDeep reports whether the JSON text b (encoding/json's output) nests arrays and
// objects deeper than MaxDepth.
func jsonTooDeep(b []byte) bool {
	if len(b) <= MaxDepth {
		return false
	}
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > MaxDepth {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}
