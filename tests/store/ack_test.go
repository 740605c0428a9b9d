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

// A logout waits for replicas as a save does: on a server without a replica, WAIT 1
// never confirms. AckRequired returns an *AckError once every key of the rotation chain
// is destroyed (the session is gone on the master); AckBestEffort accepts and counts it.
func TestWriteAckLogout(t *testing.T) {
	rdb := cluster.StandaloneForTest(t).Client()
	ctx := t.Context()
	plain, err := store.New(rdb, store.WithGracePeriod(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, policy := range []store.AckPolicy{store.AckRequired, store.AckBestEffort} {
		t.Run(policy.String(), func(t *testing.T) {
			st, err := store.New(rdb, store.WithWriteAck(1, 50*time.Millisecond), store.WithWriteAckPolicy(policy),
				store.WithGracePeriod(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			s, _ := plain.NewSession()
			s.SetUser("alice")
			if err := s.Set("n", 1); err != nil {
				t.Fatal(err)
			}
			if err := plain.Save(ctx, s); err != nil {
				t.Fatal(err)
			}
			old := s.ID()
			if err := plain.Rotate(ctx, s); err != nil {
				t.Fatal(err)
			}
			err = st.Destroy(ctx, old)
			stats := st.Stats()
			t.Logf("destroy: %v; stats %+v", err, stats)
			switch policy {
			case store.AckRequired:
				var ae *store.AckError
				if !errors.As(err, &ae) || ae.Want != 1 || ae.Acked != 0 {
					t.Errorf("Destroy: %v, want an *AckError 0 of 1", err)
				}
				if stats.Unacknowledged < 2 || stats.AcceptedUnacknowledged != 0 {
					t.Errorf("stats %+v, want the keys of the chain unacknowledged, none accepted", stats)
				}
			case store.AckBestEffort:
				if err != nil {
					t.Errorf("Destroy: %v, want it accepted", err)
				}
				if stats.AcceptedUnacknowledged < 2 {
					t.Errorf("stats %+v, want the keys of the chain accepted unacknowledged", stats)
				}
			}
			for _, id := range []string{old, s.ID()} {
				if _, err := plain.Load(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("load %s after the logout: %v, want ErrNotFound", id, err)
				}
			}
		})
	}
}

// A rotation's forward step waits for replicas as its new session does: on a server
// without a replica both writes go unconfirmed. The rotation is done on the master (the
// old ID leads to the new session) and returns the *AckError under AckRequired.
func TestWriteAckRotation(t *testing.T) {
	rdb := cluster.StandaloneForTest(t).Client()
	ctx := t.Context()
	plain, err := store.New(rdb, store.WithGracePeriod(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(rdb, store.WithWriteAck(1, 50*time.Millisecond), store.WithGracePeriod(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := st.NewSession()
	if err := s.Set("n", 1); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, s); !errors.Is(err, store.ErrNotAcknowledged) {
		t.Fatalf("Save: %v, want ErrNotAcknowledged", err)
	}
	old, before := s.ID(), st.Stats().Unacknowledged
	err = st.Rotate(ctx, s)
	if !errors.Is(err, store.ErrNotAcknowledged) {
		t.Fatalf("Rotate: %v, want ErrNotAcknowledged", err)
	}
	if got := st.Stats().Unacknowledged - before; got != 2 {
		t.Errorf("%d writes unacknowledged, want 2: the new session and the old key's pointer", got)
	}
	if s.ID() == old {
		t.Fatal("the session kept its old ID")
	}
	got, err := plain.Load(ctx, old)
	if err != nil || got.ID() != s.ID() {
		t.Fatalf("load of the old ID: %v, %v; want the new session %s", got, err, s.ID())
	}
}
