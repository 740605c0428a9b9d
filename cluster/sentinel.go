package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
)

// Sentinel is a master with replicas, monitored by sentinels (1 master, 2 replicas and 3
// sentinels by default).
type Sentinel struct {
	*topology
	masterName string
	replicas   int
	sentinels  []*Node
}

// RunSentinel starts a Sentinel topology: a master, its replicas and the sentinels that
// monitor it under the master name (default "mymaster"), with the short timings of
// DESIGN.md (down-after 1 s, failover-timeout 3 s, TILT period 5 s). It returns the
// topology even with an error, so that cleanup can be registered first.
func RunSentinel(ctx context.Context, opts ...Option) (*Sentinel, error) {
	t, err := newTopology(ctx, KindSentinel, opts)
	if t == nil {
		return nil, err
	}
	replicas := t.cfg.replicas
	if replicas < 0 {
		replicas = 2
	}
	s := &Sentinel{topology: t, masterName: t.cfg.masterName, replicas: replicas}
	if err != nil {
		return s, err
	}
	start := time.Now()

	var specs []nodeSpec
	master := &Node{Name: "redis-0", Kind: NodeRedis, IP: t.ip(firstNodeIP), Port: redisPort}
	for i := 0; i <= replicas; i++ {
		n := master
		if i > 0 {
			n = &Node{Name: fmt.Sprintf("redis-%d", i), Kind: NodeRedis, IP: t.ip(firstNodeIP + i), Port: redisPort}
		}
		args := t.baseArgs(n)
		if i > 0 {
			args = append(args, "--replicaof", master.IP, strconv.Itoa(master.Port))
		}
		files, err := t.nodeFiles(n)
		if err != nil {
			return s, err
		}
		t.nodes = append(t.nodes, n)
		specs = append(specs, nodeSpec{node: n, args: args, files: files, waitLog: readyLog})
	}
	quorum := t.cfg.sentinels/2 + 1
	var sentSpecs []nodeSpec
	for i := range t.cfg.sentinels {
		n := &Node{Name: fmt.Sprintf("sentinel-%d", i), Kind: NodeSentinel, IP: t.ip(firstSentIP + i), Port: sentinelPort}
		listen := []string{"port " + strconv.Itoa(sentinelPort)}
		if t.ca != nil {
			listen = tlsSentinelConf(sentinelPort)
		}
		conf := strings.Join(append(listen,
			"bind 0.0.0.0",
			"protected-mode no",
			"sentinel announce-ip "+n.IP,
			"sentinel resolve-hostnames no",
			fmt.Sprintf("sentinel monitor %s %s %d %d", s.masterName, master.IP, master.Port, quorum),
			fmt.Sprintf("sentinel down-after-milliseconds %s %d", s.masterName, t.cfg.nodeTimeout.Milliseconds()),
			fmt.Sprintf("sentinel failover-timeout %s %d", s.masterName, t.cfg.failoverTO.Milliseconds()),
			fmt.Sprintf("sentinel parallel-syncs %s %d", s.masterName, max(1, replicas)),
			"",
		), "\n")
		files, err := t.nodeFiles(n)
		if err != nil {
			return s, err
		}
		t.nodes = append(t.nodes, n)
		s.sentinels = append(s.sentinels, n)
		sentSpecs = append(sentSpecs, nodeSpec{
			node:    n,
			args:    []string{"/data/sentinel.conf", "--sentinel"},
			files:   append(files, testcontainers.ContainerFile{Reader: strings.NewReader(conf), ContainerFilePath: "/data/sentinel.conf", FileMode: 0o666}),
			waitLog: "+monitor master",
		})
	}
	// The master first, so the replicas' first sync finds it; then everything else.
	if err := t.startNodes(ctx, specs[:1]); err != nil {
		return s, err
	}
	if err := t.startNodes(ctx, append(specs[1:], sentSpecs...)); err != nil {
		return s, err
	}
	hctx, cancel := context.WithTimeout(ctx, t.cfg.startupTimeout)
	defer cancel()
	// A short TILT period: a sentinel whose timer jumped (a frozen machine) acts again soon.
	// Tried until it passes: a sentinel just started on a busy machine may answer late.
	for _, n := range s.sentinels {
		err := poll(hctx, 50*time.Millisecond, func() error {
			return t.adminClient(n).Do(hctx, "SENTINEL", "DEBUG", "tilt-period", 5000).Err()
		})
		if err != nil {
			return s, fmt.Errorf("cluster: %s: SENTINEL DEBUG tilt-period: %w", n.Name, err)
		}
	}
	if err := s.WaitHealthy(hctx); err != nil {
		return s, err
	}
	t.client = redis.NewUniversalClient(asDefaultUser(s.UniversalOptions()))
	t.addClient(t.client)
	t.cfg.logger.Info("sentinel ready", "topology", t.id, "master", master.Addr(), "sentinels", s.SentinelAddrs(), "took", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// MasterName returns the name the sentinels monitor the master under.
func (s *Sentinel) MasterName() string { return s.masterName }

// Sentinels returns the sentinel nodes.
func (s *Sentinel) Sentinels() []*Node { return append([]*Node(nil), s.sentinels...) }

// SentinelAddrs returns the sentinels' addresses.
func (s *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(s.sentinels))
	for i, n := range s.sentinels {
		out[i] = n.Addr()
	}
	return out
}

// Addrs returns the addresses of the Redis servers (master and replicas). Clients connect
// through the sentinels: see [Sentinel.UniversalOptions].
func (s *Sentinel) Addrs() []string {
	var out []string
	for _, n := range s.redisNodes() {
		out = append(out, n.Addr())
	}
	return out
}

// UniversalOptions returns go-redis options that reach the master through the sentinels
// (a fresh copy each call): with TLS, the topology's TLSConfig (for the sentinels and the
// servers); with [WithACLUser], that user's name and password for the servers (the
// sentinels have their default user only).
func (s *Sentinel) UniversalOptions() *redis.UniversalOptions {
	user, pass := s.appUser()
	return &redis.UniversalOptions{Addrs: s.SentinelAddrs(), MasterName: s.masterName, TLSConfig: s.TLSConfig(), Username: user, Password: pass}
}

// Client returns a ready failover client, as the default user. Terminate closes it.
func (s *Sentinel) Client() redis.UniversalClient { return s.client }

func (s *Sentinel) nodeByAddr(addr string) *Node {
	for _, n := range s.Nodes() {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// sentinelMasters asks every reachable sentinel which address it holds for the master.
func (s *Sentinel) sentinelMasters(ctx context.Context) map[string]string {
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range s.sentinels {
		wg.Go(func() {
			addr, err := sentinelMaster(ctx, s.adminClient(n), s.masterName)
			if err != nil {
				return
			}
			mu.Lock()
			out[n.Name] = addr
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Master returns the master a majority of the sentinels agree on.
func (s *Sentinel) Master(ctx context.Context) (*Node, error) {
	var answers []string
	for _, addr := range s.sentinelMasters(ctx) {
		answers = append(answers, addr)
	}
	addr, err := majority(answers, len(s.sentinels))
	if err != nil {
		return nil, err
	}
	if n := s.nodeByAddr(addr); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("cluster: sentinels name %s as master, not a node of this topology", addr)
}

// MasterForKey returns the master: it owns every key.
func (s *Sentinel) MasterForKey(ctx context.Context, _ string) (*Node, error) {
	return s.Master(ctx)
}

// Healthy returns nil when every sentinel names the same master, that master says it is
// one, every replica follows it with its link up, and every sentinel sees every replica
// (none down) and every other sentinel, with no failover in progress.
func (s *Sentinel) Healthy(ctx context.Context) error {
	ms := s.sentinelMasters(ctx)
	if len(ms) != len(s.sentinels) {
		return fmt.Errorf("only %d of %d sentinels answer for %s", len(ms), len(s.sentinels), s.masterName)
	}
	var masterAddr string
	for name, addr := range ms {
		if masterAddr == "" {
			masterAddr = addr
		} else if addr != masterAddr {
			return fmt.Errorf("sentinels disagree on the master: %s says %s, another %s", name, addr, masterAddr)
		}
	}
	master := s.nodeByAddr(masterAddr)
	if master == nil {
		return fmt.Errorf("sentinels name unknown master %s", masterAddr)
	}
	st, err := s.role(ctx, master)
	if err != nil {
		return fmt.Errorf("master %s: %w", master.Name, err)
	}
	if st.Role != RoleMaster {
		return fmt.Errorf("%s is named master but is %s", master.Name, st.Role)
	}
	for _, n := range s.redisNodes() {
		if n == master {
			continue
		}
		st, err := s.role(ctx, n)
		if err != nil {
			return fmt.Errorf("replica %s: %w", n.Name, err)
		}
		if st.Role != RoleReplica || st.MasterAddr != master.Addr() || !st.LinkUp {
			return fmt.Errorf("%s: role %s, following %s, link up %v; want a replica of %s with its link up", n.Name, st.Role, st.MasterAddr, st.LinkUp, master.Addr())
		}
	}
	for _, n := range s.sentinels {
		c := s.adminClient(n)
		m, err := c.Do(ctx, "SENTINEL", "MASTER", s.masterName).Result()
		if err != nil {
			return fmt.Errorf("%s: SENTINEL MASTER: %w", n.Name, err)
		}
		info := flatMap(m)
		if info["flags"] != "master" {
			return fmt.Errorf("%s sees the master with flags %q", n.Name, info["flags"])
		}
		if got := info["num-other-sentinels"]; got != strconv.Itoa(len(s.sentinels)-1) {
			return fmt.Errorf("%s sees %s other sentinels, want %d", n.Name, got, len(s.sentinels)-1)
		}
		reps, err := c.Do(ctx, "SENTINEL", "REPLICAS", s.masterName).Slice()
		if err != nil {
			return fmt.Errorf("%s: SENTINEL REPLICAS: %w", n.Name, err)
		}
		up := 0
		for _, r := range reps {
			ri := flatMap(r)
			if ri["flags"] == "slave" && ri["master-link-status"] == "ok" {
				up++
			}
		}
		if up != s.replicas {
			return fmt.Errorf("%s sees %d healthy replicas, want %d", n.Name, up, s.replicas)
		}
	}
	return nil
}

// WaitHealthy polls Healthy until it passes or ctx ends.
func (s *Sentinel) WaitHealthy(ctx context.Context) error {
	return poll(ctx, 50*time.Millisecond, func() error { return s.Healthy(ctx) })
}

// WaitPromotion polls until a majority of the sentinels name a master other than old and
// that node reports itself master; it returns the new master.
func (s *Sentinel) WaitPromotion(ctx context.Context, _ string, old *Node) (*Node, error) {
	var got *Node
	err := poll(ctx, 25*time.Millisecond, func() error {
		m, err := s.Master(ctx)
		if err != nil {
			return err
		}
		if m == old {
			return fmt.Errorf("sentinels still name %s", old.Name)
		}
		st, err := s.role(ctx, m)
		if err != nil {
			return err
		}
		if st.Role != RoleMaster {
			return fmt.Errorf("%s is named master but is still %s", m.Name, st.Role)
		}
		got = m
		return nil
	})
	return got, err
}

// flatMap turns a RESP2 flat array or a RESP3 map reply into a map of strings.
func flatMap(v any) map[string]string {
	out := map[string]string{}
	switch x := v.(type) {
	case []any:
		for i := 0; i+1 < len(x); i += 2 {
			out[fmt.Sprint(x[i])] = fmt.Sprint(x[i+1])
		}
	case map[any]any:
		for k, val := range x {
			out[fmt.Sprint(k)] = fmt.Sprint(val)
		}
	}
	return out
}
