package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Deployment kinds.
const (
	kindStandalone = "standalone"
	kindCluster    = "cluster"
	kindSentinel   = "sentinel"
)

// nodeOptions returns the options of a connection to one Redis server or sentinel.
func (e *env) nodeOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		Username:              e.username,
		Password:              e.password,
		DialTimeout:           e.timeout,
		ReadTimeout:           e.timeout,
		WriteTimeout:          e.timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              2,
		DisableIdentity:       true,
	}
}

// sentinelOptions returns the options of a connection to a sentinel (which has no
// application user: only the default one).
func (e *env) sentinelOptions(addr string) *redis.Options {
	o := e.nodeOptions(addr)
	o.Username, o.Password = "", ""
	return o
}

// kind says what the deployment is: a Sentinel-managed master when --sentinel-master is
// given, a Cluster for several addresses or one node of a Cluster (asked with INFO), a
// single server otherwise.
func (e *env) kind(ctx context.Context) (string, error) {
	switch {
	case e.master != "":
		return kindSentinel, nil
	case len(e.addrs) > 1:
		return kindCluster, nil
	}
	c := redis.NewClient(e.nodeOptions(e.addrs[0]))
	defer c.Close()
	info, err := call(ctx, e, func(ctx context.Context) (string, error) { return c.Info(ctx, "cluster").Result() })
	if err != nil {
		return "", fmt.Errorf("%s: %w", e.addrs[0], err)
	}
	if infoField(info, "cluster_enabled") == "1" {
		return kindCluster, nil
	}
	return kindStandalone, nil
}

// client returns a client of the deployment.
func (e *env) client(ctx context.Context) (redis.UniversalClient, error) {
	kind, err := e.kind(ctx)
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindSentinel, kindCluster:
		o := &redis.UniversalOptions{
			Addrs:                 e.addrs,
			MasterName:            e.master,
			Username:              e.username,
			Password:              e.password,
			DialTimeout:           e.timeout,
			ReadTimeout:           e.timeout,
			WriteTimeout:          e.timeout,
			ContextTimeoutEnabled: true,
			DisableIdentity:       true,
		}
		if kind == kindSentinel {
			return redis.NewFailoverClient(o.Failover()), nil
		}
		return redis.NewClusterClient(o.Cluster()), nil
	}
	return redis.NewClient(e.nodeOptions(e.addrs[0])), nil
}

// sentinelMaster asks every sentinel for the master's address and returns the one a
// majority names, with each sentinel's answer (or error) by address.
func (e *env) sentinelMaster(ctx context.Context) (string, map[string]string, map[string]error) {
	answers := map[string]string{}
	errs := map[string]error{}
	votes := map[string]int{}
	for _, a := range e.addrs {
		c := redis.NewSentinelClient(e.sentinelOptions(a))
		r, err := call(ctx, e, func(ctx context.Context) ([]string, error) {
			return c.GetMasterAddrByName(ctx, e.master).Result()
		})
		_ = c.Close()
		if err == nil && len(r) != 2 {
			err = fmt.Errorf("unexpected reply %q", r)
		}
		if errors.Is(err, redis.Nil) {
			err = fmt.Errorf("monitors no master named %q", e.master)
		}
		if err != nil {
			errs[a] = err
			continue
		}
		addr := r[0] + ":" + r[1]
		answers[a] = addr
		votes[addr]++
	}
	for addr, n := range votes {
		if n > len(e.addrs)/2 {
			return addr, answers, errs
		}
	}
	return "", answers, errs
}

// masters returns the addresses of the deployment's masters: a Cluster's (from CLUSTER
// SHARDS, sorted), the one the sentinels name, or the single server.
func (e *env) masters(ctx context.Context, kind string) ([]string, error) {
	targets, err := e.targets(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(targets))
	for i, t := range targets {
		out[i] = t.addr
	}
	return out, nil
}

// target is a master to SCAN: its address and, on a Cluster, a slot it serves, by which
// the master that takes over after a failover is found.
type target struct {
	addr string
	slot int64
}

// targets returns the deployment's masters, as [env.masters] does, each with a slot it
// serves on a Cluster.
func (e *env) targets(ctx context.Context, kind string) ([]target, error) {
	switch kind {
	case kindSentinel:
		m, _, errs := e.sentinelMaster(ctx)
		if m == "" {
			return nil, fmt.Errorf("no majority of the sentinels names a master %q (%d errors: %v)", e.master, len(errs), joinErrs(errs))
		}
		return []target{{addr: m, slot: -1}}, nil
	case kindCluster:
		shards, _, err := e.clusterShards(ctx)
		if err != nil {
			return nil, err
		}
		var out []target
		for _, sh := range shards {
			if m := shardMaster(sh); m != nil && len(sh.Slots) > 0 {
				out = append(out, target{addr: nodeAddr(*m), slot: sh.Slots[0].Start})
			}
		}
		slices.SortFunc(out, func(a, b target) int { return strings.Compare(a.addr, b.addr) })
		return out, nil
	}
	return []target{{addr: e.addrs[0], slot: -1}}, nil
}

// clusterShards reads CLUSTER SHARDS from the first address that answers, and returns it
// with that address.
func (e *env) clusterShards(ctx context.Context) ([]redis.ClusterShard, string, error) {
	var errs []string
	for _, a := range e.addrs {
		c := redis.NewClient(e.nodeOptions(a))
		shards, err := call(ctx, e, func(ctx context.Context) ([]redis.ClusterShard, error) { return c.ClusterShards(ctx).Result() })
		_ = c.Close()
		if err == nil {
			return shards, a, nil
		}
		errs = append(errs, a+": "+err.Error())
	}
	return nil, "", fmt.Errorf("no node answered CLUSTER SHARDS: %s", strings.Join(errs, "; "))
}

// shardMaster returns the shard's master, or nil.
func shardMaster(sh redis.ClusterShard) *redis.Node {
	for i := range sh.Nodes {
		if sh.Nodes[i].Role == "master" {
			return &sh.Nodes[i]
		}
	}
	return nil
}

// nodeAddr returns the address a Cluster node announces.
func nodeAddr(n redis.Node) string {
	host := n.Endpoint
	if host == "" || host == "?" {
		host = n.IP
	}
	return net.JoinHostPort(host, strconv.FormatInt(n.Port, 10))
}

func joinErrs(errs map[string]error) string {
	var parts []string
	for a, err := range errs {
		parts = append(parts, a+": "+err.Error())
	}
	return strings.Join(parts, "; ")
}

// infoField returns a field of an INFO reply.
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), name+":"); ok {
			return v
		}
	}
	return ""
}
