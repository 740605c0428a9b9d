package codec

import (
	"testing"
	"time"
)

type chainBenchStruct struct {
	UserID  int64
	Name    string
	Admin   bool
	Created time.Time
}

type chainBenchPointers struct {
	Name string
	Next *chainBenchStruct
	Tags []any
}

// The check before encoding costs one type look-up for a type that can hold no pointer or
// interface, and a short walk for one that can.
func BenchmarkCheckPointerChains(b *testing.B) {
	for _, bc := range []struct {
		name string
		v    any
	}{
		{"struct", chainBenchStruct{UserID: 1, Name: "Ada", Created: time.Unix(1700000000, 0)}},
		{"[]int", []int{1, 2, 3}},
		{"pointers", &chainBenchPointers{Name: "x", Next: &chainBenchStruct{}, Tags: []any{"a", 1}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if checkPointerChains(bc.v) {
					b.Fatal("reported a chain")
				}
			}
		})
	}
}
