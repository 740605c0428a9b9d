package up

import (
	"context"
	"io"
	"testing"
)

// -h prints the usage and is no error (exit status 0); a positional argument is one. No
// topology is started, no image built, nothing swept.
func TestHelpIsNoError(t *testing.T) {
	for name, run := range map[string]func(context.Context, []string, io.Writer) error{
		"up": Run, "sweep": Sweep, "image": Image,
	} {
		if err := run(t.Context(), []string{"-h"}, io.Discard); err != nil {
			t.Errorf("%s -h: %v", name, err)
		}
		if err := run(t.Context(), []string{"stray"}, io.Discard); err == nil {
			t.Errorf("%s stray: no error", name)
		}
	}
}
