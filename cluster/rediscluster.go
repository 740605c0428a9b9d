package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = 16384

// Cluster is a Redis Cluster: masters (3 by default) that share the hash slots evenly,
// each with its replicas (1 by default).
type Cluster struct {
	*topology
	masters  int
	replicas int
}

// RunCluster starts a Redis Cluster with the short timings of DESIGN.md
// (cluster-node-timeout 1000 ms, cluster-replica-validity-factor 0, diskless sync without
// delay) and forms it: slots split evenly over the masters, replicas assigned round-robin.
// Nodes announce their static IPs on the topology's network. It returns the topology even
// with an error, so that cleanup can be registered first.
func RunCluster(ctx context.Context, opts ...Option) (*Cluster, error) {
	t, err := newTopology(ctx, KindCluster, opts)
	if t == nil {
		return nil, err
	}
	replicas := t.cfg.replicas
	if replicas < 0 {
		replicas = 1
	}
	c := &Cluster{topology: t, masters: t.cfg.masters, replicas: replicas}
	if err != nil {
		return c, err
	}
	start := time.Now()
	total := c.masters * (1 + replicas)
	coverage := "no"
	if t.cfg.fullCoverage {
		coverage = "yes"
	}
	specs := make([]nodeSpec, total)
	for i := range total {
		n := &Node{Name: fmt.Sprintf("redis-%d", i), Kind: NodeRedis, IP: t.ip(firstNodeIP + i), Port: redisPort}
		t.nodes = append(t.nodes, n)
		args := append(t.baseArgs(n),
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(t.cfg.nodeTimeout.Milliseconds(), 10),
			"--cluster-replica-validity-factor", "0",
			"--cluster-require-full-coverage", coverage,
			"--cluster-allow-replica-migration", "no",
			"--cluster-announce-ip", n.IP,
		)
		files, err := t.nodeFiles(n)
		if err != nil {
			return c, err
		}
		specs[i] = nodeSpec{node: n, args: args, files: files, waitLog: readyLog}
	}
	if err := t.startNodes(ctx, specs); err != nil {
		return c, err
	}
	booted := time.Now()
	if err := c.form(ctx); err != nil {
		return c, err
	}
	hctx, cancel := context.WithTimeout(ctx, t.cfg.startupTimeout)
	defer cancel()
	if err := c.WaitHealthy(hctx); err != nil {
		return c, err
	}
	co := c.clientOptions()
	co.Username, co.Password = "", "" // the topology's own client is the default user's
	t.client = redis.NewClusterClient(co)
	t.addClient(t.client)
	t.cfg.logger.Info("cluster ready", "topology", t.id, "masters", c.masters, "replicas", c.replicas,
		"containers", booted.Sub(start).Round(time.Millisecond), "formed", time.Since(booted).Round(time.Millisecond))
	return c, nil
}

// form assigns slots, joins the nodes and makes the replicas follow their masters.
func (c *Cluster) form(ctx context.Context) error {
	nodes := c.redisNodes()
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		cl := c.adminClient(n)
		id, err := cl.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return fmt.Errorf("cluster: %s: CLUSTER MYID: %w", n.Name, err)
		}
		ids[i] = id
		// Distinct epochs up front, as redis-cli --cluster create does.
		if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("cluster: %s: CLUSTER SET-CONFIG-EPOCH: %w", n.Name, err)
		}
		if i < c.masters {
			lo := i * SlotCount / c.masters
			hi := (i+1)*SlotCount/c.masters - 1
			if err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
				return fmt.Errorf("cluster: %s: CLUSTER ADDSLOTSRANGE %d %d: %w", n.Name, lo, hi, err)
			}
		}
	}
	first := c.adminClient(nodes[0])
	for _, n := range nodes[1:] {
		if err := first.Do(ctx, "CLUSTER", "MEET", n.IP, n.Port).Err(); err != nil {
			return fmt.Errorf("cluster: CLUSTER MEET %s: %w", n.Name, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.startupTimeout)
	defer cancel()
	err := poll(wctx, 20*time.Millisecond, func() error {
		for _, n := range nodes {
			info, err := c.clusterInfo(wctx, n)
			if err != nil {
				return err
			}
			if info["cluster_known_nodes"] != strconv.Itoa(len(nodes)) {
				return fmt.Errorf("%s knows %s of %d nodes", n.Name, info["cluster_known_nodes"], len(nodes))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: nodes did not meet: %w", err)
	}
	for i := c.masters; i < len(nodes); i++ {
		m := (i - c.masters) % c.masters
		err := poll(wctx, 20*time.Millisecond, func() error {
			return c.adminClient(nodes[i]).Do(wctx, "CLUSTER", "REPLICATE", ids[m]).Err()
		})
		if err != nil {
			return fmt.Errorf("cluster: %s: CLUSTER REPLICATE %s: %w", nodes[i].Name, nodes[m].Name, err)
		}
	}
	return nil
}

// Addrs returns the addresses of every Redis node; any of them is a seed for a client.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.redisNodes() {
		out = append(out, n.Addr())
	}
	return out
}

// UniversalOptions returns go-redis options for the cluster (a fresh copy each call): with
// TLS, the topology's TLSConfig; with [WithACLUser], that user's name and password.
// IsClusterMode is set, so a one-master cluster still gets a ClusterClient.
func (c *Cluster) UniversalOptions() *redis.UniversalOptions {
	user, pass := c.appUser()
	return &redis.UniversalOptions{Addrs: c.Addrs(), IsClusterMode: true, TLSConfig: c.TLSConfig(), Username: user, Password: pass}
}

// ClusterOptions returns go-redis ClusterOptions for the cluster (a fresh copy each call),
// for fields UniversalOptions lacks, such as ClusterStateReloadInterval; TLS and user as
// in UniversalOptions.
func (c *Cluster) ClusterOptions() *redis.ClusterOptions {
	user, pass := c.appUser()
	return &redis.ClusterOptions{Addrs: c.Addrs(), TLSConfig: c.TLSConfig(), Username: user, Password: pass}
}

// Client returns a ready *redis.ClusterClient, as the default user, that follows failovers within about a
// second: it reloads its slot map every second (go-redis's default is 60 s, and a
// default client keeps sending to a dead master until then) and times out reads and
// writes after 1 s. Terminate closes it. Build a client with go-redis defaults from
// [Cluster.UniversalOptions] to see what an untuned application sees.
func (c *Cluster) Client() redis.UniversalClient { return c.client }

func (c *Cluster) clientOptions() *redis.ClusterOptions {
	o := c.ClusterOptions()
	o.ClusterStateReloadInterval = time.Second
	o.DialTimeout = 500 * time.Millisecond
	o.DialerRetries = 2
	o.ReadTimeout = time.Second
	o.WriteTimeout = time.Second
	o.ContextTimeoutEnabled = true
	return o
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID          string
	Addr        string // ip:port
	Flags       []string
	MasterID    string // for replicas
	ConfigEpoch int64
	Connected   bool
	Slots       [][2]int // inclusive ranges
}

// Has reports whether the node carries the flag ("master", "slave", "fail", "fail?", …).
func (n ClusterNode) Has(flag string) bool {
	for _, f := range n.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Owns reports whether the node serves the slot.
func (n ClusterNode) Owns(slot int) bool {
	for _, r := range n.Slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// ParseClusterNodes parses the reply of CLUSTER NODES.
func ParseClusterNodes(s string) ([]ClusterNode, error) {
	var out []ClusterNode
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("cluster: malformed CLUSTER NODES line %q", line)
		}
		addr := f[1]
		if i := strings.IndexAny(addr, "@,"); i >= 0 {
			addr = addr[:i]
		}
		epoch, _ := strconv.ParseInt(f[6], 10, 64)
		n := ClusterNode{ID: f[0], Addr: addr, Flags: strings.Split(f[2], ","), ConfigEpoch: epoch, Connected: f[7] == "connected"}
		if f[3] != "-" {
			n.MasterID = f[3]
		}
		for _, sl := range f[8:] {
			if strings.HasPrefix(sl, "[") {
				continue // a slot being imported or migrated
			}
			lo, hi, isRange := strings.Cut(sl, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return nil, fmt.Errorf("cluster: malformed slot %q", sl)
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil {
					return nil, fmt.Errorf("cluster: malformed slot %q", sl)
				}
			}
			n.Slots = append(n.Slots, [2]int{a, b})
		}
		out = append(out, n)
	}
	return out, nil
}

func (c *Cluster) clusterNodes(ctx context.Context, n *Node) ([]ClusterNode, error) {
	s, err := c.adminClient(n).ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", n.Name, err)
	}
	return ParseClusterNodes(s)
}

func (c *Cluster) clusterInfo(ctx context.Context, n *Node) (map[string]string, error) {
	s, err := c.adminClient(n).ClusterInfo(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER INFO: %w", n.Name, err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// Healthy returns nil when every node answers with cluster_state:ok and all slots served,
// knows every other node with none flagged failing, the expected number of masters serve
// the slots, and every replica's link to its master is up.
func (c *Cluster) Healthy(ctx context.Context) error {
	nodes := c.redisNodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = c.nodeHealthy(ctx, n, len(nodes)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) nodeHealthy(ctx context.Context, n *Node, total int) error {
	info, err := c.clusterInfo(ctx, n)
	if err != nil {
		return err
	}
	if info["cluster_state"] != "ok" {
		return fmt.Errorf("%s: cluster_state:%s", n.Name, info["cluster_state"])
	}
	if info["cluster_slots_ok"] != strconv.Itoa(SlotCount) {
		return fmt.Errorf("%s: cluster_slots_ok:%s", n.Name, info["cluster_slots_ok"])
	}
	if info["cluster_known_nodes"] != strconv.Itoa(total) {
		return fmt.Errorf("%s knows %s of %d nodes", n.Name, info["cluster_known_nodes"], total)
	}
	view, err := c.clusterNodes(ctx, n)
	if err != nil {
		return err
	}
	masters, replicasOf := 0, map[string]int{}
	for _, v := range view {
		for _, f := range v.Flags {
			if f == "fail" || f == "fail?" || f == "handshake" || f == "noaddr" {
				return fmt.Errorf("%s sees %s flagged %s", n.Name, v.Addr, f)
			}
		}
		if v.Has("master") && len(v.Slots) > 0 {
			masters++
		}
		if v.Has("slave") {
			replicasOf[v.MasterID]++
		}
	}
	if masters != c.masters {
		return fmt.Errorf("%s sees %d masters with slots, want %d", n.Name, masters, c.masters)
	}
	for _, v := range view {
		if v.Has("master") && replicasOf[v.ID] != c.replicas {
			return fmt.Errorf("%s sees master %s with %d replicas, want %d", n.Name, v.Addr, replicasOf[v.ID], c.replicas)
		}
	}
	st, err := c.role(ctx, n)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if st.Role == RoleReplica && !st.LinkUp {
		return fmt.Errorf("%s: replication link to %s is down", n.Name, st.MasterAddr)
	}
	return nil
}

// WaitHealthy polls Healthy until it passes or ctx ends.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return poll(ctx, 50*time.Millisecond, func() error { return c.Healthy(ctx) })
}

// MasterForSlot returns the node that serves the slot: among the claims of every
// reachable node's view, the non-failed master with the highest config epoch.
func (c *Cluster) MasterForSlot(ctx context.Context, slot int) (*Node, error) {
	if slot < 0 || slot >= SlotCount {
		return nil, fmt.Errorf("cluster: slot %d out of range", slot)
	}
	nodes := c.redisNodes()
	views := make([][]ClusterNode, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { views[i], _ = c.clusterNodes(ctx, n) })
	}
	wg.Wait()
	best := slotMaster(views, slot)
	if best == nil {
		return nil, fmt.Errorf("cluster: no reachable node names a master for slot %d", slot)
	}
	for _, n := range nodes {
		if n.Addr() == best.Addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("cluster: slot %d is served by %s, not a node of this topology", slot, best.Addr)
}

// MasterForKey returns the master that serves the key's slot.
func (c *Cluster) MasterForKey(ctx context.Context, key string) (*Node, error) {
	return c.MasterForSlot(ctx, Slot(key))
}

// Masters returns the nodes that report themselves masters and serve slots.
func (c *Cluster) Masters(ctx context.Context) ([]*Node, error) {
	var out []*Node
	for _, n := range c.redisNodes() {
		view, err := c.clusterNodes(ctx, n)
		if err != nil {
			continue
		}
		for _, v := range view {
			if v.Has("myself") && v.Has("master") && len(v.Slots) > 0 {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// WaitPromotion polls until a node other than old serves the key's slot and reports itself
// master; it returns that node.
func (c *Cluster) WaitPromotion(ctx context.Context, key string, old *Node) (*Node, error) {
	var got *Node
	err := poll(ctx, 25*time.Millisecond, func() error {
		m, err := c.MasterForKey(ctx, key)
		if err != nil {
			return err
		}
		if m == old {
			return fmt.Errorf("%s still serves the slot", old.Name)
		}
		st, err := c.role(ctx, m)
		if err != nil {
			return err
		}
		if st.Role != RoleMaster {
			return fmt.Errorf("%s serves the slot but is %s", m.Name, st.Role)
		}
		got = m
		return nil
	})
	return got, err
}

// Slot returns the Cluster hash slot of a key (CRC16 of its hash tag, mod 16384).
func Slot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return int(crc16(key) % SlotCount)
}

// crc16 is CRC16-CCITT (XMODEM), as Redis Cluster uses.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
