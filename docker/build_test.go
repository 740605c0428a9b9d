package redisimage_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer that the script's stderr and the test can share.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // nil, or signalled after each write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.wrote != nil {
		select {
		case s.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// holdLock takes an exclusive flock on a new file, as another apt or dpkg (or flock(1) in
// another shell) would, and returns the file and the function that releases it.
func holdLock(t *testing.T) (string, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lock-frontend")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	var once sync.Once
	release := func() {
		once.Do(func() {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			_ = f.Close()
		})
	}
	t.Cleanup(release)
	return path, release
}

func waitScript(lock, wait string, stderr *syncBuffer) *exec.Cmd {
	cmd := exec.Command("bash", "build-image.sh", "--wait-for-apt")
	cmd.Env = append(os.Environ(), "HASESSION_APT_LOCKS="+lock, "HASESSION_APT_WAIT="+wait)
	cmd.Stderr = stderr
	return cmd
}

// The image build waits for a held dpkg lock, says what it waits for, and goes on once
// the lock is released.
func TestBuildWaitsForTheDpkgLock(t *testing.T) {
	lock, release := holdLock(t)
	stderr := syncBuffer{wrote: make(chan struct{}, 1)}
	cmd := waitScript(lock, "120", &stderr)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.After(30 * time.Second)
	for !strings.Contains(stderr.String(), "waiting for the dpkg lock") {
		select {
		case err := <-done:
			t.Fatalf("the script ended (%v) while the lock was held; it said:\n%s", err, stderr.String())
		case <-stderr.wrote:
		case <-deadline:
			t.Fatalf("no waiting message within 30s; stderr:\n%s", stderr.String())
		}
	}
	require.Contains(t, stderr.String(), "held by "+strconv.Itoa(os.Getpid()), "it names the process that holds the lock")

	release()
	select {
	case err := <-done:
		require.NoError(t, err, "stderr:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the script still waits 30s after the lock was released; stderr:\n%s", stderr.String())
	}
}

// A lock that is held for longer than the bound fails the build with a message that names
// the way out.
func TestBuildGivesUpOnALockHeldTooLong(t *testing.T) {
	lock, _ := holdLock(t)
	var stderr syncBuffer
	err := waitScript(lock, "1", &stderr).Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stderr:\n%s", stderr.String())
	require.Contains(t, stderr.String(), "still locked after 1s")
	require.Contains(t, stderr.String(), "REDIS_IMAGE")
}

// A free lock costs nothing.
func TestBuildDoesNotWaitForAFreeLock(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	require.NoError(t, os.WriteFile(lock, nil, 0o600))
	var stderr syncBuffer
	require.NoError(t, waitScript(lock, "0", &stderr).Run(), "stderr:\n%s", stderr.String())
	require.Empty(t, stderr.String())
}
