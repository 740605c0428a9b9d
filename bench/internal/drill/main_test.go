package drill

import (
	"os"
	"testing"

	"github.com/hasession/hasession/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.TestMain(m)) }
