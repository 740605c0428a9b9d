package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/format"
	"github.com/hasession/hasession/internal/legacy"
)

// historySuffix ends the key of a session's save history (FORMAT.md: <prefix>{<tag>}:s).
const historySuffix = ":s"

// scanCount is the COUNT hint of each SCAN call.
const scanCount = 1000

// nodeCount is what count found on one master.
type nodeCount struct {
	Addr      string `json:"addr"`
	Sessions  int64  `json:"sessions"`
	Bytes     int64  `json:"memory_bytes"` // the sessions' and their save histories'
	Other     int64  `json:"other_keys"`   // forward pointers and tombstones
	Histories int64  `json:"save_histories"`
	Scanned   int64  `json:"scanned"`
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}

// countJSON is count's --json output.
type countJSON struct {
	Deployment string      `json:"deployment"`
	Prefix     string      `json:"prefix"`
	Sessions   int64       `json:"sessions"`
	Bytes      int64       `json:"memory_bytes"`
	Other      int64       `json:"other_keys"`
	Histories  int64       `json:"save_histories"`
	Truncated  bool        `json:"truncated"`
	Nodes      []nodeCount `json:"nodes"`
}

func runCount(ctx context.Context, e *env) error {
	kind, err := e.kind(ctx)
	if err != nil {
		return err
	}
	masters, err := e.masters(ctx, kind)
	if err != nil {
		return err
	}
	pattern := legacy.GlobEscape(e.prefix) + "{*"
	var nodes []nodeCount
	var total nodeCount
	failed := 0
	for _, addr := range masters {
		n := e.countNode(ctx, addr, pattern)
		if n.Error != "" {
			failed++
		}
		total.Sessions += n.Sessions
		total.Bytes += n.Bytes
		total.Other += n.Other
		total.Histories += n.Histories
		total.Scanned += n.Scanned
		total.Truncated = total.Truncated || n.Truncated
		nodes = append(nodes, n)
	}
	if e.json {
		if err := writeJSON(e.stdout, countJSON{
			Deployment: kind, Prefix: e.prefix, Sessions: total.Sessions, Bytes: total.Bytes,
			Other: total.Other, Histories: total.Histories, Truncated: total.Truncated, Nodes: nodes,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "sessions under prefix %q (%s, %d master(s))\n", e.prefix, kind, len(masters))
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "MASTER\tSESSIONS\tMEMORY\tOTHER KEYS\tSCANNED\tNOTE")
		for _, n := range append(nodes, total) {
			if n.Addr == "" {
				n.Addr = "total"
			}
			note := n.Error
			if n.Truncated && note == "" {
				note = fmt.Sprintf("stopped at --max-keys %d: lower bounds", e.maxKeys)
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\n", n.Addr, n.Sessions, bytesString(n.Bytes), n.Other, n.Scanned, note)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "(other keys: forward pointers of rotated sessions and tombstones of revoked ones; user indexes are not counted; memory includes the save histories of busy sessions: %d)\n", total.Histories)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d master(s) could not be counted", failed, len(masters))
	}
	return nil
}

// countNode SCANs one master for the session keys (hashes matching pattern), up to
// --max-keys keys, and sums their MEMORY USAGE.
func (e *env) countNode(ctx context.Context, addr, pattern string) nodeCount {
	n := nodeCount{Addr: addr}
	c := redis.NewClient(e.nodeOptions(addr))
	defer c.Close()
	var cursor uint64
	for {
		scan, err := call(ctx, e, func(ctx context.Context) (*redis.ScanCmd, error) {
			cmd := c.ScanType(ctx, cursor, pattern, min(scanCount, int64(e.maxKeys)-n.Scanned), "hash")
			return cmd, cmd.Err()
		})
		if err != nil {
			n.Error = "SCAN: " + err.Error()
			return n
		}
		var keys []string
		keys, cursor = scan.Val()
		if len(keys) > 0 {
			if err := e.countKeys(ctx, c, keys, &n); err != nil {
				n.Error = err.Error()
				return n
			}
		}
		if cursor == 0 {
			return n
		}
		if n.Scanned >= int64(e.maxKeys) {
			n.Truncated = true
			return n
		}
	}
}

// countKeys classifies keys (sessions hold a version; forward pointers and tombstones do
// not; a save history's key ends in historySuffix) and sums the memory of the
// sessions and their histories, in one pipeline.
func (e *env) countKeys(ctx context.Context, c *redis.Client, keys []string, n *nodeCount) error {
	type pair struct {
		session *redis.BoolCmd
		mem     *redis.IntCmd
	}
	cmds := make([]pair, len(keys))
	_, err := call(ctx, e, func(ctx context.Context) ([]redis.Cmder, error) {
		return c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i].session = p.HExists(ctx, k, format.Version)
				cmds[i].mem = p.MemoryUsage(ctx, k, 0)
			}
			return nil
		})
	})
	if err != nil && err != redis.Nil {
		return fmt.Errorf("HEXISTS/MEMORY USAGE: %w", err)
	}
	for i, p := range cmds {
		n.Scanned++
		mem, err := p.mem.Result()
		if err == redis.Nil {
			continue // expired since the SCAN
		}
		if err != nil {
			return fmt.Errorf("MEMORY USAGE: %w", err)
		}
		if strings.HasSuffix(keys[i], "}"+historySuffix) {
			n.Histories++
			n.Bytes += mem
		} else if p.session.Val() {
			n.Sessions++
			n.Bytes += mem
		} else {
			n.Other++
		}
	}
	return nil
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
