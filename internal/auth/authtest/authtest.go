// Package authtest is test support for authentication: an OIDC issuer on
// loopback that serves a JWKS and signs real tokens with RSA and ECDSA
// keys, plus hand-made hostile tokens (alg none, HMAC with the public key
// as secret). Only tests import it.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key with its key id.
type Key struct {
	ID   string
	Alg  jose.SignatureAlgorithm
	Priv crypto.Signer
}

// NewRSA returns a new 2048-bit RSA key for RS256.
func NewRSA(tb testing.TB, id string) *Key {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return &Key{ID: id, Alg: jose.RS256, Priv: k}
}

// NewECDSA returns a new P-256 key for ES256.
func NewECDSA(tb testing.TB, id string) *Key {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return &Key{ID: id, Alg: jose.ES256, Priv: k}
}

// Issuer serves a JWKS at URL+"/cdn-cgi/access/certs" (the Cloudflare
// Access path) on a loopback httptest server.
type Issuer struct {
	URL     string
	Server  *httptest.Server
	fetches atomic.Int64
	down    atomic.Bool

	mu   sync.Mutex
	keys []*Key
}

// NewIssuer starts an issuer publishing keys; it stops at the end of the test.
func NewIssuer(tb testing.TB, keys ...*Key) *Issuer {
	tb.Helper()
	is := &Issuer{keys: keys}
	is.Server = httptest.NewServer(http.HandlerFunc(is.serve))
	is.URL = is.Server.URL
	tb.Cleanup(is.Server.Close)
	return is
}

func (is *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	is.fetches.Add(1)
	if is.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/cdn-cgi/access/certs" {
		http.NotFound(w, r)
		return
	}
	is.mu.Lock()
	var set jose.JSONWebKeySet
	for _, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Priv.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
	}
	is.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// SetKeys replaces the published keys (key rotation).
func (is *Issuer) SetKeys(keys ...*Key) {
	is.mu.Lock()
	is.keys = keys
	is.mu.Unlock()
}

// SetDown makes the JWKS endpoint answer 503 (an outage) or recover.
func (is *Issuer) SetDown(down bool) { is.down.Store(down) }

// Fetches is how many times the JWKS was requested.
func (is *Issuer) Fetches() int64 { return is.fetches.Load() }

// Claims returns typical claims: iss, aud, sub, email, iat, exp in an hour.
func (is *Issuer) Claims(aud, email string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": is.URL, "aud": []string{aud}, "sub": "user-" + email,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if email != "" {
		c["email"] = email
	}
	return c
}

// Sign returns a compact JWS of claims signed by k with its key id.
func Sign(tb testing.TB, k *Key, claims map[string]any) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), k.ID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: k.Priv}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(b)
}

// Unsigned returns a token with alg "none" and an empty signature.
func Unsigned(tb testing.TB, kid string, claims map[string]any) string {
	return b64JSON(tb, map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + b64JSON(tb, claims) + "."
}

// HMACWithPublicKey returns a token signed with HS256 whose secret is k's
// public key (PKIX DER and PEM are both tried by real attacks; DER here):
// the classic confusion attack on verifiers that let the token pick the
// algorithm.
func HMACWithPublicKey(tb testing.TB, k *Key, claims map[string]any) string {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	signing := b64JSON(tb, map[string]string{"alg": "HS256", "typ": "JWT", "kid": k.ID}) + "." + b64JSON(tb, claims)
	m := hmac.New(sha256.New, der)
	m.Write([]byte(signing))
	return signing + "." + b64(m.Sum(nil))
}

// Tamper replaces the payload of token with claims, keeping its header
// and signature.
func Tamper(tb testing.TB, token string, claims map[string]any) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a compact JWS")
	}
	return parts[0] + "." + b64JSON(tb, claims) + "." + parts[2]
}
