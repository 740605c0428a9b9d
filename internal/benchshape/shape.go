// Package benchshape holds the session shapes the benchmarks share, so that the store's
// benchmarks and `bench compare` measure the same sessions.
package benchshape

import (
	"fmt"
	"strconv"
	"strings"
)

// Name is the value of the "name" attribute, which benchmark requests read and check.
const Name = "Ada Lovelace"

// Session returns the attributes of a typical (~300 B encoded, 6 attributes) or, for size
// "large", a ~8 KB session (the typical attributes and 36 cart items).
func Session(size string) map[string]any {
	attrs := map[string]any{
		"user_id": "6f1c2a9e-2b0d-4a8e-9a51-3c7d9f0e4b21",
		"name":    Name,
		"roles":   []string{"member", "editor", "billing"},
		"csrf":    "k3J9xQ2mZ7vL1pR8tY4wE6uI0oA5sD3fG9hJ2kL7",
		"last":    "/account/settings/notifications?tab=email&page=2",
		"prefs":   map[string]string{"theme": "dark", "lang": "en-GB", "tz": "Europe/London"},
	}
	if size == "large" {
		for i := range 36 {
			attrs["item"+strconv.Itoa(i)] = map[string]any{
				"sku": fmt.Sprintf("SKU-%06d", i), "qty": i%5 + 1, "price": 1999 + i,
				"title": strings.Repeat("Hand-bound notebook ", 8)[:150],
			}
		}
	}
	return attrs
}
