package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// FaultFailover is a graceful failover, not a fault [Topology.Inject] makes: CLUSTER
// FAILOVER on a replica of the master, or SENTINEL FAILOVER. [RunEpisode] takes it beside
// the other kinds; there is nothing to heal.
const FaultFailover FaultKind = "failover"

// Defaults of [EpisodeOptions].
const (
	DefaultPromotionTimeout = 30 * time.Second
	DefaultHealTimeout      = 60 * time.Second
	// StandaloneHold is how long a fault on a standalone server (which has no replica to
	// promote) is held when EpisodeOptions.Hold is 0.
	StandaloneHold = 3 * time.Second
)

// EpisodeOptions say where a fault episode strikes and how long it lasts.
type EpisodeOptions struct {
	// Key: the fault hits the master that serves it ("" on a standalone or Sentinel
	// topology: the master).
	Key string
	// Hold is how long the fault lasts before it is healed; 0 heals it as soon as a
	// replica is promoted (on a standalone server: after StandaloneHold).
	Hold time.Duration
	// PromotionTimeout bounds the wait for a promotion, HealTimeout the heal and the wait
	// for a healthy topology. Defaults DefaultPromotionTimeout and DefaultHealTimeout.
	PromotionTimeout, HealTimeout time.Duration
	// Logf, when set, gets a progress line at the fault and at the promotion.
	Logf func(format string, args ...any)
}

// Episode is what [RunEpisode] saw, from the fault to a healthy topology. The durations
// count from Start; a step not reached is zero (Promoted nil).
type Episode struct {
	Fault     FaultKind
	Master    *Node     // the master the fault hit
	Promoted  *Node     // the node promoted in its place; nil on a standalone server
	Start     time.Time // when the fault took effect (the failover command was accepted)
	Promotion time.Duration
	Healed    time.Duration // the fault undone; zero for FaultFailover
	Healthy   time.Duration // the old master back as a replica, the topology healthy
	HealthyAt time.Time
}

// RunEpisode runs one fault episode on topo, as the failover tests and the drill do: on
// the master that serves o.Key it injects the fault (or starts a graceful failover),
// waits for a replica's promotion, heals the fault after o.Hold (or at the promotion),
// and waits until the old master is a replica again and the topology is healthy. The heal
// runs on a context of its own, bounded by HealTimeout, so that a cancelled ctx does not
// leave a node killed, paused or cut off. It returns the episode as far as it got, and
// every error met on the way (a missing promotion does not stop the heal).
func RunEpisode(ctx context.Context, topo Topology, fault FaultKind, o EpisodeOptions) (*Episode, error) {
	if o.PromotionTimeout <= 0 {
		o.PromotionTimeout = DefaultPromotionTimeout
	}
	if o.HealTimeout <= 0 {
		o.HealTimeout = DefaultHealTimeout
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	standalone := topo.Kind() == KindStandalone
	hold := o.Hold
	if standalone && hold == 0 {
		hold = StandaloneHold
	}
	hctx, cancel := context.WithTimeout(ctx, o.HealTimeout)
	err := topo.WaitHealthy(hctx) // a fault on a topology still recovering proves nothing
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cluster: before the fault: %w", err)
	}
	master, err := topo.MasterForKey(ctx, o.Key)
	if err != nil {
		return nil, err
	}
	ep := &Episode{Fault: fault, Master: master}
	var f *Fault
	if fault == FaultFailover {
		if standalone {
			return ep, errors.New("cluster: a standalone server has no replica to fail over to")
		}
		start := time.Now()
		if err := gracefulFailover(ctx, topo, master); err != nil {
			return ep, err
		}
		ep.Start = start
	} else {
		bound := hold
		if bound == 0 {
			bound = time.Minute // healed as soon as a replica is promoted
		}
		if f, err = topo.Inject(ctx, fault, master, bound); err != nil {
			return ep, err
		}
		ep.Start = f.Start
	}
	logf("%s %s", fault, master.Name)
	var errs []error
	if !standalone {
		pctx, cancel := context.WithTimeout(ctx, o.PromotionTimeout)
		promoted, err := topo.WaitPromotion(pctx, o.Key, master)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("no promotion: %w", err))
		} else {
			ep.Promoted, ep.Promotion = promoted, time.Since(ep.Start)
			logf("%s promoted after %.2fs", promoted.Name, ep.Promotion.Seconds())
		}
	}
	if f != nil {
		if hold > 0 {
			select {
			case <-f.Healed():
			case <-ctx.Done():
			}
		}
		hctx, cancel := context.WithTimeout(context.Background(), o.HealTimeout)
		err := f.Heal(hctx)
		cancel()
		if err != nil {
			return ep, errors.Join(append(errs, fmt.Errorf("heal: %w", err))...)
		}
		ep.Healed = time.Since(ep.Start)
	}
	hctx, cancel = context.WithTimeout(ctx, o.HealTimeout)
	defer cancel()
	if !standalone {
		if err := topo.WaitRole(hctx, master, RoleReplica); err != nil {
			errs = append(errs, fmt.Errorf("%s did not rejoin as a replica: %w", master.Name, err))
		}
	}
	if err := topo.WaitHealthy(hctx); err != nil {
		errs = append(errs, err)
	}
	ep.HealthyAt = time.Now()
	ep.Healthy = ep.HealthyAt.Sub(ep.Start)
	return ep, errors.Join(errs...)
}

// gracefulFailover starts a failover of master: CLUSTER FAILOVER on one of its replicas,
// or SENTINEL FAILOVER.
func gracefulFailover(ctx context.Context, topo Topology, master *Node) error {
	if topo.Kind() == KindSentinel {
		return Failover(ctx, KindSentinel, topo.UniversalOptions(), master.Addr())
	}
	status, err := topo.Status(ctx)
	if err != nil {
		return err
	}
	for _, n := range status {
		if n.Role == RoleReplica && n.MasterAddr == master.Addr() {
			rc := redis.NewClient(topo.NodeOptions(n.Node))
			err := rc.Do(ctx, "CLUSTER", "FAILOVER").Err()
			_ = rc.Close()
			if err != nil {
				return fmt.Errorf("cluster: CLUSTER FAILOVER on %s: %w", n.Name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("cluster: %s has no replica to fail over to", master.Name)
}
