package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Option configures a topology. Options that do not apply to a topology (WithMasters on a
// Sentinel topology, say) are ignored by it.
type Option func(*config) error

type config struct {
	image          string
	masters        int
	replicas       int // Cluster: per master; Sentinel: in all; -1 = the topology's default
	sentinels      int
	masterName     string
	nodeTimeout    time.Duration
	failoverTO     time.Duration
	fullCoverage   bool
	extraArgs      []string
	logger         *slog.Logger
	startupTimeout time.Duration
	tls            bool
	users          []aclUser
}

// aclUser is a Redis ACL user that WithACLUser adds to every Redis node.
type aclUser struct {
	name, password string
	rules          []string
}

func defaultConfig() config {
	return config{
		masters:        3,
		replicas:       -1,
		sentinels:      3,
		masterName:     "mymaster",
		nodeTimeout:    time.Second,
		failoverTO:     3 * time.Second,
		logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		startupTimeout: 60 * time.Second,
	}
}

func newConfig(opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// WithImage sets the Redis image. Default: $REDIS_IMAGE, else the local hasession/redis
// image, built offline on first use (see [EnsureImage]).
func WithImage(image string) Option {
	return func(c *config) error {
		if image == "" {
			return errors.New("cluster: empty image name")
		}
		c.image = image
		return nil
	}
}

// WithMasters sets the number of Cluster masters (shards). Default 3; at least 1.
func WithMasters(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 32 {
			return fmt.Errorf("cluster: masters must be in [1, 32], got %d", n)
		}
		c.masters = n
		return nil
	}
}

// WithReplicas sets the number of replicas: per master for a Cluster (default 1), in all
// for a Sentinel topology (default 2). Zero means none.
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 0 || n > 8 {
			return fmt.Errorf("cluster: replicas must be in [0, 8], got %d", n)
		}
		c.replicas = n
		return nil
	}
}

// WithSentinels sets the number of sentinels of a Sentinel topology. Default 3; quorum is
// a majority of them.
func WithSentinels(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 9 {
			return fmt.Errorf("cluster: sentinels must be in [1, 9], got %d", n)
		}
		c.sentinels = n
		return nil
	}
}

// WithMasterName sets the name the sentinels monitor the master under. Default "mymaster".
func WithMasterName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("cluster: empty master name")
		}
		for _, r := range name {
			if r <= ' ' || r > '~' {
				return fmt.Errorf("cluster: master name %q has a space or non-ASCII character", name)
			}
		}
		c.masterName = name
		return nil
	}
}

// WithNodeTimeout sets cluster-node-timeout and Sentinel's down-after-milliseconds.
// Default 1 s: a failure is detected after about this long.
func WithNodeTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond || d > time.Minute {
			return fmt.Errorf("cluster: node timeout must be in [100ms, 1m], got %s", d)
		}
		c.nodeTimeout = d
		return nil
	}
}

// WithFailoverTimeout sets Sentinel's failover-timeout. Default 3 s.
func WithFailoverTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 500*time.Millisecond || d > 5*time.Minute {
			return fmt.Errorf("cluster: failover timeout must be in [500ms, 5m], got %s", d)
		}
		c.failoverTO = d
		return nil
	}
}

// WithRequireFullCoverage sets cluster-require-full-coverage. Default false: when a whole
// shard is down, the other shards keep serving.
func WithRequireFullCoverage(on bool) Option {
	return func(c *config) error {
		c.fullCoverage = on
		return nil
	}
}

// WithRedisArgs appends command-line arguments to every Redis node (not the sentinels),
// e.g. "--maxmemory", "256mb".
func WithRedisArgs(args ...string) Option {
	return func(c *config) error {
		c.extraArgs = append(c.extraArgs, args...)
		return nil
	}
}

// WithLogger sets a logger for the topology's progress (containers started, cluster
// formed, faults injected and healed). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("cluster: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithStartupTimeout bounds how long Run… waits for the topology to become healthy.
// Default 60 s.
func WithStartupTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("cluster: startup timeout must be positive, got %s", d)
		}
		c.startupTimeout = d
		return nil
	}
}

// WithTLS runs every connection of the topology over TLS (default off): clients, the
// replication links, the Cluster bus and the sentinels' links to the servers and to each
// other. The topology generates a CA of its own and a certificate per node (its static IP
// as SAN) when it starts; no plaintext port is open. Clients need the topology's
// TLSConfig (which UniversalOptions and NodeOptions carry): it trusts that CA and presents
// a client certificate, which the nodes require.
func WithTLS(on bool) Option {
	return func(c *config) error {
		c.tls = on
		return nil
	}
}

// WithACLUser adds a Redis ACL user to every Redis node (not to the sentinels), enabled,
// with the password and the ACL rules given (e.g. "~app:*", "-@all", "+get"), as an ACL
// SETUSER line would set them; the node keeps it when it is restarted. UniversalOptions
// and ClusterOptions then log in as this user: what an application sees. The default user
// is left as it is, for the topology itself (health checks, faults, Client, NodeOptions)
// and for replication. Given more than once, every user is added and the last one is the
// one UniversalOptions uses. Names, passwords and rules may not be empty or contain
// spaces; a bad rule makes the nodes refuse to start.
func WithACLUser(name, password string, rules ...string) Option {
	return func(c *config) error {
		if !aclToken(name) || name == "default" {
			return fmt.Errorf("cluster: bad ACL user name %q", name)
		}
		if !aclToken(password) {
			return errors.New("cluster: an ACL user's password may not be empty or contain spaces")
		}
		for _, r := range rules {
			if !aclToken(r) {
				return fmt.Errorf("cluster: bad ACL rule %q for user %s", r, name)
			}
		}
		c.users = append(c.users, aclUser{name: name, password: password, rules: append([]string(nil), rules...)})
		return nil
	}
}

// aclToken reports whether s is one non-empty word of printable ASCII.
func aclToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' })
}
