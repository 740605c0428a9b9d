package scsstore_test

import (
	"bytes"
	"encoding/gob"
	"os"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/internal/legacy"
)

// legacyUser is an application's own type in a session: gob needs it registered to
// decode the session's values, but not to skip them.
type legacyUser struct {
	Name string
	ID   int
}

func init() { gob.RegisterName("example.User", legacyUser{}) }

// gobBlob is the blob internal/legacy's tests decode without the type registered.
const gobBlob = "../../internal/legacy/testdata/gobcodec_custom_type.bin"

var gobDeadline = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestLegacyGobDeadlineReadsGobCodec: legacy.GobDeadline, the CLI's decoder, reads the
// deadline of a session made by scs's real GobCodec with a value of a registered custom
// type; the blob internal/legacy's tests decode, where the type is not registered, is
// this codec's output.
func TestLegacyGobDeadlineReadsGobCodec(t *testing.T) {
	b, err := scs.GobCodec{}.Encode(gobDeadline, map[string]any{"user": legacyUser{"ada", 42}})
	require.NoError(t, err)
	deadline, err := legacy.GobDeadline(b)
	require.NoError(t, err)
	require.True(t, deadline.Equal(gobDeadline), "%v", deadline)

	if os.Getenv("UPDATE_GOB_BLOB") != "" {
		require.NoError(t, os.WriteFile(gobBlob, b, 0o644))
	}
	want, err := os.ReadFile(gobBlob)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, b), "%s is not GobCodec's output; regenerate it with UPDATE_GOB_BLOB=1", gobBlob)

	_, vals, err := scs.GobCodec{}.Decode(want)
	require.NoError(t, err)
	require.Equal(t, legacyUser{"ada", 42}, vals["user"])
}
