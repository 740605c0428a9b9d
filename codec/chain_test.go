package codec_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hasession/hasession/codec"
)

// selfPtr is a pointer type that can point to itself with no container in between.
type selfPtr *selfPtr

// holder is a struct with an interface field.
type holder struct {
	Name string
	V    any
}

// pointerChains returns values that refer to themselves only through pointers and
// interfaces, alone or inside containers. Encoding one writes nothing while it recurses,
// so no check of the output can stop it: a naive encoder dies of a stack overflow.
func pointerChains() map[string]any {
	var a any
	a = &a
	var b any
	var c any = &b
	b = &c
	var p selfPtr
	p = &p
	h := &holder{Name: "h"}
	h.V = &h.V
	twice := map[string]any{}
	twice["a"], twice["b"] = twice, []any{twice, twice}
	h2 := &holder{Name: "h2"}
	h2.V = h2 // a struct on the cycle: a map header per level
	return map[string]any{
		"any holding a pointer to itself":           &a,
		"two anys pointing at each other":           &b,
		"pointer type pointing to itself":           p,
		"cycle inside a slice":                      []any{1, &a},
		"cycle inside a map value":                  map[string]any{"k": &a},
		"cycle inside a map key":                    map[any]int{&a: 1},
		"cycle inside an array":                     [2]any{"x", &a},
		"cycle in a struct field":                   holder{Name: "x", V: &a},
		"struct interface field pointing to itself": h,
		"struct holding itself through interface":   h2,
		"map holding itself twice":                  twice,
		"cycle under nested containers":             map[string]any{"l": []any{map[string]any{"m": []any{&a}}}},
	}
}

func TestMsgPackMarshalPointerChainCycle(t *testing.T) {
	for name, v := range pointerChains() {
		t.Run(name, func(t *testing.T) {
			data, err := codec.MsgPack.Marshal(v)
			if !errors.Is(err, codec.ErrTooDeep) {
				t.Fatalf("Marshal = %d bytes, %v; want an error wrapping ErrTooDeep", len(data), err)
			}
			if !strings.HasPrefix(err.Error(), "codec: msgpack marshal") {
				t.Errorf("error %q lacks context prefix", err)
			}
		})
	}
}

// pointerChain returns n pointers to interfaces in a row around a string: 2n steps
// through a pointer or an interface.
func pointerChain(n int) any {
	var v any = "leaf"
	for range n {
		p := new(any)
		*p = v
		v = p
	}
	return v
}

// A long but finite chain of pointers and interfaces is no cycle: it encodes as before,
// up to MaxDepth of them in a row; a longer one is refused.
func TestMsgPackMarshalLongPointerChain(t *testing.T) {
	v := pointerChain(codec.MaxDepth / 2)
	data, err := codec.MsgPack.Marshal(v)
	if err != nil {
		t.Fatalf("%d pointers and interfaces: %v", codec.MaxDepth, err)
	}
	want, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("%d pointers and interfaces: got %x, want %x", codec.MaxDepth, data, want)
	}
	// Such chains several times inside containers: each container starts a new row. (An
	// element of type any is one more interface in the row.)
	w := pointerChain(codec.MaxDepth/2 - 1)
	inner := []any{w, map[string]any{"k": w}, holder{V: w}}
	if _, err := codec.MsgPack.Marshal(nestedSlicesAround(inner, 100)); err != nil {
		t.Fatalf("chains in containers: %v", err)
	}
	data, err = codec.MsgPack.Marshal(pointerChain(codec.MaxDepth/2 + 1))
	if !errors.Is(err, codec.ErrTooDeep) {
		t.Fatalf("%d pointers and interfaces: Marshal = %d bytes, %v; want an error wrapping ErrTooDeep", codec.MaxDepth+2, len(data), err)
	}
}

func nestedSlicesAround(v any, depth int) any {
	for range depth {
		v = []any{v}
	}
	return v
}

type child struct {
	ID   int
	Tags []string
}

type parent struct {
	Name  string
	Kid   *child
	Kids  []*child
	Any   any
	When  time.Time
	WhenP *time.Time
	//lint:ignore U1000 unexported on purpose: msgpack ignores it
	self *parent
}

// selfEncoding refers to itself through exported fields, but encodes itself by its
// own method: that is no cycle for the encoder.
type selfEncoding struct {
	Self *selfEncoding
	Any  any
}

func (s *selfEncoding) EncodeMsgpack(enc *msgpack.Encoder) error {
	return enc.EncodeString("self")
}

type shared struct {
	Left, Right *child
}

// Ordinary session attributes encode to exactly the library's bytes: the check for
// pointer cycles never refuses or changes them. A pointer shared by two fields, or an
// unexported field pointing back at its struct (which msgpack does not encode), is no
// cycle.
func TestMsgPackMarshalOrdinaryValuesUnchanged(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	k := &child{ID: 7, Tags: []string{"a"}}
	p := &parent{Name: "p", Kid: k, Kids: []*child{k, k, nil}, Any: k, When: when, WhenP: &when}
	p.self = p
	s := "str"
	se := &selfEncoding{}
	se.Self, se.Any = se, &se.Any
	for _, v := range []any{
		nil, "", "hello", 42, int64(-1), 3.5, true, []byte("bin"),
		[]string{"a", "b"}, map[string]int{"a": 1}, map[string]any{"b": []any{"x", 2, map[string]any{"c": k}}},
		when, &when, []time.Time{when}, p, *p, shared{Left: k, Right: k}, &s, []*string{&s, &s},
		map[string]*child{"k": k}, [3]*child{k, nil, k}, []any{p, p},
		se, []any{se}, map[string]*selfEncoding{"k": se},
	} {
		got, err := codec.MsgPack.Marshal(v)
		if err != nil {
			t.Errorf("Marshal(%T): %v", v, err)
			continue
		}
		want, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("msgpack.Marshal(%T): %v", v, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Marshal(%T) = %x, want %x", v, got, want)
		}
	}
}
