package cluster_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

func TestSlotMatchesRedis(t *testing.T) {
	// Values from CLUSTER KEYSLOT.
	for key, want := range map[string]int{
		"foo":                  12182,
		"bar":                  5061,
		"hello":                866,
		"{user1000}.following": 3443,
		"{user1000}.followers": 3443,
		"foo{}{bar}":           8363, // empty first tag: the whole key is hashed
		"foo{{bar}}zap":        4015,
		"foo{bar}{zap}":        5061, // first tag only
	} {
		require.Equal(t, want, cluster.Slot(key), key)
	}
}

func TestParseClusterNodes(t *testing.T) {
	const reply = `07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host1 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 16000 [5461->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 master,fail - 1426238316232 0 5 disconnected
`
	ns, err := cluster.ParseClusterNodes(reply)
	require.NoError(t, err)
	require.Len(t, ns, 4)
	require.Equal(t, "127.0.0.1:30004", ns[0].Addr)
	require.True(t, ns[0].Has("slave"))
	require.Equal(t, "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca", ns[0].MasterID)
	require.True(t, ns[2].Has("myself"))
	require.True(t, ns[2].Owns(0) && ns[2].Owns(5460) && ns[2].Owns(16000))
	require.False(t, ns[2].Owns(5461))
	require.EqualValues(t, 1, ns[2].ConfigEpoch)
	require.True(t, ns[3].Has("fail"))
	require.False(t, ns[3].Connected)

	_, err = cluster.ParseClusterNodes("garbage line")
	require.Error(t, err)
}

func TestInvalidOptionsAreErrors(t *testing.T) {
	for name, opt := range map[string]cluster.Option{
		"zero masters":       cluster.WithMasters(0),
		"negative replicas":  cluster.WithReplicas(-1),
		"no sentinels":       cluster.WithSentinels(0),
		"empty master name":  cluster.WithMasterName(""),
		"spaced master name": cluster.WithMasterName("my master"),
		"tiny node timeout":  cluster.WithNodeTimeout(time.Millisecond),
		"empty image":        cluster.WithImage(""),
		"nil logger":         cluster.WithLogger(nil),
		"zero startup":       cluster.WithStartupTimeout(0),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cluster.RunStandalone(t.Context(), opt)
			require.Error(t, err)
		})
	}
}

func TestParseKinds(t *testing.T) {
	for _, s := range []string{"standalone", "sentinel", "cluster"} {
		k, err := cluster.ParseKind(s)
		require.NoError(t, err)
		require.Equal(t, s, string(k))
	}
	_, err := cluster.ParseKind("mesh")
	require.Error(t, err)
	for _, s := range []string{"kill", "stop", "pause", "partition"} {
		_, err := cluster.ParseFaultKind(s)
		require.NoError(t, err)
	}
	_, err = cluster.ParseFaultKind("flood")
	require.Error(t, err)
}
