package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/internal/cli"
)

// BenchmarkImport100k: `hasession import --from scs` of 100,000 sessions written as
// scs's goredisstore writes them, on a standalone Redis and on a Cluster (3 masters), with
// 1 and 4 batches moved at once (--workers). The CLI runs in-process, its progress
// display on stderr. Each iteration writes its own 100,000 sessions and removes them once
// moved (neither timed); the timed part is the command, its counting pass included.
// sessions/s is that; moved/s is the import pass alone, as the command reports it.
// Run (one iteration each; about a minute):
//
//	go test -run '^$' -bench Import100k -benchtime 1x ./cli/
func BenchmarkImport100k(b *testing.B) {
	const n = 100_000
	for _, c := range []struct {
		kind    cluster.Kind
		workers int
	}{{cluster.KindStandalone, 1}, {cluster.KindStandalone, 4}, {cluster.KindCluster, 1}, {cluster.KindCluster, 4}} {
		b.Run(fmt.Sprintf("%s/workers=%d", c.kind, c.workers), func(b *testing.B) {
			topo := cluster.Shared(b, c.kind)
			rdb := cluster.Client(b, topo, nil)
			var reported float64
			for b.Loop() {
				b.StopTimer()
				p := "bench-import:" + rand.Text()[:6] + ":scs:session:"
				legacy := writeLegacySCS(b, rdb, p, n, time.Hour)
				b.StartTimer()
				var out strings.Builder
				code := cli.Main(context.Background(),
					args("import", topo, "--from", "scs", "--legacy-prefix", p, "--adapter-prefix", p, "--workers", strconv.Itoa(c.workers), "--json"),
					strings.NewReader(""), &out, os.Stderr)
				b.StopTimer()
				var got struct {
					Imported  int64
					PerSecond float64 `json:"sessions_per_second"`
				}
				if err := json.Unmarshal([]byte(out.String()), &got); code != 0 || err != nil || got.Imported != n {
					b.Fatalf("exit status %d, %d imported, %v:\n%s", code, got.Imported, err, out.String())
				}
				b.Logf("%d imported, %.0f sessions/s in the import pass (after the counting pass)", got.Imported, got.PerSecond)
				reported = got.PerSecond
				// The moved sessions go, so that each run starts from the same keyspace.
				_, err := rdb.Pipelined(context.Background(), func(pl redis.Pipeliner) error {
					for k := range legacy {
						pl.Unlink(context.Background(), p+"{"+strings.TrimPrefix(k, p)+"}")
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
			b.ReportMetric(reported, "moved/s") // the import pass alone, as the CLI reports it
		})
	}
}
