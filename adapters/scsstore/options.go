package scsstore

import (
	"fmt"
	"strings"

	"github.com/alexedwards/scs/v2"
)

// DefaultPrefix is the key prefix of a Store built without [WithPrefix]: the prefix scs's
// goredisstore uses. Keys are <prefix>{<token>}, so they never collide with
// goredisstore's <prefix><token>.
const DefaultPrefix = "scs:session:"

// Option configures a Store. New validates every option and returns the first error.
type Option func(*options) error

type options struct {
	prefix string

	legacy       bool
	legacyPrefix string
	legacyCodec  scs.Codec
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

// WithLegacy makes the Store read, on a miss, the sessions scs's goredisstore wrote, and
// move them to its own keys: users stay logged in across the switch from goredisstore
// (see the package doc, "Moving goredisstore's sessions"). prefix is goredisstore's prefix:
// [DefaultPrefix] for goredisstore.New, the one given to goredisstore.NewWithPrefix
// otherwise ("" means goredisstore's keys are bare tokens). codec is the
// SessionManager's Codec, which checks a legacy session before it is moved; nil means
// scs.GobCodec, scs's default. Default: off.
func WithLegacy(prefix string, codec scs.Codec) Option {
	return func(o *options) error {
		if codec == nil {
			codec = scs.GobCodec{}
		}
		o.legacy, o.legacyPrefix, o.legacyCodec = true, prefix, codec
		return nil
	}
}
