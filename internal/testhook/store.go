package testhook

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// The store's tests that run on containers live in a module of their own, outside
// package store. The internals some of them read or drive are reached through the
// variables below, which package store sets when it is initialised. This package cannot
// import store: a *store.Store or *store.Session is passed as any.
var (
	// StoreInternals returns the internals of a *store.Store.
	StoreInternals func(st any) Internals
	// AppendChanges appends a *store.Session's pending changes to the arguments of the
	// save script, as a save does.
	AppendChanges func(s any, args []any) []any
	// NewSaveID returns a fresh save ID, as each save carries.
	NewSaveID func() string
	// SetLoadTouchHook sets the function a load runs between its HGETALL and its touch
	// (nil: none).
	SetLoadTouchHook func(f func(key string))
	// SetDestroyHopHook sets the function a Destroy runs after each key of its chain
	// (nil: none).
	SetDestroyHopHook func(f func())
	// SetRotateForwardHook sets the function a Rotate runs between writing the new
	// session and forwarding the old one (nil: none).
	SetRotateForwardHook func(f func())
	// MaxHops is how many keys of a chain of rotations Load, Destroy and Revoke follow.
	MaxHops int

	// FieldVersion, FieldTouched and FieldSaveID name the session hash's metadata fields:
	// its version, its last touch and the save IDs it remembers.
	FieldVersion, FieldTouched, FieldSaveID string
	// FieldCreated, FieldDeadline, FieldIdle and FieldPersist name its created-at, its
	// absolute deadline, its own idle timeout and its own cookie persistence.
	FieldCreated, FieldDeadline, FieldIdle, FieldPersist string
	// ForwardScriptHash is the SHA of the rotation's forward script.
	ForwardScriptHash string
	// SaveScriptHash is the SHA of the save script.
	SaveScriptHash string
	// DestroyScriptHash is the SHA of the script that deletes one key of a Destroy.
	DestroyScriptHash string
)

// Internals are the parts of a Store the tests read or drive.
type Internals struct {
	// Key returns the Redis key of a session ID.
	Key func(id string) string
	// Client is the Store's client.
	Client redis.UniversalClient
	// IdleMs and LifeMs are the idle timeout and the absolute lifetime in milliseconds,
	// as the save script takes them.
	IdleMs, LifeMs int64
	// CodecName is the name of the Store's codec.
	CodecName string
	// RunSave runs the save script once (no retry) with the given arguments.
	RunSave func(ctx context.Context, key string, args []any) (SaveResult, error)
	// HGetAll reads a session's hash as a load does, through the reply buffer.
	HGetAll func(ctx context.Context, key string) ([]byte, error)
	// ReplyHint is the size the reply buffer starts from.
	ReplyHint *atomic.Int64
}

// SaveResult is what the save script returned: the session's version, the Redis time of
// the save, its absolute deadline and its creation time.
type SaveResult struct{ Version, Now, Deadline, Created int64 }
