// Package cli holds what bench's commands share beside their reports: list flags, a
// silent go-redis logger and the removal of a topology.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hasession/hasession/cluster"
)

// RemoveTimeout bounds the removal of a topology, which runs on a context of its own so
// that Ctrl-C does not stop it.
const RemoveTimeout = time.Minute

// Remove terminates a topology on a context of its own (Ctrl-C must not stop it) and
// returns how long that took.
func Remove(topo cluster.Topology) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), RemoveTimeout)
	defer cancel()
	t0 := time.Now()
	err := topo.Terminate(ctx)
	return time.Since(t0), err
}

// QuietRedis is a go-redis logger that drops everything.
type QuietRedis struct{}

func (QuietRedis) Printf(context.Context, string, ...any) {}

// ParseList parses a comma-separated list, dropping blanks and repeats; "none" is empty.
func ParseList[T comparable](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" || f == "none" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// ParseFlags parses a command's flags and refuses positional arguments. ok is false when
// the command should return err at once: nil after -h (the usage is printed), the error
// otherwise.
func ParseFlags(fs *flag.FlagSet, args []string) (ok bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, nil
		}
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return true, nil
}
