package store_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hasession/hasession/cluster"
	"github.com/hasession/hasession/store"
)

func TestWriteAckPolicyOption(t *testing.T) {
	rdb := cluster.StandaloneForTest(t).Client()
	if _, err := store.New(rdb, store.WithWriteAck(1, time.Second), store.WithWriteAckPolicy(store.AckPolicy(7))); err == nil {
		t.Error("an unknown policy was accepted")
	}
	for p, want := range map[store.AckPolicy]string{store.AckRequired: "required", store.AckBestEffort: "best-effort", 7: "AckPolicy(7)"} {
		if got := p.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(p), got, want)
		}
	}
}

// A standalone server has no replica: WAIT 1 never confirms. AckRequired fails the save
// and the login's index entry with ErrNotAcknowledged; AckBestEffort accepts both,
// counts them and logs them, and the session reads back as saved.
func TestWriteAckPolicyShortfall(t *testing.T) {
	rdb := cluster.StandaloneForTest(t).Client()
	ctx := t.Context()
	for _, policy := range []store.AckPolicy{store.AckRequired, store.AckBestEffort} {
		t.Run(policy.String(), func(t *testing.T) {
			var logs bytes.Buffer
			st, err := store.New(rdb, store.WithWriteAck(1, 50*time.Millisecond), store.WithWriteAckPolicy(policy),
				store.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil {
				t.Fatal(err)
			}
			s, err := st.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Set("n", 1); err != nil {
				t.Fatal(err)
			}
			saveErr := st.Save(ctx, s)
			u, err := st.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			u.SetUser("alice")
			loginErr := st.Save(ctx, u) // the index entry first, then the session
			stats := st.Stats()
			t.Logf("save: %v; login: %v; stats %+v", saveErr, loginErr, stats)
			switch policy {
			case store.AckRequired:
				for _, err := range []error{saveErr, loginErr} {
					var ae *store.AckError
					if !errors.Is(err, store.ErrNotAcknowledged) || !errors.As(err, &ae) || ae.Acked != 0 || ae.Want != 1 {
						t.Errorf("error %v, want an *AckError 0 of 1", err)
					}
				}
				if stats.Unacknowledged != 2 || stats.AcceptedUnacknowledged != 0 {
					t.Errorf("stats %+v, want 2 unacknowledged, none accepted", stats)
				}
			case store.AckBestEffort:
				if saveErr != nil || loginErr != nil {
					t.Fatalf("save %v, login %v: want both accepted", saveErr, loginErr)
				}
				// The login's index entry and its session save: 3 writes.
				if stats.Unacknowledged != 3 || stats.AcceptedUnacknowledged != 3 || stats.Saves != 2 {
					t.Errorf("stats %+v, want 3 unacknowledged and accepted, 2 saves", stats)
				}
				if n := strings.Count(logs.String(), "accepted without replica acknowledgement"); n != 3 {
					t.Errorf("%d log lines, want 3:\n%s", n, logs.String())
				}
				got, err := st.Load(ctx, s.ID())
				if err != nil {
					t.Fatal(err)
				}
				var n int
				if err := got.Get("n", &n); err != nil || n != 1 {
					t.Errorf("read back n=%d (%v), want 1", n, err)
				}
				if _, err := st.Load(ctx, u.ID()); err != nil {
					t.Errorf("the login's session: %v", err)
				}
			}
		})
	}
}
