package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The node helpers below work from addresses and options, not from a [Topology], so that
// they also serve a deployment nothing here started; the topologies use the same code on
// their own nodes.

// NodeClient returns a client for one node (a Redis server or a sentinel) from o, for
// admin commands: short timeouts (a longer dial with TLS, whose handshake costs CPU on a
// busy machine), no retries, a small pool, RESP2 and no CLIENT SETINFO. It sets those
// fields of o; the caller closes the client.
func NodeClient(o *redis.Options) *redis.Client {
	o.DialTimeout = 300 * time.Millisecond
	if o.TLSConfig != nil {
		o.DialTimeout = time.Second
	}
	o.ReadTimeout = 500 * time.Millisecond
	o.WriteTimeout = 500 * time.Millisecond
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.PoolSize = 4
	o.DisableIdentity = true
	o.Protocol = 2
	return redis.NewClient(o)
}

// RoleInfo is a node's replication role as its ROLE reply gives it.
type RoleInfo struct {
	Role       Role
	MasterAddr string // replicas: the master they follow
	LinkUp     bool   // replicas: the replication link is up
}

// NodeRole asks the node o reaches for its role with ROLE, on a [NodeClient] of its own.
// On error the role is [RoleUnknown].
func NodeRole(ctx context.Context, o *redis.Options) (RoleInfo, error) {
	c := NodeClient(o)
	defer c.Close()
	return readRole(ctx, c)
}

// readRole sends ROLE on c, a client of one node.
func readRole(ctx context.Context, c *redis.Client) (RoleInfo, error) {
	r := RoleInfo{Role: RoleUnknown}
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return r, err
	}
	if len(v) == 0 {
		return r, errors.New("empty ROLE reply")
	}
	switch fmt.Sprint(v[0]) {
	case "master":
		r.Role = RoleMaster
	case "slave":
		r.Role = RoleReplica
		if len(v) >= 4 {
			r.MasterAddr = net.JoinHostPort(fmt.Sprint(v[1]), fmt.Sprint(v[2]))
			r.LinkUp = fmt.Sprint(v[3]) == "connected"
		}
	case "sentinel":
		r.Role = RoleSentinel
	default:
		return r, fmt.Errorf("unexpected ROLE reply %v", v)
	}
	return r, nil
}

// serverOptions returns options for a direct connection to the Redis server at addr with
// o's TLS configuration and user.
func serverOptions(o *redis.UniversalOptions, addr string) *redis.Options {
	return &redis.Options{Addr: addr, TLSConfig: o.TLSConfig, Username: o.Username, Password: o.Password}
}

// sentinelOptions returns options for a direct connection to the sentinel at addr with
// o's TLS configuration and sentinel user.
func sentinelOptions(o *redis.UniversalOptions, addr string) *redis.Options {
	return &redis.Options{Addr: addr, TLSConfig: o.TLSConfig, Username: o.SentinelUsername, Password: o.SentinelPassword}
}

// eachAddr runs f concurrently on a [NodeClient] of every address and returns f's
// results in the order of addrs.
func eachAddr[T any](addrs []string, opts func(string) *redis.Options, f func(*redis.Client) (T, error)) ([]T, []error) {
	out := make([]T, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			c := NodeClient(opts(a))
			defer c.Close()
			if out[i], errs[i] = f(c); errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", a, errs[i])
			}
		})
	}
	wg.Wait()
	return out, errs
}

// slotMaster returns, among the claims of the views (CLUSTER NODES of several nodes),
// the non-failed master that serves the slot with the highest config epoch; nil when
// none does.
func slotMaster(views [][]ClusterNode, slot int) *ClusterNode {
	var best *ClusterNode
	for _, view := range views {
		for i := range view {
			v := &view[i]
			if !v.Has("master") || v.Has("fail") || !v.Owns(slot) {
				continue
			}
			if best == nil || v.ConfigEpoch > best.ConfigEpoch {
				best = v
			}
		}
	}
	return best
}

// sentinelMaster asks one sentinel, through c, which address it holds for the master
// named name.
func sentinelMaster(ctx context.Context, c *redis.Client, name string) (string, error) {
	v, err := c.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name).StringSlice()
	if err != nil {
		return "", err
	}
	if len(v) != 2 {
		return "", fmt.Errorf("sentinel knows no master %q", name)
	}
	return net.JoinHostPort(v[0], v[1]), nil
}

// majority returns the master address that more than half of total sentinels name in
// answers (one address per sentinel that answered).
func majority(answers []string, total int) (string, error) {
	votes := map[string]int{}
	for _, addr := range answers {
		if addr != "" {
			votes[addr]++
		}
	}
	for addr, v := range votes {
		if v > total/2 {
			return addr, nil
		}
	}
	return "", fmt.Errorf("cluster: no majority of sentinels agrees on a master (%v)", votes)
}

// MasterAddr returns the address of the master that serves key in the deployment of the
// kind that o reaches, asking the nodes at o.Addrs directly (with [NodeClient]s, o's TLS
// configuration and users): on a Cluster, the non-failed master that the reachable
// nodes' CLUSTER NODES name for the key's slot with the highest config epoch (as
// [Cluster.MasterForSlot]); on Sentinel, the master a majority of the sentinels at
// o.Addrs name for o.MasterName (as [Sentinel.Master]); on a standalone server, o.Addrs[0].
func MasterAddr(ctx context.Context, kind Kind, o *redis.UniversalOptions, key string) (string, error) {
	if len(o.Addrs) == 0 {
		return "", errors.New("cluster: no address")
	}
	switch kind {
	case KindCluster:
		slot := Slot(key)
		views, errs := eachAddr(o.Addrs, func(a string) *redis.Options { return serverOptions(o, a) }, func(c *redis.Client) ([]ClusterNode, error) {
			s, err := c.ClusterNodes(ctx).Result()
			if err != nil {
				return nil, err
			}
			return ParseClusterNodes(s)
		})
		if best := slotMaster(views, slot); best != nil {
			return best.Addr, nil
		}
		return "", fmt.Errorf("cluster: no reachable node names a master for slot %d: %w", slot, errors.Join(errs...))
	case KindSentinel:
		answers, errs := eachAddr(o.Addrs, func(a string) *redis.Options { return sentinelOptions(o, a) }, func(c *redis.Client) (string, error) {
			return sentinelMaster(ctx, c, o.MasterName)
		})
		addr, err := majority(answers, len(o.Addrs))
		if err != nil {
			return "", errors.Join(append([]error{err}, errs...)...)
		}
		return addr, nil
	}
	return o.Addrs[0], nil
}

// Failover starts a graceful failover of the master at addr in the deployment of the
// kind that o reaches: on a Cluster, CLUSTER FAILOVER on one of its connected replicas;
// on Sentinel, SENTINEL FAILOVER on the first sentinel of o.Addrs that accepts it. It
// returns once the command is accepted, before a replica is promoted.
func Failover(ctx context.Context, kind Kind, o *redis.UniversalOptions, addr string) error {
	switch kind {
	case KindCluster:
		mc := NodeClient(serverOptions(o, addr))
		s, err := mc.ClusterNodes(ctx).Result()
		_ = mc.Close()
		if err != nil {
			return fmt.Errorf("cluster nodes on %s: %w", addr, err)
		}
		nodes, err := ParseClusterNodes(s)
		if err != nil {
			return err
		}
		var id string
		for _, n := range nodes {
			if n.Has("myself") {
				id = n.ID
			}
		}
		for _, n := range nodes {
			if n.MasterID == id && id != "" && n.Connected && !n.Has("fail") && !n.Has("fail?") {
				rc := NodeClient(serverOptions(o, n.Addr))
				err := rc.Do(ctx, "CLUSTER", "FAILOVER").Err()
				_ = rc.Close()
				if err != nil {
					return fmt.Errorf("CLUSTER FAILOVER on %s: %w", n.Addr, err)
				}
				return nil
			}
		}
		return fmt.Errorf("%s has no connected replica to fail over to", addr)
	case KindSentinel:
		var errs []error
		for _, a := range o.Addrs {
			c := NodeClient(sentinelOptions(o, a))
			err := c.Do(ctx, "SENTINEL", "FAILOVER", o.MasterName).Err()
			_ = c.Close()
			if err == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("SENTINEL FAILOVER on %s: %w", a, err))
		}
		return errors.Join(errs...)
	}
	return errors.New("a standalone server has no replica to fail over to")
}
