package cluster_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/hasession/hasession/cluster"
)

func TestACLUserOptionRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, user, pass string
		rules            []string
	}{
		{"empty name", "", "pw", nil},
		{"the default user", "default", "pw", nil},
		{"a space in the name", "a b", "pw", nil},
		{"empty password", "app", "", nil},
		{"a space in the password", "app", "p w", nil},
		{"an empty rule", "app", "pw", []string{"+get", ""}},
		{"a rule with a space", "app", "pw", []string{"+get +set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cluster.RunStandalone(t.Context(), cluster.WithACLUser(tc.user, tc.pass, tc.rules...))
			require.Error(t, err)
			require.Contains(t, err.Error(), "cluster: ")
		})
	}
}

// A TLS standalone server with an ACL user: only TLS with a client certificate gets in;
// the application's options log in as the restricted user, the topology's own client as
// the default user; every fault helper works over TLS and the node keeps its user and
// certificates when it is restarted.
func TestTLSStandaloneWithACLUser(t *testing.T) {
	start := time.Now()
	s := cluster.StandaloneForTest(t, cluster.WithTLS(true),
		cluster.WithACLUser("app", "app-secret", "~app:*", "resetchannels", "-@all", "+get", "+set", "+ping"))
	t.Logf("TLS standalone with an ACL user: Run to healthy in %s", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	require.NotNil(t, s.TLSConfig())
	require.NotNil(t, s.UniversalOptions().TLSConfig)
	require.NotNil(t, s.NodeOptions(s.Nodes()[0]).TLSConfig)

	app := redis.NewUniversalClient(s.UniversalOptions())
	defer app.Close()
	appWorks := func() {
		t.Helper()
		require.NoError(t, app.Set(ctx, "app:k", "v", time.Minute).Err())
		require.Equal(t, "v", app.Get(ctx, "app:k").Val())
	}
	appWorks()
	err := app.Set(ctx, "other:k", "v", time.Minute).Err()
	require.True(t, redis.HasErrorPrefix(err, "NOPERM"), "a key outside the user's pattern: %v", err)
	err = app.FlushAll(ctx).Err()
	require.True(t, redis.HasErrorPrefix(err, "NOPERM"), "a command outside the user's rules: %v", err)
	who, err := s.Client().Do(ctx, "ACL", "WHOAMI").Text()
	require.NoError(t, err)
	require.Equal(t, "default", who, "the topology's own client")

	node := s.Nodes()[0]
	plain := redis.NewClient(&redis.Options{Addr: node.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer plain.Close()
	require.Error(t, plain.Ping(ctx).Err(), "a plaintext connection")
	noCert := s.TLSConfig()
	noCert.Certificates = nil
	anon := redis.NewClient(&redis.Options{Addr: node.Addr(), TLSConfig: noCert, MaxRetries: -1, DialTimeout: time.Second})
	defer anon.Close()
	require.Error(t, anon.Ping(ctx).Err(), "TLS without a client certificate")
	strange := redis.NewClient(&redis.Options{Addr: node.Addr(), TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}, MaxRetries: -1, DialTimeout: time.Second})
	defer strange.Close()
	err = strange.Ping(ctx).Err()
	require.Error(t, err, "a client that does not trust the topology's CA")
	require.Contains(t, err.Error(), "certificate")

	for _, kind := range []cluster.FaultKind{cluster.FaultKill, cluster.FaultStop, cluster.FaultPause, cluster.FaultPartition} {
		t.Run(string(kind), func(t *testing.T) {
			f, err := s.Inject(ctx, kind, node, 30*time.Second)
			require.NoError(t, err)
			st, err := s.Status(ctx)
			require.NoError(t, err)
			require.Equal(t, cluster.RoleUnknown, st[0].Role, "the node is out of reach")
			require.NoError(t, f.Heal(ctx))
			hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			require.NoError(t, s.WaitHealthy(hctx))
			require.NoError(t, s.WaitRole(hctx, node, cluster.RoleMaster))
			require.NoError(t, cluster.Poll(hctx, 50*time.Millisecond, func() error {
				return app.Set(hctx, "app:k", "v", time.Minute).Err()
			}), "the restricted user works again")
			appWorks()
		})
	}
}

// The topology's CA is its own: a TLS topology hands out its CA certificate, and none
// without TLS.
func TestTLSConfigIsNilWithoutTLS(t *testing.T) {
	s := cluster.Shared(t, cluster.KindStandalone)
	require.Nil(t, s.TLSConfig())
	require.Nil(t, s.NodeOptions(s.Nodes()[0]).TLSConfig)
	require.Nil(t, s.UniversalOptions().TLSConfig)
	require.Empty(t, s.UniversalOptions().Username)
}
