package store

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/internal/sid"
)

// Option configures a Store. New validates every option and returns the first error.
type Option func(*options) error

type options struct {
	prefix        string
	idle          time.Duration
	absolute      time.Duration
	maxIdle       time.Duration // 0: idle (see WithMaxIdleTimeout)
	maxAbsolute   time.Duration // 0: absolute (see WithMaxLifetime)
	touchInterval time.Duration
	grace         time.Duration
	codec         codec.Codec
	sizeLimit     int
	tagger        *sid.Tagger
	logger        *slog.Logger
	observer      Observer // nil: none (see WithObserver)
	versionCheck  bool
	retry         RetryPolicy
	ackReplicas   int
	ackTimeout    time.Duration
	ackPolicy     AckPolicy
	autoPipeline  bool
	events        func(Event)
	maxSessions   int
	limitPolicy   LimitPolicy
	legacyHash    *legacyHash // nil: none (see WithLegacyHash)
	near          *NearCache  // nil: none (see WithNearCache)
}

// Defaults.
const (
	DefaultPrefix        = "hs:"
	DefaultIdleTimeout   = 30 * time.Minute
	DefaultLifetime      = 24 * time.Hour
	DefaultTouchInterval = time.Minute
	DefaultGracePeriod   = 30 * time.Second
	DefaultSizeLimit     = 64 << 10
)

func defaultOptions() options {
	return options{
		prefix:        DefaultPrefix,
		idle:          DefaultIdleTimeout,
		absolute:      DefaultLifetime,
		touchInterval: DefaultTouchInterval,
		grace:         DefaultGracePeriod,
		codec:         codec.MsgPack,
		sizeLimit:     DefaultSizeLimit,
		retry:         DefaultRetryPolicy,
		autoPipeline:  true,
	}
}

// WithPrefix sets the prefix of every key. Default "hs:". It may not contain '{' or '}'
// (they would change the key's hash slot).
func WithPrefix(p string) Option {
	return func(o *options) error {
		if strings.ContainsAny(p, "{}") {
			return fmt.Errorf("hasession: prefix %q contains a brace", p)
		}
		o.prefix = p
		return nil
	}
}

// WithIdleTimeout sets the sliding expiry: a session not loaded or saved for this long is
// gone. Default 30 minutes. At least 1 s.
func WithIdleTimeout(d time.Duration) Option {
	return durationOption("idle timeout", d, func(o *options) *time.Duration { return &o.idle })
}

// WithLifetime sets the absolute lifetime: a session is gone this long after it was
// created, however active. Default 24 hours. At least 1 s.
func WithLifetime(d time.Duration) Option {
	return durationOption("lifetime", d, func(o *options) *time.Duration { return &o.absolute })
}

// durationOption sets the option that field points at to d, refusing d under 1 s (name
// names the option in the error).
func durationOption(name string, d time.Duration, field func(*options) *time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("hasession: %s %s is under 1s", name, d)
		}
		*field(o) = d
		return nil
	}
}

// WithMaxIdleTimeout sets the longest idle timeout a session may be given of its own
// ([Session.SetIdleTimeout]). Default: the store's idle timeout, so that without this
// option a session may only shorten its own. It may not be under the idle timeout.
func WithMaxIdleTimeout(d time.Duration) Option {
	return durationOption("maximum idle timeout", d, func(o *options) *time.Duration { return &o.maxIdle })
}

// WithMaxLifetime sets the longest absolute lifetime a session may be given of its own
// ([Session.SetLifetime]), such as a "remember me" login's 30 days beside the default
// lifetime of everyone else. Default: the store's lifetime, so that without this option a
// session may only shorten its own. It may not be under the lifetime.
func WithMaxLifetime(d time.Duration) Option {
	return durationOption("maximum lifetime", d, func(o *options) *time.Duration { return &o.maxAbsolute })
}

// WithTouchInterval sets how stale the last touch must be before a load extends the
// session's TTL. Default 1 minute; 0 touches on every load. It must be shorter than the
// idle timeout. A session with an idle timeout of its own shorter than the store's is
// touched at the interval scaled by the same ratio. Between touches a session can expire up to this much earlier than a
// touch-on-every-load store would let it.
func WithTouchInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("hasession: negative touch interval %s", d)
		}
		o.touchInterval = d
		return nil
	}
}

// WithGracePeriod sets how long a rotated session's old ID still leads to the new
// session. Default 30 s; 0 makes the old ID invalid at once.
func WithGracePeriod(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("hasession: negative grace period %s", d)
		}
		o.grace = d
		return nil
	}
}

// WithCodec sets the codec of attribute values. Default [codec.MsgPack]. A session
// written with one codec is an ErrCodecMismatch for a store with another.
func WithCodec(c codec.Codec) Option {
	return func(o *options) error {
		if c == nil || c.Name() == "" {
			return errors.New("hasession: nil or unnamed codec")
		}
		o.codec = c
		return nil
	}
}

// WithSizeLimit sets the largest session (attribute names and encoded values) Save
// accepts. Default 64 KiB.
func WithSizeLimit(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("hasession: size limit %d is not positive", n)
		}
		o.sizeLimit = n
		return nil
	}
}

// WithHashedIDs keeps raw session IDs out of Redis: keys carry HMAC-SHA256(key, id)
// instead, so a dump of Redis holds no usable session token. The key must have at least
// 32 bytes and must stay the same for existing sessions to be found.
func WithHashedIDs(key []byte) Option {
	return func(o *options) error {
		if len(key) == 0 {
			return errors.New("hasession: empty HMAC key")
		}
		t, err := sid.NewTagger(key)
		if err != nil {
			return fmt.Errorf("hasession: %w", err)
		}
		o.tagger = t
		return nil
	}
}

// WithVersionCheck makes Save fail with ErrConflict when the session changed in Redis
// since it was loaded. Default off: concurrent saves of different attributes both apply,
// and of the same attribute the last one wins.
func WithVersionCheck(on bool) Option {
	return func(o *options) error {
		o.versionCheck = on
		return nil
	}
}

// WithLogger sets a logger for events worth an operator's attention (corrupt data, a
// rotation that completed only half). Default: none.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		return nil
	}
}

// WithAutoPipeline turns auto-pipelining on (the default) or off. With it, the session
// reads and saves that concurrent requests make are sent together, one pipeline per
// Redis node, instead of one round trip each: a request alone is sent at once from its own
// goroutine, as without auto-pipelining, and requests that arrive while it or a pipeline
// is in flight go in the next pipeline. It saves most of the system calls and wake-ups a
// round trip costs the app server and Redis. Each caller still gets its own reply and
// error; a pipelined one waits no longer than its context allows. It
// applies to a *redis.Client (single server or Sentinel) and a *redis.ClusterClient;
// other clients send each command alone.
func WithAutoPipeline(on bool) Option {
	return func(o *options) error {
		o.autoPipeline = on
		return nil
	}
}

// WithRetryPolicy sets how operations are retried through a failover. A zero
// AttemptTimeout, MinBackoff or MaxBackoff takes the default.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(o *options) error {
		if p.MaxRetries < 0 || p.AttemptTimeout < 0 || p.MinBackoff < 0 || p.MaxBackoff < 0 {
			return fmt.Errorf("hasession: negative value in retry policy %+v", p)
		}
		if p.AttemptTimeout == 0 {
			p.AttemptTimeout = DefaultRetryPolicy.AttemptTimeout
		}
		if p.MinBackoff == 0 {
			p.MinBackoff = DefaultRetryPolicy.MinBackoff
		}
		if p.MaxBackoff == 0 {
			p.MaxBackoff = DefaultRetryPolicy.MaxBackoff
		}
		if p.MaxBackoff < p.MinBackoff {
			return fmt.Errorf("hasession: retry MaxBackoff %s under MinBackoff %s", p.MaxBackoff, p.MinBackoff)
		}
		o.retry = p
		return nil
	}
}
