// Package cli is the operator CLI of hasession (cmd/hasession): it inspects, lists,
// revokes and counts the sessions of a deployment, checks the deployment's health and
// imports the sessions of a legacy store, against a single Redis, a Cluster (--addrs) or
// a Sentinel-managed master (--sentinel-master and the sentinels' addresses in --addrs).
//
//	hasession inspect  --addrs 10.0.0.1:6379 3f2504e0-4f89-41d3-9a0c-0305e82c3301
//	hasession sessions --addrs 10.0.0.1:6379 alice
//	hasession revoke   --addrs 10.0.0.1:6379 alice 9c1e5b0a2f7d4e8a1b3c5d7e
//	hasession revoke-all --addrs 10.0.0.1:6379 --yes alice
//	hasession count    --addrs 10.0.0.1:6379
//	hasession health   --addrs 10.0.0.1:6379 --json
//	hasession import   --addrs 10.0.0.1:6379 --from scs --dry-run
//
// Sessions are read and revoked through package store, with the prefix, the codec and
// the key of hashed IDs the application uses (--prefix, --codec, --hash-key or
// --hash-key-file). inspect writes nothing (it does not touch the session, unlike a
// load); sessions prunes index entries of sessions that are gone, as [store.Store.Sessions]
// does; revoke and revoke-all ask for confirmation ("yes" on stdin) unless --yes is
// given, and refuse without --yes when the output is --json and stdin is no terminal.
// Every Redis call has a deadline (--timeout) and count's SCAN of each master stops after
// --max-keys keys (the counts are then marked as lower bounds).
//
// import moves every session of a legacy layout (package legacy; --from names it) into
// hasession's format: it SCANs each master for the layout's keys (one master at a time,
// --batch keys per SCAN call) and hands them to the layout in pipelined batches, --workers
// of them at once while the SCAN goes on. A first SCAN pass that reads no values counts
// the legacy keys: the total of the progress shown on stderr (done/total, sessions per
// second, ETA; a line redrawn on a terminal, a new line every second otherwise). It is
// idempotent and resumable — moved sessions are no longer legacy keys, and one moved
// meanwhile is skipped — so a failover that invalidates a SCAN cursor starts that
// master's scan over, and after Ctrl-C (it prints the counts so far and exits 1) the
// command is simply run again. --dry-run reads and decodes only. Corrupt sessions (a
// value that does not decode, a key of the wrong type) are left as they are, counted and
// the first few named: they do not make the exit status non-zero.
//
// Every command prints a table, or with --json one JSON document. The exit status is 0
// on success, 1 on an error, an interrupted import or, for health, an unhealthy
// deployment, and 2 for a usage error.
//
// The CLI reaches the nodes at the addresses they announce (CLUSTER SHARDS, the
// sentinels' answers): those must be reachable from where it runs.
package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hasession/hasession/codec"
	"github.com/hasession/hasession/store"
)

// Usage is the CLI's usage text, printed by -h.
const Usage = `usage: hasession <command> [flags] [arguments]

commands:
  inspect ID             a session's metadata and attribute names (--values: and values)
  sessions USER          a user's live sessions, most recently used first
  revoke USER ID|REF     end one session of a user (asks for confirmation)
  revoke-all USER        end every session of a user (asks for confirmation)
  count                  sessions and their memory, per master
  health                 roles, replicas, replication offsets, slot coverage
  import --from NAME     move every session of a legacy store (NAME: scs) into
                         hasession's format, master by master

the deployment (every command):
  --addrs HOST:PORT,...  a Cluster's nodes (any of them) or one server; with
                         --sentinel-master, the sentinels
  --sentinel-master NAME the master the sentinels monitor
  --username NAME        Redis user (the password: environment HASESSION_REDIS_PASSWORD)
  --timeout D            deadline of each Redis call (default 5s)

the store (as the application configures it):
  --prefix P             key prefix (default "hs:")
  --hash-key HEX         the key of store.WithHashedIDs, in hex
  --hash-key-file PATH   the key of store.WithHashedIDs: the file's bytes (less a final newline)
  --codec NAME           msgpack (default) or json

output and safety:
  --json                 one JSON document instead of a table
  --yes                  revoke and revoke-all: do not ask for confirmation

per command:
  inspect --values       also the attribute values, decoded, as JSON
  sessions --attrs A,B   also these attributes' values, decoded, as JSON
  revoke-all --except ID|REF,...  sessions to keep
  count --max-keys N     keys SCANned per master at most (default 1000000)
  import --dry-run       read and decode only: write nothing, report what it would do
  import --batch N       keys per SCAN call and per pipelined move (default 1000)
  import --workers N     batches of one master moved at once (default 4)
  import --legacy-prefix P   the legacy store's key prefix (scs: goredisstore's,
                         default "scs:session:")
  import --adapter-prefix P  the prefix of the adapter the sessions move to (scs:
                         scsstore's, default "scs:session:"; its keys have a hash tag)

import SCANs each master for the legacy layout's keys, moves them in pipelined batches
and reports how many were imported, skipped and corrupt (corrupt ones, which do not
decode or are of the wrong type, are left as they are; the first 10 are named). It is
idempotent and resumable: after an interruption (Ctrl-C prints the counts so far), run
it again; moved sessions are no longer legacy keys, and a session moved meanwhile is
skipped. A failover during the SCAN starts that master's scan over. Progress goes to
stderr: done/total, sessions/s and ETA, the total counted by a first SCAN pass that
reads no values. scs values are checked with scs's default codec (gob).

Exit status: 0 ok (import: also when it found corrupt sessions, which it reports), 1 an
error, an interrupted import or an unhealthy deployment (health), 2 a usage error.
`

// UsageError is a command line the CLI cannot run: exit status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ErrNotConfirmed is returned when a destructive command was not confirmed.
var ErrNotConfirmed = errors.New("not confirmed: nothing was changed")

// ErrUnhealthy is returned by health when it found a problem (it printed them).
var ErrUnhealthy = errors.New("the deployment is unhealthy")

// env is what a command runs with: its flags, arguments and streams.
type env struct {
	addrs          []string
	master         string
	username       string
	password       string
	timeout        time.Duration
	prefix         string
	hashKey        []byte
	codec          codec.Codec
	json           bool
	yes            bool
	values         bool
	attrs          []string
	except         []string
	maxKeys        int
	from           string
	dryRun         bool
	batch          int
	workers        int
	legacyPrefix   *string // import --legacy-prefix, nil when not given
	adapterPrefix  *string // import --adapter-prefix, nil when not given
	args           []string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Main runs the CLI with args (without the program name) and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, Usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, Usage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hasession: unknown command %q\n\n%s", args[0], Usage)
		return 2
	}
	e, err := parse(args[0], args[1:], cmd.nargs)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, Usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "hasession %s: %v\nRun \"hasession -h\" for usage.\n", args[0], err)
		return 2
	}
	e.stdin, e.stdout, e.stderr = stdin, stdout, stderr
	if err := cmd.run(ctx, e); err != nil {
		var reported *reportedError
		if e.json && !errors.Is(err, ErrUnhealthy) && !errors.As(err, &reported) {
			_ = writeJSON(stdout, map[string]string{"error": err.Error()})
		}
		fmt.Fprintf(stderr, "hasession %s: %v\n", args[0], err)
		var ue *UsageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type command struct {
	nargs int // positional arguments
	run   func(ctx context.Context, e *env) error
}

var commands = map[string]command{
	"inspect":    {1, runInspect},
	"sessions":   {1, runSessions},
	"revoke":     {2, runRevoke},
	"revoke-all": {1, runRevokeAll},
	"count":      {0, runCount},
	"health":     {0, runHealth},
	"import":     {0, runImport},
}

// parse reads the flags, which may come before, between or after the arguments.
func parse(name string, args []string, nargs int) (*env, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var addrs, hashKey, hashKeyFile, codecName, attrs, except string
	e := &env{}
	fs.StringVar(&addrs, "addrs", "", "")
	fs.StringVar(&e.master, "sentinel-master", "", "")
	fs.StringVar(&e.username, "username", "", "")
	fs.DurationVar(&e.timeout, "timeout", 5*time.Second, "")
	fs.StringVar(&e.prefix, "prefix", store.DefaultPrefix, "")
	fs.StringVar(&hashKey, "hash-key", "", "")
	fs.StringVar(&hashKeyFile, "hash-key-file", "", "")
	fs.StringVar(&codecName, "codec", "msgpack", "")
	fs.BoolVar(&e.json, "json", false, "")
	fs.BoolVar(&e.yes, "yes", false, "")
	fs.BoolVar(&e.values, "values", false, "")
	fs.StringVar(&attrs, "attrs", "", "")
	fs.StringVar(&except, "except", "", "")
	fs.IntVar(&e.maxKeys, "max-keys", 1_000_000, "")
	fs.StringVar(&e.from, "from", "", "")
	fs.BoolVar(&e.dryRun, "dry-run", false, "")
	fs.IntVar(&e.batch, "batch", defaultBatch, "")
	fs.IntVar(&e.workers, "workers", defaultWorkers, "")
	var legacyPrefix, adapterPrefix string
	fs.StringVar(&legacyPrefix, "legacy-prefix", "", "")
	fs.StringVar(&adapterPrefix, "adapter-prefix", "", "")
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		e.args = append(e.args, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(e.args) != nargs {
		return nil, fmt.Errorf("%s takes %d argument(s), got %d", name, nargs, len(e.args))
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "legacy-prefix":
			e.legacyPrefix = &legacyPrefix
		case "adapter-prefix":
			e.adapterPrefix = &adapterPrefix
		}
	})
	e.addrs = splitList(addrs)
	if len(e.addrs) == 0 {
		return nil, errors.New("no deployment: give --addrs")
	}
	if e.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s is not positive", e.timeout)
	}
	if e.maxKeys <= 0 {
		return nil, fmt.Errorf("--max-keys %d is not positive", e.maxKeys)
	}
	switch codecName {
	case "msgpack":
		e.codec = codec.MsgPack
	case "json":
		e.codec = codec.JSON
	default:
		return nil, fmt.Errorf("--codec %q: want msgpack or json", codecName)
	}
	switch {
	case hashKey != "" && hashKeyFile != "":
		return nil, errors.New("give --hash-key or --hash-key-file, not both")
	case hashKey != "":
		k, err := hex.DecodeString(hashKey)
		if err != nil {
			return nil, fmt.Errorf("--hash-key: not hex: %v", err)
		}
		e.hashKey = k
	case hashKeyFile != "":
		k, err := os.ReadFile(hashKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--hash-key-file: %v", err)
		}
		k = []byte(strings.TrimSuffix(strings.TrimSuffix(string(k), "\n"), "\r"))
		e.hashKey = k
	}
	e.attrs, e.except = splitList(attrs), splitList(except)
	e.password = os.Getenv("HASESSION_REDIS_PASSWORD")
	return e, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// call runs f with a context bounded by --timeout.
func call[T any](ctx context.Context, e *env, f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	return f(ctx)
}

// newStore returns a store on the deployment, as the application configures it.
func (e *env) newStore(ctx context.Context) (*store.Store, error) {
	rdb, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	opts := []store.Option{
		store.WithPrefix(e.prefix),
		store.WithCodec(e.codec),
		store.WithAutoPipeline(false),
	}
	if e.hashKey != nil {
		opts = append(opts, store.WithHashedIDs(e.hashKey))
	}
	st, err := store.New(rdb, opts...)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return st, nil
}

// closeStore closes the store and its client.
func closeStore(st *store.Store) {
	_ = st.Close()
	_ = st.Client().Close()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
