// Package cluster lets several gateway replicas behind any load balancer
// serve each other's sessions. A session id (and a requestState handle)
// names the replica that owns it and carries an HMAC under the cluster
// key, so that it cannot be forged; a replica that gets a request for a
// session it does not own forwards it to the owner over an internal HTTP
// hop that is signed with the same key and carries the client's identity.
// The owner applies the same checks as for a direct request.
//
// A Node owns the directory of peers (replica id → base URL), which it
// refreshes from the configured peers (static URLs, DNS names, the
// replicas' heartbeats in Redis) in one goroutine, and the HTTP transport
// of the hop.
//
// Invariants:
//   - Only holders of the cluster key can make an id that names a replica
//     or a forwarded request that a replica accepts.
//   - A forwarded request is never forwarded again.
//   - The key never reaches a log line, an error or a response.
package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Domain separation: the same key signs ids, forwarded requests and hello
// exchanges, so each MAC's input starts with its purpose.
const (
	purposeID      = "mcpgw cluster id v1\n"
	purposeForward = "mcpgw cluster forward v1\n"
	purposeHello   = "mcpgw cluster hello v1\n"
	// purposeDirectory signs a replica's entry in the directory in Redis.
	purposeDirectory = "mcpgw cluster directory v1\n"
)

// idMACBytes is the length of an id's truncated HMAC-SHA256 (128 bits).
const idMACBytes = 16

// keyring computes the MACs of one cluster key.
type keyring struct{ key []byte }

func (k keyring) mac(purpose string, parts ...string) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte(purpose))
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// newID returns "REPLICA.RANDOM.MAC": 18 random bytes and the truncated
// MAC of the replica and the random part, base64url. It is unguessable by
// its randomness and unforgeable by its MAC; the replica part tells any
// replica where the session lives.
func (k keyring) newID(replica string) string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	r := base64.RawURLEncoding.EncodeToString(b[:])
	m := k.mac(purposeID, replica, r)[:idMACBytes]
	return replica + "." + r + "." + base64.RawURLEncoding.EncodeToString(m)
}

// owner returns the replica an id names when its MAC is right; ok is false
// for anything else (a forged id, another gateway's id, garbage).
func (k keyring) owner(id string) (replica string, ok bool) {
	replica, rest, ok1 := strings.Cut(id, ".")
	r, m, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || replica == "" || len(r) != 24 || len(m) != 22 {
		return "", false
	}
	got, err := b64dec(m)
	if err != nil {
		return "", false
	}
	if !hmac.Equal(got, k.mac(purposeID, replica, r)[:idMACBytes]) {
		return "", false
	}
	return replica, true
}

// b64dec refuses non-canonical encodings, so that each MAC has one spelling.
func b64dec(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }
