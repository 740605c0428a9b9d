// Package sid creates, validates and tags session IDs.
//
// A session ID is a canonical lowercase UUIDv4 string such as
// "3f2504e0-4f89-41d3-9a0c-0305e82c3301": 36 characters holding 122 bits
// from crypto/rand. [New] creates one and [Valid] checks that untrusted input
// (a cookie, a header) has exactly that form before it is used to build a
// Redis key.
//
// A [Tagger] maps an ID to the Redis Cluster hash tag used in the session's
// keys, so that all keys of one session land in the same slot. Without a
// key the tag is the ID itself. With a secret key it is an HMAC of the ID,
// so key names in Redis (as seen by MONITOR, SCAN or slow logs) do not reveal
// live session IDs.
//
// Happy path:
//
//	tagger, err := sid.NewTagger(secret) // secret: nil, or at least 32 bytes
//	if err != nil {
//		return err
//	}
//	id, err := sid.New()
//	if err != nil {
//		return err
//	}
//	key := "sess:{" + tagger.Tag(id) + "}:data"
//
//	// Later, for an ID received from a client:
//	if !sid.Valid(cookie.Value) {
//		return errNoSession
//	}
package sid
