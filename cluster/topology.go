package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Labels carried by every container and network a topology creates.
const (
	// LabelProject marks everything hasession's topologies create; its value is "hasession".
	LabelProject = "org.hasession.project"
	// LabelTopology holds the topology's random ID.
	LabelTopology = "org.hasession.topology"
	// LabelOwner holds "<hostname>:<pid>:<start time>" of the process that created the
	// resource ([Owner]); [Sweep] removes resources whose owner process is gone.
	LabelOwner = "org.hasession.owner"
	// LabelKind holds the topology kind: standalone, sentinel or cluster.
	LabelKind = "org.hasession.kind"

	projectName = "hasession"
)

// Kind names a topology.
type Kind string

// The topology kinds.
const (
	KindStandalone Kind = "standalone"
	KindSentinel   Kind = "sentinel"
	KindCluster    Kind = "cluster"
)

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindStandalone, KindSentinel, KindCluster:
		return k, nil
	}
	return "", fmt.Errorf("cluster: unknown topology %q (want standalone, sentinel or cluster)", s)
}

// NodeKind tells a Redis server from a sentinel.
type NodeKind string

// Node kinds.
const (
	NodeRedis    NodeKind = "redis"
	NodeSentinel NodeKind = "sentinel"
)

// Node is one container of a topology. Its address never changes: a node that is
// stopped, killed or cut off keeps its IP when it comes back.
type Node struct {
	Name        string   // "redis-0", "sentinel-1", …
	Kind        NodeKind // redis or sentinel
	IP          string   // the node's address on the topology's network
	Port        int      // 6379 for Redis, 26379 for sentinels
	ContainerID string
}

// Addr returns "ip:port".
func (n *Node) Addr() string { return net.JoinHostPort(n.IP, strconv.Itoa(n.Port)) }

func (n *Node) String() string { return n.Name + "(" + n.Addr() + ")" }

// Role is a node's replication role as the node itself reports it.
type Role string

// Roles.
const (
	RoleMaster   Role = "master"
	RoleReplica  Role = "replica"
	RoleSentinel Role = "sentinel"
	RoleUnknown  Role = "unknown" // unreachable: killed, stopped, paused or cut off
)

// NodeStatus is a node's state at one moment.
type NodeStatus struct {
	*Node
	State      string // the container's state: running, paused, exited, …
	Connected  bool   // attached to the topology's network
	Role       Role
	MasterAddr string // replicas: the master they follow
	LinkUp     bool   // replicas: the replication link is up
	Err        error  // why Role is unknown
}

// topology is what the three kinds share: the network, the containers, node clients,
// faults and cleanup.
type topology struct {
	kind   Kind
	cfg    config
	id     string
	image  string
	dc     *client.Client
	net    *testcontainers.DockerNetwork
	prefix netip.Prefix
	labels map[string]string

	mu        sync.Mutex
	nodes     []*Node
	ctrs      map[string]*testcontainers.DockerContainer // by node name
	admin     map[string]*redis.Client                   // by node name
	faults    map[*Fault]struct{}
	clients   []io.Closer
	client    redis.UniversalClient
	closed    bool
	connected map[string]bool
	ca        *certAuthority // nil without TLS
}

var (
	dcOnce sync.Once
	dcVal  *client.Client
	dcErr  error
)

// dockerClient returns the process's Docker client (testcontainers-go's, which negotiates
// the API version).
func dockerClient(ctx context.Context) (*client.Client, error) {
	dcOnce.Do(func() {
		var c *testcontainers.DockerClient
		c, dcErr = testcontainers.NewDockerClientWithOpts(ctx)
		if dcErr == nil {
			dcVal = c.Client
		}
	})
	if dcErr != nil {
		return nil, fmt.Errorf("cluster: docker: %w", dcErr)
	}
	return dcVal, nil
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newTopology(ctx context.Context, kind Kind, opts []Option) (*topology, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		// The reaper image cannot be pulled without a registry; topologies clean up
		// after themselves (Terminate, Sweep).
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	dc, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	img := cfg.image
	if img == "" {
		if img, err = EnsureImage(ctx); err != nil {
			return nil, err
		}
	}
	t := &topology{
		kind:      kind,
		cfg:       cfg,
		id:        randomID(),
		image:     img,
		dc:        dc,
		ctrs:      map[string]*testcontainers.DockerContainer{},
		admin:     map[string]*redis.Client{},
		faults:    map[*Fault]struct{}{},
		connected: map[string]bool{},
	}
	t.labels = map[string]string{
		LabelProject:  projectName,
		LabelTopology: t.id,
		LabelOwner:    owner(),
		LabelKind:     string(kind),
	}
	if cfg.tls {
		if t.ca, err = newCertAuthority(); err != nil {
			return nil, err
		}
	}
	register(t)
	if err := t.createNetwork(ctx); err != nil {
		return t, err
	}
	return t, nil
}

// createNetwork creates a bridge network with a fixed /24 so nodes get static IPs that
// survive a restart or a reconnect. It tries random subnets of 10.213.0.0/16 until one is
// free.
func (t *topology) createNetwork(ctx context.Context) error {
	var lastErr error
	for range 20 {
		var b [1]byte
		_, _ = rand.Read(b[:])
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, b[0], 0}), 24)
		gw := netip.AddrFrom4([4]byte{10, 213, b[0], 1})
		nw, err := network.New(ctx,
			network.WithLabels(t.labels),
			network.WithIPAM(&dnetwork.IPAM{Config: []dnetwork.IPAMConfig{{Subnet: prefix, Gateway: gw}}}),
		)
		if err == nil {
			t.net, t.prefix = nw, prefix
			t.cfg.logger.Debug("network created", "topology", t.id, "subnet", prefix.String())
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("cluster: create network: %w", lastErr)
}

// ip returns the static address of host number i on the topology's network.
func (t *topology) ip(i int) string {
	a := t.prefix.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a).String()
}

type nodeSpec struct {
	node    *Node
	args    []string
	files   []testcontainers.ContainerFile
	waitLog string
}

// startNodes starts the containers concurrently and waits for each one's ready line.
func (t *topology) startNodes(ctx context.Context, specs []nodeSpec) error {
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, s := range specs {
		wg.Go(func() { errs[i] = t.startNode(ctx, s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (t *topology) startNode(ctx context.Context, s nodeSpec) error {
	n := s.node
	ip, err := netip.ParseAddr(n.IP)
	if err != nil {
		return err
	}
	netName := t.net.Name
	labels := map[string]string{"org.hasession.node": n.Name}
	for k, v := range t.labels {
		labels[k] = v
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithName("hasession-" + t.id + "-" + n.Name),
		testcontainers.WithCmd(s.args...),
		testcontainers.WithLabels(labels),
		network.WithNetwork([]string{n.Name}, t.net),
		testcontainers.WithEndpointSettingsModifier(func(m map[string]*dnetwork.EndpointSettings) {
			es := m[netName]
			if es == nil {
				es = &dnetwork.EndpointSettings{}
				m[netName] = es
			}
			es.IPAMConfig = &dnetwork.EndpointIPAMConfig{IPv4Address: ip}
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PublishAllPorts = false
		}),
		testcontainers.WithWaitStrategy(wait.ForLog(s.waitLog).WithStartupTimeout(t.cfg.startupTimeout)),
		testcontainers.WithLogger(tclog.NewNoopLogger()),
	}
	if len(s.files) > 0 {
		opts = append(opts, testcontainers.WithFiles(s.files...))
	}
	ctr, err := testcontainers.Run(ctx, t.image, opts...)
	if ctr != nil {
		n.ContainerID = ctr.GetContainerID()
		t.mu.Lock()
		t.ctrs[n.Name] = ctr
		t.connected[n.Name] = true
		t.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("cluster: start %s: %w", n.Name, err)
	}
	return nil
}

// adminClient returns the topology's [NodeClient] of one node, made on first use.
func (t *topology) adminClient(n *Node) *redis.Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.admin[n.Name]; ok {
		return c
	}
	c := NodeClient(t.NodeOptions(n))
	t.admin[n.Name] = c
	return c
}

// NodeOptions returns go-redis options for a direct connection to one node (a Redis server
// or a sentinel) as the default user, over TLS when the topology runs TLS: what the
// topology itself uses for health checks and faults. A fresh copy each call.
func (t *topology) NodeOptions(n *Node) *redis.Options {
	return &redis.Options{Addr: n.Addr(), TLSConfig: t.TLSConfig()}
}

// TLSConfig returns a TLS configuration for the topology's nodes (see [WithTLS]): it
// trusts only the topology's CA and presents a client certificate signed by it. Nil when
// the topology does not run TLS. A fresh copy each call.
func (t *topology) TLSConfig() *tls.Config {
	if t.ca == nil {
		return nil
	}
	return t.ca.clientConfig()
}

// CACertPEM returns the PEM-encoded certificate of the topology's CA, nil without TLS.
func (t *topology) CACertPEM() []byte {
	if t.ca == nil {
		return nil
	}
	return append([]byte(nil), t.ca.pem...)
}

// appUser returns the ACL user UniversalOptions logs in as (the last [WithACLUser]), or
// empty strings for the default user.
func (t *topology) appUser() (name, password string) {
	if len(t.cfg.users) == 0 {
		return "", ""
	}
	u := t.cfg.users[len(t.cfg.users)-1]
	return u.name, u.password
}

// Node returns the node of the given name, or nil.
func (t *topology) Node(name string) *Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Nodes returns every node of the topology (Redis servers first, then sentinels).
func (t *topology) Nodes() []*Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Node(nil), t.nodes...)
}

func (t *topology) redisNodes() []*Node {
	var out []*Node
	for _, n := range t.Nodes() {
		if n.Kind == NodeRedis {
			out = append(out, n)
		}
	}
	return out
}

// Kind returns the topology's kind.
func (t *topology) Kind() Kind { return t.kind }

// ID returns the topology's random ID, part of every container's name and label.
func (t *topology) ID() string { return t.id }

// Network returns the name of the Docker network the topology created.
func (t *topology) Network() string {
	if t.net == nil {
		return ""
	}
	return t.net.Name
}

// Subnet returns the network's subnet.
func (t *topology) Subnet() netip.Prefix { return t.prefix }

// Image returns the Redis image the topology runs.
func (t *topology) Image() string { return t.image }

// role asks a node for its role with ROLE.
func (t *topology) role(ctx context.Context, n *Node) (NodeStatus, error) {
	r, err := readRole(ctx, t.adminClient(n))
	return NodeStatus{Node: n, Role: r.Role, MasterAddr: r.MasterAddr, LinkUp: r.LinkUp, Err: err}, err
}

// Status returns every node's container state and replication role. Unreachable nodes
// have Role unknown and Err set; the call itself fails only if Docker cannot be asked.
func (t *topology) Status(ctx context.Context) ([]NodeStatus, error) {
	nodes := t.Nodes()
	out := make([]NodeStatus, len(nodes))
	var wg sync.WaitGroup
	var dockerErr error
	var mu sync.Mutex
	for i, n := range nodes {
		wg.Go(func() {
			st, _ := t.role(ctx, n)
			res, err := t.dc.ContainerInspect(ctx, n.ContainerID, client.ContainerInspectOptions{})
			if err != nil {
				mu.Lock()
				dockerErr = err
				mu.Unlock()
			} else if res.Container.State != nil {
				st.State = string(res.Container.State.Status)
			}
			t.mu.Lock()
			st.Connected = t.connected[n.Name]
			t.mu.Unlock()
			out[i] = st
		})
	}
	wg.Wait()
	if dockerErr != nil {
		return out, fmt.Errorf("cluster: inspect: %w", dockerErr)
	}
	return out, nil
}

// WaitRole polls until the node reports the role (for a replica: with its replication
// link up) or ctx ends.
func (t *topology) WaitRole(ctx context.Context, n *Node, want Role) error {
	return poll(ctx, 50*time.Millisecond, func() error {
		st, err := t.role(ctx, n)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		if st.Role != want {
			return fmt.Errorf("%s is %s, want %s", n.Name, st.Role, want)
		}
		if want == RoleReplica && !st.LinkUp {
			return fmt.Errorf("%s: replication link to %s is down", n.Name, st.MasterAddr)
		}
		return nil
	})
}

// poll calls check every interval until it returns nil or ctx ends; then it returns an
// error that wraps ctx's error and check's last error.
func poll(ctx context.Context, interval time.Duration, check func() error) error {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tk.C:
		}
	}
}

// addClient records a client to close on Terminate.
func (t *topology) addClient(c io.Closer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clients = append(t.clients, c)
}

// Terminate heals every open fault, closes the clients the topology handed out and
// removes its containers and network. It is safe to call more than once.
func (t *topology) Terminate(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	faults := make([]*Fault, 0, len(t.faults))
	for f := range t.faults {
		faults = append(faults, f)
	}
	clients := t.clients
	admins := t.admin
	t.admin = map[string]*redis.Client{}
	t.mu.Unlock()
	for _, f := range faults {
		f.stopTimer()
	}
	for _, c := range clients {
		_ = c.Close()
	}
	for _, c := range admins {
		_ = c.Close()
	}
	err := removeByLabel(ctx, t.dc, LabelTopology+"="+t.id)
	unregister(t)
	t.cfg.logger.Debug("topology removed", "topology", t.id)
	return err
}
