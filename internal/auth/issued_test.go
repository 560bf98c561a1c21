package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/config"
)

// memIssuer is an Issuer held in memory: the interface's contract without
// the store behind the real one (package oauth, tested there and in the
// gateway).
type memIssuer struct {
	iss  string
	key  *ecdsa.PrivateKey
	kid  string
	mu   sync.Mutex
	dead map[string]bool
	hits int // GrantActive calls
}

func newMemIssuer(t testing.TB) *memIssuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &memIssuer{iss: "https://mcp.example.com", key: k, kid: "k1", dead: map[string]bool{}}
}

func (m *memIssuer) Issuer() string { return m.iss }

func (m *memIssuer) VerificationKeys(context.Context, bool) ([]jose.JSONWebKey, error) {
	return []jose.JSONWebKey{{Key: &m.key.PublicKey, KeyID: m.kid, Algorithm: "ES256", Use: "sig"}}, nil
}

func (m *memIssuer) GrantActive(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hits++
	return !m.dead[id], nil
}

func (m *memIssuer) calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits
}

const resourceA, resourceB = "https://mcp.example.com/mcp/a", "https://mcp.example.com/mcp/b"

// token signs an access token as the authorization server does; edit may
// change the claims, typ the header's typ.
func (m *memIssuer) token(t testing.TB, now time.Time, typ string, edit func(map[string]any)) string {
	t.Helper()
	c := map[string]any{
		"iss": m.iss, "sub": "Alice@Example.com", "email": "Alice@Example.com", "aud": []string{resourceA},
		"exp": now.Add(15 * time.Minute).Unix(), "iat": now.Unix(), "gid": "g1", "scope": "mcp", "client_id": "c",
	}
	if edit != nil {
		edit(c)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: m.key, KeyID: m.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newIssuedAuth(t testing.TB, is *memIssuer, size int) (*Authenticator, *fakeClock) {
	t.Helper()
	cfg, err := config.Parse([]byte("auth:\n  tokens: [{name: laptop, sha256: "+digest(laptopToken)+"}]\nservers: {a: {command: [x]}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	return New(&cfg.Auth, &Options{Now: clock.Now, Issuer: is, CacheSize: size, Recheck: 30 * time.Second}), clock
}

func authFor(a *Authenticator, h http.Header, resource string) result {
	id, err := a.AuthenticateResource(context.Background(), h, resource)
	if err != nil {
		f, _ := IsFailure(err)
		return result{Reason: f.Reason, Presented: f.Presented}
	}
	return result{Name: id.Name, Method: id.Method}
}

func TestIssuedTokens(t *testing.T) {
	is := newMemIssuer(t)
	a, clock := newIssuedAuth(t, is, 0)
	now := clock.Now()
	other := newMemIssuer(t)
	other.kid = "k1" // same key id, other key: the signature decides
	tests := []struct {
		name     string
		token    string
		resource string
		want     result
	}{
		{"valid", is.token(t, now, "at+jwt", nil), resourceA, result{Name: "alice@example.com", Method: "oauth"}},
		{"any resource when none is asked", is.token(t, now, "at+jwt", nil), "", result{Name: "alice@example.com", Method: "oauth"}},
		{"other resource", is.token(t, now, "at+jwt", nil), resourceB, result{Reason: ReasonAudience, Presented: true}},
		{"not an access token (typ)", is.token(t, now, "JWT", nil), resourceA, result{Reason: ReasonMalformed, Presented: true}},
		{"expired", is.token(t, now, "at+jwt", func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }), resourceA, result{Reason: ReasonExpired, Presented: true}},
		{"issued in the future", is.token(t, now, "at+jwt", func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), resourceA, result{Reason: ReasonNotYetValid, Presented: true}},
		{"no grant", is.token(t, now, "at+jwt", func(c map[string]any) { delete(c, "gid") }), resourceA, result{Reason: ReasonMalformed, Presented: true}},
		{"signed by another key", func() string {
			other.iss = is.iss
			return other.token(t, now, "at+jwt", nil)
		}(), resourceA, result{Reason: ReasonSignature, Presented: true}},
		{"static token still first", laptopToken, resourceA, result{Name: "laptop", Method: "token"}},
		{"another issuer's JWT", newMemIssuer(t).token(t, now, "at+jwt", func(c map[string]any) { c["iss"] = "https://else.example" }), resourceA, result{Reason: ReasonUnknown, Presented: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, authFor(a, bearer(tt.token), tt.resource)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssuedTokenCache(t *testing.T) {
	is := newMemIssuer(t)
	a, clock := newIssuedAuth(t, is, 0)
	tok := is.token(t, clock.Now(), "at+jwt", nil)
	ok := result{Name: "alice@example.com", Method: "oauth"}
	for range 3 {
		if diff := cmp.Diff(ok, authFor(a, bearer(tok), resourceA)); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	}
	if n := is.calls(); n != 1 {
		t.Errorf("grant looked up %d times for 3 requests within the recheck interval, want 1", n)
	}
	// The audience is checked on every request, cached or not.
	if got := authFor(a, bearer(tok), resourceB); got.Reason != ReasonAudience {
		t.Errorf("cached token on another resource: %+v", got)
	}
	clock.Advance(31 * time.Second)
	authFor(a, bearer(tok), resourceA)
	if n := is.calls(); n != 2 {
		t.Errorf("after the recheck interval the grant was looked up %d times in all, want 2", n)
	}
	is.mu.Lock()
	is.dead["g1"] = true
	is.mu.Unlock()
	clock.Advance(31 * time.Second)
	if got := authFor(a, bearer(tok), resourceA); got.Reason != ReasonRevoked {
		t.Errorf("revoked grant: %+v, want %q", got, ReasonRevoked)
	}
	is.mu.Lock()
	is.dead["g1"] = false
	is.mu.Unlock()
	tok2 := is.token(t, clock.Now(), "at+jwt", nil)
	authFor(a, bearer(tok2), resourceA)
	clock.Advance(16 * time.Minute) // past exp, within no recheck
	if got := authFor(a, bearer(tok2), resourceA); got.Reason != ReasonExpired {
		t.Errorf("cached token past its expiry: %+v, want %q", got, ReasonExpired)
	}
}

func TestTokenCacheBound(t *testing.T) {
	is := newMemIssuer(t)
	a, clock := newIssuedAuth(t, is, 3)
	for i := range 10 {
		tok := is.token(t, clock.Now(), "at+jwt", func(c map[string]any) { c["jti"] = strings.Repeat("x", i+1) })
		if got := authFor(a, bearer(tok), resourceA); got.Reason != "" {
			t.Fatalf("token %d: %+v", i, got)
		}
		if n := len(a.cache.entries); n > 3 {
			t.Fatalf("cache holds %d entries, bound 3", n)
		}
	}
}

// BenchmarkIssuedTokenCached is the per-request cost of an access token
// verified before: parse the header, look it up, check expiry and
// audience.
func BenchmarkIssuedTokenCached(b *testing.B) {
	is := newMemIssuer(b)
	a, clock := newIssuedAuth(b, is, 0)
	h := bearer(is.token(b, clock.Now(), "at+jwt", nil))
	if got := authFor(a, h, resourceA); got.Reason != "" {
		b.Fatal(got)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.AuthenticateResource(context.Background(), h, resourceA); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssuedTokenVerify is the cost the cache saves: a full ES256
// verification and grant lookup.
func BenchmarkIssuedTokenVerify(b *testing.B) {
	is := newMemIssuer(b)
	a, clock := newIssuedAuth(b, is, 0)
	raw := is.token(b, clock.Now(), "at+jwt", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.issued.verify(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzIssuedToken: any bearer claiming to be an issued token gets a
// *Failure, never a crash or an identity, unless it verifies.
func FuzzIssuedToken(f *testing.F) {
	is := newMemIssuer(f)
	a, clock := newIssuedAuth(f, is, 0)
	valid := is.token(f, clock.Now(), "at+jwt", nil)
	f.Add(valid)
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJpc3MiOiJodHRwczovL21jcC5leGFtcGxlLmNvbSJ9.AAAA")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		_ = issuedBy(tok, is.iss)
		id, err := a.AuthenticateResource(context.Background(), http.Header{"Authorization": {"Bearer " + tok}}, resourceA)
		if err != nil {
			if _, ok := IsFailure(err); !ok {
				t.Fatalf("not a *Failure: %v", err)
			}
			return
		}
		if tok != valid && id.Method == "oauth" {
			// Only a token signed by the key verifies: the fuzzer cannot
			// forge one, so a different string must be an encoding
			// variant of the same signed token.
			if _, err := a.issued.verify(context.Background(), tok); err != nil {
				t.Fatalf("%q accepted from the cache but does not verify: %v", tok, err)
			}
		}
	})
}
