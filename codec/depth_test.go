package codec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hasession/hasession/codec"
)

// node is a struct that can point to itself.
type node struct {
	Name string
	Next *node
}

// selfReferring returns values that contain themselves: each would make a naive encoder
// recurse until the goroutine's stack overflows, which kills the process.
func selfReferring() map[string]any {
	m := map[string]any{"a": 1}
	m["self"] = m
	n := &node{Name: "a"}
	n.Next = &node{Name: "b", Next: n}
	s := make([]any, 2)
	s[0] = "x"
	s[1] = s
	deepInside := map[string]any{"list": []any{1, map[string]any{"m": m}}}
	return map[string]any{
		"map holding itself":           m,
		"struct pointer cycle":         n,
		"slice holding itself":         s,
		"cycle under ordinary nesting": deepInside,
		"acyclic struct pointers":      &node{Name: "a", Next: &node{Name: "b"}},
	}
}

func TestMsgPackMarshalSelfReferringValue(t *testing.T) {
	for name, v := range selfReferring() {
		t.Run(name, func(t *testing.T) {
			data, err := codec.MsgPack.Marshal(v)
			if name == "acyclic struct pointers" { // no cycle: a control
				if err != nil {
					t.Fatalf("Marshal: %v", err)
				}
				return
			}
			if !errors.Is(err, codec.ErrTooDeep) {
				t.Fatalf("Marshal = %d bytes, %v; want an error wrapping ErrTooDeep", len(data), err)
			}
			if !strings.HasPrefix(err.Error(), "codec: msgpack marshal") {
				t.Errorf("error %q lacks context prefix", err)
			}
		})
	}
}

// nestedSlices returns a value of depth nested levels of []any around a string.
func nestedSlices(depth int) any {
	var v any = "leaf"
	for range depth {
		v = []any{v}
	}
	return v
}

// nestedMaps returns depth levels of map[string]any around a string.
func nestedMaps(depth int) any {
	var v any = "leaf"
	for range depth {
		v = map[string]any{"k": v}
	}
	return v
}

// A value nested deeper than the decoders accept could be written and never read back:
// Marshal refuses it, at the same bound as Unmarshal.
func TestMarshalDepthLimit(t *testing.T) {
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
		for _, shape := range []struct {
			name string
			make func(int) any
		}{{"slices", nestedSlices}, {"maps", nestedMaps}} {
			t.Run(c.Name()+"/"+shape.name, func(t *testing.T) {
				data, err := c.Marshal(shape.make(codec.MaxDepth))
				if err != nil {
					t.Fatalf("%d levels: %v", codec.MaxDepth, err)
				}
				var out any
				if err := c.Unmarshal(data, &out); err != nil {
					t.Fatalf("%d levels do not decode: %v", codec.MaxDepth, err)
				}
				data, err = c.Marshal(shape.make(codec.MaxDepth + 1))
				if !errors.Is(err, codec.ErrTooDeep) {
					t.Fatalf("%d levels: Marshal = %d bytes, %v; want an error wrapping ErrTooDeep", codec.MaxDepth+1, len(data), err)
				}
			})
		}
	}
}

// The decoders' bound is MaxDepth: the JSON one is encoding/json's own.
func TestUnmarshalDepthLimit(t *testing.T) {
	for _, tc := range []struct {
		c    codec.Codec
		deep func(n int) []byte
	}{
		{codec.MsgPack, func(n int) []byte { return append([]byte(strings.Repeat("\x91", n)), 0xc0) }},
		{codec.JSON, func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }},
	} {
		var v any
		if err := tc.c.Unmarshal(tc.deep(codec.MaxDepth), &v); err != nil {
			t.Errorf("%s: %d levels: %v", tc.c.Name(), codec.MaxDepth, err)
		}
		if err := tc.c.Unmarshal(tc.deep(codec.MaxDepth+1), &v); err == nil {
			t.Errorf("%s: %d levels: got nil error", tc.c.Name(), codec.MaxDepth+1)
		}
	}
}

// Large but shallow values (strings, binary, long arrays: more bytes than MaxDepth)
// encode as before.
func TestMarshalLargeShallowValues(t *testing.T) {
	long := make([]any, 3*codec.MaxDepth)
	for i := range long {
		long[i] = []any{i, map[string]any{"k": "v"}}
	}
	for _, c := range []codec.Codec{codec.MsgPack, codec.JSON} {
		for _, v := range []any{strings.Repeat("x", 5*codec.MaxDepth), []byte(strings.Repeat("\x91", 5*codec.MaxDepth)), long} {
			if _, err := c.Marshal(v); err != nil {
				t.Errorf("%s: Marshal(%T): %v", c.Name(), v, err)
			}
		}
	}
}
