// Package scsstore is a session store for github.com/alexedwards/scs/v2 that keeps
// sessions in Redis through a hasession [store.Store]: on any go-redis v9 client (a single
// server, a Sentinel-managed master or a Redis Cluster) and with the store's failover
// retry policy, so a SessionManager keeps its users logged in when a Redis node dies.
//
// # Switching from goredisstore
//
// One line changes: the store.
//
//	sessionManager := scs.New()
//	// was: sessionManager.Store = goredisstore.New(client)
//	sessionManager.Store, err = scsstore.New(st) // st, _ := store.New(rdb)
//
// Everything else — LoadAndSave, Put, Get, RenewToken, Destroy, Iterate, Lifetime,
// IdleTimeout, HashTokenInStore, the codec — stays as it is: scs still encodes the session
// and decides its expiry, and this package only stores the bytes. The client may now be
// a *redis.ClusterClient (goredisstore takes a *redis.Client only), and the non-ctx
// methods work instead of panicking.
//
// A typical setup, with a client tuned for failover:
//
//	rdb := store.NewFailoverClient(&redis.UniversalOptions{Addrs: addrs}) // or MasterName for Sentinel
//	st, err := store.New(rdb)
//	if err != nil { … }
//	sessionManager := scs.New()
//	sessionManager.Store, err = scsstore.New(st)
//	http.ListenAndServe(":4000", sessionManager.LoadAndSave(mux))
//
// # Moving goredisstore's sessions: nobody is logged out
//
// goredisstore keeps a session at <prefix><token> (no hash tag), this package at
// <prefix>{<token>}, with the same bytes; the token, which scs owns, does not change.
// With [WithLegacy] the Store reads goredisstore's key when its own is missing, and
// moves the session over — the same bytes, the TTL it had left — before returning it:
//
//	sessionManager.Store, err = scsstore.New(st,
//		scsstore.WithLegacy(scsstore.DefaultPrefix, sessionManager.Codec)) // goredisstore.New's prefix
//
// Moving is safe under concurrency: of concurrent requests with one cookie exactly one
// writes the session and the others return what it wrote; a session deleted here since
// (a logout: see below) is not brought back; goredisstore's key is deleted only when it
// still holds the bytes that were moved; a value the codec cannot decode, or a key that
// is not a string, is left as it is and the request gets a new session. Each step runs
// under the retry policy; as with any write, a failover that loses a master's last
// writes can lose a session moved just before it.
// [Store.LegacyStats] counts the sessions moved and the corrupt keys met. A miss costs
// one more round trip or two (goredisstore's key, then this package's key again) — only
// for requests whose cookie names no session here, as scs looks nothing up without one.
//
// Drop the option once goredisstore's sessions are gone: after the longest Lifetime the
// SessionManager had when the switch was made (goredisstore set each key's TTL from the
// session's expiry), or sooner once no goredisstore key is left (a SCAN of the prefix
// finds only <prefix>{<token>} keys and their tombstones). A goredisstore still writing
// in the meantime (a rolling deploy) writes keys this Store reads only while it has no
// session of its own for the token.
//
// # Keys and expiry
//
// A session is one string key, <prefix>{<token>} (default prefix "scs:session:"), holding
// the bytes scs encoded, with a TTL set from scs's expiry on each commit; an expiry in the
// past deletes the key. A deleted session leaves a tombstone next to it (see below). The hash tag puts each session in one Cluster slot. A token is
// checked before any key is built: anything but scs's 43 base64url digits (see
// [ValidToken]) sends nothing to Redis — Find reports it missing, Delete does nothing,
// Commit returns [ErrInvalidToken].
//
// # Deleted sessions stay deleted
//
// scs's Destroy and RenewToken delete the session's key; a request that loaded the
// session before that and commits after it would, with a plain SET, write it back —
// logging the user in again after a logout. Delete therefore leaves a tombstone,
// <key>:deleted, for as long as the session would have lived and at least a minute, and
// Commit refuses to write a session that has one: it returns [ErrDeleted], which
// LoadAndSave hands to the SessionManager's ErrorFunc.
//
// # Failover
//
// Every command runs through [store.Store.Retry]: each attempt has a deadline, a failed
// attempt on a Cluster makes the client reload its slot map, and retryable errors are
// tried again with jittered backoff until the context ends. A caller whose deadline
// outlasts the failover sees no error. The non-ctx methods (Find, Commit, Delete, All)
// use context.Background() and so wait as long as the retry policy allows; scs's
// SessionManager calls the ctx methods.
//
// # Iteration
//
// [Store.AllCtx] (scs's Iterate) SCANs every master of a Cluster, not just one node, and
// starts a node's scan over when a failover may have invalidated its cursor.
package scsstore
