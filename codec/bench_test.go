package codec_test

import (
	"testing"
	"time"

	"github.com/hasession/hasession/codec"
)

type benchStruct struct {
	UserID  int64
	Name    string
	Admin   bool
	Created time.Time
}

// benchValues are a ~40-byte string and a small struct, the typical shapes
// of session attributes.
var benchValues = []struct {
	name string
	v    any
	dest func() any
}{
	{"string40", "0123456789abcdef0123456789abcdef01234567", func() any { return new(string) }},
	{"struct", benchStruct{UserID: 1234567, Name: "Ada Lovelace", Admin: true, Created: time.Unix(1700000000, 123)},
		func() any { return new(benchStruct) }},
}

func BenchmarkMsgPackMarshal(b *testing.B) {
	for _, bv := range benchValues {
		b.Run(bv.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.MsgPack.Marshal(bv.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMsgPackUnmarshal(b *testing.B) {
	for _, bv := range benchValues {
		b.Run(bv.name, func(b *testing.B) {
			data, err := codec.MsgPack.Marshal(bv.v)
			if err != nil {
				b.Fatal(err)
			}
			dest := bv.dest()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := codec.MsgPack.Unmarshal(data, dest); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
