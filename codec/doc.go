// Package codec encodes and decodes individual session attribute values.
//
// A [Codec] turns one Go value into bytes and back. Each stored session
// records the [Codec.Name] of the codec that wrote it, so a reader can pick
// the matching codec with [ByName] even after the default changes.
//
// Two codecs are provided:
//
//   - [MsgPack], the default, uses MessagePack via
//     github.com/vmihailenco/msgpack/v5. Its output is byte-for-byte what
//     msgpack.Marshal produces. time.Time values round-trip (compare them
//     with [time.Time.Equal]; the location is not preserved).
//   - [JSON] uses encoding/json with its default behaviour. Numbers decoded
//     into an interface value become float64, so decode into typed values
//     where precision matters.
//
// Both codecs only see exported struct fields and honour the usual struct
// tags of their underlying library ("msgpack" and "json").
//
// Unmarshal does not panic on malformed input: it returns an error for
// truncated, oversized or trailing data and for values that do not fit the
// destination, and it turns panics raised inside the underlying library or
// in user-defined marshalling methods into errors. MessagePack input is
// checked for well-formedness before it is decoded, so declared lengths can
// never make the decoder allocate more than the input justifies, and nesting
// deeper than [MaxDepth] (10000) levels is rejected (the same limit
// encoding/json applies).
//
// Marshal refuses what could not be read back: a value nested deeper than
// [MaxDepth] is an error wrapping [ErrTooDeep], in both codecs. With
// [MsgPack] so is a value that contains itself (a map holding itself, a
// pointer cycle between structs, a slice holding itself through an
// interface): the encoder is stopped once the nesting it has written passes
// the bound, instead of recursing until the process dies of a stack
// overflow. The check costs nothing for values under 10000 bytes and a scan
// of the output for larger ones. A cycle of pointers and interfaces alone
// (an any holding a pointer to itself), which writes nothing as the encoder
// recurses, is found before encoding: a value whose type can hold a pointer
// or an interface is walked, refusing more than [MaxDepth] of them in a row;
// for any other type the check is one cached look-up.
//
// The codecs are safe for concurrent use. Marshal always returns a new
// slice that the caller owns.
//
// Happy path:
//
//	type Cart struct {
//		Items   []string
//		Updated time.Time
//	}
//
//	data, err := codec.MsgPack.Marshal(Cart{Items: []string{"book"}, Updated: time.Now()})
//	if err != nil {
//		return err
//	}
//	// Store codec.MsgPack.Name() alongside data, then later:
//	c, ok := codec.ByName(storedName)
//	if !ok {
//		return fmt.Errorf("unknown codec %q", storedName)
//	}
//	var cart Cart
//	if err := c.Unmarshal(data, &cart); err != nil {
//		return err
//	}
package codec
