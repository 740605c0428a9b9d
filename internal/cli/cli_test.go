package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/internal/legacy"
)

// run runs the CLI with stdin as its input and logs what it printed.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	t.Logf("$ hasession %s\n%s%s(exit status %d)", strings.Join(args, " "), out.String(), errb.String(), code)
	return out.String(), errb.String(), code
}

func TestParseTakesFlagsAnywhere(t *testing.T) {
	e, err := parse("revoke", []string{"alice", "--addrs", "a:1,b:2", "x", "--yes", "--json"}, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "x"}, e.args)
	require.Equal(t, []string{"a:1", "b:2"}, e.addrs)
	require.True(t, e.yes)
	require.True(t, e.json)
	require.Equal(t, 5*time.Second, e.timeout)
	require.Equal(t, "hs:", e.prefix)
}

func TestGlobEscape(t *testing.T) {
	require.Equal(t, `hs:`, legacy.GlobEscape("hs:"))
	require.Equal(t, `a\*b\?c\[d\]e\\`, legacy.GlobEscape(`a*b?c[d]e\`))
}

func TestCheckIDOrRef(t *testing.T) {
	require.NoError(t, checkIDOrRef("3f2504e0-4f89-41d3-9a0c-0305e82c3301"))
	require.NoError(t, checkIDOrRef("9c1e5b0a2f7d4e8a1b3c5d7e"))
	for _, bad := range []string{"", "{x}", "9C1E5B0A2F7D4E8A1B3C5D7E", "9c1e5b0a2f7d4e8a1b3c5d7", "3F2504E0-4F89-41D3-9A0C-0305E82C3301"} {
		require.Error(t, checkIDOrRef(bad), bad)
	}
}

func TestErrors(t *testing.T) {
	// Nothing listens at this address: a command that reached Redis would fail to dial.
	none := []string{"--addrs", "127.0.0.1:1", "--timeout", "200ms"}
	t.Run("a malformed ID is named, and nothing is sent", func(t *testing.T) {
		start := time.Now()
		_, stderr, code := run(t, "", append([]string{"inspect"}, append(none, "3F2504E0-not-an-id")...)...)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, `malformed session ID "3F2504E0-not-an-id"`)
		require.NotContains(t, stderr, "connect")
		require.Less(t, time.Since(start), 200*time.Millisecond)

		_, stderr, code = run(t, "", append([]string{"revoke", "--yes"}, append(none, "alice", "{x}")...)...)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, `malformed session ID or reference "{x}"`)

		stdout, _, code := run(t, "", append([]string{"inspect", "--json"}, append(none, "nope")...)...)
		require.Equal(t, 1, code)
		var got map[string]string
		require.NoError(t, json.Unmarshal([]byte(stdout), &got))
		require.Contains(t, got["error"], `malformed session ID "nope"`)
	})
	t.Run("-h prints the usage and exits 0", func(t *testing.T) {
		for _, a := range [][]string{{"-h"}, {"inspect", "-h"}, {"help"}} {
			stdout, _, code := run(t, "", a...)
			require.Equal(t, 0, code)
			require.Contains(t, stdout, "usage: hasession")
		}
	})
	t.Run("a usage error exits 2", func(t *testing.T) {
		for _, a := range [][]string{{}, {"frobnicate"}, {"inspect"}, {"count"}, {"count", "--addrs", "x:1", "extra"}, {"count", "--addrs", "x:1", "--codec", "xml"}, {"inspect", "--addrs", "x:1", "--hash-key", "zz", "id"}} {
			_, _, code := run(t, "", a...)
			require.Equal(t, 2, code, "%q", a)
		}
	})
	t.Run("an unreachable deployment is an error", func(t *testing.T) {
		_, stderr, code := run(t, "", append([]string{"count"}, none...)...)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, "127.0.0.1:1")
	})
}

func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	require.False(t, isTerminal(null), "/dev/null is a character device, not a terminal")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.False(t, isTerminal(r))
	require.False(t, isTerminal(strings.NewReader("yes\n")))
}
