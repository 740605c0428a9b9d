// Package testhook holds switches that break one rule of the store on purpose, so that
// the history checker's tests can show it reports the violation, and the store's
// internals that its container-backed tests, outside package store, read (store.go in
// this package). Every switch is off unless a test turns it on; the product never does,
// nor does it call the internals.
package testhook

import "sync/atomic"

// FreshSaveID makes every attempt of a save carry a new save ID, as if the store did not
// recognise a retried save: a save whose reply was lost and that is retried applies twice.
var FreshSaveID atomic.Bool

// IgnoreVersionCheck makes a version-checked save apply whatever the session's version:
// a save that should have been refused with ErrConflict overwrites a concurrent one.
var IgnoreVersionCheck atomic.Bool

// QueueLoneCommands makes the auto-pipelining queue every command for its sending loops,
// also one with nothing to be pipelined with, which otherwise goes alone from its
// caller's goroutine: for the benchmark that compares the two in one run.
var QueueLoneCommands atomic.Bool

// NearNoLeaseWait makes a revocation with the near-cache return as soon as its write
// did, without waiting the lease: another app server may serve the revoked session from
// its cache until the invalidation reaches it.
var NearNoLeaseWait atomic.Bool

// NearIgnoreLease makes the near-cache serve an entry whatever its connection's lease:
// an app server cut off from Redis serves what it cached, revoked or not.
var NearIgnoreLease atomic.Bool

// NearNoMasterCheck turns off the near-cache's check, on Sentinel, that the client's
// master is still the tracking connection's: after a failover that leaves the old master
// up, the cache keeps serving what it read there.
var NearNoMasterCheck atomic.Bool
