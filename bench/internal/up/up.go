// Package up holds the commands that manage a containerized Redis for local work: up
// starts a topology and keeps it up, sweep removes what killed runs left behind, image
// builds the Redis image offline.
package up

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hasession/hasession/bench/internal/cli"
	"github.com/hasession/hasession/cluster"
)

// Run is the up command: start a topology, describe it, keep it up until Ctrl-C or --for.
func Run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	topology := fs.String("topology", "cluster", "topology to start: cluster, sentinel or standalone")
	dur := fs.Duration("for", 0, "remove the topology after this long (0: keep it up until Ctrl-C)")
	masters := fs.Int("masters", 3, "cluster: number of masters")
	replicas := fs.Int("replicas", -1, "replicas: per master for a cluster (default 1), in all for sentinel (default 2)")
	masterName := fs.String("master-name", "mymaster", "sentinel: the master's name")
	verbose := fs.Bool("v", false, "log the topology's progress")
	if ok, err := cli.ParseFlags(fs, args); !ok {
		return err
	}
	kind, err := cluster.ParseKind(*topology)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	opts := []cluster.Option{
		cluster.WithMasters(*masters),
		cluster.WithMasterName(*masterName),
		cluster.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))),
	}
	if *replicas >= 0 {
		opts = append(opts, cluster.WithReplicas(*replicas))
	}

	if n, err := cluster.Sweep(ctx); err == nil && n > 0 {
		fmt.Fprintf(out, "removed %d containers/networks left behind by earlier runs\n", n)
	}
	fmt.Fprintf(out, "starting %s topology…\n", kind)
	start := time.Now()
	topo, err := cluster.Run(ctx, kind, opts...)
	defer func() {
		if topo == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		fmt.Fprintf(out, "removing %s topology %s…\n", kind, topo.ID())
		if err := topo.Terminate(cctx); err != nil {
			fmt.Fprintf(os.Stderr, "remove: %v\n", err)
		} else {
			fmt.Fprintln(out, "removed: no container or network of it is left")
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is up and healthy after %s\n\n", kind, time.Since(start).Round(time.Millisecond))
	if err := describe(ctx, out, topo); err != nil {
		return err
	}

	var timeout <-chan time.Time
	if *dur > 0 {
		fmt.Fprintf(out, "\nkeeping it up for %s (Ctrl-C to stop earlier)\n", *dur)
		timeout = time.After(*dur)
	} else {
		fmt.Fprintln(out, "\nkeeping it up until Ctrl-C")
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil
		}
		return ctx.Err()
	case <-timeout:
		return nil
	}
}

// describe prints the nodes, their roles and how to point a go-redis client at them.
func describe(ctx context.Context, out io.Writer, topo cluster.Topology) error {
	st, err := topo.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "network %s (%s), image %s\n", topo.Network(), topo.Subnet(), topo.Image())
	fmt.Fprintf(out, "%-12s %-20s %-9s %s\n", "NODE", "ADDRESS", "ROLE", "FOLLOWS")
	for _, s := range st {
		fmt.Fprintf(out, "%-12s %-20s %-9s %s\n", s.Name, s.Addr(), s.Role, s.MasterAddr)
	}
	o := topo.UniversalOptions()
	quoted := make([]string, len(o.Addrs))
	for i, a := range o.Addrs {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	addrs := strings.Join(quoted, ", ")
	fmt.Fprintln(out, "\npoint a go-redis v9 application at it:")
	switch topo.Kind() {
	case cluster.KindCluster:
		fmt.Fprintf(out, "\trdb := redis.NewClusterClient(&redis.ClusterOptions{\n\t\tAddrs: []string{%s},\n\t\tClusterStateReloadInterval: time.Second, // follow failovers within a second\n\t})\n", addrs)
	case cluster.KindSentinel:
		fmt.Fprintf(out, "\trdb := redis.NewFailoverClient(&redis.FailoverOptions{\n\t\tMasterName:    %q,\n\t\tSentinelAddrs: []string{%s},\n\t})\n", o.MasterName, addrs)
	default:
		fmt.Fprintf(out, "\trdb := redis.NewClient(&redis.Options{Addr: %s})\n", addrs)
	}
	fmt.Fprintf(out, "\nor with redis-cli: redis-cli %s-h %s -p %d\n", map[bool]string{true: "-c ", false: ""}[topo.Kind() == cluster.KindCluster], topo.Nodes()[0].IP, topo.Nodes()[0].Port)
	return nil
}

// Sweep is the sweep command.
func Sweep(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	all := fs.Bool("all", false, "remove every hasession container and network, also those of runs still going")
	if ok, err := cli.ParseFlags(fs, args); !ok {
		return err
	}
	sweep := cluster.Sweep
	if *all {
		sweep = cluster.SweepAll
	}
	n, err := sweep(ctx)
	fmt.Fprintf(out, "removed %d containers/networks\n", n)
	return err
}

// Image is the image command: it prints the tag of the image it built.
func Image(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	if ok, err := cli.ParseFlags(fs, args); !ok {
		return err
	}
	tag, err := cluster.BuildImage(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, tag)
	return nil
}
