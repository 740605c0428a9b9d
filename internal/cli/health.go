package cli

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is how many slots a Cluster has.
const clusterSlots = 16384

// nodeHealth is one node in health's report.
type nodeHealth struct {
	Addr string `json:"addr"`
	// Role is master, replica or sentinel as the node reports it; unknown when it did not
	// answer.
	Role string `json:"role"`
	// Follows is, for a replica, the master it replicates; for a sentinel, the master it
	// names.
	Follows string `json:"follows,omitempty"`
	// Link is a replica's replication link: up or down.
	Link string `json:"link,omitempty"`
	// Offset is a master's replication offset, or a replica's as it reports it.
	Offset int64 `json:"offset"`
	// LagBytes is how far a replica is behind: its master's offset less its own (read
	// one after the other, so a few bytes of writes in between may show).
	LagBytes *int64 `json:"lag_bytes,omitempty"`
	// AckSeconds is, for a replica, the seconds since its last acknowledgement as its
	// master reports it (Redis's "lag"; replicas acknowledge every second).
	AckSeconds *int64 `json:"ack_seconds,omitempty"`
	// Replicas is the number of replicas connected to a master.
	Replicas *int `json:"replicas,omitempty"`
	// Slots is the number of slots a Cluster master serves.
	Slots int `json:"slots,omitempty"`
	// ClusterState is the node's cluster_state (CLUSTER INFO): ok or fail.
	ClusterState string `json:"cluster_state,omitempty"`
	// Flags are a Cluster node's flags in CLUSTER NODES (fail, fail?, …) or a sentinel's
	// flags of the master (s_down, o_down, …), when they say something is wrong.
	Flags string `json:"flags,omitempty"`
	Error string `json:"error,omitempty"`

	replicaLag map[string]replicaState // a master's view of its replicas, by address
}

type replicaState struct {
	state string
	lag   int64
}

// healthReport is health's report.
type healthReport struct {
	Deployment string `json:"deployment"`
	Healthy    bool   `json:"healthy"`
	// Master is the master the sentinels name (Sentinel).
	Master string `json:"master,omitempty"`
	// SlotsCovered is how many of the 16384 slots a master serves (Cluster).
	SlotsCovered *int         `json:"slots_covered,omitempty"`
	Nodes        []nodeHealth `json:"nodes"`
	Problems     []string     `json:"problems"`
	Warnings     []string     `json:"warnings"`
}

func (r *healthReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *healthReport) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

func runHealth(ctx context.Context, e *env) error {
	kind, err := e.kind(ctx)
	if err != nil {
		return err
	}
	r := &healthReport{Deployment: kind, Problems: []string{}, Warnings: []string{}}
	switch kind {
	case kindCluster:
		err = e.clusterHealth(ctx, r)
	case kindSentinel:
		err = e.sentinelHealth(ctx, r)
	default:
		err = e.standaloneHealth(ctx, r)
	}
	if err != nil {
		return err
	}
	r.Healthy = len(r.Problems) == 0
	if e.json {
		err = writeJSON(e.stdout, r)
	} else {
		err = printHealth(e, r)
	}
	if err != nil {
		return err
	}
	if !r.Healthy {
		return ErrUnhealthy
	}
	return nil
}

// nodeInfo reads a Redis server's replication state (and with cluster, its cluster
// state).
func (e *env) nodeInfo(ctx context.Context, addr string, cluster bool) nodeHealth {
	n := nodeHealth{Addr: addr, Role: "unknown"}
	c := redis.NewClient(e.nodeOptions(addr))
	defer c.Close()
	info, err := call(ctx, e, func(ctx context.Context) (string, error) { return c.Info(ctx, "replication").Result() })
	if err != nil {
		n.Error = err.Error()
		return n
	}
	switch infoField(info, "role") {
	case "master":
		n.Role = "master"
		n.Offset, _ = strconv.ParseInt(infoField(info, "master_repl_offset"), 10, 64)
		replicas, _ := strconv.Atoi(infoField(info, "connected_slaves"))
		n.Replicas = &replicas
		n.replicaLag = map[string]replicaState{}
		for i := range replicas {
			kv := map[string]string{}
			for f := range strings.SplitSeq(infoField(info, "slave"+strconv.Itoa(i)), ",") {
				k, v, _ := strings.Cut(f, "=")
				kv[k] = v
			}
			var s replicaState
			s.state = kv["state"]
			s.lag, _ = strconv.ParseInt(kv["lag"], 10, 64)
			n.replicaLag[net.JoinHostPort(kv["ip"], kv["port"])] = s
		}
	case "slave":
		n.Role = "replica"
		n.Follows = net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port"))
		n.Link = infoField(info, "master_link_status")
		n.Offset, _ = strconv.ParseInt(infoField(info, "slave_repl_offset"), 10, 64)
	}
	if cluster {
		ci, err := call(ctx, e, func(ctx context.Context) (string, error) { return c.ClusterInfo(ctx).Result() })
		if err != nil {
			n.Error = "CLUSTER INFO: " + err.Error()
			return n
		}
		n.ClusterState = infoField(ci, "cluster_state")
	}
	return n
}

// checkReplication fills the replicas' lag from their masters' view and notes links down
// and masters without a replica.
func checkReplication(r *healthReport, nodes []nodeHealth) {
	byAddr := map[string]*nodeHealth{}
	for i := range nodes {
		byAddr[nodes[i].Addr] = &nodes[i]
	}
	for i := range nodes {
		n := &nodes[i]
		if n.Error != "" {
			r.problem("%s did not answer: %s", n.Addr, n.Error)
			continue
		}
		switch n.Role {
		case "master":
			if *n.Replicas == 0 {
				r.warn("master %s has no replica: its data is lost if it fails", n.Addr)
			}
		case "replica":
			if n.Link != "up" {
				r.problem("replica %s: replication link to %s is %s", n.Addr, n.Follows, n.Link)
			}
			m := byAddr[n.Follows]
			if m == nil || m.Role != "master" {
				r.problem("replica %s follows %s, which is not a master here", n.Addr, n.Follows)
				continue
			}
			s, ok := m.replicaLag[n.Addr]
			if !ok {
				r.problem("replica %s is not connected to its master %s", n.Addr, n.Follows)
				continue
			}
			lag := max(m.Offset-n.Offset, 0)
			n.LagBytes, n.AckSeconds = &lag, &s.lag
			if s.state != "online" {
				r.problem("replica %s: its master reports it %s", n.Addr, s.state)
			}
		}
	}
}

func (e *env) clusterHealth(ctx context.Context, r *healthReport) error {
	shards, seed, err := e.clusterShards(ctx)
	if err != nil {
		return err
	}
	covered := 0
	served := map[string]int{}
	for _, sh := range shards {
		m := shardMaster(sh)
		if m == nil || m.Health != "online" {
			continue
		}
		for _, sr := range sh.Slots {
			covered += int(sr.End - sr.Start + 1)
			served[nodeAddr(*m)] += int(sr.End - sr.Start + 1)
		}
	}
	r.SlotsCovered = &covered
	if covered != clusterSlots {
		r.problem("%d of %d slots are served by no master that is online", clusterSlots-covered, clusterSlots)
	}
	c := redis.NewClient(e.nodeOptions(seed))
	text, err := call(ctx, e, func(ctx context.Context) (string, error) { return c.ClusterNodes(ctx).Result() })
	_ = c.Close()
	if err != nil {
		return fmt.Errorf("CLUSTER NODES on %s: %w", seed, err)
	}
	var nodes []nodeHealth
	for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addr, _, _ = strings.Cut(addr, ",")
		flags := strings.Split(f[2], ",")
		if slices.Contains(flags, "noaddr") || strings.HasPrefix(addr, ":") {
			r.problem("node %s has no address (flags %s)", f[0], f[2])
			continue
		}
		n := e.nodeInfo(ctx, addr, true)
		n.Slots = served[addr]
		var bad []string
		for _, fl := range flags {
			switch fl {
			case "fail":
				r.problem("%s is flagged fail by %s", addr, seed)
				bad = append(bad, fl)
			case "fail?":
				r.warn("%s is flagged fail? (suspected) by %s", addr, seed)
				bad = append(bad, fl)
			case "handshake", "nofailover":
				bad = append(bad, fl)
			}
		}
		n.Flags = strings.Join(bad, ",")
		if n.Error == "" && n.ClusterState != "ok" {
			r.problem("%s: cluster_state is %s", addr, n.ClusterState)
		}
		nodes = append(nodes, n)
	}
	checkReplication(r, nodes)
	r.Nodes = orderNodes(nodes)
	return nil
}

func (e *env) standaloneHealth(ctx context.Context, r *healthReport) error {
	n := e.nodeInfo(ctx, e.addrs[0], false)
	if n.Error != "" {
		return fmt.Errorf("%s: %s", n.Addr, n.Error)
	}
	nodes := []nodeHealth{n}
	if n.Role == "replica" {
		r.warn("%s is a replica of %s: writes go to the master", n.Addr, n.Follows)
		nodes = append(nodes, e.nodeInfo(ctx, n.Follows, false))
	}
	for _, m := range slices.Clone(nodes) {
		for addr := range m.replicaLag {
			if addr != n.Addr {
				nodes = append(nodes, e.nodeInfo(ctx, addr, false))
			}
		}
	}
	checkReplication(r, nodes)
	for _, m := range nodes {
		if m.Role == "master" && *m.Replicas == 0 {
			// A single server without replicas is what a standalone deployment is.
			r.Warnings = slices.DeleteFunc(r.Warnings, func(w string) bool { return strings.HasPrefix(w, "master "+m.Addr+" has no replica") })
		}
	}
	r.Nodes = orderNodes(nodes)
	return nil
}

func (e *env) sentinelHealth(ctx context.Context, r *healthReport) error {
	master, answers, errs := e.sentinelMaster(ctx)
	r.Master = master
	var sentinels []nodeHealth
	for _, a := range e.addrs {
		s := nodeHealth{Addr: a, Role: "sentinel", Follows: answers[a]}
		if err := errs[a]; err != nil {
			s.Role, s.Error = "unknown", err.Error()
		}
		sentinels = append(sentinels, s)
	}
	if master == "" {
		r.Nodes = sentinels
		r.problem("no majority of the %d sentinels names a master %q", len(e.addrs), e.master)
		for _, s := range sentinels {
			if s.Error != "" {
				r.problem("sentinel %s: %s", s.Addr, s.Error)
			}
		}
		return nil
	}
	var replicaAddrs []string
	for i, s := range sentinels {
		switch {
		case s.Error != "":
			r.warn("sentinel %s did not answer: %s", s.Addr, s.Error)
			continue
		case s.Follows != master:
			r.warn("sentinel %s names %s as the master, the majority %s", s.Addr, s.Follows, master)
		}
		sc := redis.NewSentinelClient(e.sentinelOptions(s.Addr))
		m, err := call(ctx, e, func(ctx context.Context) (map[string]string, error) { return sc.Master(ctx, e.master).Result() })
		if err == nil {
			var bad []string
			for fl := range strings.SplitSeq(m["flags"], ",") {
				if fl == "s_down" || fl == "o_down" || fl == "failover_in_progress" {
					bad = append(bad, fl)
				}
			}
			sentinels[i].Flags = strings.Join(bad, ",")
			if len(bad) > 0 {
				r.problem("sentinel %s flags the master %s", s.Addr, strings.Join(bad, ","))
			}
		}
		if replicaAddrs == nil {
			reps, err := call(ctx, e, func(ctx context.Context) ([]map[string]string, error) { return sc.Replicas(ctx, e.master).Result() })
			if err == nil {
				replicaAddrs = []string{}
				for _, rep := range reps {
					replicaAddrs = append(replicaAddrs, net.JoinHostPort(rep["ip"], rep["port"]))
				}
			}
		}
		_ = sc.Close()
	}
	nodes := []nodeHealth{e.nodeInfo(ctx, master, false)}
	if nodes[0].Error == "" && nodes[0].Role != "master" {
		r.problem("%s, which the sentinels name, is a %s", master, nodes[0].Role)
	}
	seen := map[string]bool{master: true}
	for addr := range nodes[0].replicaLag {
		replicaAddrs = append(replicaAddrs, addr)
	}
	for _, a := range replicaAddrs {
		if !seen[a] {
			seen[a] = true
			nodes = append(nodes, e.nodeInfo(ctx, a, false))
		}
	}
	checkReplication(r, nodes)
	r.Nodes = append(orderNodes(nodes), sentinels...)
	return nil
}

// orderNodes lists masters by address, each followed by its replicas, then the rest.
func orderNodes(nodes []nodeHealth) []nodeHealth {
	slices.SortFunc(nodes, func(a, b nodeHealth) int { return cmp.Compare(a.Addr, b.Addr) })
	var out []nodeHealth
	placed := map[string]bool{}
	for _, m := range nodes {
		if m.Role != "master" {
			continue
		}
		out = append(out, m)
		placed[m.Addr] = true
		for _, n := range nodes {
			if n.Role == "replica" && n.Follows == m.Addr {
				out = append(out, n)
				placed[n.Addr] = true
			}
		}
	}
	for _, n := range nodes {
		if !placed[n.Addr] {
			out = append(out, n)
		}
	}
	return out
}

func printHealth(e *env, r *healthReport) error {
	fmt.Fprintf(e.stdout, "deployment: %s", r.Deployment)
	if r.Master != "" {
		fmt.Fprintf(e.stdout, ", master %q at %s", e.master, r.Master)
	}
	fmt.Fprintln(e.stdout)
	if r.SlotsCovered != nil {
		fmt.Fprintf(e.stdout, "slots: %d of %d covered\n", *r.SlotsCovered, clusterSlots)
	}
	fmt.Fprintln(e.stdout)
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprint(w, "NODE\tROLE\tFOLLOWS\tLINK\tREPLICAS\tOFFSET\tLAG\tLAST ACK")
	if r.SlotsCovered != nil {
		fmt.Fprint(w, "\tSLOTS\tSTATE")
	}
	fmt.Fprintln(w, "\tNOTE")
	for _, n := range r.Nodes {
		lag, ack, replicas, offset := "", "", "", ""
		if n.LagBytes != nil {
			lag, ack = fmt.Sprintf("%d B", *n.LagBytes), fmt.Sprintf("%ds ago", *n.AckSeconds)
		}
		if n.Replicas != nil {
			replicas = strconv.Itoa(*n.Replicas)
		}
		if n.Role == "master" || n.Role == "replica" {
			offset = strconv.FormatInt(n.Offset, 10)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", n.Addr, n.Role, n.Follows, n.Link, replicas, offset, lag, ack)
		if r.SlotsCovered != nil {
			slots := ""
			if n.Role == "master" {
				slots = strconv.Itoa(n.Slots)
			}
			fmt.Fprintf(w, "\t%s\t%s", slots, n.ClusterState)
		}
		note := n.Error
		if n.Flags != "" {
			note = strings.TrimSpace("flags " + n.Flags + " " + note)
		}
		fmt.Fprintf(w, "\t%s\n", note)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	for _, p := range r.Problems {
		fmt.Fprintf(e.stdout, "problem: %s\n", p)
	}
	for _, p := range r.Warnings {
		fmt.Fprintf(e.stdout, "warning: %s\n", p)
	}
	if r.Healthy {
		fmt.Fprintln(e.stdout, "health: ok")
	} else {
		fmt.Fprintf(e.stdout, "health: BAD (%d problem(s))\n", len(r.Problems))
	}
	return nil
}
