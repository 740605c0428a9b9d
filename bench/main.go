// Command bench is hasession's CLI for people who never write a line against its API:
//
//	go run ./bench up [--topology cluster|sentinel|standalone] [--for DURATION]
//	go run ./bench sweep [--all]
//	go run ./bench image
//	go run ./bench timings [--repeat N] [--json] [--topologies LIST] [--faults LIST]
//	go run ./bench drill [--topology KIND] [--fault KIND] [--compare scs|raw|none] [--json] …
//	go run ./bench compare [--repeat N] [--duration D] [--sessions N] [--cluster] [--out DIR] [--json]
//
// up starts a containerized Redis topology, prints how to reach it and keeps it up until
// Ctrl-C or --for; sweep removes what killed runs left behind; image builds the Redis
// image offline; timings measures how long topologies take to start and to fail over
// (median, min and max of --repeat runs); drill runs live HTTP session traffic through a
// failover and reports what users saw and whether any acknowledged save was lost; compare
// measures hasession beside scs and gorilla/sessions stores and the raw GET/SET floor on
// one Redis, with the targets' PASS or MISS.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/hasession/hasession/bench/internal/compare"
	"github.com/hasession/hasession/bench/internal/drill"
	"github.com/hasession/hasession/bench/internal/timings"
	"github.com/hasession/hasession/bench/internal/up"
)

const usage = `usage: go run ./bench <command> [flags]

commands:
  up       start a Redis topology (cluster, sentinel, standalone) for local development
  sweep    remove containers and networks that killed runs left behind
  image    build the Redis image offline from Debian's redis-tools package
  timings  measure start-up, failover and rejoin times (median, min, max of --repeat runs)
  drill    live HTTP session load through a failover: errors, latency, lost sessions
  compare  benchmark hasession against scs and gorilla/sessions stores on one Redis

Run "go run ./bench <command> -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	// The reaper image cannot be pulled without a registry: the CLI cleans up itself.
	_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	tclog.SetDefault(tclog.NewNoopLogger())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch os.Args[1] {
	case "up":
		err = up.Run(ctx, os.Args[2:], os.Stdout)
	case "sweep":
		err = up.Sweep(ctx, os.Args[2:], os.Stdout)
	case "image":
		err = up.Image(ctx, os.Args[2:], os.Stdout)
	case "timings":
		err = timings.Run(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "compare":
		err = compare.Run(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "drill":
		err = drill.Run(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
