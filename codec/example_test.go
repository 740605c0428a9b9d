package codec_test

import (
	"fmt"
	"time"

	"github.com/hasession/hasession/codec"
)

func Example() {
	type Cart struct {
		Items   []string
		Updated time.Time
	}
	in := Cart{Items: []string{"book", "pen"}, Updated: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}

	data, err := codec.MsgPack.Marshal(in)
	if err != nil {
		panic(err)
	}
	name := codec.MsgPack.Name() // stored with the session

	c, ok := codec.ByName(name)
	if !ok {
		panic("unknown codec " + name)
	}
	var out Cart
	if err := c.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	fmt.Println(name, out.Items, out.Updated.Equal(in.Updated))

	// Output:
	// msgpack [book pen] true
}
