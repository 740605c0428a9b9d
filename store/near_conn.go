package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// trackConn is a near-cache's connection to one master: RESP3 with CLIENT TRACKING ON.
// Callers write commands to it (the first writes for those that come while it writes:
// they travel together); one reader goroutine reads the stream in order: invalidation
// pushes drop entries, and each reply goes to its command, a fill's reply into the cache
// first. A connection is never reused after it fails: the node dials a new one.
type trackConn struct {
	node *nearNode
	conn net.Conn
	br   *bufio.Reader
	wto  time.Duration // write timeout
	// replid is the master's replication ID when the connection was made (Sentinel
	// only): a master promoted since has another.
	replid string

	mu      sync.Mutex
	pending []*nearReq // sent, not answered, in order
	head    int
	wbuf    []byte // to write
	spare   []byte
	writing bool
	err     error

	roleSent atomic.Int64 // mono of the last heartbeat sent
	acked    atomic.Int64 // mono of the sending of the last ROLE answered "master": the lease
	// verified is, on Sentinel, the mono of the sending of the last check that found the
	// client's master to be this connection's (see nearCache.checkMaster).
	verified atomic.Int64
	pinging  atomic.Bool
	dead     atomic.Bool
}

type reqKind uint8

const (
	reqFill reqKind = iota // HGETALL of key
	reqRole                // the heartbeat
)

// nearReq is one command on a tracking connection.
type nearReq struct {
	kind   reqKind
	key    string
	seq    uint64
	sentAt int64
	done   chan struct{} // nil: nobody waits (the heartbeat)
	raw    []byte
	err    error
}

var (
	errTrackClosed = errors.New("hasession: near-cache connection closed")
	errNotMaster   = errors.New("the node is no longer a master")
)

// dialTrack dials n and turns tracking on; ctx ends with the store.
func dialTrack(parent context.Context, n *nearNode) (*trackConn, error) {
	opt := n.opt
	dt := opt.DialTimeout
	if dt <= 0 {
		dt = 5 * time.Second
	}
	rt := opt.ReadTimeout
	if rt <= 0 {
		rt = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(parent, dt+rt)
	defer cancel()
	dial := opt.Dialer
	if dial == nil {
		dial = redis.NewDialer(opt)
	}
	network := opt.Network
	if network == "" {
		network = "tcp"
	}
	conn, err := dial(ctx, network, opt.Addr)
	if err != nil {
		return nil, err
	}
	user, pass := opt.Username, opt.Password
	switch {
	case opt.CredentialsProviderContext != nil:
		if user, pass, err = opt.CredentialsProviderContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
	case opt.CredentialsProvider != nil:
		user, pass = opt.CredentialsProvider()
	}
	hello := []string{"HELLO", "3"}
	if pass != "" {
		if user == "" {
			user = "default"
		}
		hello = append(hello, "AUTH", user, pass)
	}
	cmds := [][]string{hello}
	if opt.DB != 0 {
		cmds = append(cmds, []string{"SELECT", strconv.Itoa(opt.DB)})
	}
	cmds = append(cmds, []string{"CLIENT", "TRACKING", "ON"}, []string{"ROLE"})
	if n.nc.sentinel {
		cmds = append(cmds, []string{"INFO", "replication"})
	}
	var w []byte
	for _, c := range cmds {
		w = appendCommand(w, c...)
	}
	_ = conn.SetDeadline(time.Now().Add(rt))
	if _, err := conn.Write(w); err != nil {
		_ = conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 16<<10)
	var replid string
	for _, c := range cmds {
		raw, err := readValue(br, nil)
		if err == nil && len(raw) > 0 && (raw[0] == '-' || raw[0] == '!') {
			err = fmt.Errorf("%s: %s", c[0], bytes.TrimSpace(raw[1:]))
		}
		if err == nil && c[0] == "ROLE" && !isMasterRole(raw) {
			err = errNotMaster // a replica since the client's slot map was read: not cached from
		}
		if err == nil && c[0] == "INFO" {
			var role string
			if role, replid = replicationOf(string(raw)); role != "master" || replid == "" {
				err = fmt.Errorf("INFO replication: role %q, replication ID %q", role, replid)
			}
		}
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	_ = conn.SetDeadline(time.Time{})
	wto := opt.WriteTimeout
	if wto <= 0 {
		wto = 3 * time.Second
	}
	tc := &trackConn{node: n, conn: conn, br: br, wto: wto, replid: replid}
	now := mono()
	tc.acked.Store(now - 1<<40) // no lease before the first reply
	tc.verified.Store(now - 1<<40)
	go tc.readLoop()
	return tc, nil
}

// appendCommand appends a command in RESP.
func appendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// fill reads key with HGETALL over the connection; the reader caches the reply. It waits
// at most wait for the reply (errFillSlow).
func (tc *trackConn) fill(ctx context.Context, key string, wait time.Duration) ([]byte, error) {
	req := &nearReq{kind: reqFill, key: key, done: make(chan struct{})}
	if err := tc.send(req, "HGETALL", key); err != nil {
		tc.node.nc.keep(tc, key, 0, nil, false) // never queued
		return nil, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-req.done:
		return req.raw, req.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, errFillSlow
	}
}

var errFillSlow = errors.New("hasession: near-cache fill too slow")

// ping sends the heartbeat, from a goroutine of its own (a write to a stalled server can
// block until the write timeout: the heartbeat loop serves every node); its reply renews
// the lease.
func (tc *trackConn) ping() {
	if !tc.pinging.CompareAndSwap(false, true) {
		return
	}
	tc.roleSent.Store(mono())
	go func() {
		defer tc.pinging.Store(false)
		_ = tc.send(&nearReq{kind: reqRole}, "ROLE")
	}()
}

// send queues req and writes its command: at once when no write is under way, else with
// the write that follows the one under way. An error says req was not queued; once
// queued, the reader finishes it (with the connection's error if the write fails).
func (tc *trackConn) send(req *nearReq, args ...string) error {
	tc.mu.Lock()
	if tc.err != nil {
		tc.mu.Unlock()
		return tc.err
	}
	req.seq = tc.node.nc.seq.Add(1)
	req.sentAt = mono()
	tc.pending = append(tc.pending, req)
	tc.wbuf = appendCommand(tc.wbuf, args...)
	if tc.writing {
		tc.mu.Unlock()
		return nil
	}
	tc.writing = true
	for len(tc.wbuf) > 0 {
		buf := tc.wbuf
		tc.wbuf = tc.spare[:0]
		tc.mu.Unlock()
		_ = tc.conn.SetWriteDeadline(time.Now().Add(tc.wto))
		_, err := tc.conn.Write(buf)
		tc.mu.Lock()
		tc.spare = buf[:0]
		if err != nil {
			tc.writing = false
			tc.mu.Unlock()
			tc.close(err)
			return nil
		}
	}
	tc.writing = false
	tc.mu.Unlock()
	return nil
}

// stalled says whether the oldest command unanswered was sent over d ago.
func (tc *trackConn) stalled(now, d int64) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.head < len(tc.pending) && now-tc.pending[tc.head].sentAt > d
}

// close closes the connection with err (the first error wins); the reader then fails
// what is pending and drops the connection's entries.
func (tc *trackConn) close(err error) {
	tc.mu.Lock()
	if tc.err == nil {
		tc.err = fmt.Errorf("%w: %w", errTrackClosed, err)
	}
	tc.mu.Unlock()
	if !tc.dead.Swap(true) {
		_ = tc.conn.Close()
	}
}

// readLoop reads the connection's stream until it fails.
func (tc *trackConn) readLoop() {
	nc := tc.node.nc
	var err error
	var scratch []byte // each value is read into it; a fill's reply is kept as a copy of its own size
	for {
		if cap(scratch) > 64<<10 {
			scratch = nil // not kept after one large reply
		}
		var raw []byte
		if raw, err = readValue(tc.br, scratch[:0]); err != nil {
			break
		}
		scratch = raw
		if raw[0] == '>' {
			if keys, all, ok := parseInvalidation(raw); ok {
				nc.invalidate(tc, keys, all)
			}
			continue
		}
		tc.mu.Lock()
		if tc.head == len(tc.pending) {
			tc.mu.Unlock()
			err = errors.New("a reply to no command")
			break
		}
		req := tc.pending[tc.head]
		tc.pending[tc.head] = nil
		if tc.head++; tc.head == len(tc.pending) {
			tc.pending, tc.head = tc.pending[:0], 0
		}
		tc.mu.Unlock()
		isErr := raw[0] == '-' || raw[0] == '!'
		switch req.kind {
		case reqFill:
			raw = bytes.Clone(raw)
			nc.keep(tc, req.key, req.seq, raw, !isErr && !bytes.Equal(raw, emptyMap))
		case reqRole:
			if isErr || !isMasterRole(raw) {
				if !isErr {
					nc.masterChanges.Add(1)
					err = errNotMaster
				} else {
					err = fmt.Errorf("ROLE: %s", bytes.TrimSpace(raw[1:]))
					tc.node.retryAt.Store(mono() + int64(time.Second))
				}
				tc.finish(req, nil, nil)
				tc.close(err)
				continue // the stream ends at the close
			}
		}
		// The lease comes from a ROLE reply that says master, and only after the entries:
		// a lease seen means the invalidations before it were applied, by a node that was
		// a master when it answered. (A fill's reply does not renew it: a node that turned
		// replica answers reads too, and an error reply such as MOVED says nothing.)
		if req.kind == reqRole && req.sentAt > tc.acked.Load() {
			tc.acked.Store(req.sentAt)
		}
		switch {
		case isErr:
			tc.finish(req, nil, fmt.Errorf("%s", bytes.TrimSpace(raw[1:])))
		case req.kind == reqFill:
			tc.finish(req, raw, nil)
		default:
			tc.finish(req, nil, nil) // the scratch buffer is read again next
		}
	}
	tc.close(err)
	tc.mu.Lock()
	left := tc.pending[tc.head:]
	tc.pending, tc.head = nil, 0
	cerr := tc.err
	tc.mu.Unlock()
	for _, req := range left {
		if req.kind == reqFill {
			nc.keep(tc, req.key, req.seq, nil, false)
		}
		tc.finish(req, nil, cerr)
	}
	nc.dropConn(tc)
}

var emptyMap = []byte("%0\r\n")

func (tc *trackConn) finish(req *nearReq, raw []byte, err error) {
	if req.done == nil {
		return
	}
	req.raw, req.err = raw, err
	close(req.done)
}

// maxBulk bounds a bulk string read from a tracking connection (Redis's own limit).
const maxBulk = 512 << 20

// readValue appends one RESP3 value read from br to out. An attribute before it (a '|'
// frame) is read and dropped: what is appended is the value it describes.
func readValue(br *bufio.Reader, out []byte) ([]byte, error) {
	start := len(out)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return out, err
		}
		if b[0] != '|' {
			return readNested(br, out, 0)
		}
		if out, err = readAttribute(br, out); err != nil {
			return out, err
		}
		out = out[:start]
	}
}

// readAttribute appends an attribute frame (its map only) to out.
func readAttribute(br *bufio.Reader, out []byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return out, err
	}
	n, err := strconv.Atoi(string(bytes.TrimRight(line[1:], "\r\n")))
	if err != nil || n < 0 || n > maxBulk {
		return out, fmt.Errorf("malformed RESP attribute %q", line)
	}
	for range 2 * n {
		if out, err = readNested(br, out, 1); err != nil {
			return out, err
		}
	}
	return out, nil
}

// maxNesting bounds how deep aggregates nest (Redis's own replies nest a few levels).
const maxNesting = 64

func readNested(br *bufio.Reader, out []byte, depth int) ([]byte, error) {
	if depth > maxNesting {
		return out, errors.New("RESP aggregates nested too deep")
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return out, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return out, fmt.Errorf("malformed RESP line %q", line)
	}
	out = append(out, line...)
	kind := line[0]
	var n int
	switch kind {
	case '+', '-', ':', ',', '#', '(', '_':
		return out, nil
	case '$', '!', '=', '*', '~', '>', '%', '|':
		body := line[1 : len(line)-2]
		if len(body) == 2 && body[0] == '-' && body[1] == '1' { // a RESP2 null
			return out, nil
		}
		if n, err = strconv.Atoi(string(body)); err != nil || n < 0 || n > maxBulk {
			return out, fmt.Errorf("malformed RESP length %q", line)
		}
	default:
		return out, fmt.Errorf("unknown RESP type %q", kind)
	}
	switch kind {
	case '$', '!', '=':
		// Read in pieces of at most 64 KiB: a length is only a claim until the bytes come.
		for left := n + 2; left > 0; {
			k := min(left, 64<<10)
			start := len(out)
			out = append(out, make([]byte, k)...)
			if _, err := io.ReadFull(br, out[start:]); err != nil {
				return out, err
			}
			left -= k
		}
		if out[len(out)-2] != '\r' || out[len(out)-1] != '\n' {
			return out, errors.New("bulk string not terminated by CRLF")
		}
		return out, nil
	case '%', '|':
		n *= 2
	}
	for range n {
		if out, err = readNested(br, out, depth+1); err != nil {
			return out, err
		}
	}
	if kind == '|' { // attributes come before the value they describe
		return readNested(br, out, depth+1)
	}
	return out, nil
}

// parseInvalidation reads an invalidation push: the keys, or all (a flush). ok is false
// for any other push.
func parseInvalidation(raw []byte) (keys []string, all bool, ok bool) {
	s := string(raw)
	n, off, err := respLen(s, 1)
	if err != nil || n != 2 || off >= len(s) || s[off] != '$' {
		return nil, false, false
	}
	l, off, err := respLen(s, off+1)
	if err != nil || off+l+2 > len(s) || s[off:off+l] != "invalidate" {
		return nil, false, false
	}
	// An invalidation from here on: what cannot be read drops everything, to be safe.
	off += l + 2
	if off >= len(s) || s[off] != '*' {
		return nil, true, true // '_' (a flush), a RESP2 null, or a shape not known
	}
	n, off, err = respLen(s, off+1)
	if err != nil {
		return nil, true, true
	}
	keys = make([]string, 0, min(n, 64))
	for range n {
		if off >= len(s) || s[off] != '$' {
			return nil, true, true // unreadable: drop everything, to be safe
		}
		if l, off, err = respLen(s, off+1); err != nil || off+l+2 > len(s) {
			return nil, true, true
		}
		keys = append(keys, s[off:off+l])
		off += l + 2
	}
	return keys, false, true
}

// replicationOf reads the role and master_replid of an INFO replication reply.
func replicationOf(info string) (role, replid string) {
	for line := range strings.Lines(info) {
		line = strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(line, "role:"); ok {
			role = v
		} else if v, ok := strings.CutPrefix(line, "master_replid:"); ok {
			replid = v
		}
	}
	return role, replid
}

// isMasterRole says whether a ROLE reply is a master's.
func isMasterRole(raw []byte) bool {
	// *3\r\n$6\r\nmaster\r\n…; a replica's starts with $5 slave, a sentinel's $8 sentinel.
	_, rest, ok := bytes.Cut(raw, []byte("\r\n"))
	return ok && raw[0] == '*' && bytes.HasPrefix(rest, []byte("$6\r\nmaster\r\n"))
}
