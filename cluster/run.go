package cluster

import (
	"context"
	"crypto/tls"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"
)

// Topology is what every kind offers: addresses, a client, roles, a health gate, faults
// and cleanup. [Standalone], [Sentinel] and [Cluster] implement it.
type Topology interface {
	Kind() Kind
	ID() string
	Image() string
	Network() string
	Subnet() netip.Prefix

	// Addrs returns the Redis servers' addresses.
	Addrs() []string
	// UniversalOptions returns go-redis options that reach the topology, as the
	// [WithACLUser] user when there is one.
	UniversalOptions() *redis.UniversalOptions
	// Client returns a ready client as the default user, closed by Terminate.
	Client() redis.UniversalClient
	// TLSConfig returns the TLS configuration clients need (nil without [WithTLS]).
	TLSConfig() *tls.Config
	// NodeOptions returns options for a direct connection to one node as the default user.
	NodeOptions(n *Node) *redis.Options

	Nodes() []*Node
	Node(name string) *Node
	Status(ctx context.Context) ([]NodeStatus, error)
	MasterForKey(ctx context.Context, key string) (*Node, error)
	Healthy(ctx context.Context) error
	WaitHealthy(ctx context.Context) error
	WaitRole(ctx context.Context, n *Node, want Role) error
	WaitPromotion(ctx context.Context, key string, old *Node) (*Node, error)

	Inject(ctx context.Context, kind FaultKind, n *Node, d time.Duration) (*Fault, error)
	Kill(ctx context.Context, n *Node) error
	Stop(ctx context.Context, n *Node) error
	Start(ctx context.Context, n *Node) error
	Pause(ctx context.Context, n *Node) error
	Unpause(ctx context.Context, n *Node) error
	Disconnect(ctx context.Context, n *Node) error
	Reconnect(ctx context.Context, n *Node) error

	Terminate(ctx context.Context) error
}

var (
	_ Topology = (*Standalone)(nil)
	_ Topology = (*Sentinel)(nil)
	_ Topology = (*Cluster)(nil)
)

// Run starts a topology of the given kind. Like the Run… functions it returns the
// topology even with an error (a nil interface only when nothing was created).
func Run(ctx context.Context, kind Kind, opts ...Option) (Topology, error) {
	switch kind {
	case KindStandalone:
		s, err := RunStandalone(ctx, opts...)
		if s == nil {
			return nil, err
		}
		return s, err
	case KindSentinel:
		s, err := RunSentinel(ctx, opts...)
		if s == nil {
			return nil, err
		}
		return s, err
	case KindCluster:
		c, err := RunCluster(ctx, opts...)
		if c == nil {
			return nil, err
		}
		return c, err
	}
	_, err := ParseKind(string(kind))
	return nil, err
}
