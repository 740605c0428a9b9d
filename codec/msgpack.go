package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

const msgpackName = "msgpack"

// maxPooledSize bounds the memory kept alive by pooled encoders and
// decoders: state that handled more than this many bytes is dropped
// instead of being reused.
const maxPooledSize = 64 << 10

// msgpackCodec implements Codec with MessagePack. The zero value is ready
// to use.
type msgpackCodec struct{}

func (msgpackCodec) Name() string { return msgpackName }

// encoderState is a reusable encoder writing into its own buffer, which bounds the
// nesting of what is written (see depthBuffer).
type encoderState struct {
	buf depthBuffer
	enc *msgpack.Encoder
}

var encoderPool = sync.Pool{
	New: func() any {
		s := new(encoderState)
		s.enc = msgpack.NewEncoder(&s.buf)
		return s
	},
}

// Marshal encodes v exactly as msgpack.Marshal does. The returned slice is
// freshly allocated and sized to fit. A value nested deeper than MaxDepth,
// one that contains itself, or one holding more than MaxDepth pointers and
// interfaces in a row (a cycle of them) is an error wrapping ErrTooDeep.
func (msgpackCodec) Marshal(v any) (data []byte, err error) {
	s := encoderPool.Get().(*encoderState)
	defer func() {
		// A panic leaves s in an unknown state, so it is not returned to
		// the pool.
		if r := recover(); r != nil {
			if r == errTooDeepPanic {
				data, err = nil, fmt.Errorf("codec: msgpack marshal %T: %w", v, ErrTooDeep)
				return
			}
			data, err = nil, fmt.Errorf("codec: msgpack marshal %T: %w", v, panicError(r))
		}
	}()

	// A cycle of pointers and interfaces writes nothing as the encoder recurses, so
	// the buffer cannot stop it: it is looked for first.
	if checkPointerChains(v) {
		return nil, fmt.Errorf("codec: msgpack marshal %T: %w", v, ErrTooDeep)
	}
	s.buf.reset()
	s.enc.Reset(&s.buf)
	if err := s.enc.Encode(v); err != nil {
		return nil, fmt.Errorf("codec: msgpack marshal %T: %w", v, err)
	}
	// The last part written may not have been looked at (and a custom encoder
	// may have swallowed the panic).
	if msgpackTooDeep(s.buf.b) {
		return nil, fmt.Errorf("codec: msgpack marshal %T: %w", v, ErrTooDeep)
	}
	data = bytes.Clone(s.buf.b)
	if cap(s.buf.b) <= maxPooledSize {
		encoderPool.Put(s)
	}
	return data, nil
}

// decoderState is a reusable decoder reading from its own extReader.
// Because extReader implements io.ByteScanner the decoder does no
// buffering of its own, so the reader's position is exact.
type decoderState struct {
	r    extReader
	exts []int // scratch for scanMsgPack
	dec  *msgpack.Decoder
}

var decoderPool = sync.Pool{
	New: func() any {
		s := new(decoderState)
		s.dec = msgpack.NewDecoder(&s.r)
		return s
	},
}

// Unmarshal decodes exactly one MessagePack value from data into v, which
// must be a non-nil pointer. The input is validated first (see
// scanMsgPack), so malformed, truncated, hostile or trailing input is
// rejected before the decoder sees it.
func (msgpackCodec) Unmarshal(data []byte, v any) (err error) {
	if decodeScalar(data, v) {
		return nil
	}
	return unmarshalMsgPack(data, v)
}

// decodeScalar decodes data into v without the decoder when v is a non-nil *string,
// *int, *int64 or *bool and data is exactly one MessagePack value of the matching kind
// in a form the decoder reads the same way (a str; a fixint, an int 8 to 64 or a uint 8 to
// 32; a bool), as most session attributes are. It reports whether it did; otherwise
// nothing is written, and the decoder decides.
func decodeScalar(data []byte, v any) bool {
	if len(data) == 0 {
		return false
	}
	switch p := v.(type) {
	case *string:
		if p == nil {
			return false
		}
		b, n := data[0], len(data)
		var h, l int
		switch {
		case b >= 0xa0 && b <= 0xbf:
			h, l = 1, int(b&0x1f)
		case b == 0xd9 && n >= 2:
			h, l = 2, int(data[1])
		case b == 0xda && n >= 3:
			h, l = 3, int(binary.BigEndian.Uint16(data[1:]))
		case b == 0xdb && n >= 5:
			h, l = 5, int(binary.BigEndian.Uint32(data[1:]))
		default:
			return false
		}
		if n-h != l {
			return false
		}
		*p = string(data[h:])
		return true
	case *int64:
		if p == nil {
			return false
		}
		i, ok := msgpackInt(data)
		if ok {
			*p = i
		}
		return ok
	case *int:
		if p == nil || strconv.IntSize != 64 {
			return false
		}
		i, ok := msgpackInt(data)
		if ok {
			*p = int(i)
		}
		return ok
	case *bool:
		if p == nil || len(data) != 1 || data[0] != 0xc2 && data[0] != 0xc3 {
			return false
		}
		*p = data[0] == 0xc3
		return true
	}
	return false
}

// msgpackInt reads data as exactly one MessagePack integer that fits an int64 (a fixint,
// an int 8 to 64, a uint 8 to 32).
func msgpackInt(data []byte) (int64, bool) {
	b, n := data[0], len(data)
	switch {
	case b <= 0x7f && n == 1:
		return int64(b), true
	case b >= 0xe0 && n == 1:
		return int64(int8(b)), true
	case b == 0xcc && n == 2:
		return int64(data[1]), true
	case b == 0xcd && n == 3:
		return int64(binary.BigEndian.Uint16(data[1:])), true
	case b == 0xce && n == 5:
		return int64(binary.BigEndian.Uint32(data[1:])), true
	case b == 0xd0 && n == 2:
		return int64(int8(data[1])), true
	case b == 0xd1 && n == 3:
		return int64(int16(binary.BigEndian.Uint16(data[1:]))), true
	case b == 0xd2 && n == 5:
		return int64(int32(binary.BigEndian.Uint32(data[1:]))), true
	case b == 0xd3 && n == 9:
		return int64(binary.BigEndian.Uint64(data[1:])), true
	}
	return 0, false
}

// unmarshalMsgPack is Unmarshal through the decoder.
func unmarshalMsgPack(data []byte, v any) (err error) {
	if err := checkTarget(v); err != nil {
		return fmt.Errorf("codec: msgpack unmarshal: %w", err)
	}

	s := decoderPool.Get().(*decoderState)
	n, exts, err := scanMsgPack(data, s.exts[:0])
	s.exts = exts
	if err != nil || n != len(data) {
		putDecoder(s, len(data))
		if err != nil {
			return fmt.Errorf("codec: msgpack unmarshal %T: malformed input: %w", v, err)
		}
		return fmt.Errorf("codec: msgpack unmarshal %T: %d trailing bytes after value", v, len(data)-n)
	}

	defer func() {
		// A panic leaves s in an unknown state, so it is not returned to
		// the pool.
		if r := recover(); r != nil {
			err = fmt.Errorf("codec: msgpack unmarshal %T: %w", v, panicError(r))
		}
	}()

	s.r.reset(data, exts)
	s.dec.Reset(&s.r)
	if err := s.dec.Decode(v); err != nil {
		// Not pooled: the library can leave internal state behind after
		// a failed decode, and errors are the uncommon path.
		return fmt.Errorf("codec: msgpack unmarshal %T: %w", v, err)
	}
	left := s.r.Len()
	putDecoder(s, len(data))
	if left != 0 {
		return fmt.Errorf("codec: msgpack unmarshal %T: %d bytes left after value", v, left)
	}
	return nil
}

// putDecoder returns s to the pool unless it handled more than
// maxPooledSize bytes of input and may have grown accordingly.
func putDecoder(s *decoderState, size int) {
	s.r.reset(nil, nil) // do not keep the caller's buffer reachable
	if size <= maxPooledSize {
		decoderPool.Put(s)
	}
}
