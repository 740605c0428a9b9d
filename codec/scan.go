package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// scanMsgPack checks that b starts with exactly one well-formed MessagePack
// value and returns the number of bytes that value occupies. It appends to
// exts the offset of the first data byte of every extension value with a
// non-empty payload, in increasing order, and returns the extended slice.
//
// Besides structural validity it guarantees that every declared length is
// at most the number of input bytes left (each container element needs at
// least one byte), so decoding a value that passed scanMsgPack never makes
// the decoder allocate in proportion to a length the input cannot back, as
// long as the decoder stays aligned with the value boundaries; see extReader
// for the one case where it would not. scanMsgPack allocates only when
// nesting exceeds 32 levels or exts must grow.
func scanMsgPack(b []byte, exts []int) (int, []int, error) {
	var stackBuf [32]uint64
	stack := stackBuf[:0] // values still expected by each enclosing container
	var remaining uint64 = 1
	off := 0
	for {
		for remaining == 0 {
			if len(stack) == 0 {
				return off, exts, nil
			}
			remaining = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		}
		remaining--

		if off >= len(b) {
			return 0, exts, io.ErrUnexpectedEOF
		}
		start := off
		c := b[off]
		off++

		var (
			payload uint64 // bytes that follow the header and length
			items   uint64 // nested values that follow
			lenSize int    // size of an explicit big-endian length field
			ext     bool   // payload is an extension type byte plus data
			err     error
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			items = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			items = uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			payload = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc1:
				return 0, exts, fmt.Errorf("invalid code 0xc1 at offset %d", start)
			case 0xc4, 0xd9: // bin8, str8
				lenSize = 1
			case 0xc5, 0xda: // bin16, str16
				lenSize = 2
			case 0xc6, 0xdb: // bin32, str32
				lenSize = 4
			case 0xc7: // ext8: length, type, data
				lenSize, payload, ext = 1, 1, true
			case 0xc8: // ext16
				lenSize, payload, ext = 2, 1, true
			case 0xc9: // ext32
				lenSize, payload, ext = 4, 1, true
			case 0xcc, 0xd0: // uint8, int8
				payload = 1
			case 0xcd, 0xd1: // uint16, int16
				payload = 2
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				payload = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				payload = 8
			case 0xd4: // fixext1: type, data
				payload, ext = 1+1, true
			case 0xd5: // fixext2
				payload, ext = 1+2, true
			case 0xd6: // fixext4
				payload, ext = 1+4, true
			case 0xd7: // fixext8
				payload, ext = 1+8, true
			case 0xd8: // fixext16
				payload, ext = 1+16, true
			case 0xdc: // array16
				items, off, err = readLen(b, off, 2)
			case 0xdd: // array32
				items, off, err = readLen(b, off, 4)
			case 0xde: // map16
				items, off, err = readLen(b, off, 2)
				items *= 2
			case 0xdf: // map32
				items, off, err = readLen(b, off, 4)
				items *= 2
			}
		}
		if lenSize > 0 {
			var n uint64
			n, off, err = readLen(b, off, lenSize)
			payload += n
		}
		if err != nil {
			return 0, exts, err
		}
		if payload > uint64(len(b)-off) {
			return 0, exts, io.ErrUnexpectedEOF
		}
		if ext && payload > 1 {
			exts = append(exts, off+1) // skip the type byte
		}
		off += int(payload)

		if items > 0 {
			if items > uint64(len(b)-off) {
				return 0, exts, fmt.Errorf("container at offset %d declares %d values but only %d bytes follow: %w",
					start, items, len(b)-off, io.ErrUnexpectedEOF)
			}
			if len(stack) >= MaxDepth { // see MaxDepth: far from the goroutine stack limit
				return 0, exts, errTooDeep
			}
			stack = append(stack, remaining)
			remaining = items
		}
	}
}

// readLen reads a big-endian unsigned integer of size 1, 2 or 4 bytes at
// b[off:] and returns it together with the offset just past it.
func readLen(b []byte, off, size int) (uint64, int, error) {
	if len(b)-off < size {
		return 0, off, io.ErrUnexpectedEOF
	}
	switch size {
	case 1:
		return uint64(b[off]), off + 1, nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b[off:])), off + 2, nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b[off:])), off + 4, nil
	}
	return 0, off, errors.New("internal error: bad length size")
}

// errExtAsValue is returned by extReader when the decoder tries to read the
// data of an extension value as if it were a MessagePack value.
var errExtAsValue = errors.New("extension value cannot be decoded as a map")

// extReader is the decoder's input. It works like bytes.Reader with one
// difference: a single-byte read (ReadByte) at the first data byte of an
// extension value fails with errExtAsValue.
//
// The msgpack library reads extension data in bulk with Read. The only
// place it reads extension data byte-wise is (*msgpack.Decoder).DecodeMapLen,
// which silently skips an extension header and parses the extension's raw
// data as a map header, after which the decoder is no longer aligned with
// the value boundaries that scanMsgPack validated and arbitrary bytes can be
// taken for huge lengths. Failing that read keeps every length the decoder
// acts on within validated input.
type extReader struct {
	data []byte
	off  int
	exts []int // from scanMsgPack: ascending offsets of extension data
}

func (r *extReader) reset(data []byte, exts []int) {
	r.data, r.off, r.exts = data, 0, exts
}

// Len returns the number of unread bytes.
func (r *extReader) Len() int { return len(r.data) - r.off }

// Read implements io.Reader.
func (r *extReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

// ReadByte implements io.ByteReader.
func (r *extReader) ReadByte() (byte, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if len(r.exts) > 0 {
		if _, found := slices.BinarySearch(r.exts, r.off); found {
			return 0, errExtAsValue
		}
	}
	c := r.data[r.off]
	r.off++
	return c, nil
}

// UnreadByte implements io.ByteScanner.
func (r *extReader) UnreadByte() error {
	if r.off <= 0 {
		return errors.New("codec: UnreadByte at beginning of input")
	}
	r.off--
	return nil
}
