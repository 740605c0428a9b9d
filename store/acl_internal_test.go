package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// replyError is an error reply as go-redis returns it (a redis.Error).
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

var _ redis.Error = replyError("")

func TestACLRefusalsArePermissionErrors(t *testing.T) {
	for _, tc := range []struct {
		reply    string
		perm     bool
		command  string
		inScript bool
	}{
		{"NOPERM this user has no permissions to run the 'evalsha' command", true, "evalsha", false},         // Redis 7.0
		{"NOPERM User app has no permissions to run the 'script|load' command", true, "script|load", false},  // Redis 7.2
		{"NOPERM this user has no permissions to access one of the keys used as arguments", true, "", false}, // a key
		{"ERR The user executing the script can't run this command or subcommand script: 1a2b, on @user_script:85.", true, "", true},
		{"ERR ACL failure in script: User app has no permissions to run the 'hset' command script: 1a2b, on @user_script:85.", true, "hset", true},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", false, "", false},
		{"NOSCRIPT No matching script. Please use EVAL.", false, "", false},
		{"ERR Error running script: user_script:3: attempt to compare nil with number", false, "", false},
	} {
		t.Run(tc.reply, func(t *testing.T) {
			in := fmt.Errorf("hasession: save session: %w", replyError(tc.reply))
			err := asPermissionError(in)
			var pe *PermissionError
			if !tc.perm {
				if err != in || errors.As(err, &pe) {
					t.Fatalf("got %v (%T), want the error unchanged", err, err)
				}
				return
			}
			if !errors.As(err, &pe) {
				t.Fatalf("got %v (%T), want a *PermissionError", err, err)
			}
			if pe.Command != tc.command || pe.InScript != tc.inScript {
				t.Errorf("command %q, in script %v; want %q, %v", pe.Command, pe.InScript, tc.command, tc.inScript)
			}
			if !errors.Is(err, ErrPermission) || !errors.Is(err, replyError(tc.reply)) {
				t.Errorf("%v matches neither ErrPermission nor the reply", err)
			}
			if Retryable(err) {
				t.Errorf("%v is retryable", err)
			}
			if again := asPermissionError(err); again != err {
				t.Errorf("converted twice: %v", again)
			}
		})
	}
	for _, err := range []error{nil, ErrNotFound, errors.New("NOPERM not from Redis")} {
		if got := asPermissionError(err); got != err {
			t.Errorf("asPermissionError(%v) = %v, want it unchanged", err, got)
		}
	}
}
