package sid_test

import (
	"bytes"
	"fmt"

	"github.com/hasession/hasession/internal/sid"
)

func Example() {
	id, err := sid.New()
	if err != nil {
		panic(err)
	}
	fmt.Println(len(id), sid.Valid(id))
	fmt.Println(sid.Valid("3F2504E0-4F89-41D3-9A0C-0305E82C3301")) // uppercase

	// Output:
	// 36 true
	// false
}

func ExampleTagger_Tag() {
	const id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

	plain, _ := sid.NewTagger(nil)
	fmt.Println("sess:{" + plain.Tag(id) + "}")

	keyed, err := sid.NewTagger(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		panic(err)
	}
	fmt.Println(keyed.Hashed(), len(keyed.Tag(id)))

	// Output:
	// sess:{3f2504e0-4f89-41d3-9a0c-0305e82c3301}
	// true 43
}
