package gorillastore

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"

	"github.com/gorilla/sessions"
)

// DefaultOptions are the cookie options of a Store built without [WithOptions]: secure
// by default — HttpOnly, Secure, SameSite=Lax, Path "/" — with MaxAge 0, which the
// Store turns into the hasession store's absolute lifetime (store.Store.Lifetime).
var DefaultOptions = sessions.Options{
	Path:     "/",
	Secure:   true,
	HttpOnly: true,
	SameSite: http.SameSiteLaxMode,
}

// Option configures a Store. New validates every option and returns the first error.
type Option func(*options) error

type options struct {
	cookie     sessions.Options
	types      map[string]reflect.Type
	legacy     *legacy
	legacyJSON bool
	logger     *slog.Logger
}

// WithOptions sets the cookie options every new session starts with (a session's own
// Options may then be changed before Save, as with any gorilla store). Default
// [DefaultOptions]. MaxAge is the session's absolute lifetime in Redis as well as the
// cookie's (see Store.Save); 0 means the hasession store's lifetime. A negative MaxAge is
// an error (a Save with MaxAge ≤ 0 deletes the session), and so, from New, is one over
// the hasession store's maximum lifetime (store.WithMaxLifetime; by default its
// lifetime), matching store.ErrInvalidExpiry. The idle timeout stays the store's.
func WithOptions(o sessions.Options) Option {
	return func(opts *options) error {
		if o.MaxAge < 0 {
			return fmt.Errorf("gorillastore: default MaxAge %d is negative (a Save with MaxAge ≤ 0 deletes the session)", o.MaxAge)
		}
		opts.cookie = o
		return nil
	}
}

// WithValueType makes the value stored under key load as the type of example, as
// encoding/gob would give it back, instead of the generic types of an untyped decode
// (see the package documentation): WithValueType("cart", Cart{}) loads a Cart,
// WithValueType("visits", 0) an int. A value that does not decode into the type is an
// error from Get.
func WithValueType(key string, example any) Option {
	return func(o *options) error {
		if example == nil {
			return errors.New("gorillastore: WithValueType with a nil example")
		}
		if o.types == nil {
			o.types = make(map[string]reflect.Type)
		}
		o.types[key] = reflect.TypeOf(example)
		return nil
	}
}
