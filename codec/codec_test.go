package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hasession/hasession/codec"
)

type address struct {
	Street string
	Zip    int
}

type profile struct {
	Name    string
	Age     uint8
	Score   float64
	Admin   bool
	Tags    []string
	Attrs   map[string]string
	Counts  map[string]int64
	Avatar  []byte
	Home    address
	Work    *address
	Created time.Time
	//lint:ignore U1000 unexported on purpose: both codecs must ignore it
	internal int
}

// Equal compares profiles, using time.Time.Equal for Created.
func (p profile) Equal(o profile) bool {
	if !p.Created.Equal(o.Created) {
		return false
	}
	p.Created, o.Created = time.Time{}, time.Time{}
	return reflect.DeepEqual(p, o)
}

// times is a []time.Time compared element-wise with time.Time.Equal.
type times []time.Time

func (ts times) Equal(o times) bool {
	return slices.EqualFunc(ts, o, time.Time.Equal)
}

// roundTripCase marshals in with a codec, unmarshals into a fresh value of
// the same type and compares.
type roundTripCase struct {
	name string
	run  func(t *testing.T, c codec.Codec)
}

func rt[T any](name string, in T) roundTripCase {
	return roundTripCase{name: name, run: func(t *testing.T, c codec.Codec) {
		t.Helper()
		data, err := c.Marshal(in)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", in, err)
		}
		var out T
		if err := c.Unmarshal(data, &out); err != nil {
			t.Fatalf("Unmarshal(%q) into %T: %v", data, &out, err)
		}
		if !equal(in, out) {
			t.Fatalf("round trip mismatch:\n in: %#v\nout: %#v", in, out)
		}
	}}
}

// equal uses an Equal(T) bool method when T has one (time.Time, profile)
// and reflect.DeepEqual otherwise.
func equal[T any](a, b T) bool {
	if e, ok := any(a).(interface{ Equal(T) bool }); ok {
		return e.Equal(b)
	}
	return reflect.DeepEqual(a, b)
}

var (
	utcTime   = time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC)
	zonedTime = time.Date(1999, 12, 31, 12, 0, 0, 1, time.FixedZone("X", -7*3600))
	farTime   = time.Date(2600, 1, 1, 0, 0, 0, 999999999, time.UTC) // 12-byte msgpack form
	oldTime   = time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)         // negative Unix seconds
)

func roundTripCases() []roundTripCase {
	return []roundTripCase{
		rt("string", "hello, world"),
		rt("empty string", ""),
		rt("unicode string", "héllo, 世界 🙂"),
		rt("long string", strings.Repeat("x", 70000)),
		rt("bool true", true),
		rt("bool false", false),
		rt("int", 42),
		rt("int negative", -42),
		rt("int8 min", int8(math.MinInt8)),
		rt("int8 max", int8(math.MaxInt8)),
		rt("int16 min", int16(math.MinInt16)),
		rt("int16 max", int16(math.MaxInt16)),
		rt("int32 min", int32(math.MinInt32)),
		rt("int32 max", int32(math.MaxInt32)),
		rt("int64 min", int64(math.MinInt64)),
		rt("int64 max", int64(math.MaxInt64)),
		rt("uint8 max", uint8(math.MaxUint8)),
		rt("uint16 max", uint16(math.MaxUint16)),
		rt("uint32 max", uint32(math.MaxUint32)),
		rt("uint64 max", uint64(math.MaxUint64)),
		rt("uint", uint(7)),
		rt("float32", float32(3.25)),
		rt("float64", math.Pi),
		rt("float64 tiny", math.SmallestNonzeroFloat64),
		rt("float64 max", math.MaxFloat64),
		rt("bytes", []byte{0, 1, 2, 0xfe, 0xff}),
		rt("bytes empty", []byte{}),
		rt("bytes large", bytes.Repeat([]byte{0xab}, 100000)),
		rt("time utc", utcTime),
		rt("time zoned", zonedTime),
		rt("time far future", farTime),
		rt("time before 1970", oldTime),
		rt("time zero", time.Time{}),
		rt("time now", time.Now()),
		rt("duration", 90*time.Second),
		rt("slice int", []int{1, -2, 3}),
		rt("slice string", []string{"a", "", "c"}),
		rt("slice empty", []int{}),
		rt("slice nil", []int(nil)),
		rt("slice of times", times{utcTime, zonedTime}),
		rt("array", [3]int64{1, 2, 3}),
		rt("map string any", map[string]any{"a": "x", "b": true, "c": nil, "d": "", "e": []any{"1", "2"}}),
		rt("map string string", map[string]string{"k": "v", "": "empty key"}),
		rt("map string int64", map[string]int64{"min": math.MinInt64, "max": math.MaxInt64}),
		rt("map int string", map[int]string{1: "one", -2: "minus two"}),
		rt("map nested", map[string]map[string][]int{"a": {"b": {1, 2}}}),
		rt("map empty", map[string]int{}),
		rt("map nil", map[string]int(nil)),
		rt("struct", profile{
			Name:    "Ada",
			Age:     36,
			Score:   99.5,
			Admin:   true,
			Tags:    []string{"x", "y"},
			Attrs:   map[string]string{"lang": "en"},
			Counts:  map[string]int64{"visits": 1 << 40},
			Avatar:  []byte("png"),
			Home:    address{Street: "Main St", Zip: 12345},
			Work:    &address{Street: "Office Rd", Zip: 54321},
			Created: utcTime,
		}),
		rt("struct zero", profile{}),
		rt("struct pointer", &address{Street: "Elm", Zip: 1}),
		rt("slice of structs", []address{{"a", 1}, {"b", 2}}),
		rt("map of structs", map[string]address{"home": {"a", 1}}),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
		t.Run(c.Name(), func(t *testing.T) {
			for _, tc := range roundTripCases() {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
			}
		})
	}
}

func TestRoundTripInterface(t *testing.T) {
	// Decoding into any yields the codec's generic representation.
	tests := []struct {
		codec codec.Codec
		in    any
		want  any
	}{
		{codec.MsgPack, "s", "s"},
		{codec.MsgPack, int64(-5), int64(-5)},
		{codec.MsgPack, uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{codec.MsgPack, true, true},
		{codec.MsgPack, 1.5, 1.5},
		{codec.MsgPack, []byte("b"), []byte("b")},
		{codec.MsgPack, map[string]any{"k": "v"}, map[string]any{"k": "v"}},
		{codec.MsgPack, []string{"a"}, []any{"a"}},
		{codec.MsgPack, nil, nil},
		{codec.JSON, "s", "s"},
		{codec.JSON, 7, 7.0},
		{codec.JSON, true, true},
		{codec.JSON, map[string]any{"k": "v"}, map[string]any{"k": "v"}},
		{codec.JSON, []string{"a"}, []any{"a"}},
		{codec.JSON, nil, nil},
	}
	for _, tt := range tests {
		data, err := tt.codec.Marshal(tt.in)
		if err != nil {
			t.Fatalf("%s: Marshal(%#v): %v", tt.codec.Name(), tt.in, err)
		}
		var out any
		if err := tt.codec.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s: Unmarshal(%q): %v", tt.codec.Name(), data, err)
		}
		if !reflect.DeepEqual(out, tt.want) {
			t.Errorf("%s: %#v decoded into any = %#v (%T), want %#v (%T)",
				tt.codec.Name(), tt.in, out, out, tt.want, tt.want)
		}
	}

	// time.Time survives a trip through any with MessagePack.
	data, err := codec.MsgPack.Marshal(utcTime)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := codec.MsgPack.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if tm, ok := out.(time.Time); !ok || !tm.Equal(utcTime) {
		t.Errorf("time decoded into any = %#v, want %v", out, utcTime)
	}
}

func TestMsgPackMatchesLibrary(t *testing.T) {
	for _, v := range []any{
		"hello", 42, int64(-1), uint64(math.MaxUint64), 1.5, true, nil,
		[]byte("x"), utcTime, []int{1, 2}, address{"a", 1},
	} {
		got, err := codec.MsgPack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Marshal(%#v) = %x, msgpack.Marshal = %x", v, got, want)
		}
	}
}

func TestMarshalResultNotShared(t *testing.T) {
	a, err := codec.MsgPack.Marshal("first")
	if err != nil {
		t.Fatal(err)
	}
	saved := bytes.Clone(a)
	if _, err := codec.MsgPack.Marshal("second value that is longer"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, saved) {
		t.Fatalf("earlier Marshal result changed from %x to %x", saved, a)
	}
}

func TestNameAndByName(t *testing.T) {
	if got := codec.MsgPack.Name(); got != "msgpack" {
		t.Errorf("MsgPack.Name() = %q", got)
	}
	if got := codec.JSON.Name(); got != "json" {
		t.Errorf("JSON.Name() = %q", got)
	}
	for _, name := range []string{"msgpack", "json"} {
		c, ok := codec.ByName(name)
		if !ok || c == nil || c.Name() != name {
			t.Errorf("ByName(%q) = %v, %v", name, c, ok)
		}
	}
	for _, name := range []string{"", "MsgPack", "JSON", "gob", "msgpack "} {
		if c, ok := codec.ByName(name); ok || c != nil {
			t.Errorf("ByName(%q) = %v, %v; want nil, false", name, c, ok)
		}
	}
}

func TestUnmarshalBadDestination(t *testing.T) {
	var nilInt *int
	var nilMap *map[string]any
	dests := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"nil *int", nilInt},
		{"nil *map", nilMap},
		{"int value", 5},
		{"string value", "s"},
		{"map value", map[string]any{}},
		{"struct value", address{}},
	}
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
		data, err := c.Marshal(5)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dests {
			err := c.Unmarshal(data, d.v)
			if err == nil {
				t.Errorf("%s: Unmarshal into %s: got nil error", c.Name(), d.name)
				continue
			}
			if !strings.HasPrefix(err.Error(), "codec: ") {
				t.Errorf("%s: error %q lacks codec: prefix", c.Name(), err)
			}
		}
	}
}

func TestMsgPackUnmarshalGarbage(t *testing.T) {
	deep := func(n int) []byte { return append(bytes.Repeat([]byte{0x91}, n), 0xc0) }
	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"never used code", []byte{0xc1}},
		{"truncated fixstr", []byte{0xa5, 'a', 'b'}},
		{"truncated str8", []byte{0xd9}},
		{"truncated str32 length", []byte{0xdb, 0, 0}},
		{"str32 huge", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}},
		{"bin32 huge", []byte{0xc6, 0x7f, 0xff, 0xff, 0xff}},
		{"truncated int64", []byte{0xd3, 1, 2, 3}},
		{"truncated float64", []byte{0xcb, 0}},
		{"truncated fixarray", []byte{0x93, 0x01, 0x02}},
		{"truncated fixmap", []byte{0x81, 0xa1, 'k'}},
		{"array32 huge", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"map32 huge", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}},
		{"map16 huge", []byte{0xde, 0xff, 0xff, 0x01}},
		{"ext32 huge", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"truncated fixext8", []byte{0xd7, 0xff, 0, 0}},
		{"bad time ext length", []byte{0xc7, 0x03, 0xff, 1, 2, 3}},
		{"unknown ext", []byte{0xd4, 0x42, 0x00}},
		{"too deep", deep(20000)},
		{"trailing byte", []byte{0x01, 0x02}},
		{"trailing value", []byte{0xa1, 'a', 0xa1, 'b'}},
		{"trailing nil", []byte{0xc0, 0xc0}},
		{"text", []byte("hello, world")},
		{"json", []byte(`{"a":1}`)},
	}
	dests := []func() any{
		func() any { return new(any) },
		func() any { return new(string) },
		func() any { return new(int64) },
		func() any { return new(map[string]any) },
		func() any { return new(profile) },
		func() any { return new(time.Time) },
		func() any { return new([]any) },
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, newDest := range dests {
				v := newDest()
				err := codec.MsgPack.Unmarshal(tt.data, v)
				if err == nil {
					t.Errorf("Unmarshal(%.40q) into %T: got nil error, value %#v", tt.data, v, v)
					continue
				}
				if !strings.HasPrefix(err.Error(), "codec: msgpack unmarshal") {
					t.Errorf("error %q lacks context prefix", err)
				}
			}
		})
	}
}

func TestMsgPackNestingLimit(t *testing.T) {
	nested := func(n int) []byte { return append(bytes.Repeat([]byte{0x91}, n), 0xc0) }
	var v any
	if err := codec.MsgPack.Unmarshal(nested(10000), &v); err != nil {
		t.Fatalf("10000 levels: %v", err)
	}
	if err := codec.MsgPack.Unmarshal(nested(10001), &v); err == nil {
		t.Fatal("10001 levels: got nil error")
	}
}

func TestMsgPackTypeMismatch(t *testing.T) {
	data, err := codec.MsgPack.Marshal("not a number")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := codec.MsgPack.Unmarshal(data, &n); err == nil {
		t.Fatal("string into int64: got nil error")
	}
	var tm time.Time
	if err := codec.MsgPack.Unmarshal(data, &tm); err == nil {
		t.Fatal("string into time.Time: got nil error")
	}
}

func TestJSONUnmarshalGarbage(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"space", "   "},
		{"truncated object", `{"a":`},
		{"truncated string", `"abc`},
		{"trailing value", `1 2`},
		{"trailing garbage", `{"a":1}x`},
		{"two objects", `{}{}`},
		{"bare word", `hello`},
		{"msgpack bytes", "\x81\xa1a\x01"},
		{"too deep", strings.Repeat("[", 20000) + strings.Repeat("]", 20000)},
	}
	for _, tt := range tests {
		for _, v := range []any{new(any), new(string), new(int64), new(map[string]any), new(profile), new(time.Time)} {
			err := codec.JSON.Unmarshal([]byte(tt.data), v)
			if err == nil {
				t.Errorf("%s: Unmarshal(%.40q) into %T: got nil error", tt.name, tt.data, v)
				continue
			}
			if !strings.HasPrefix(err.Error(), "codec: json unmarshal") {
				t.Errorf("error %q lacks context prefix", err)
			}
		}
	}
}

func TestMarshalUnsupported(t *testing.T) {
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
		for _, v := range []any{make(chan int), func() {}} {
			data, err := c.Marshal(v)
			if err == nil {
				t.Errorf("%s: Marshal(%T) = %x, nil error", c.Name(), v, data)
				continue
			}
			if !strings.HasPrefix(err.Error(), "codec: "+c.Name()+" marshal") {
				t.Errorf("error %q lacks context prefix", err)
			}
		}
	}
}

// panicky panics from every custom encoding hook.
type panicky struct{}

func (panicky) EncodeMsgpack(*msgpack.Encoder) error  { panic("boom") }
func (*panicky) DecodeMsgpack(*msgpack.Decoder) error { panic("boom") }
func (panicky) MarshalJSON() ([]byte, error)          { panic("boom") }
func (*panicky) UnmarshalJSON([]byte) error           { panic(errors.New("boom")) }

func TestPanicsBecomeErrors(t *testing.T) {
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
		if _, err := c.Marshal(panicky{}); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("%s: Marshal of panicking value: err = %v", c.Name(), err)
		}
		data, err := c.Marshal(1)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Unmarshal(data, new(panicky)); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("%s: Unmarshal into panicking value: err = %v", c.Name(), err)
		}
		// The codec keeps working after a recovered panic.
		var n int
		if err := c.Unmarshal(data, &n); err != nil || n != 1 {
			t.Errorf("%s: after panic: n = %d, err = %v", c.Name(), n, err)
		}
	}
}

func TestErrorsWrap(t *testing.T) {
	data, err := codec.MsgPack.Marshal("x")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	err = codec.MsgPack.Unmarshal(data, &n)
	if err == nil || errors.Unwrap(err) == nil {
		t.Fatalf("error %v does not wrap the library error", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	in := profile{Name: "concurrent", Tags: []string{"a"}, Created: utcTime}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				c := codec.MsgPack
				if (g+i)%4 == 0 {
					c = codec.JSON
				}
				in := in
				in.Age = uint8(i)
				in.Name = fmt.Sprintf("g%d-%d", g, i)
				data, err := c.Marshal(in)
				if err != nil {
					t.Error(err)
					return
				}
				var out profile
				if err := c.Unmarshal(data, &out); err != nil {
					t.Error(err)
					return
				}
				if !out.Equal(in) {
					t.Errorf("got %+v, want %+v", out, in)
					return
				}
				// Interleave failures so pooled state sees error paths too.
				if err := c.Unmarshal(data[:len(data)-1], &out); err == nil {
					t.Error("truncated input: got nil error")
					return
				}
			}
		})
	}
	wg.Wait()
}

// withMap has a time field next to map fields: the library would read
// extension data as a map header at a map position.
type withMap struct {
	Before map[string]any
	When   time.Time
	After  map[string]string
	Times  []time.Time
}

func TestMsgPackTimesNextToMaps(t *testing.T) {
	// Timestamps whose encoded data starts with bytes that are also map
	// headers (fixmap 0x80-0x8f, map16 0xde, map32 0xdf) and nil (0xc0).
	whens := []time.Time{
		time.Unix(1700000000, 0x80<<22), // 64-bit form, first byte 0x80
		time.Unix(1700000000, 0x8f<<22),
		time.Unix(1700000000, 0xc0<<22),
		time.Unix(1700000000, 0xdf<<22),
		time.Unix(0xdf000000, 0), // 32-bit form, first byte 0xdf
		time.Unix(0xde000001, 0),
		time.Unix(0x80000000, 0),
		farTime, // 96-bit form
	}
	in := withMap{
		Before: map[string]any{"a": "b"},
		After:  map[string]string{"c": "d"},
		Times:  whens,
	}
	for _, when := range whens {
		in.When = when
		data, err := codec.MsgPack.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out withMap
		if err := codec.MsgPack.Unmarshal(data, &out); err != nil {
			t.Fatalf("%v: %v", when, err)
		}
		if !out.When.Equal(in.When) || !times(out.Times).Equal(in.Times) ||
			!reflect.DeepEqual(out.Before, in.Before) || !reflect.DeepEqual(out.After, in.After) {
			t.Fatalf("round trip mismatch:\n in: %#v\nout: %#v", in, out)
		}
	}
}

func TestMsgPackExtensionIntoMap(t *testing.T) {
	inputs := [][]byte{
		// Found by FuzzMsgPackUnmarshal: a timestamp whose data the
		// library used to read as a map32 header declaring 4G entries.
		[]byte("\xd7\xff\xdf\xff\xff00400"),
		[]byte("\xd6\xff\xdf\xff\xff\xff"),
		[]byte("\xc7\x05\x01\xdd\xff\xff\xff\xff"),
	}
	for _, data := range inputs {
		for _, v := range []any{new(map[string]any), new(map[string]string), new(map[int]int), new(struct{ M map[string]any })} {
			if err := codec.MsgPack.Unmarshal(data, v); err == nil {
				t.Errorf("Unmarshal(%q) into %T: got nil error", data, v)
			}
		}
	}
	// The map decoded as a struct field with the time in its place.
	data, err := codec.MsgPack.Marshal(map[string]any{"Before": utcTime})
	if err != nil {
		t.Fatal(err)
	}
	var out withMap
	if err := codec.MsgPack.Unmarshal(data, &out); err == nil {
		t.Errorf("time into map field: got nil error, value %#v", out)
	}
}

func TestMsgPackNilIntoTime(t *testing.T) {
	// The msgpack library panics when it decodes nil into a non-pointer
	// time.Time inside a struct, slice or map; Unmarshal reports an error.
	inputs := []struct {
		data string
		v    any
	}{
		{"\x81\xa4When\xc0", new(struct{ When time.Time })},
		{"\x91\xc0", new([]time.Time)},
		{"\x81\xa1a\xc0", new(map[string]time.Time)},
		{"\xc0", new(time.Time)},
	}
	for _, in := range inputs {
		if err := codec.MsgPack.Unmarshal([]byte(in.data), in.v); err == nil {
			t.Errorf("Unmarshal(%q) into %T: got nil error", in.data, in.v)
		}
	}
	// A pointer field takes nil as usual.
	var p struct{ When *time.Time }
	if err := codec.MsgPack.Unmarshal([]byte("\x81\xa4When\xc0"), &p); err != nil || p.When != nil {
		t.Errorf("nil into *time.Time field: When = %v, err = %v", p.When, err)
	}
}
