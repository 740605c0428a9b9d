package scsstore

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the key prefix of a Store built without [WithPrefix]: the prefix scs's
// goredisstore uses. Keys are <prefix>{<token>}, so they never collide with
// goredisstore's <prefix><token>.
const DefaultPrefix = "scs:session:"

// Option configures a Store. New validates every option and returns the first error.
type Option func(*options) error

type options struct {
	prefix string
}

// WithPrefix sets the prefix of every key. Default [DefaultPrefix]; "" means no prefix.
// It may not contain '{' or '}': they would change the key's hash slot.
func WithPrefix(p string) Option {
	return func(o *options) error {
		if strings.ContainsAny(p, "{}") {
			return fmt.Errorf("scsstore: prefix %q contains a brace", p)
		}
		o.prefix = p
		return nil
	}
}
