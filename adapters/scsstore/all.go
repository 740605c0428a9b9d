package scsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/legacy"
	"github.com/hasession/hasession/store"
)

const (
	scanCount   = 1000 // SCAN's COUNT hint
	getBatch    = 200  // GETs per pipeline in AllCtx
	maxRestarts = 20   // scans started over on one node, or rounds over a Cluster's masters
)

// errMasterGone: the Cluster node being scanned no longer is a master (a failover).
var errMasterGone = errors.New("scsstore: node is no longer a master")

// AllCtx returns the data of every live session under the Store's prefix, by token; an
// empty map when there is none. It SCANs for the keys — on a Cluster every master
// (ForEachMaster), on a Ring every shard — then GETs them in pipelines (a Cluster
// pipeline is split by node); a session that expires in between is left out. Keys under
// the prefix that do not hold an scs token are ignored.
//
// Each SCAN page and each pipeline is one operation of the retry policy. A SCAN cursor
// is only valid on the node that issued it, so after a failed attempt (the node that
// answers may have changed) the node's scan starts over; on a Cluster a master that
// lost its role is dropped and the masters listed again, until every current master has
// been scanned to the end. SCAN's guarantee therefore holds per master: every session
// that exists for the whole call is returned. Slots migrating between masters during the
// call (resharding) may be missed.
//
// Errors: the context's error or a Redis error, once the retry policy gave up.
func (s *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	var (
		mu   sync.Mutex
		keys = make(map[string]struct{})
	)
	found := func(page []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range page {
			if _, ok := s.token(k); ok {
				keys[k] = struct{}{}
			}
		}
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = s.scanCluster(ctx, c, found)
	case *redis.Ring:
		err = s.scanRing(ctx, c, found)
	default:
		err = s.scanNode(ctx, s.rdb, nil, found)
	}
	if err != nil {
		return nil, fmt.Errorf("scsstore: list sessions: %w", err)
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	all := make(map[string][]byte, len(sorted))
	for batch := range slices.Chunk(sorted, getBatch) {
		vals, err := store.RetryValue(ctx, s.st, "scs get all", func(ctx context.Context) ([][]byte, error) {
			return s.getAll(ctx, batch)
		})
		if err != nil {
			return nil, fmt.Errorf("scsstore: read sessions: %w", err)
		}
		for i, k := range batch {
			if vals[i] != nil {
				tok, _ := s.token(k)
				all[tok] = vals[i]
			}
		}
	}
	return all, nil
}

// getAll GETs the keys in one pipeline; a missing key's value is nil.
func (s *Store) getAll(ctx context.Context, keys []string) ([][]byte, error) {
	cmds := make([]*redis.StringCmd, len(keys))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	vals := make([][]byte, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case err == nil:
			if b == nil {
				b = []byte{}
			}
			vals[i] = b
		case errors.Is(err, redis.Nil):
		default:
			return nil, err
		}
	}
	return vals, nil
}

// token returns the token of a key under the prefix, if it holds a valid one.
func (s *Store) token(key string) (string, bool) {
	t, ok := strings.CutPrefix(key, s.prefix)
	if !ok || len(t) != TokenLen+2 || t[0] != '{' || t[len(t)-1] != '}' {
		return "", false
	}
	t = t[1 : len(t)-1]
	return t, ValidToken(t)
}

// pattern is the SCAN MATCH pattern of the Store's keys.
func (s *Store) pattern() string { return legacy.GlobEscape(s.prefix) + "{*}" }

type scanner interface {
	Scan(ctx context.Context, cursor uint64, match string, count int64) *redis.ScanCmd
}

type page struct {
	keys []string
	next uint64
}

// scanNode SCANs one node to the end, passing each page's keys to found. Each page is one
// operation of the retry policy; check, if not nil, runs before every attempt but the
// first and stops the scan with its error. A page that needed more than one attempt may
// have been answered by another node than the one that issued the cursor (a failover),
// so the scan then starts over: keys already found stay found.
func (s *Store) scanNode(ctx context.Context, node scanner, check func(context.Context) error, found func([]string)) error {
	match := s.pattern()
	var cursor uint64
	for restarts := 0; ; {
		var attempts atomic.Int32
		from := cursor
		p, err := store.RetryValue(ctx, s.st, "scs scan", func(ctx context.Context) (page, error) {
			if attempts.Add(1) > 1 && check != nil {
				if err := check(ctx); err != nil {
					return page{}, err
				}
			}
			keys, next, err := node.Scan(ctx, from, match, scanCount).Result()
			return page{keys, next}, err
		})
		if err != nil {
			return err
		}
		found(p.keys)
		switch {
		case attempts.Load() > 1 && from != 0:
			if restarts++; restarts > maxRestarts {
				return fmt.Errorf("scan started over %d times", restarts)
			}
			cursor = 0
		case p.next == 0:
			return nil
		default:
			cursor = p.next
		}
	}
}

// scanCluster scans every master of the Cluster, listing them again after a scan that
// lost its node, until every current master has been scanned to the end.
func (s *Store) scanCluster(ctx context.Context, cc *redis.ClusterClient, found func([]string)) error {
	done := make(map[string]bool)
	for range maxRestarts {
		masters, err := store.RetryValue(ctx, s.st, "scs list masters", func(ctx context.Context) ([]*redis.Client, error) {
			return clusterMasters(ctx, cc)
		})
		if err != nil {
			return err
		}
		pending := 0
		for _, m := range masters {
			addr := m.Options().Addr
			if done[addr] {
				continue
			}
			pending++
			err := s.scanNode(ctx, m, func(ctx context.Context) error {
				return stillMaster(ctx, cc, addr)
			}, found)
			switch {
			case err == nil:
				done[addr] = true
			case !errors.Is(err, errMasterGone):
				return err
			}
		}
		if pending == 0 {
			return nil
		}
	}
	return fmt.Errorf("cluster masters kept changing during the scan")
}

// clusterMasters returns the client of each master, in address order.
func clusterMasters(ctx context.Context, cc *redis.ClusterClient) ([]*redis.Client, error) {
	var (
		mu sync.Mutex
		ms []*redis.Client
	)
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		ms = append(ms, c)
		return nil
	})
	slices.SortFunc(ms, func(a, b *redis.Client) int { return strings.Compare(a.Options().Addr, b.Options().Addr) })
	return ms, err
}

// stillMaster returns errMasterGone when the node at addr is no longer one of the
// Cluster's masters, as far as the client's slot map knows (the retry policy asks it to
// reload after each failed attempt).
func stillMaster(ctx context.Context, cc *redis.ClusterClient, addr string) error {
	ms, err := clusterMasters(ctx, cc)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Options().Addr == addr {
			return nil
		}
	}
	return errMasterGone
}

// scanRing scans every shard of a Ring.
func (s *Store) scanRing(ctx context.Context, ring *redis.Ring, found func([]string)) error {
	var (
		mu     sync.Mutex
		shards []*redis.Client
	)
	_ = ring.ForEachShard(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		shards = append(shards, c)
		return nil
	})
	for _, c := range shards {
		if err := s.scanNode(ctx, c, nil, found); err != nil {
			return err
		}
	}
	return nil
}
