package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hasession/hasession/internal/sid"
	"github.com/hasession/hasession/store"
)

// IDError is a session ID (or reference) that is malformed: nothing was sent to Redis.
type IDError struct {
	ID  string
	Ref bool // a Ref was accepted too
}

func (e *IDError) Error() string {
	if e.Ref {
		return fmt.Sprintf("malformed session ID or reference %q: want a session ID (a lowercase UUIDv4) or a Ref from sessions (24 hex digits)", e.ID)
	}
	return fmt.Sprintf("malformed session ID %q: want a lowercase UUIDv4 such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301", e.ID)
}

// Is makes errors.Is(err, store.ErrInvalidID) true.
func (e *IDError) Is(target error) bool { return target == store.ErrInvalidID }

// checkIDOrRef returns an *IDError unless s is a session ID or looks like a Ref.
func checkIDOrRef(s string) error {
	if sid.Valid(s) {
		return nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == 12 && strings.ToLower(s) == s {
		return nil
	}
	return &IDError{ID: s, Ref: true}
}

// inspectJSON is inspect's --json output.
type inspectJSON struct {
	ID        string                     `json:"id"`
	Key       string                     `json:"key"`
	Forwarded []string                   `json:"forwarded_from,omitempty"`
	Tombstone bool                       `json:"tombstone,omitempty"`
	Version   int64                      `json:"version,omitempty"`
	Created   *time.Time                 `json:"created,omitempty"`
	LastTouch *time.Time                 `json:"last_touch,omitempty"`
	Deadline  *time.Time                 `json:"deadline,omitempty"`
	TTLMs     int64                      `json:"ttl_ms"`
	User      string                     `json:"user,omitempty"`
	Codec     string                     `json:"codec,omitempty"`
	IdleMs    int64                      `json:"idle_timeout_ms,omitempty"`
	Cookie    string                     `json:"cookie,omitempty"`
	Attrs     []string                   `json:"attributes"`
	Values    map[string]json.RawMessage `json:"values,omitempty"`
	Errors    map[string]string          `json:"value_errors,omitempty"`
}

func runInspect(ctx context.Context, e *env) error {
	id := e.args[0]
	if !sid.Valid(id) {
		return &IDError{ID: id}
	}
	st, err := e.newStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st)
	in, err := call(ctx, e, func(ctx context.Context) (*store.Inspection, error) { return st.Inspect(ctx, id) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("session %s: not found (no key %s)", id, mustKey(st, id))
	}
	if err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	out := inspectJSON{ID: in.ID, Key: in.Key, Forwarded: in.Forwarded, Tombstone: in.Tombstone, TTLMs: in.TTL.Milliseconds(), Attrs: in.Attrs}
	if out.Attrs == nil {
		out.Attrs = []string{}
	}
	if !in.Tombstone {
		out.Version, out.User, out.Codec = in.Version, in.User, in.Codec
		out.IdleMs, out.Cookie = in.IdleTimeout.Milliseconds(), in.Persistence
		out.Created, out.LastTouch, out.Deadline = utc(in.Created), utc(in.LastTouch), utc(in.Deadline)
	}
	if e.values {
		out.Values, out.Errors = decodeAll(in.Attrs, in.Get)
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "session\t%s\n", in.ID)
	fmt.Fprintf(w, "key\t%s\n", in.Key)
	for _, f := range in.Forwarded {
		fmt.Fprintf(w, "forwarded from\t%s (rotated within the grace period)\n", f)
	}
	if in.Tombstone {
		fmt.Fprintf(w, "state\ttombstone: revoked or logged out; the ID leads nowhere\n")
		fmt.Fprintf(w, "ttl\t%s\n", in.TTL.Round(time.Second))
		return w.Flush()
	}
	user := in.User
	if user == "" {
		user = "(none)"
	}
	fmt.Fprintf(w, "user\t%s\n", user)
	fmt.Fprintf(w, "version\t%d\n", in.Version)
	fmt.Fprintf(w, "created\t%s\n", stamp(in.Created))
	fmt.Fprintf(w, "last touch\t%s\n", stamp(in.LastTouch))
	fmt.Fprintf(w, "deadline\t%s\n", stamp(in.Deadline))
	fmt.Fprintf(w, "ttl\t%s\n", in.TTL.Round(time.Second))
	if in.IdleTimeout > 0 {
		fmt.Fprintf(w, "idle timeout\t%s (its own)\n", in.IdleTimeout)
	}
	if in.Persistence != "" {
		fmt.Fprintf(w, "cookie\t%s (its own)\n", in.Persistence)
	}
	fmt.Fprintf(w, "codec\t%s\n", in.Codec)
	fmt.Fprintf(w, "attributes\t%d\n", len(in.Attrs))
	for _, a := range in.Attrs {
		switch {
		case out.Values != nil && out.Values[a] != nil:
			fmt.Fprintf(w, "  %s\t%s\n", a, out.Values[a])
		case out.Errors[a] != "":
			fmt.Fprintf(w, "  %s\t(%s)\n", a, out.Errors[a])
		default:
			fmt.Fprintf(w, "  %s\t\n", a)
		}
	}
	if !e.values && len(in.Attrs) > 0 {
		fmt.Fprintf(w, "(values not shown: --values shows them)\n")
	}
	return w.Flush()
}

func mustKey(st *store.Store, id string) string {
	k, _ := st.Key(id)
	return k
}

// decodeAll decodes the named attributes with get into JSON, or says why it could not.
func decodeAll(names []string, get func(string, any) error) (map[string]json.RawMessage, map[string]string) {
	vals := map[string]json.RawMessage{}
	var errs map[string]string
	for _, a := range names {
		var v any
		err := get(a, &v)
		var b []byte
		if err == nil {
			b, err = json.Marshal(jsonable(v))
		}
		if err != nil {
			if errs == nil {
				errs = map[string]string{}
			}
			errs[a] = err.Error()
			continue
		}
		vals[a] = b
	}
	return vals, errs
}

// jsonable turns what a codec decoded into any (maps with keys that are not strings
// included) into what encoding/json can write.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = jsonable(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = jsonable(x)
		}
		return s
	}
	return v
}

func utc(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

func stamp(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	switch {
	case d < 0:
		return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), -d)
	case d > 0:
		return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), d)
	}
	return t.UTC().Format(time.RFC3339) + " (now)"
}

// sessionJSON is one session in sessions' --json output.
type sessionJSON struct {
	Ref       string                     `json:"ref"`
	Created   time.Time                  `json:"created"`
	LastTouch time.Time                  `json:"last_touch"`
	Expires   time.Time                  `json:"expires"`
	Deadline  time.Time                  `json:"deadline"`
	Values    map[string]json.RawMessage `json:"values,omitempty"`
	Errors    map[string]string          `json:"value_errors,omitempty"`
}

func runSessions(ctx context.Context, e *env) error {
	user := e.args[0]
	st, err := e.newStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st)
	infos, err := call(ctx, e, func(ctx context.Context) ([]store.SessionInfo, error) { return st.Sessions(ctx, user, e.attrs...) })
	if err != nil {
		return fmt.Errorf("sessions of %q: %w", user, err)
	}
	out := make([]sessionJSON, 0, len(infos))
	for _, in := range infos {
		s := sessionJSON{Ref: in.Ref, Created: in.Created.UTC(), LastTouch: in.LastTouch.UTC(), Expires: in.Expires.UTC().Round(time.Millisecond), Deadline: in.Deadline.UTC()}
		var have []string
		for _, a := range e.attrs {
			if in.Has(a) {
				have = append(have, a)
			}
		}
		if len(e.attrs) > 0 {
			s.Values, s.Errors = decodeAll(have, in.Get)
		}
		out = append(out, s)
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			User     string        `json:"user"`
			Sessions []sessionJSON `json:"sessions"`
		}{user, out})
	}
	fmt.Fprintf(e.stdout, "user %q: %d live session(s), most recently used first\n", user, len(out))
	if len(out) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprint(w, "REF\tCREATED\tLAST TOUCH\tEXPIRES\tDEADLINE")
	for _, a := range e.attrs {
		fmt.Fprintf(w, "\t%s", strings.ToUpper(a))
	}
	fmt.Fprintln(w)
	for _, s := range out {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s", s.Ref, s.Created.Format(time.RFC3339), s.LastTouch.Format(time.RFC3339), s.Expires.Format(time.RFC3339), s.Deadline.Format(time.RFC3339))
		for _, a := range e.attrs {
			v := string(s.Values[a])
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(w, "\t%s", v)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func runRevoke(ctx context.Context, e *env) error {
	user, target := e.args[0], e.args[1]
	if err := checkIDOrRef(target); err != nil {
		return err
	}
	if err := e.confirm(fmt.Sprintf("revoke session %s of user %q", target, user)); err != nil {
		return err
	}
	st, err := e.newStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st)
	_, err = call(ctx, e, func(ctx context.Context) (struct{}, error) { return struct{}{}, st.Revoke(ctx, user, target) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("session %s belongs to another user than %q: left alone", target, user)
	}
	if err != nil {
		return fmt.Errorf("revoke %s of %q: %w", target, user, err)
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			User    string `json:"user"`
			Revoked string `json:"revoked"`
		}{user, target})
	}
	fmt.Fprintf(e.stdout, "revoked session %s of user %q (if it was live: it leads nowhere now)\n", target, user)
	return nil
}

func runRevokeAll(ctx context.Context, e *env) error {
	user := e.args[0]
	for _, x := range e.except {
		if err := checkIDOrRef(x); err != nil {
			return err
		}
	}
	st, err := e.newStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st)
	infos, err := call(ctx, e, func(ctx context.Context) ([]store.SessionInfo, error) { return st.Sessions(ctx, user) })
	if err != nil {
		return fmt.Errorf("sessions of %q: %w", user, err)
	}
	what := fmt.Sprintf("revoke every session of user %q (%d live)", user, len(infos))
	if len(e.except) > 0 {
		what += " except " + strings.Join(e.except, ", ")
	}
	if err := e.confirm(what); err != nil {
		return err
	}
	_, err = call(ctx, e, func(ctx context.Context) (struct{}, error) { return struct{}{}, st.RevokeAll(ctx, user, e.except...) })
	if err != nil {
		return fmt.Errorf("revoke the sessions of %q: %w", user, err)
	}
	left, err := call(ctx, e, func(ctx context.Context) ([]store.SessionInfo, error) { return st.Sessions(ctx, user) })
	if err != nil {
		return fmt.Errorf("sessions of %q after the revoke: %w", user, err)
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			User       string   `json:"user"`
			Except     []string `json:"except,omitempty"`
			LiveBefore int      `json:"live_before"`
			LiveAfter  int      `json:"live_after"`
		}{user, e.except, len(infos), len(left)})
	}
	fmt.Fprintf(e.stdout, "revoked the sessions of user %q: %d live before, %d now\n", user, len(infos), len(left))
	return nil
}

// confirm asks for "yes" on stdin unless --yes was given. With --json it refuses when
// stdin is not a terminal: a script must say --yes.
func (e *env) confirm(what string) error {
	if e.yes {
		return nil
	}
	if e.json && !isTerminal(e.stdin) {
		return &UsageError{Msg: what + ": refusing without --yes (--json, and stdin is not a terminal)"}
	}
	fmt.Fprintf(e.stderr, "%s? type yes to go on: ", what)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the confirmation: %w", err)
	}
	if strings.TrimSpace(line) != "yes" {
		return ErrNotConfirmed
	}
	return nil
}

// isTerminal reports whether the stream (a reader or a writer) is a terminal (not a
// pipe, a file, a buffer or /dev/null).
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && isatty(f)
}
