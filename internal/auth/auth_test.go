package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/auth/authtest"
	"github.com/mcpgw/mcpgw/internal/config"
)

const (
	laptopToken = "laptop-token-0123456789abcdefghijklmnopqrstuvwxyz"
	ciToken     = "ci-token-0123456789abcdefghijklmnopqrstuvwxyz0123"
	audience    = "aud-tag-1"
)

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// fakeClock is a settable clock for exp/nbf and key refresh.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newAuth parses an auth section for issuer is (nil: tokens only) and
// returns its Authenticator with a fake clock.
func newAuth(t testing.TB, is *authtest.Issuer, extraJWT string) (*Authenticator, *fakeClock) {
	t.Helper()
	y := fmt.Sprintf("auth:\n  tokens:\n    - {name: laptop, sha256: %s}\n    - {name: ci, value_env: CI_TOKEN}\n", digest(laptopToken))
	if is != nil {
		y += fmt.Sprintf("  jwt:\n    issuer: %s\n    audiences: [other, %s]\n    clock_skew: 30s\n%s", is.URL, audience, extraJWT)
	}
	y += "servers: {a: {command: [x]}}\n"
	cfg, err := config.Parse([]byte(y), func(k string) (string, bool) { return ciToken, k == "CI_TOKEN" })
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	return New(&cfg.Auth, &Options{Now: clock.Now, MinRefresh: time.Minute}), clock
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func cfAccess(tok string) http.Header { return http.Header{"Cf-Access-Jwt-Assertion": {tok}} }

// result is what a test compares: the identity or the failure reason.
type result struct {
	Name, Method string
	Reason       Reason
	Presented    bool
}

func authenticate(a *Authenticator, h http.Header) result {
	id, err := a.Authenticate(context.Background(), h)
	if err != nil {
		f, ok := IsFailure(err)
		if !ok {
			return result{Reason: Reason("not a *Failure: " + err.Error())}
		}
		return result{Reason: f.Reason, Presented: f.Presented}
	}
	return result{Name: id.Name, Method: id.Method}
}

func TestBearerTokens(t *testing.T) {
	a, _ := newAuth(t, nil, "")
	tests := []struct {
		name string
		h    http.Header
		want result
	}{
		{"right token", bearer(laptopToken), result{Name: "laptop", Method: "token"}},
		{"token from value_env", bearer(ciToken), result{Name: "ci", Method: "token"}},
		{"scheme is case-insensitive", http.Header{"Authorization": {"bEaReR  " + laptopToken}}, result{Name: "laptop", Method: "token"}},
		{"wrong token", bearer("laptop-token-0123456789abcdefghijklmnopqrstuvwxyZ"), result{Reason: ReasonUnknown, Presented: true}},
		{"prefix of a token", bearer(laptopToken[:20]), result{Reason: ReasonUnknown, Presented: true}},
		{"the digest is not the token", bearer(digest(laptopToken)), result{Reason: ReasonUnknown, Presented: true}},
		{"missing", http.Header{}, result{Reason: ReasonMissing}},
		{"other scheme", http.Header{"Authorization": {"Basic " + laptopToken}}, result{Reason: ReasonMalformed, Presented: true}},
		{"no token", http.Header{"Authorization": {"Bearer "}}, result{Reason: ReasonMalformed, Presented: true}},
		{"two headers", http.Header{"Authorization": {"Bearer " + laptopToken, "Bearer " + laptopToken}}, result{Reason: ReasonMalformed, Presented: true}},
		{"JWT header without jwt config is ignored", cfAccess("x.y.z"), result{Reason: ReasonMissing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, authenticate(a, tt.h)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestTokenComparisonIsConstantTime checks the structure that makes the
// comparison timing-safe, since wall-clock measurements are too noisy to
// assert on under the race detector: fixed-length digests are compared with
// crypto/subtle, and every configured digest is compared whichever one
// matches (first, last or none).
func TestTokenComparisonIsConstantTime(t *testing.T) {
	var tokens []config.Token
	for i := range 64 {
		sum := sha256.Sum256(fmt.Appendf(nil, "token-%02d-0123456789abcdefghijklmnopqrstuvwxyz", i))
		tokens = append(tokens, config.Token{Name: fmt.Sprintf("t%02d", i), SHA256: sum[:]})
	}
	a := New(&config.Auth{Mode: config.AuthRequired, Tokens: tokens}, nil)
	for _, tt := range []struct {
		token string
		want  string
	}{
		{"token-00-0123456789abcdefghijklmnopqrstuvwxyz", "t00"},
		{"token-63-0123456789abcdefghijklmnopqrstuvwxyz", "t63"},
		{"token-63-0123456789abcdefghijklmnopqrstuvwxyZ", ""},
		{"t", ""},
	} {
		name, ok := a.matchToken(tt.token)
		if name != tt.want || ok != (tt.want != "") {
			t.Errorf("matchToken(%q) = %q, %v; want %q", tt.token, name, ok, tt.want)
		}
	}
	// Every configured digest is compared, whichever matches.
	compared := 0
	compareHook = func() { compared++ }
	defer func() { compareHook = nil }()
	for _, tok := range []string{"token-00-0123456789abcdefghijklmnopqrstuvwxyz", "token-63-0123456789abcdefghijklmnopqrstuvwxyz", "miss"} {
		compared = 0
		a.matchToken(tok)
		if compared != len(tokens) {
			t.Errorf("matchToken(%q) compared %d digests, want all %d", tok, compared, len(tokens))
		}
	}
}

func TestJWT(t *testing.T) {
	rsaKey := authtest.NewRSA(t, "rsa-1")
	ecKey := authtest.NewECDSA(t, "ec-1")
	is := authtest.NewIssuer(t, rsaKey, ecKey)
	stranger := authtest.NewRSA(t, "rsa-1") // same kid, other key
	a, _ := newAuth(t, is, "")

	claims := func(change func(map[string]any)) map[string]any {
		c := is.Claims(audience, "Alice@Example.com")
		if change != nil {
			change(c)
		}
		return c
	}
	valid := authtest.Sign(t, rsaKey, claims(nil))
	now := time.Now()
	tests := []struct {
		name string
		h    http.Header
		want result
	}{
		{"valid RS256 in Cf-Access-Jwt-Assertion", cfAccess(valid), result{Name: "alice@example.com", Method: "jwt"}},
		{"valid ES256 as bearer", bearer(authtest.Sign(t, ecKey, claims(nil))), result{Name: "alice@example.com", Method: "jwt"}},
		{"second configured audience", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["aud"] = "other" }))), result{Name: "alice@example.com", Method: "jwt"}},
		{"expired", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }))), result{Reason: ReasonExpired, Presented: true}},
		{"expired within clock skew", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() }))), result{Name: "alice@example.com", Method: "jwt"}},
		{"not yet valid", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }))), result{Reason: ReasonNotYetValid, Presented: true}},
		{"nbf within clock skew", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Second).Unix() }))), result{Name: "alice@example.com", Method: "jwt"}},
		{"no exp", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { delete(c, "exp") }))), result{Reason: ReasonMalformed, Presented: true}},
		{"wrong issuer", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" }))), result{Reason: ReasonIssuer, Presented: true}},
		{"wrong audience", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["aud"] = []string{"someone-else"} }))), result{Reason: ReasonAudience, Presented: true}},
		{"no audience", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { delete(c, "aud") }))), result{Reason: ReasonAudience, Presented: true}},
		{"signed by another key with a known kid", cfAccess(authtest.Sign(t, stranger, claims(nil))), result{Reason: ReasonSignature, Presented: true}},
		{"alg none", cfAccess(authtest.Unsigned(t, "rsa-1", claims(nil))), result{Reason: ReasonAlgorithm, Presented: true}},
		{"HMAC with the public key as secret", cfAccess(authtest.HMACWithPublicKey(t, rsaKey, claims(nil))), result{Reason: ReasonAlgorithm, Presented: true}},
		{"tampered payload", cfAccess(authtest.Tamper(t, valid, claims(func(c map[string]any) { c["email"] = "admin@example.com" }))), result{Reason: ReasonSignature, Presented: true}},
		{"Cloudflare service token: common_name, no email", cfAccess(authtest.Sign(t, rsaKey, map[string]any{
			"iss": is.URL, "aud": []string{audience}, "sub": "", "common_name": "0123abcd.access", "type": "app",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})), result{Name: "0123abcd.access", Method: "jwt"}},
		{"unverified email is not an identity: sub", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["email_verified"] = false }))), result{Name: "user-Alice@Example.com", Method: "jwt"}},
		{"verified email", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["email_verified"] = true }))), result{Name: "alice@example.com", Method: "jwt"}},
		{"only sub", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { delete(c, "email") }))), result{Name: "user-Alice@Example.com", Method: "jwt"}},
		{"no identity claim", cfAccess(authtest.Sign(t, rsaKey, claims(func(c map[string]any) { delete(c, "email"); delete(c, "sub") }))), result{Reason: ReasonNoIdentity, Presented: true}},
		{"garbage", cfAccess("not-a-jwt"), result{Reason: ReasonMalformed, Presented: true}},
		{"garbage bearer", bearer("a.b.c"), result{Reason: ReasonMalformed, Presented: true}},
		{"unknown static token", bearer("not-a-configured-token"), result{Reason: ReasonUnknown, Presented: true}},
		{"two Cf-Access headers", http.Header{"Cf-Access-Jwt-Assertion": {valid, valid}}, result{Reason: ReasonMalformed, Presented: true}},
		{"static token still works", bearer(laptopToken), result{Name: "laptop", Method: "token"}},
		{"Cf-Access header is tried first", http.Header{"Cf-Access-Jwt-Assertion": {valid}, "Authorization": {"Bearer a.b.c"}}, result{Name: "alice@example.com", Method: "jwt"}},
		{"missing", http.Header{}, result{Reason: ReasonMissing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, authenticate(a, tt.h)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestJWTHeadersConfigured(t *testing.T) {
	key := authtest.NewECDSA(t, "ec")
	is := authtest.NewIssuer(t, key)
	tok := authtest.Sign(t, key, is.Claims(audience, "bob@example.com"))
	a, _ := newAuth(t, is, "    headers: [cf-access-jwt-assertion]\n    algorithms: [ES256]\n")
	if diff := cmp.Diff(result{Name: "bob@example.com", Method: "jwt"}, authenticate(a, cfAccess(tok))); diff != "" {
		t.Errorf("Cf-Access-Jwt-Assertion (-want +got):\n%s", diff)
	}
	// Authorization is not a JWT header here: a JWT there is an unknown token.
	if diff := cmp.Diff(result{Reason: ReasonUnknown, Presented: true}, authenticate(a, bearer(tok))); diff != "" {
		t.Errorf("bearer (-want +got):\n%s", diff)
	}
	rs := authtest.NewRSA(t, "rs")
	is.SetKeys(key, rs)
	if diff := cmp.Diff(result{Reason: ReasonAlgorithm, Presented: true}, authenticate(a, cfAccess(authtest.Sign(t, rs, is.Claims(audience, "x@example.com"))))); diff != "" {
		t.Errorf("RS256 when only ES256 is allowed (-want +got):\n%s", diff)
	}
}

// TestKeyRotation: a token with an unknown kid triggers a JWKS refresh, at
// most once per MinRefresh; a key rotated in is found by the next allowed
// refresh; during a JWKS outage tokens signed by cached keys still pass.
func TestKeyRotation(t *testing.T) {
	old := authtest.NewRSA(t, "old")
	is := authtest.NewIssuer(t, old)
	a, clock := newAuth(t, is, "")
	next := authtest.NewECDSA(t, "next")
	long := func(email string) map[string]any { // valid across the clock's jumps
		c := is.Claims(audience, email)
		c["exp"] = time.Now().Add(24 * time.Hour).Unix()
		return c
	}
	oldTok := authtest.Sign(t, old, long("a@example.com"))
	nextTok := authtest.Sign(t, next, long("b@example.com"))
	ok := func(name string) result { return result{Name: name, Method: "jwt"} }
	unknown := result{Reason: ReasonUnknownKey, Presented: true}

	steps := []struct {
		name        string
		do          func()
		h           http.Header
		want        result
		wantFetches int64
	}{
		{"first token fetches the keys", nil, cfAccess(oldTok), ok("a@example.com"), 1},
		{"cached key: no fetch", nil, cfAccess(oldTok), ok("a@example.com"), 1},
		{"unknown kid: one refresh, still unknown", nil, cfAccess(nextTok), unknown, 1},
		{"rotated in, but refresh is rate-limited", func() { is.SetKeys(old, next) }, cfAccess(nextTok), unknown, 1},
		{"a flood of unknown kids does not fetch", nil, cfAccess(nextTok), unknown, 1},
		{"after MinRefresh the rotated key is found", func() { clock.Advance(time.Minute) }, cfAccess(nextTok), ok("b@example.com"), 2},
		{"JWKS outage: cached keys still work", func() { is.SetDown(true); clock.Advance(time.Minute) }, cfAccess(oldTok), ok("a@example.com"), 2},
		{"JWKS outage: unknown kid fails, cache kept", nil, cfAccess(authtest.Sign(t, authtest.NewRSA(t, "third"), is.Claims(audience, "c@example.com"))), unknown, 3},
		{"JWKS outage: cached rotated key still works", nil, cfAccess(nextTok), ok("b@example.com"), 3},
		{"stale cache during the outage: one retry, cached keys still work", func() { clock.Advance(time.Hour) }, cfAccess(oldTok), ok("a@example.com"), 4},
		{"stale retries are spaced out", func() { clock.Advance(time.Minute) }, cfAccess(oldTok), ok("a@example.com"), 4},
		{"withdrawn key: distrusted once the stale cache is refreshed", func() { is.SetDown(false); is.SetKeys(next); clock.Advance(5 * time.Minute) }, cfAccess(oldTok), unknown, 5},
		{"the remaining key still works", nil, cfAccess(nextTok), ok("b@example.com"), 5},
	}
	// The first step's fetch happens on the first token: fetches count
	// from 0, and the unknown-kid step right after it is inside MinRefresh.
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		got := authenticate(a, st.h)
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", st.name, diff)
		}
		if n := is.Fetches(); n != st.wantFetches {
			t.Errorf("%s: %d JWKS fetches, want %d", st.name, n, st.wantFetches)
		}
	}
}

func TestParseBearer(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer a-b.c_d~e+f/g==", "a-b.c_d~e+f/g==", true},
		{"Bearer   abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearerabc", "", false},
		{"Basic abc", "", false},
		{"Bearer a b", "", false},
		{"Bearer a=b", "", false},
		{"Bearer =", "", false},
		{"Bearer abc\x00", "", false},
		{"Bearer " + strings.Repeat("a", maxCredentialBytes+1), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 20)], func(t *testing.T) {
			got, ok := parseBearer(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseBearer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
