// Command hasession is the operator CLI of the hasession session store: it inspects a
// session, lists and revokes a user's sessions, counts the sessions and their memory per
// master, checks the health of the deployment (roles, replicas, replication offsets,
// slot coverage) and imports the sessions of a legacy store (scs's goredisstore), on a
// single Redis, a Cluster or a Sentinel-managed master.
//
//	go run github.com/hasession/hasession/cmd/hasession health --addrs 10.0.0.1:6379
//	go run ./cmd/hasession inspect --addrs 10.0.0.1:6379 3f2504e0-4f89-41d3-9a0c-0305e82c3301
//	go run ./cmd/hasession sessions --sentinel-master mymaster --addrs 10.0.0.5:26379 alice
//
// Run it with -h for every command and flag. It needs the root module only (go-redis and
// msgpack): no test harness.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/internal/cli"
)

// quiet is a go-redis logger that drops everything: the CLI reports errors itself.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func main() {
	redis.SetLogger(quiet{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
