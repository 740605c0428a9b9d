package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

type fuzzInner struct {
	N int
	S string
}

type fuzzStruct struct {
	Name  string
	Count int64
	Small int8
	U     uint16
	F     float64
	OK    bool
	Raw   []byte
	When  time.Time
	Tags  []string
	Attrs map[string]any
	Inner fuzzInner
	Ptr   *fuzzInner
	Any   any
}

// fuzzDests returns fresh pointers to every destination type the fuzz
// targets decode into.
func fuzzDests() []any {
	return []any{
		new(any),
		new(string),
		new(int64),
		new(map[string]any),
		new(fuzzStruct),
		new(time.Time),
		new([]any),
		new([]byte),
		new(float64),
	}
}

// fuzzValues are encoded with each codec to seed its fuzz target.
func fuzzValues() []any {
	return []any{
		nil, true, false, 0, 1, -1, 127, 128, -33, 255, 65536,
		int64(math.MinInt64), uint64(math.MaxUint64), 1.5, float32(-2.25),
		"", "session", "héllo 世界", []byte{0, 1, 2},
		time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC),
		time.Date(2600, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Time{},
		[]any{1, "a", nil, []any{true}},
		map[string]any{"user": "ada", "n": 3, "nested": map[string]any{"x": []any{1.5}}},
		fuzzStruct{
			Name: "ada", Count: 1 << 40, Small: -5, U: 300, F: 0.5, OK: true,
			Raw: []byte("raw"), When: time.Unix(1700000000, 5), Tags: []string{"a", "b"},
			Attrs: map[string]any{"k": "v"}, Inner: fuzzInner{1, "i"}, Ptr: &fuzzInner{2, "p"},
			Any: []any{"x"},
		},
	}
}

// knownPanics lists panics of the msgpack library (v5.4.1) that Unmarshal
// turns into errors and that the fuzz targets therefore tolerate. Any other
// recovered panic fails the fuzz target so that it gets looked at.
var knownPanics = []string{
	// nil decoded into a non-pointer extension type, such as a time.Time
	// struct field or slice element: the library calls
	// reflect.Value.IsNil on the struct. See TestMsgPackNilIntoTime.
	"reflect: call of reflect.Value.IsNil on struct Value",
}

// checkDecoded fails t if err is an unexpected recovered panic, and
// otherwise checks that a successfully decoded value re-encodes and decodes
// again.
func checkDecoded(t *testing.T, c Codec, data []byte, v any, err error) {
	t.Helper()
	if errors.Is(err, errPanic) {
		known := slices.ContainsFunc(knownPanics, func(p string) bool {
			return strings.HasSuffix(err.Error(), p)
		})
		if !known {
			t.Fatalf("Unmarshal(%q) into %T panicked: %v", data, v, err)
		}
		return
	}
	if err != nil {
		return
	}
	elem := reflect.ValueOf(v).Elem().Interface()
	re, err := c.Marshal(elem)
	if err != nil {
		t.Fatalf("Unmarshal(%q) into %T gave %#v, which does not re-encode: %v", data, v, elem, err)
	}
	v2 := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := c.Unmarshal(re, v2); err != nil {
		t.Fatalf("re-encoded %#v as %q, which does not decode into %T: %v", elem, re, v2, err)
	}
}

func FuzzMsgPackUnmarshal(f *testing.F) {
	for _, v := range fuzzValues() {
		data, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"\xc1",
		"\xdd\xff\xff\xff\xff",         // array32 declaring 4G elements
		"\xdf\xff\xff\xff\xff",         // map32 declaring 4G entries
		"\xdb\xff\xff\xff\xffab",       // str32 longer than the input
		"\xc7\x03\xff\x00\x00\x00",     // time ext with an invalid length
		"\xd6\xff\x00\x00\x00\x00\x01", // time plus a trailing byte
		"\x91\x91\x91\x91\xc0",         // nested arrays
		"\x82\xa1a\x01\xa1a\x02",       // duplicate map keys
		"\x81\x01\x02",                 // non-string map key
		"\xd4\x42\x00",                 // unknown ext type
		strings.Repeat("\x91", MaxDepth) + "\xc0",   // as deep as accepted
		strings.Repeat("\x91", MaxDepth+1) + "\xc0", // one level deeper
		strings.Repeat("\xdc\x00\x01", MaxDepth) + "\xc0",
		"\xc6\x00\x00\x27\x11" + strings.Repeat("\x91", MaxDepth+1), // deep-looking bytes in a bin
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		n, _, scanErr := scanMsgPack(data, nil)
		// Marshal's depth check, which reads whole values and their beginnings, never
		// panics and agrees with the scanner's bound.
		for _, end := range []int{len(data) / 2, len(data)} {
			_ = msgpackTooDeep(data[:end])
		}
		if scanErr == nil && msgpackTooDeep(data[:n]) {
			t.Fatalf("scan accepted %q but Marshal's depth check finds it too deep", data)
		}
		if errors.Is(scanErr, errTooDeep) && !msgpackTooDeep(data) {
			t.Fatalf("scan found %q too deep but Marshal's depth check does not", data)
		}
		if scanErr == nil {
			// The scanner and the library agree on where the value ends.
			r := bytes.NewReader(data)
			if err := msgpack.NewDecoder(r).Skip(); err != nil {
				t.Fatalf("scan accepted %q (%d bytes) but msgpack Skip failed: %v", data, n, err)
			}
			if used := len(data) - r.Len(); used != n {
				t.Fatalf("scan measured %d bytes of %q, msgpack Skip consumed %d", n, data, used)
			}
		}
		for _, v := range fuzzDests() {
			err := MsgPack.Unmarshal(data, v)
			if err == nil && (scanErr != nil || n != len(data)) {
				t.Fatalf("Unmarshal(%q) into %T succeeded although scan gave n=%d, err=%v", data, v, n, scanErr)
			}
			checkDecoded(t, MsgPack, data, v, err)
		}
	})
}

func FuzzJSONUnmarshal(f *testing.F) {
	for _, v := range fuzzValues() {
		data, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", " ", "{", `{"a":`, `"\ud800"`, `1e400`, `-0`, `[1,2,]`, `{"a":1}{}`,
		`{"When":"not a time"}`, `"2024-02-29T23:59:58Z"`, `{"Raw":"!!"}`, "\x81\xa1a\x01",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data)
		if valid {
			var v any
			d := json.NewDecoder(bytes.NewReader(data))
			d.UseNumber() // fails on nothing but the nesting
			err := d.Decode(&v)
			if tooDeep := jsonTooDeep(data); tooDeep != (err != nil) {
				t.Fatalf("Marshal's depth check says too deep = %v for %.60q; encoding/json: %v", tooDeep, data, err)
			}
		}
		for _, v := range fuzzDests() {
			err := JSON.Unmarshal(data, v)
			if err == nil && !valid {
				t.Fatalf("Unmarshal(%q) into %T succeeded on invalid JSON", data, v)
			}
			checkDecoded(t, JSON, data, v, err)
		}
	})
}

// The scalar fast path of MsgPack.Unmarshal decodes exactly what the decoder does, into
// every target it takes; what it does not take is left to the decoder.
func FuzzMsgPackScalar(f *testing.F) {
	for _, v := range []any{"", "alice", strings.Repeat("x", 31), strings.Repeat("y", 32), strings.Repeat("z", 300),
		strings.Repeat("w", 70000), 0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, -129, -32769,
		int64(1) << 40, int64(-1) << 40, uint64(1) << 63, true, false, 1.5, []byte("bin"), nil} {
		data, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\xa3ab"))   // fixstr shorter than it says
	f.Add([]byte("\xa1ab"))   // fixstr with a trailing byte
	f.Add([]byte("\xd9\x01")) // str8 without its byte
	f.Add([]byte("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pair := range []struct{ fast, slow any }{
			{new(string), new(string)}, {new(int), new(int)}, {new(int64), new(int64)}, {new(bool), new(bool)},
		} {
			if !decodeScalar(data, pair.fast) {
				continue
			}
			if err := unmarshalMsgPack(data, pair.slow); err != nil {
				t.Fatalf("%q into %T: the fast path decoded %v, the decoder failed: %v", data, pair.fast, reflect.ValueOf(pair.fast).Elem(), err)
			}
			if got, want := reflect.ValueOf(pair.fast).Elem().Interface(), reflect.ValueOf(pair.slow).Elem().Interface(); got != want {
				t.Fatalf("%q into %T: the fast path decoded %#v, the decoder %#v", data, pair.fast, got, want)
			}
		}
	})
}

// The fast path takes the forms session attributes usually have.
func TestMsgPackScalarFastPath(t *testing.T) {
	for _, tc := range []struct {
		v   any
		dst any
	}{
		{"alice", new(string)}, {strings.Repeat("é", 100), new(string)}, {300, new(int)}, {-5, new(int64)},
		{int64(1) << 40, new(int64)}, {true, new(bool)}, {false, new(bool)},
	} {
		data, err := msgpack.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if !decodeScalar(data, tc.dst) {
			t.Errorf("%#v (%q) into %T: not taken", tc.v, data, tc.dst)
			continue
		}
		if got := reflect.ValueOf(tc.dst).Elem().Interface(); fmt.Sprint(got) != fmt.Sprint(tc.v) {
			t.Errorf("%#v into %T: got %#v", tc.v, tc.dst, got)
		}
	}
}
