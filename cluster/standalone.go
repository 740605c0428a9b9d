package cluster

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
)

const (
	redisPort    = 6379
	sentinelPort = 26379
	firstNodeIP  = 10
	firstSentIP  = 50
	readyLog     = "Ready to accept connections"
)

// baseArgs are the arguments every Redis node starts with: no persistence (a killed node
// comes back empty and resyncs), reachable from the network, fast diskless resync; with
// TLS only a TLS port; the ACL users of WithACLUser.
func (t *topology) baseArgs(n *Node) []string {
	args := []string{"--port", strconv.Itoa(n.Port)}
	if t.ca != nil {
		args = tlsArgs(n.Port)
	}
	args = append(args,
		"--bind", "0.0.0.0",
		"--protected-mode", "no",
		"--save", "",
		"--appendonly", "no",
		"--repl-diskless-sync", "yes",
		"--repl-diskless-sync-delay", "0",
		"--replica-announce-ip", n.IP,
		"--loglevel", "notice",
	)
	for _, u := range t.cfg.users {
		args = append(args, "--user", u.name, "reset", "on", ">"+u.password)
		args = append(args, u.rules...)
	}
	return append(args, t.cfg.extraArgs...)
}

// nodeFiles returns the files a node (server or sentinel) needs in its container: with
// TLS, the CA and the node's certificate and key.
func (t *topology) nodeFiles(n *Node) ([]testcontainers.ContainerFile, error) {
	if t.ca == nil {
		return nil, nil
	}
	return t.ca.nodeFiles(n)
}

// Standalone is a single Redis server.
type Standalone struct {
	*topology
}

// RunStandalone starts a single Redis server on a network of its own. It returns the
// topology even with an error, so that cleanup can be registered first:
//
//	s, err := cluster.RunStandalone(ctx)
//	cluster.Cleanup(t, s)
//	if err != nil { t.Fatal(err) }
func RunStandalone(ctx context.Context, opts ...Option) (*Standalone, error) {
	t, err := newTopology(ctx, KindStandalone, opts)
	if t == nil {
		return nil, err
	}
	s := &Standalone{topology: t}
	if err != nil {
		return s, err
	}
	start := time.Now()
	n := &Node{Name: "redis-0", Kind: NodeRedis, IP: t.ip(firstNodeIP), Port: redisPort}
	t.nodes = []*Node{n}
	files, err := t.nodeFiles(n)
	if err != nil {
		return s, err
	}
	if err := t.startNodes(ctx, []nodeSpec{{node: n, args: t.baseArgs(n), files: files, waitLog: readyLog}}); err != nil {
		return s, err
	}
	hctx, cancel := context.WithTimeout(ctx, t.cfg.startupTimeout)
	defer cancel()
	if err := s.WaitHealthy(hctx); err != nil {
		return s, err
	}
	t.client = redis.NewUniversalClient(asDefaultUser(s.UniversalOptions()))
	t.addClient(t.client)
	t.cfg.logger.Info("standalone ready", "topology", t.id, "addr", n.Addr(), "took", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// Addrs returns the server's address.
func (s *Standalone) Addrs() []string { return []string{s.nodes[0].Addr()} }

// UniversalOptions returns go-redis options for the server (a fresh copy each call): with
// TLS, the topology's TLSConfig; with [WithACLUser], that user's name and password.
func (s *Standalone) UniversalOptions() *redis.UniversalOptions {
	user, pass := s.appUser()
	return &redis.UniversalOptions{Addrs: s.Addrs(), TLSConfig: s.TLSConfig(), Username: user, Password: pass}
}

// Client returns a ready client for the server, as the default user. Terminate closes it.
func (s *Standalone) Client() redis.UniversalClient { return s.client }

// Master returns the server.
func (s *Standalone) Master(context.Context) (*Node, error) { return s.nodes[0], nil }

// MasterForKey returns the server: it owns every key.
func (s *Standalone) MasterForKey(ctx context.Context, _ string) (*Node, error) {
	return s.Master(ctx)
}

// Healthy returns nil when the server answers PING and is a master.
func (s *Standalone) Healthy(ctx context.Context) error {
	st, err := s.role(ctx, s.nodes[0])
	if err != nil {
		return fmt.Errorf("%s: %w", s.nodes[0].Name, err)
	}
	if st.Role != RoleMaster {
		return fmt.Errorf("%s is %s, want master", s.nodes[0].Name, st.Role)
	}
	return nil
}

// WaitHealthy polls Healthy until it passes or ctx ends.
func (s *Standalone) WaitHealthy(ctx context.Context) error {
	return poll(ctx, 50*time.Millisecond, func() error { return s.Healthy(ctx) })
}

// WaitPromotion returns an error: a standalone server has no replica to promote.
func (s *Standalone) WaitPromotion(context.Context, string, *Node) (*Node, error) {
	return nil, fmt.Errorf("cluster: a standalone server has no replica to promote")
}

// asDefaultUser clears the user of options built by UniversalOptions: the topology's own
// client is the default user's.
func asDefaultUser(o *redis.UniversalOptions) *redis.UniversalOptions {
	o.Username, o.Password = "", ""
	return o
}
