package store

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ACLCommands are the ACL command rules a Redis user needs to run the store, and no more:
// the commands the store sends, the commands its scripts run (Redis checks those against
// the caller's user too), and what go-redis sends when it connects (HELLO, AUTH, CLIENT
// SETNAME when a client name is set), pings and, for a Cluster, reads the slot map and
// the command table with (CLUSTER SLOTS, COMMAND: a ClusterClient refused COMMAND asks
// again before every command). Sentinel commands go to the sentinels, which have users
// of their own.
//
// The list is for Redis 7.0. From Redis 7.2 on, go-redis also sends CLIENT SETINFO on
// connect (and goes on when it is refused): add +client|setinfo there, or set
// DisableIdentity in the client's options. Redis 7.0 refuses to load a rule for a
// command it does not know.
const ACLCommands = "+hgetall +evalsha +eval +wait +zrem " + // sent by the store
	"+hget +hmget +hkeys +hset +hdel +del +exists +type +pexpire +pexpireat +pttl +time " + // run by its scripts
	"+zadd +zrange +zremrangebyscore " +
	"+hello +auth +client|setname +ping +cluster|slots +command" // sent by go-redis

// ACLMigrationCommands are the command rules a store's user needs beside [ACLCommands]
// while it migrates sessions of another store ([Store.Adopt], [WithLegacyHash]): the
// migration script reads and deletes the legacy keys and sets the claims. Such a user
// also needs key patterns for the legacy keys and their claims ({<legacy key>}:<prefix>moved…).
const ACLMigrationCommands = "+get +set"

// ACLRules returns the ACL rules of a least-privilege user for a store whose keys start
// with prefix ([DefaultPrefix] unless [WithPrefix] set another): keys matching prefix*
// only, no Pub/Sub channel, and only [ACLCommands].
func ACLRules(prefix string) []string {
	return append([]string{"~" + prefix + "*", "resetchannels", "-@all"}, strings.Fields(ACLCommands)...)
}

// ACLSetUser returns the ACL SETUSER command that creates (or resets) such a user, enabled,
// with the password, for a store whose keys start with prefix:
//
//	ACL SETUSER hasession reset on >secret ~hs:* resetchannels -@all +hgetall …
func ACLSetUser(user, password, prefix string) string {
	return "ACL SETUSER " + user + " reset on >" + password + " " + strings.Join(ACLRules(prefix), " ")
}

// Messages of a command refused inside a script: Redis replies ERR with one of these
// (7.0: "The user executing the script can't run this command or subcommand"; 7.2 on:
// "ACL failure in script: …").
var scriptACLMessages = []string{"The user executing the script can't", "ACL failure in script"}

// asPermissionError returns err as a *PermissionError when it is Redis's refusal for lack
// of permission (a NOPERM reply, or a command refused inside a script), and err unchanged
// otherwise.
func asPermissionError(err error) error {
	if err == nil {
		return nil
	}
	var pe *PermissionError
	if errors.As(err, &pe) {
		return err
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return err
	}
	msg := rerr.Error()
	inScript := false
	if !redis.HasErrorPrefix(err, "NOPERM") {
		for _, m := range scriptACLMessages {
			if strings.Contains(msg, m) {
				inScript = true
			}
		}
		if !inScript {
			return err
		}
	}
	return &PermissionError{Command: refusedCommand(msg), InScript: inScript, Err: err}
}

// refusedCommand returns the command a refusal names: "… to run the 'evalsha' command".
func refusedCommand(msg string) string {
	const marker = "' command"
	end := strings.Index(msg, marker)
	if end < 0 {
		return ""
	}
	start := strings.LastIndexByte(msg[:end], '\'')
	if start < 0 {
		return ""
	}
	return msg[start+1 : end]
}
