package codec

import (
	"errors"
	"fmt"
	"reflect"
)

// Codec encodes one session attribute value at a time.
//
// Implementations must be safe for concurrent use.
type Codec interface {
	// Name returns the stable name stored with each session, such as
	// "msgpack" or "json". It never changes for a given wire format.
	Name() string
	// Marshal returns the encoding of v. The returned slice is owned by
	// the caller.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data, which must hold exactly one encoded value,
	// into v. v must be a non-nil pointer.
	Unmarshal(data []byte, v any) error
}

// MsgPack is the default codec. It encodes values as MessagePack using
// github.com/vmihailenco/msgpack/v5, producing the same bytes as
// msgpack.Marshal; its name is "msgpack".
//
// Unmarshal validates the whole input before decoding. Besides rejecting
// malformed and trailing data this bounds every allocation by the input
// size. Extension values (such as time.Time) are only ever decoded as
// extensions: the library's habit of reading an extension's data as a map
// header when a map is expected is refused with an error.
var MsgPack Codec = msgpackCodec{}

// JSON is a codec that encodes values with encoding/json and its default
// settings; its name is "json". Decoding into an interface value yields
// float64 for numbers and string for times and byte slices.
var JSON Codec = jsonCodec{}

// ByName returns the built-in codec whose Name is name ("msgpack" or
// "json"). The match is exact and case-sensitive. It reports false for any
// other name.
func ByName(name string) (Codec, bool) {
	switch name {
	case msgpackName:
		return msgpackCodec{}, true
	case jsonName:
		return jsonCodec{}, true
	}
	return nil, false
}

// errPanic marks an error converted from a panic raised while encoding or
// decoding. It is not exported; it exists so tests can tell a recovered
// panic apart from an ordinary decoding error.
var errPanic = errors.New("recovered panic")

// panicError converts a recovered panic value into an error.
func panicError(r any) error {
	if err, ok := r.(error); ok {
		return fmt.Errorf("%w: %w", errPanic, err)
	}
	return fmt.Errorf("%w: %v", errPanic, r)
}

// checkTarget reports an error unless v is a non-nil pointer.
func checkTarget(v any) error {
	if v == nil {
		return errors.New("destination is nil")
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return fmt.Errorf("destination %T is not a pointer", v)
	}
	if rv.IsNil() {
		return fmt.Errorf("destination %T is a nil pointer", v)
	}
	return nil
}
