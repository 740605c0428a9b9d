package store_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/store"
)

// The README's ACL SETUSER line is the one ACLSetUser builds.
func TestACLSetUserLineInREADMEIsGenerated(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	want := store.ACLSetUser("hasession", "change-me", store.DefaultPrefix)
	var lines []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "ACL SETUSER ") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	require.Equal(t, []string{want}, lines, "README.md's ACL SETUSER line")
}

// Every command the scripts run is in ACLCommands (and, for the migration script,
// ACLMigrationCommands): Redis checks those against the caller's user too.
func TestACLCommandsCoverTheScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("lua", "*.lua"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	allowed := strings.Fields(store.ACLCommands)
	call := regexp.MustCompile(`redis\.p?call\(\s*(.)`)
	named := regexp.MustCompile(`redis\.p?call\(\s*['"]([A-Za-z]+)['"]`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		src := string(b)
		calls, names := call.FindAllStringSubmatch(src, -1), named.FindAllStringSubmatch(src, -1)
		require.Len(t, names, len(calls), "%s: every redis.call names its command as a literal", f)
		ok := allowed
		if filepath.Base(f) == "legacy.lua" {
			ok = append(strings.Fields(store.ACLMigrationCommands), allowed...)
		}
		for _, m := range names {
			require.Contains(t, ok, "+"+strings.ToLower(m[1]), "%s runs %s", f, m[1])
		}
	}
}

func TestACLRulesAreLeastPrivilege(t *testing.T) {
	rules := store.ACLRules("app:")
	require.Equal(t, []string{"~app:*", "resetchannels", "-@all"}, rules[:3], "one key pattern, no channel, no command but those listed")
	for _, r := range rules[3:] {
		require.True(t, strings.HasPrefix(r, "+") && !strings.HasPrefix(r, "+@"), "command rules only, no category: %s", r)
	}
	require.Equal(t, "ACL SETUSER u reset on >pw "+strings.Join(rules, " "), store.ACLSetUser("u", "pw", "app:"))
}
