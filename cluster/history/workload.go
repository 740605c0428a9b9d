package history

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hasession/hasession/store"
)

// App is one app server: two stores on one go-redis client, the second with version
// checks ([store.WithVersionCheck]).
type App struct {
	Plain, Checked *store.Store
}

// Config bounds and shapes a workload.
type Config struct {
	Users           int           // partitions (default 64)
	SessionsPerUser int           // live sessions a user is given (default 3)
	WorkersPerApp   int           // concurrent callers per app server (default 3)
	MaxOps          int           // stop after this many recorded operations (default 30,000)
	MaxDuration     time.Duration // stop after this long (default 60 s)
	OpTimeout       time.Duration // each call's context deadline (default 5 s)
	UserPrefix      string        // user names are UserPrefix + number (default "u")
	Seed            uint64
	// LoadStaleness is how stale a Load may be, for stores with the near-cache
	// (store.WithNearCache): what a revocation waits, [NearCacheStaleness]. Loads
	// are recorded as invoked that much earlier and revocations that returned OK as
	// returning that much earlier (package documentation, "Bounded staleness"). Zero: no
	// staleness (strict linearizability).
	LoadStaleness time.Duration
}

// NearCacheStaleness is the LoadStaleness of stores with the near-cache c: what their
// revocations wait after their writes, the lease (c.Lease, or its default) + a tenth +
// 1 ms (store.WithNearCache), which bounds how stale their loads may be.
func NearCacheStaleness(c store.NearCache) time.Duration {
	lease := c.Lease
	if lease <= 0 {
		lease = store.DefaultNearCacheLease
	}
	return lease + lease/10 + time.Millisecond
}

func (c *Config) defaults() {
	if c.Users <= 0 {
		c.Users = 64
	}
	if c.SessionsPerUser <= 0 {
		c.SessionsPerUser = 3
	}
	if c.WorkersPerApp <= 0 {
		c.WorkersPerApp = 3
	}
	if c.MaxOps <= 0 {
		c.MaxOps = 30_000
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = time.Minute
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.UserPrefix == "" {
		c.UserPrefix = "u"
	}
}

// pool is what the callers know of one user's sessions.
type pool struct {
	mu       sync.Mutex
	live     []string       // believed live
	old      []string       // rotated away, destroyed, revoked (the last few)
	creating map[int]string // creates in flight, by operation
	born     []string       // every session ID learned, in order (a RevokeAll's concurrent logins)
}

func (p *pool) forget(id string) {
	if i := slices.Index(p.live, id); i >= 0 {
		p.live = slices.Delete(p.live, i, i+1)
	}
	if !slices.Contains(p.old, id) {
		p.old = append(p.old, id)
		if len(p.old) > 4 {
			p.old = p.old[1:]
		}
	}
}

func (p *pool) learn(id string) {
	if !slices.Contains(p.live, id) {
		p.live = append(p.live, id)
		p.born = append(p.born, id)
	}
}

// Workload drives concurrent callers through several app servers on a small set of users
// and sessions, so that operations collide, and records every call.
type Workload struct {
	cfg   Config
	apps  []App
	rec   *Recorder
	users []string
	pools []*pool
	val   atomic.Int64
	// Stats: calls by outcome.
	unknown atomic.Int64
}

// NewWorkload returns a workload over the apps (at least one).
func NewWorkload(apps []App, cfg Config) *Workload {
	cfg.defaults()
	w := &Workload{cfg: cfg, apps: apps, rec: NewRecorder()}
	w.rec.SetLoadStaleness(cfg.LoadStaleness)
	for i := range cfg.Users {
		w.users = append(w.users, fmt.Sprintf("%s%d", cfg.UserPrefix, i))
		w.pools = append(w.pools, &pool{creating: map[int]string{}})
	}
	return w
}

// Recorder returns the workload's recorder.
func (w *Workload) Recorder() *Recorder { return w.rec }

// UnknownCalls is the number of calls that ended in an error or a timeout so far.
func (w *Workload) UnknownCalls() int64 { return w.unknown.Load() }

// Run drives the load until ctx ends, stop is closed, MaxOps operations are recorded or
// MaxDuration passes, and returns when every caller has finished its call.
func (w *Workload) Run(ctx context.Context, stop <-chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.MaxDuration)
	defer cancel()
	var wg sync.WaitGroup
	for a, app := range w.apps {
		for k := range w.cfg.WorkersPerApp {
			client := a*w.cfg.WorkersPerApp + k
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(w.cfg.Seed, uint64(client)))
				for ctx.Err() == nil && w.rec.Len() < w.cfg.MaxOps {
					select {
					case <-stop:
						return
					default:
					}
					w.step(ctx, rng, client, app)
				}
			})
		}
	}
	wg.Wait()
}

func (w *Workload) callCtx() (context.Context, context.CancelFunc) {
	// Calls run to their own deadline, also when the load is stopped.
	return context.WithTimeout(context.Background(), w.cfg.OpTimeout)
}

func status(err error) (Status, string) {
	switch {
	case err == nil:
		return OK, ""
	case errors.Is(err, store.ErrNotFound):
		return NotFound, err.Error()
	case errors.Is(err, store.ErrConflict):
		return Conflict, err.Error()
	case errors.Is(err, store.ErrCorrupt), errors.Is(err, store.ErrCodecMismatch), errors.Is(err, store.ErrInvalidID):
		return Failed, err.Error()
	}
	return Unknown, err.Error()
}

func attr(s *store.Session, name string) int64 {
	var v int64
	if err := s.Get(name, &v); err != nil {
		return 0
	}
	return v
}

func (w *Workload) step(ctx context.Context, rng *rand.Rand, client int, app App) {
	u := rng.IntN(len(w.users))
	user, p := w.users[u], w.pools[u]
	p.mu.Lock()
	nlive := len(p.live)
	var id string
	if nlive > 0 {
		id = p.live[rng.IntN(nlive)]
	}
	if len(p.old) > 0 && rng.IntN(5) == 0 {
		id = p.old[rng.IntN(len(p.old))]
	}
	p.mu.Unlock()
	if nlive < w.cfg.SessionsPerUser && rng.IntN(2) == 0 || id == "" {
		w.create(client, app.Plain, user, p)
		return
	}
	st := app.Plain
	if rng.IntN(2) == 0 {
		st = app.Checked
	}
	switch x := rng.IntN(100); {
	case x < 25:
		w.load(client, st, user, p, id)
	case x < 70:
		if s := w.load(client, st, user, p, id); s != nil {
			w.save(client, st, user, s, rng)
		}
	case x < 78:
		if s := w.load(client, st, user, p, id); s != nil {
			w.rotate(client, st, user, p, s)
		}
	case x < 83:
		w.destroy(client, st, user, p, id)
	case x < 88:
		w.revoke(client, st, user, p, id)
	case x < 90:
		w.revokeAll(client, st, user, p)
	default:
		w.sessions(client, st, user, p)
	}
}

func (w *Workload) create(client int, st *store.Store, user string, p *pool) {
	s, err := st.NewSession()
	if err != nil {
		return
	}
	v := w.val.Add(1)
	_ = s.Set("a", v)
	s.SetUser(user)
	h := w.rec.Invoke(client, Input{Kind: Create, User: user, ID: s.ID(), Val: v})
	p.mu.Lock()
	p.creating[h] = s.ID()
	p.mu.Unlock()
	ctx, cancel := w.callCtx()
	err = st.Save(ctx, s)
	cancel()
	stat, msg := status(err)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.creating, h)
	w.rec.SetID(h, s.ID())
	w.rec.Return(h, Output{Status: stat, Err: msg, Ver: s.Version()})
	w.count(stat)
	if stat == OK {
		p.learn(s.ID())
	}
}

func (w *Workload) count(s Status) {
	if s == Unknown {
		w.unknown.Add(1)
	}
}

func (w *Workload) load(client int, st *store.Store, user string, p *pool, id string) *store.Session {
	h := w.rec.Invoke(client, Input{Kind: Load, User: user, ID: id})
	ctx, cancel := w.callCtx()
	s, err := st.Load(ctx, id)
	cancel()
	stat, msg := status(err)
	out := Output{Status: stat, Err: msg}
	if s != nil {
		out.ID, out.Ver, out.A, out.B = s.ID(), s.Version(), attr(s, "a"), attr(s, "b")
	}
	p.mu.Lock()
	w.rec.Return(h, out)
	if stat == OK && s.ID() != id {
		p.learn(s.ID())
	}
	p.mu.Unlock()
	w.count(stat)
	if stat != OK {
		return nil
	}
	return s
}

func (w *Workload) save(client int, st *store.Store, user string, s *store.Session, rng *rand.Rand) {
	v := w.val.Add(1)
	in := Input{Kind: Save, User: user, ID: s.ID(), Attr: 'a', Val: v}
	if rng.IntN(2) == 0 {
		in.Attr = 'b'
	}
	_ = s.Set(string(in.Attr), v)
	if st == w.checkedOf(st) {
		in.Expect = s.Version()
	}
	h := w.rec.Invoke(client, in)
	ctx, cancel := w.callCtx()
	err := st.Save(ctx, s)
	cancel()
	stat, msg := status(err)
	w.rec.Return(h, Output{Status: stat, Err: msg, Ver: s.Version()})
	w.count(stat)
}

// checkedOf returns st when st is one of the apps' version-checked stores, else nil.
func (w *Workload) checkedOf(st *store.Store) *store.Store {
	for _, a := range w.apps {
		if a.Checked == st {
			return st
		}
	}
	return nil
}

func (w *Workload) rotate(client int, st *store.Store, user string, p *pool, s *store.Session) {
	old := s.ID()
	h := w.rec.Invoke(client, Input{Kind: Rotate, User: user, ID: old, SnapVer: s.Version(), SnapA: attr(s, "a"), SnapB: attr(s, "b")})
	ctx, cancel := w.callCtx()
	err := st.Rotate(ctx, s)
	cancel()
	stat, msg := status(err)
	out := Output{Status: stat, Err: msg}
	if stat == OK {
		out.ID, out.Ver = s.ID(), s.Version()
	}
	p.mu.Lock()
	w.rec.Return(h, out)
	if stat == OK {
		p.forget(old)
		p.learn(s.ID())
	}
	p.mu.Unlock()
	w.count(stat)
}

func (w *Workload) destroy(client int, st *store.Store, user string, p *pool, id string) {
	h := w.rec.Invoke(client, Input{Kind: Destroy, User: user, ID: id})
	ctx, cancel := w.callCtx()
	err := st.Destroy(ctx, id)
	cancel()
	w.endRemove(h, p, id, err)
}

func (w *Workload) revoke(client int, st *store.Store, user string, p *pool, id string) {
	h := w.rec.Invoke(client, Input{Kind: Revoke, User: user, ID: id})
	ctx, cancel := w.callCtx()
	err := st.Revoke(ctx, user, id)
	cancel()
	w.endRemove(h, p, id, err)
}

func (w *Workload) endRemove(h int, p *pool, id string, err error) {
	stat, msg := status(err)
	p.mu.Lock()
	w.rec.Return(h, Output{Status: stat, Err: msg})
	if stat == OK {
		p.forget(id)
	}
	p.mu.Unlock()
	w.count(stat)
}

// revokeAll records one RevokeOne per session the callers knew when it began. A session
// created (or rotated to) while it ran gets one of unknown outcome: RevokeAll reads the
// user's index when it gets to it, so a login concurrent with the call may survive it or
// not (store documentation, RevokeAll).
func (w *Workload) revokeAll(client int, st *store.Store, user string, p *pool) {
	p.mu.Lock()
	call := w.rec.Now()
	var hs []int
	var ids []string
	known := map[string]bool{}
	for _, id := range slices.Concat(p.live, p.old) {
		hs = append(hs, w.rec.InvokeAt(client, Input{Kind: RevokeOne, User: user, ID: id}, call))
		ids = append(ids, id)
		known[id] = true
	}
	born := len(p.born)
	p.mu.Unlock()
	ctx, cancel := w.callCtx()
	err := st.RevokeAll(ctx, user)
	cancel()
	stat, msg := status(err)
	p.mu.Lock()
	ret := w.rec.Now()
	for _, h := range hs {
		w.rec.ReturnAt(h, Output{Status: stat, Err: msg}, ret)
	}
	// Logins in flight when it began or when it returned (their final IDs are known only
	// then), and sessions learned while it ran.
	maybe := slices.Concat(p.born[born:], slices.Collect(maps.Values(p.creating)))
	for _, id := range maybe {
		if !known[id] {
			known[id] = true
			h := w.rec.InvokeAt(client, Input{Kind: RevokeOne, User: user, ID: id}, call)
			w.rec.ReturnAt(h, Output{Status: Unknown, Err: "concurrent with the call"}, ret)
		}
	}
	if stat == OK {
		for _, id := range ids {
			p.forget(id)
		}
	}
	p.mu.Unlock()
	w.count(stat)
}

// sessions records, for every session the callers believed live during the call,
// whether it was listed, and for the others they knew (rotated away, destroyed,
// revoked) only that they were listed, when they were: fewer concurrent parts keep the
// check's search small.
func (w *Workload) sessions(client int, st *store.Store, user string, p *pool) {
	p.mu.Lock()
	call := w.rec.Now()
	known := slices.Clone(p.live)
	p.mu.Unlock()
	ctx, cancel := w.callCtx()
	infos, err := st.Sessions(ctx, user)
	cancel()
	stat, msg := status(err)
	w.count(stat)
	if stat != OK {
		return // an unknown listing constrains nothing
	}
	listed := map[string]bool{}
	for _, in := range infos {
		listed[in.Ref] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ret := w.rec.Now()
	for _, id := range p.live {
		if !slices.Contains(known, id) {
			known = append(known, id)
		}
	}
	for _, id := range p.old {
		if ref, err := st.Ref(id); err == nil && listed[ref] && !slices.Contains(known, id) {
			known = append(known, id)
		}
	}
	for _, id := range known {
		ref, err := st.Ref(id)
		if err != nil {
			continue
		}
		h := w.rec.InvokeAt(client, Input{Kind: Listed, User: user, ID: id}, call)
		w.rec.ReturnAt(h, Output{Status: OK, Listed: listed[ref], Err: msg}, ret)
	}
}
