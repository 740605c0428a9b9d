package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// FaultKind names a fault a topology can inject.
type FaultKind string

// Faults. Each is healed by [Fault.Heal] or, at the latest, when its duration ends.
const (
	// FaultKill sends SIGKILL; healing starts the container again.
	FaultKill FaultKind = "kill"
	// FaultStop stops the container gracefully (SIGTERM); healing starts it again.
	FaultStop FaultKind = "stop"
	// FaultPause freezes the container's processes (cgroup freezer); healing thaws them.
	FaultPause FaultKind = "pause"
	// FaultPartition cuts the node off the topology's network; healing reconnects it with
	// the same IP.
	FaultPartition FaultKind = "partition"
)

// ParseFaultKind returns the FaultKind named s.
func ParseFaultKind(s string) (FaultKind, error) {
	switch k := FaultKind(s); k {
	case FaultKill, FaultStop, FaultPause, FaultPartition:
		return k, nil
	}
	return "", fmt.Errorf("cluster: unknown fault %q (want kill, stop, pause or partition)", s)
}

// MaxFaultDuration bounds every fault: one that is not healed earlier heals itself then.
const MaxFaultDuration = 5 * time.Minute

// Fault is an injected fault. It heals itself after its duration; Heal heals it earlier.
type Fault struct {
	Kind     FaultKind
	Node     *Node
	Start    time.Time     // when the fault took effect
	Duration time.Duration // when it heals itself, counted from Start

	t      *topology
	mu     sync.Mutex
	timer  *time.Timer
	done   chan struct{}
	healed bool
	err    error
}

// Heal undoes the fault (idempotent) and returns the error of the first heal.
func (f *Fault) Heal(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.healed {
		return f.err
	}
	if f.timer != nil {
		f.timer.Stop()
	}
	f.err = f.t.heal(ctx, f.Kind, f.Node)
	f.healed = true
	close(f.done)
	f.t.mu.Lock()
	delete(f.t.faults, f)
	f.t.mu.Unlock()
	f.t.cfg.logger.Info("fault healed", "fault", f.Kind, "node", f.Node.Name, "after", time.Since(f.Start).Round(time.Millisecond), "err", f.err)
	return f.err
}

// Healed is closed once the fault has been healed.
func (f *Fault) Healed() <-chan struct{} { return f.done }

func (f *Fault) stopTimer() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timer != nil {
		f.timer.Stop()
	}
}

// Inject applies a fault to node n for at most d (0 < d ≤ [MaxFaultDuration]); the fault
// heals itself when d has passed unless [Fault.Heal] healed it first. Terminate removes
// the containers whatever their state.
func (t *topology) Inject(ctx context.Context, kind FaultKind, n *Node, d time.Duration) (*Fault, error) {
	if d <= 0 || d > MaxFaultDuration {
		return nil, fmt.Errorf("cluster: fault duration must be in (0, %s], got %s", MaxFaultDuration, d)
	}
	var err error
	switch kind {
	case FaultKill:
		err = t.Kill(ctx, n)
	case FaultStop:
		err = t.Stop(ctx, n)
	case FaultPause:
		err = t.Pause(ctx, n)
	case FaultPartition:
		err = t.Disconnect(ctx, n)
	default:
		return nil, fmt.Errorf("cluster: unknown fault %q", kind)
	}
	if err != nil {
		return nil, err
	}
	f := &Fault{Kind: kind, Node: n, Start: time.Now(), Duration: d, t: t, done: make(chan struct{})}
	t.mu.Lock()
	t.faults[f] = struct{}{}
	t.mu.Unlock()
	f.mu.Lock()
	f.timer = time.AfterFunc(d, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = f.Heal(ctx)
	})
	f.mu.Unlock()
	t.cfg.logger.Info("fault injected", "fault", kind, "node", n.Name, "max", d)
	return f, nil
}

func (t *topology) heal(ctx context.Context, kind FaultKind, n *Node) error {
	switch kind {
	case FaultKill, FaultStop:
		return t.Start(ctx, n)
	case FaultPause:
		return t.Unpause(ctx, n)
	case FaultPartition:
		return t.Reconnect(ctx, n)
	}
	return fmt.Errorf("cluster: unknown fault %q", kind)
}

func (t *topology) closedErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("cluster: topology terminated")
	}
	return nil
}

// dropAdmin closes the node's admin client so the next call dials afresh.
func (t *topology) dropAdmin(n *Node) {
	t.mu.Lock()
	c := t.admin[n.Name]
	delete(t.admin, n.Name)
	t.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// Kill sends SIGKILL to the node's container. Its data is gone (no persistence); Start
// brings it back with its cluster identity, as a replica once a failover has happened.
func (t *topology) Kill(ctx context.Context, n *Node) error {
	if err := t.closedErr(); err != nil {
		return err
	}
	if _, err := t.dc.ContainerKill(ctx, n.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("cluster: kill %s: %w", n.Name, err)
	}
	t.dropAdmin(n)
	return nil
}

// Stop stops the node's container gracefully (SIGTERM, then SIGKILL after 5 s).
func (t *topology) Stop(ctx context.Context, n *Node) error {
	if err := t.closedErr(); err != nil {
		return err
	}
	timeout := 5
	if _, err := t.dc.ContainerStop(ctx, n.ContainerID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("cluster: stop %s: %w", n.Name, err)
	}
	t.dropAdmin(n)
	return nil
}

// Start starts a stopped or killed node's container and waits until it answers PING.
func (t *topology) Start(ctx context.Context, n *Node) error {
	if err := t.closedErr(); err != nil {
		return err
	}
	if _, err := t.dc.ContainerStart(ctx, n.ContainerID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("cluster: start %s: %w", n.Name, err)
	}
	return t.waitPing(ctx, n)
}

// Pause freezes the node's processes: it neither answers nor closes connections.
func (t *topology) Pause(ctx context.Context, n *Node) error {
	if err := t.closedErr(); err != nil {
		return err
	}
	return t.freeze(ctx, n, true)
}

// Unpause thaws a paused node.
func (t *topology) Unpause(ctx context.Context, n *Node) error {
	return t.freeze(ctx, n, false)
}

// freezeAttempts bounds the attempts of a pause or unpause. On a loaded machine the
// cgroup freezer can fail to settle in time ("OCI runtime pause failed: unable to
// freeze"); runc then leaves the container as it was, so the call can be made again.
const freezeAttempts = 5

// freeze pauses (or, without pause, unpauses) the node's container, again after a failed
// attempt, until the container is in the wanted state, freezeAttempts are spent or ctx
// ends.
func (t *topology) freeze(ctx context.Context, n *Node, pause bool) error {
	verb, want := "unpause", container.StateRunning
	if pause {
		verb, want = "pause", container.StatePaused
	}
	var err error
	for attempt := range freezeAttempts {
		if pause {
			_, err = t.dc.ContainerPause(ctx, n.ContainerID, client.ContainerPauseOptions{})
		} else {
			_, err = t.dc.ContainerUnpause(ctx, n.ContainerID, client.ContainerUnpauseOptions{})
		}
		if err == nil {
			return nil
		}
		if res, ierr := t.dc.ContainerInspect(ctx, n.ContainerID, client.ContainerInspectOptions{}); ierr == nil &&
			res.Container.State != nil && res.Container.State.Status == want {
			return nil // the call failed, the state is the one wanted all the same
		}
		if ctx.Err() != nil || attempt == freezeAttempts-1 {
			break
		}
		tm := time.NewTimer(time.Duration(attempt+1) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			tm.Stop()
		case <-tm.C:
		}
	}
	return fmt.Errorf("cluster: %s %s: %w", verb, n.Name, err)
}

// Disconnect cuts the node off the topology's network: nothing reaches it and it reaches
// nothing, while it keeps running.
func (t *topology) Disconnect(ctx context.Context, n *Node) error {
	if err := t.closedErr(); err != nil {
		return err
	}
	if _, err := t.dc.NetworkDisconnect(ctx, t.net.ID, client.NetworkDisconnectOptions{Container: n.ContainerID, Force: true}); err != nil {
		return fmt.Errorf("cluster: disconnect %s: %w", n.Name, err)
	}
	t.mu.Lock()
	t.connected[n.Name] = false
	t.mu.Unlock()
	t.dropAdmin(n)
	return nil
}

// Reconnect attaches a disconnected node to the network again, with the same IP.
func (t *topology) Reconnect(ctx context.Context, n *Node) error {
	ip, err := netip.ParseAddr(n.IP)
	if err != nil {
		return err
	}
	_, err = t.dc.NetworkConnect(ctx, t.net.ID, client.NetworkConnectOptions{
		Container: n.ContainerID,
		EndpointConfig: &dnetwork.EndpointSettings{
			IPAMConfig: &dnetwork.EndpointIPAMConfig{IPv4Address: ip},
			Aliases:    []string{n.Name},
		},
	})
	if err != nil {
		return fmt.Errorf("cluster: reconnect %s: %w", n.Name, err)
	}
	t.mu.Lock()
	t.connected[n.Name] = true
	t.mu.Unlock()
	return t.waitPing(ctx, n)
}

func (t *topology) waitPing(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.startupTimeout)
	defer cancel()
	return poll(ctx, 25*time.Millisecond, func() error {
		return t.adminClient(n).Ping(ctx).Err()
	})
}
