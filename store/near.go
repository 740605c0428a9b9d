package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/testhook"
)

// NearCache configures the near-cache (see WithNearCache). A zero field takes its
// default.
type NearCache struct {
	// Size is the most sessions one store keeps cached (default 10,000). An entry holds
	// the session's HGETALL reply and, from its first hit on, the session parsed from it
	// (about 1 KB of heap in all for a session of six short attributes).
	Size int
	// Heartbeat is how often a tracking connection that sent nothing for this long is
	// sent a ROLE command while the store is in use (default 5 ms). Its reply renews the
	// lease and tells that the node is still a master.
	Heartbeat time.Duration
	// Lease is how recent the last reply on a node's tracking connection must be for an
	// entry read over it to be served (default 50 ms). It bounds how stale a cached
	// session can be, and a revocation (Destroy, DestroySession, Revoke, RevokeAll, and a
	// login that evicts sessions under WithMaxSessions and EvictOldest) waits this long,
	// and a little more, after its write before it returns (also when its context ends:
	// the wait is what makes the revocation hold on every app server).
	Lease time.Duration
}

// Defaults of NearCache.
const (
	DefaultNearCacheSize      = 10_000
	DefaultNearCacheHeartbeat = 5 * time.Millisecond
	DefaultNearCacheLease     = 50 * time.Millisecond
)

// WithNearCache keeps recently loaded sessions in the app server's memory, so that a Load
// of a cached session costs no round trip. Default off.
//
// The store opens one connection of its own to each master (RESP3, CLIENT TRACKING ON),
// reads the sessions it caches over it, and Redis sends it an invalidation whenever one
// of them changes, from any app server; the entry is then dropped. An entry is served
// only when all of these hold, and a Load is a miss otherwise:
//   - it came over the current tracking connection of the master that owns its key's
//     slot: any reconnect, failover or change of the slot map drops it;
//   - a ROLE sent on that connection within the last Lease was answered "master" (the
//     store sends one every Heartbeat while in use): a node that stopped answering, a
//     network that stopped carrying its replies, or a node that turned replica, serves
//     nothing after Lease;
//   - on Sentinel, a check sent within the last Lease found the master the client talks
//     to to be the connection's (the same replication ID, INFO replication, every half
//     Lease while in use): after a failover the old master can stay up, and a master,
//     for seconds; the cache does not read it once the client has left it (fills too
//     wait for the check, reading through the client meanwhile);
//   - the session is not past its absolute deadline, and its touch is not due (a Load
//     whose touch is due goes to Redis as without the cache, so an active session is
//     kept alive).
//
// What it guarantees:
//   - A revocation is strict: Destroy, DestroySession, Revoke and RevokeAll return nil
//     only after their write and then Lease and a margin for the drift of clock rates
//     (whatever the context: at most Lease + 10% + 1 ms more). A hit after that needs a
//     lease from a reply Redis sent after the write, and Redis sent the invalidation on
//     that connection before that reply: the entry is gone. Every app server that loads
//     sessions with the cache must have it on with the same Lease or a shorter one.
//     Sessions that WithMaxSessions evicts at a login are ended without this wait: other
//     app servers may serve them for up to Lease.
//   - A Save, Rotate or revocation of this store drops its own entry when it returns:
//     this store reads its own writes.
//   - A session another app server saved is seen within Lease, usually at once (when
//     the invalidation arrives; see the README for measured figures).
//
// Lost: nothing but the Lease a revocation waits. It needs a *redis.Client (single server
// or Sentinel) or a *redis.ClusterClient, and the user's ACL to allow ROLE, CLIENT
// TRACKING and INFO ([ACLNearCacheCommands]); without them loads read Redis as without
// the cache. The tracking connections are dialled with the client's Dialer (TLS, and on
// Sentinel the current master) and credentials (Username, Password,
// CredentialsProvider, CredentialsProviderContext; not a StreamingCredentialsProvider);
// the client's OnConnect and hooks do not see them. Loads only are cached: Sessions,
// Inspect and the other calls read Redis as before.
func WithNearCache(c NearCache) Option {
	return func(o *options) error {
		if c.Size < 0 || c.Heartbeat < 0 || c.Lease < 0 {
			return fmt.Errorf("hasession: negative value in near-cache options %+v", c)
		}
		if c.Size == 0 {
			c.Size = DefaultNearCacheSize
		}
		if c.Heartbeat == 0 {
			c.Heartbeat = DefaultNearCacheHeartbeat
		}
		if c.Lease == 0 {
			c.Lease = DefaultNearCacheLease
		}
		if c.Heartbeat >= c.Lease {
			return fmt.Errorf("hasession: near-cache heartbeat %s is not shorter than its lease %s", c.Heartbeat, c.Lease)
		}
		if c.Lease > 5*time.Second {
			return fmt.Errorf("hasession: near-cache lease %s is over 5s (every revocation waits it)", c.Lease)
		}
		o.near = &c
		return nil
	}
}

// ACLNearCacheCommands are the command rules a store's user needs beside [ACLCommands]
// with [WithNearCache]: the heartbeat (ROLE), turning tracking on, SELECT for a database
// other than 0, and INFO replication (on Sentinel, to tell the client's master).
const ACLNearCacheCommands = "+role +client|tracking +select +info"

// monoBase anchors mono: nanoseconds on the monotonic clock.
var monoBase = time.Now()

func mono() int64 { return int64(time.Since(monoBase)) }

// nearCache is the near-cache of one store.
type nearCache struct {
	st        *Store
	size      int
	heartbeat time.Duration
	lease     int64 // ns
	stall     int64 // ns: a command unanswered this long closes its connection
	cluster   *redis.ClusterClient
	single    *nearNode // a *redis.Client's one node
	// sentinel: the client is a Sentinel failover client. Its master can change while
	// the old one stays up and a master for a while (a manual failover, a healed
	// partition: Sentinel demotes it seconds later): the store then checks, every half
	// lease, that the master the client talks to is the tracking connection's (the same
	// replication ID), and closes the connection when it is not.
	sentinel bool
	checking atomic.Bool
	checked  atomic.Int64 // mono of the last check sent

	nodes sync.Map // a cluster's masters by address: *nearNode

	emu     sync.Mutex
	entries map[string]*nearEntry
	fills   map[string]int    // fills in flight per key
	fences  map[string]uint64 // a local write while a fill was in flight: fills sent up to it are not kept

	seq     atomic.Uint64 // numbers the commands sent on tracking connections
	lastUse atomic.Int64  // mono of the last lookup: idle, the heartbeat rests
	done    chan struct{}
	closed  atomic.Bool
	ctx     context.Context // ends with close: dials and master checks
	cancel  context.CancelFunc

	hits, misses, leaseWaits                            atomic.Int64
	evInvalidated, evLease, evReconnect, evCapacity     atomic.Int64
	connects, connectFailures, fallbacks, masterChanges atomic.Int64
}

// nearEntry is one cached session: its raw HGETALL reply (RESP3), read over conn.
type nearEntry struct {
	raw  []byte
	conn *trackConn
	// tmpl is the session raw holds, parsed at its first hit (nil: not yet, or raw is no
	// session): later hits copy it instead of parsing raw again. Its attributes are
	// shared with every copy (Session.shared).
	tmpl *Session
}

// nearNode is one master: its address, the options to dial it, and its current tracking
// connection.
type nearNode struct {
	nc      *nearCache
	addr    string
	opt     *redis.Options
	cur     atomic.Pointer[trackConn]
	dialing atomic.Bool
	retryAt atomic.Int64 // mono: no dial before
	fails   int          // dials failed in a row (the dialling goroutine's)
}

// errNearUnsupported: WithNearCache on a client it cannot serve.
var errNearUnsupported = errors.New("hasession: the near-cache needs a *redis.Client or a *redis.ClusterClient")

func newNearCache(st *Store, c *NearCache) (*nearCache, error) {
	nc := &nearCache{
		st: st, size: c.Size, heartbeat: c.Heartbeat, lease: int64(c.Lease),
		entries: map[string]*nearEntry{},
		fills:   map[string]int{}, fences: map[string]uint64{}, done: make(chan struct{}),
	}
	nc.ctx, nc.cancel = context.WithCancel(context.Background())
	var streaming bool
	var readTimeout time.Duration
	switch r := st.rdb.(type) {
	case *redis.Client:
		opt := r.Options()
		nc.single = &nearNode{nc: nc, addr: opt.Addr, opt: opt}
		nc.sentinel = opt.Addr == "FailoverClient" // go-redis's name for a failover client's address
		streaming, readTimeout = opt.StreamingCredentialsProvider != nil, opt.ReadTimeout
	case *redis.ClusterClient:
		nc.cluster = r
		co := r.Options()
		streaming, readTimeout = co.StreamingCredentialsProvider != nil, co.ReadTimeout
	default:
		return nil, fmt.Errorf("%w, not %T", errNearUnsupported, st.rdb)
	}
	if streaming {
		return nil, errors.New("hasession: the near-cache does not take a StreamingCredentialsProvider")
	}
	nc.stall = stallOf(readTimeout, c.Lease)
	go nc.heartbeats()
	return nc, nil
}

// stallOf is how long a command on a tracking connection may go unanswered before the
// connection is closed (and its node dialled again, which after a failover reaches the
// new master): 20 leases, at least 1 s, at most the client's read timeout (3 s by
// default) unless that is under 1 s.
func stallOf(readTimeout, lease time.Duration) int64 {
	if readTimeout <= 0 {
		readTimeout = 3 * time.Second
	}
	return int64(max(min(20*lease, readTimeout), time.Second))
}

// fillWait is how long a load waits for a fill's reply before it reads through the client
// instead (the fill goes on, and is cached if its reply comes): 4 leases, at least 100 ms.
func (nc *nearCache) fillWait() time.Duration {
	return max(4*time.Duration(nc.lease), 100*time.Millisecond)
}

// node returns the master that owns key's slot, as the client sees it (nil: unknown).
func (nc *nearCache) node(ctx context.Context, key string) *nearNode {
	if nc.single != nil {
		return nc.single
	}
	c, err := nc.cluster.MasterForKey(ctx, key)
	if err != nil {
		return nil
	}
	opt := c.Options()
	if n, ok := nc.nodes.Load(opt.Addr); ok {
		return n.(*nearNode)
	}
	n, _ := nc.nodes.LoadOrStore(opt.Addr, &nearNode{nc: nc, addr: opt.Addr, opt: opt})
	return n.(*nearNode)
}

// nearRead returns the raw HGETALL reply of key: from the cache when an entry may be
// served (hit, with the session parsed from it at an earlier hit, if any: tmpl), else
// read over the tracking connection (and cached), else read as without the cache.
func (st *Store) nearRead(ctx context.Context, key string) (raw []byte, tmpl *Session, hit bool, err error) {
	nc := st.near
	n := nc.node(ctx, key)
	now := mono()
	if now-nc.lastUse.Load() > int64(time.Millisecond) {
		nc.lastUse.Store(now) // (not on every load: one cache line all loads would write)
	}
	through := func() ([]byte, *Session, bool, error) { // as without the cache
		raw, err := st.hgetall(ctx, key)
		return raw, nil, false, err
	}
	if n == nil {
		nc.misses.Add(1)
		return through()
	}
	tc := n.cur.Load()
	if tc == nil || tc.dead.Load() {
		nc.misses.Add(1)
		n.connect()
		return through()
	}
	if nc.sentinel && now-tc.verified.Load() >= nc.lease && !testhook.NearNoMasterCheck.Load() {
		// Not known to be the client's master within the lease (an idle store, a check
		// that failed): through the client, and a check.
		nc.misses.Add(1)
		nc.kickCheck(tc)
		return through()
	}
	// The lease first, then the entry: an invalidation is applied before the reply that
	// renews the lease, so an entry seen after a lease is not older than the lease.
	leased := now-tc.acked.Load() < nc.lease || testhook.NearIgnoreLease.Load() // the switch: a broken build, for the tests
	nc.emu.Lock()
	e := nc.entries[key]
	if e != nil && e.conn == tc && leased {
		raw, tmpl := e.raw, e.tmpl
		nc.emu.Unlock()
		nc.hits.Add(1)
		return raw, tmpl, true, nil
	}
	if e != nil {
		// Not served; kept, unless read over another connection (a fill replaces it).
		if e.conn == tc {
			nc.evLease.Add(1)
		} else {
			delete(nc.entries, key)
			nc.evReconnect.Add(1)
		}
	}
	nc.misses.Add(1)
	if tc.stalled(now, nc.lease) {
		// Its oldest command has waited a lease: a fill would too.
		nc.emu.Unlock()
		nc.fallbacks.Add(1)
		return through()
	}
	nc.fills[key]++
	nc.emu.Unlock()
	raw, err = tc.fill(ctx, key, nc.fillWait())
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, false, err
		}
		// The tracking connection failed or is slow, or the node refused the read
		// (MOVED, …): as without the cache, through the client.
		nc.fallbacks.Add(1)
		return through()
	}
	return raw, nil, false, nil
}

// nearKeep keeps a copy of s, just parsed from raw, a hit of key, as the entry's parsed
// session, if the entry still holds raw: the next hits copy it. The copy's attribute
// list is its own, of its exact length (s's is the reply's whole field list).
func (st *Store) nearKeep(key string, raw []byte, s *Session) {
	nc := st.near
	nc.emu.Lock()
	defer nc.emu.Unlock()
	if e := nc.entries[key]; e != nil && e.tmpl == nil && len(e.raw) > 0 && len(raw) > 0 && &e.raw[0] == &raw[0] {
		t := s.sharedCopy()
		t.attrs = slices.Clone(s.attrs)
		e.tmpl = t
	}
}

// nearDrop drops the entries of keys this store just wrote (after the write's reply): it
// reads its own writes, whatever the invalidation's way.
func (st *Store) nearDrop(keys ...string) {
	nc := st.near
	if nc == nil {
		return
	}
	fence := nc.seq.Load()
	nc.emu.Lock()
	for _, k := range keys {
		delete(nc.entries, k)
		if nc.fills[k] > 0 {
			nc.fences[k] = max(nc.fences[k], fence)
		}
	}
	nc.emu.Unlock()
}

// nearRevoked is deferred by a revocation (and called by a login's eviction): one that
// wrote (no error, or a write not acknowledged by enough replicas) returns only after the
// lease and its margin.
func (st *Store) nearRevoked(err *error) {
	wrote := *err == nil || errors.Is(*err, ErrNotAcknowledged)
	if wrote && !testhook.NearNoLeaseWait.Load() { // the switch: a broken build, for the tests
		st.nearWaitLease()
	}
}

// nearWaitLease waits the lease and its margin. It does not end with a context: a
// revocation that returned before it could be served from another app server's cache,
// and the wait is short (the lease is at most 5 s; 55 ms by default).
func (st *Store) nearWaitLease() {
	nc := st.near
	nc.leaseWaits.Add(1)
	// Clock rates differ by far less than 10% between app servers; 1 ms covers the
	// scheduling of this sleep.
	time.Sleep(time.Duration(nc.lease + nc.lease/10 + int64(time.Millisecond)))
}

// keep is the reader's: it caches a fill's reply, unless a local write of the key came
// while it was in flight. It ends the fill either way (ok false: the fill failed).
func (nc *nearCache) keep(tc *trackConn, key string, seq uint64, raw []byte, ok bool) {
	nc.emu.Lock()
	defer nc.emu.Unlock()
	if nc.fills[key]--; nc.fills[key] <= 0 {
		delete(nc.fills, key)
		defer delete(nc.fences, key)
	}
	if !ok || nc.closed.Load() {
		return
	}
	if f, fenced := nc.fences[key]; fenced && f >= seq {
		return
	}
	if _, there := nc.entries[key]; !there && len(nc.entries) >= nc.size {
		for k := range nc.entries { // an arbitrary entry: Go's map order is random
			delete(nc.entries, k)
			nc.evCapacity.Add(1)
			break
		}
	}
	nc.entries[key] = &nearEntry{raw: raw, conn: tc}
}

// invalidate is the reader's: Redis says keys changed (nil: all of them, a flush).
func (nc *nearCache) invalidate(tc *trackConn, keys []string, all bool) {
	nc.emu.Lock()
	defer nc.emu.Unlock()
	if all {
		for k, e := range nc.entries {
			if e.conn == tc {
				delete(nc.entries, k)
				nc.evInvalidated.Add(1)
			}
		}
		return
	}
	for _, k := range keys {
		if _, ok := nc.entries[k]; ok {
			delete(nc.entries, k)
			nc.evInvalidated.Add(1)
		}
	}
}

// dropConn drops the entries read over a connection that closed.
func (nc *nearCache) dropConn(tc *trackConn) {
	nc.emu.Lock()
	defer nc.emu.Unlock()
	for k, e := range nc.entries {
		if e.conn == tc {
			delete(nc.entries, k)
			nc.evReconnect.Add(1)
		}
	}
}

// connect dials the node's tracking connection in the background, unless a dial is
// under way or failed a moment ago.
func (n *nearNode) connect() {
	if n.nc.closed.Load() || mono() < n.retryAt.Load() || !n.dialing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer n.dialing.Store(false)
		tc, err := dialTrack(n.nc.ctx, n)
		if err != nil {
			// Loads read through the client meanwhile. The wait doubles from 100 ms to
			// 5 s while dials fail (a node down, a user without the ACL rules).
			if n.nc.closed.Load() {
				return
			}
			n.nc.connectFailures.Add(1)
			n.retryAt.Store(mono() + int64(min(100*time.Millisecond<<min(n.fails, 6), 5*time.Second)))
			if n.fails == 0 {
				n.nc.st.o.logger.Warn("hasession: near-cache connection failed; loads read through the client until it connects", "addr", n.addr, "err", err)
			}
			n.fails++
			return
		}
		n.fails = 0
		n.nc.connects.Add(1)
		if old := n.cur.Swap(tc); old != nil {
			old.close(errReplaced)
		}
		if n.nc.closed.Load() {
			tc.close(ErrClosed)
		}
	}()
}

var errReplaced = errors.New("replaced")

// heartbeats sends ROLE on every tracking connection that sent nothing for a heartbeat
// period while the store is in use, and closes connections whose oldest command went
// unanswered too long.
func (nc *nearCache) heartbeats() {
	t := time.NewTicker(nc.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-nc.done:
			return
		case <-t.C:
		}
		now := mono()
		idle := now-nc.lastUse.Load() > int64(time.Second)
		for _, n := range nc.allNodes() {
			tc := n.cur.Load()
			if tc == nil || tc.dead.Load() {
				continue
			}
			if tc.stalled(now, nc.stall) {
				go tc.close(errStalled) // closing a TLS connection can block
				continue
			}
			if !idle && now-tc.roleSent.Load() >= int64(nc.heartbeat) {
				tc.ping()
			}
			if nc.sentinel && !idle && now-nc.checked.Load() >= nc.lease/2 {
				nc.kickCheck(tc)
			}
		}
	}
}

// kickCheck starts a check of the client's master (checkMaster), unless one is under way.
func (nc *nearCache) kickCheck(tc *trackConn) {
	if testhook.NearNoMasterCheck.Load() || !nc.checking.CompareAndSwap(false, true) { // the switch: a broken build, for the tests
		return
	}
	nc.checked.Store(mono())
	go nc.checkMaster(tc)
}

// checkMaster asks the master the client talks to for its replication ID: when it is tc's
// master's, tc is verified as of the check's sending (on Sentinel, entries and fills are
// served only within a lease of that); when it is another's (the client moved to a new
// master), tc is closed. A check that fails verifies nothing.
func (nc *nearCache) checkMaster(tc *trackConn) {
	defer nc.checking.Store(false)
	ctx, cancel := context.WithTimeout(nc.ctx, time.Duration(nc.stall))
	defer cancel()
	sent := mono()
	info, err := nc.st.rdb.Info(ctx, "replication").Result()
	if err != nil {
		return
	}
	role, replid := replicationOf(info)
	switch {
	case role == "master" && replid == tc.replid:
		if sent > tc.verified.Load() {
			tc.verified.Store(sent) // the only writer: checks run one at a time
		}
	case role == "master" && replid != "":
		nc.masterChanges.Add(1)
		tc.close(errMasterMoved)
	}
}

var errMasterMoved = errors.New("the client's master is another node")

var errStalled = errors.New("no reply in time")

func (nc *nearCache) allNodes() []*nearNode {
	if nc.single != nil {
		return []*nearNode{nc.single}
	}
	var out []*nearNode
	nc.nodes.Range(func(_, n any) bool {
		out = append(out, n.(*nearNode))
		return true
	})
	return out
}

func (nc *nearCache) close() {
	if nc.closed.Swap(true) {
		return
	}
	close(nc.done)
	nc.cancel()
	for _, n := range nc.allNodes() {
		if tc := n.cur.Load(); tc != nil {
			tc.close(ErrClosed)
		}
	}
	nc.emu.Lock()
	clear(nc.entries)
	nc.emu.Unlock()
}

// nearStats fills the near-cache's counters into s.
func (nc *nearCache) stats(s *Stats) {
	nc.emu.Lock()
	s.NearCached = int64(len(nc.entries))
	nc.emu.Unlock()
	s.NearHits, s.NearMisses, s.NearLeaseWaits = nc.hits.Load(), nc.misses.Load(), nc.leaseWaits.Load()
	s.NearEvictedInvalidated, s.NearEvictedLease = nc.evInvalidated.Load(), nc.evLease.Load()
	s.NearEvictedReconnect, s.NearEvictedCapacity = nc.evReconnect.Load(), nc.evCapacity.Load()
	s.NearConnects, s.NearFallbacks = nc.connects.Load(), nc.fallbacks.Load()
	s.NearConnectFailures, s.NearMasterChanges = nc.connectFailures.Load(), nc.masterChanges.Load()
}
