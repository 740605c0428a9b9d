package codec

import (
	"encoding/json"
	"fmt"
)

const jsonName = "json"

// jsonCodec implements Codec with encoding/json. The zero value is ready to
// use.
type jsonCodec struct{}

func (jsonCodec) Name() string { return jsonName }

// Marshal encodes v with json.Marshal. A value nested deeper than MaxDepth is
// an error wrapping ErrTooDeep: encoding/json would not decode it.
func (jsonCodec) Marshal(v any) (data []byte, err error) {
	defer func() {
		// encoding/json recovers its own panics; this guards against
		// panics from user-defined MarshalJSON or MarshalText methods.
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("codec: json marshal %T: %w", v, panicError(r))
		}
	}()
	data, err = json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: json marshal %T: %w", v, err)
	}
	if jsonTooDeep(data) {
		return nil, fmt.Errorf("codec: json marshal %T: %w", v, ErrTooDeep)
	}
	return data, nil
}

// Unmarshal decodes exactly one JSON value from data into v, which must be
// a non-nil pointer. Data after the value other than white space is an
// error.
func (jsonCodec) Unmarshal(data []byte, v any) (err error) {
	if err := checkTarget(v); err != nil {
		return fmt.Errorf("codec: json unmarshal: %w", err)
	}
	defer func() {
		// Guards against panics from user-defined UnmarshalJSON or
		// UnmarshalText methods.
		if r := recover(); r != nil {
			err = fmt.Errorf("codec: json unmarshal %T: %w", v, panicError(r))
		}
	}()
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: json unmarshal %T: %w", v, err)
	}
	return nil
}
