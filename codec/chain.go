package codec

import (
	"encoding"
	"reflect"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A value that refers to itself through pointers and interfaces alone (an any holding a
// pointer to itself) makes the MessagePack encoder recurse for ever without writing a
// byte, so depthBuffer never gets to look at it and the goroutine's stack overflows,
// which kills the process. checkPointerChains finds such a value before it is encoded.
//
// The walk follows what the encoder follows (exported fields not tagged "-", elements,
// map keys and values, pointers and interfaces) and stops at what the encoder hands to a
// method (msgpack.CustomEncoder, msgpack.Marshaler, encoding.BinaryMarshaler,
// encoding.TextMarshaler, error). Types that can hold no pointer or interface there
// (scalars, strings, []byte, []string, structs of those, time.Time) are known from one
// look-up per type and never walked.

// chainInfo is what the walk knows about a type.
type chainInfo struct {
	// holds: a value of the type can hold a pointer or an interface that the encoder
	// follows. Without it the value is not walked.
	holds bool
	// fields are the struct fields worth walking (exported, not tagged "-", holds).
	fields []chainField
}

type chainField struct {
	index  int
	inline bool // an embedded struct the encoder may inline: no header of its own
}

var chainInfos sync.Map // reflect.Type -> *chainInfo

var (
	customEncoderType   = reflect.TypeFor[msgpack.CustomEncoder]()
	marshalerType       = reflect.TypeFor[msgpack.Marshaler]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	errorType           = reflect.TypeFor[error]()
)

// encodedByMethod reports whether the encoder hands a value of type t to one of its
// methods instead of looking inside it.
func encodedByMethod(t reflect.Type) bool {
	if t == errorType {
		return true
	}
	for _, m := range [...]reflect.Type{customEncoderType, marshalerType, binaryMarshalerType, textMarshalerType} {
		if t.Implements(m) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(m)) {
			return true
		}
	}
	return false
}

// typeChainInfo returns the cached chainInfo of t.
func typeChainInfo(t reflect.Type) *chainInfo {
	if ci, ok := chainInfos.Load(t); ok {
		return ci.(*chainInfo)
	}
	ci := computeChainInfo(t, map[reflect.Type]bool{})
	ci = chainInfoOf(t, ci)
	actual, _ := chainInfos.LoadOrStore(t, ci)
	return actual.(*chainInfo)
}

// chainInfoOf returns the info of a struct type t with its fields filled in, or ci.
func chainInfoOf(t reflect.Type, ci *chainInfo) *chainInfo {
	if !ci.holds || t.Kind() != reflect.Struct {
		return ci
	}
	out := &chainInfo{holds: true}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("msgpack")
		if tagName(tag) == "-" {
			continue
		}
		if !typeChainInfo(f.Type).holds {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		out.fields = append(out.fields, chainField{
			index:  i,
			inline: f.Anonymous && ft.Kind() == reflect.Struct && !hasTagOption(tag, "noinline"),
		})
	}
	return out
}

// tagName returns the name part of a msgpack struct tag.
func tagName(tag string) string {
	if i := strings.IndexByte(tag, ','); i >= 0 {
		return tag[:i]
	}
	return tag
}

// hasTagOption reports whether the msgpack struct tag has the option opt.
func hasTagOption(tag, opt string) bool {
	for i := 0; i < len(tag); {
		j := i
		for j < len(tag) && tag[j] != ',' {
			j++
		}
		if i > 0 && tag[i:j] == opt {
			return true
		}
		i = j + 1
	}
	return false
}

// computeChainInfo works out whether a value of type t can hold a pointer or an interface
// the encoder follows. inProgress holds the types being worked out further up, for
// recursive types: assuming false for them is sound, as a recursion adds no new kind of
// field. A result that assumed so is not cached, except at the top (typeChainInfo).
func computeChainInfo(t reflect.Type, inProgress map[reflect.Type]bool) *chainInfo {
	if ci, ok := chainInfos.Load(t); ok {
		return ci.(*chainInfo)
	}
	if inProgress[t] {
		return &chainInfo{}
	}
	if encodedByMethod(t) {
		return cacheChainInfo(t, &chainInfo{})
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		return cacheChainInfo(t, &chainInfo{holds: true})
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return cacheChainInfo(t, &chainInfo{})
		}
		inProgress[t] = true
		holds := computeChainInfo(t.Elem(), inProgress).holds
		delete(inProgress, t)
		return &chainInfo{holds: holds}
	case reflect.Map:
		inProgress[t] = true
		holds := computeChainInfo(t.Key(), inProgress).holds || computeChainInfo(t.Elem(), inProgress).holds
		delete(inProgress, t)
		return &chainInfo{holds: holds}
	case reflect.Struct:
		inProgress[t] = true
		holds := false
		for i := 0; i < t.NumField() && !holds; i++ {
			f := t.Field(i)
			if (!f.IsExported() && !f.Anonymous) || tagName(f.Tag.Get("msgpack")) == "-" {
				continue
			}
			holds = computeChainInfo(f.Type, inProgress).holds
		}
		delete(inProgress, t)
		return &chainInfo{holds: holds}
	}
	return cacheChainInfo(t, &chainInfo{})
}

// cacheChainInfo caches ci for t when it depends on no assumption: a leaf, or a type
// known to hold a pointer or an interface.
func cacheChainInfo(t reflect.Type, ci *chainInfo) *chainInfo {
	if t.Kind() == reflect.Struct && ci.holds {
		return ci // the fields are filled in by typeChainInfo
	}
	actual, _ := chainInfos.LoadOrStore(t, ci)
	return actual.(*chainInfo)
}

// checkPointerChains reports whether v holds a chain of more than MaxDepth pointers and
// interfaces in a row (which a cycle of them is), or nests containers that can hold them
// deeper than MaxDepth (which the encoder would refuse too). The cost for a value whose
// type can hold no pointer or interface is one type look-up.
func checkPointerChains(v any) bool {
	switch v.(type) {
	case nil, string, []byte, bool, int, int64, int32, uint64, uint32, float64, []string,
		map[string]string, map[string]int, map[string]int64, map[string]bool:
		return false
	}
	if !typeChainInfo(reflect.TypeOf(v)).holds {
		return false
	}
	return walkChains(reflect.ValueOf(v), 0)
}

// walkChains walks v, depth containers deep, and reports whether it finds a chain of
// pointers and interfaces longer than MaxDepth or nesting deeper than MaxDepth. Its own
// recursion is bounded by MaxDepth.
func walkChains(v reflect.Value, depth int) bool {
	// Follow pointers and interfaces in a row. A cycle among them is caught by the
	// bound on their number, and sooner by Brent's method: the pointer seen at each
	// power of two steps is kept and compared with those that follow.
	var (
		steps    int
		mark     uintptr
		markType reflect.Type
		power    = 1
	)
	for {
		ci := typeChainInfo(v.Type())
		if !ci.holds {
			return false
		}
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				return false
			}
			p := v.Pointer()
			if p == mark && v.Type() == markType {
				return true
			}
			if steps++; steps > MaxDepth {
				return true
			}
			if steps == power {
				mark, markType, power = p, v.Type(), 2*power
			}
			v = v.Elem()
			continue
		case reflect.Interface:
			if v.IsNil() {
				return false
			}
			if steps++; steps > MaxDepth {
				return true
			}
			v = v.Elem()
			continue
		}
		return walkContainer(v, ci, depth)
	}
}

// walkContainer walks the elements of the slice, array, map or struct v.
func walkContainer(v reflect.Value, ci *chainInfo, depth int) bool {
	if depth++; depth > MaxDepth {
		return true
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if walkChains(v.Index(i), depth) {
				return true
			}
		}
	case reflect.Map:
		t := v.Type()
		keys, elems := typeChainInfo(t.Key()).holds, typeChainInfo(t.Elem()).holds
		for it := v.MapRange(); it.Next(); {
			if keys && walkChains(it.Key(), depth) {
				return true
			}
			if elems && walkChains(it.Value(), depth) {
				return true
			}
		}
	case reflect.Struct:
		for _, f := range ci.fields {
			d := depth
			if f.inline {
				d-- // its fields are written in this struct's map
			}
			if walkChains(v.Field(f.index), d) {
				return true
			}
		}
	}
	return false
}
