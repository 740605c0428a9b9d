package httpsession_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/httpsession"
)

func TestFromContextWithoutMiddleware(t *testing.T) {
	require.Nil(t, httpsession.FromContext(t.Context()))
}
