package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgw/mcpgw/internal/clip"
)

// Issuer is mcpgw's own authorization server (auth.oauth) as the resource
// server sees it: who signs, with which keys, and whether a grant still
// stands. Implementations are safe for concurrent use.
type Issuer interface {
	// Issuer is the iss claim of the tokens (public_url).
	Issuer() string
	// VerificationKeys returns the public keys of current tokens;
	// refresh asks for a fresh read (an unknown key id was seen).
	VerificationKeys(ctx context.Context, refresh bool) ([]jose.JSONWebKey, error)
	// GrantActive reports whether the grant a token was issued under
	// has not been revoked.
	GrantActive(ctx context.Context, grantID string) (bool, error)
}

// issuedClaims are the claims of an access token of Issuer.
type issuedClaims struct {
	jwt.Claims
	Email   string `json:"email"`
	Scope   string `json:"scope"`
	GrantID string `json:"gid"`
}

// issuedVerifier verifies the access tokens of an Issuer (RFC 9068): ES256
// signature by a published key, typ at+jwt, iss, exp, nbf, and a grant
// that stands. The audience is checked per request by the caller.
type issuedVerifier struct {
	issuer Issuer
	now    func() time.Time

	mu          sync.Mutex
	lastRefresh time.Time
}

// keyRefreshEvery bounds the key re-reads that unknown key ids cause.
const keyRefreshEvery = 5 * time.Second

// issuedBy reports whether raw, a JWT-shaped string, claims to come from
// iss; nothing is verified here, it only picks the verifier.
func issuedBy(raw, iss string) bool {
	parts := strings.SplitN(raw, ".", 3)
	if len(parts) != 3 || len(parts[1]) > maxCredentialBytes {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	return json.Unmarshal(b, &c) == nil && c.Iss == iss
}

// verify returns the entry to cache for a valid token.
func (v *issuedVerifier) verify(ctx context.Context, raw string) (*cacheEntry, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		if strings.Contains(err.Error(), "unexpected signature algorithm") {
			return nil, fail(ReasonAlgorithm, "")
		}
		return nil, fail(ReasonMalformed, "")
	}
	if len(tok.Headers) != 1 {
		return nil, fail(ReasonMalformed, "")
	}
	hdr := tok.Headers[0]
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") {
		return nil, fail(ReasonMalformed, "typ is not at+jwt")
	}
	key, err := v.key(ctx, hdr.KeyID)
	if err != nil {
		return nil, err
	}
	var c issuedClaims
	if err := tok.Claims(key.Key, &c); err != nil {
		return nil, fail(ReasonSignature, "")
	}
	now := v.now()
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer.Issuer(), Time: now}, time.Second); err != nil {
		switch err {
		case jwt.ErrExpired:
			return nil, fail(ReasonExpired, "")
		case jwt.ErrNotValidYet, jwt.ErrIssuedInTheFuture:
			return nil, fail(ReasonNotYetValid, "")
		case jwt.ErrInvalidIssuer:
			return nil, fail(ReasonIssuer, "")
		}
		return nil, fail(ReasonMalformed, "claims")
	}
	if c.Expiry == nil || c.Email == "" || c.GrantID == "" || len(c.Audience) == 0 {
		return nil, fail(ReasonMalformed, "missing claims")
	}
	ok, err := v.issuer.GrantActive(ctx, c.GrantID)
	if err != nil {
		// Unknown, not revoked: a token not seen before needs its grant
		// looked up once.
		return nil, fail(ReasonUnavailable, "grant lookup failed: "+err.Error())
	}
	if !ok {
		return nil, fail(ReasonRevoked, "")
	}
	return &cacheEntry{
		id: Identity{Name: clip.String(strings.ToLower(c.Email), 256), Method: "oauth", Scopes: strings.Fields(c.Scope),
			Email: clip.String(strings.ToLower(c.Email), 256)},
		expires:  c.Expiry.Time(),
		audience: slices.Clone([]string(c.Audience)),
		grantID:  c.GrantID,
	}, nil
}

func (v *issuedVerifier) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	find := func(refresh bool) (jose.JSONWebKey, bool, error) {
		keys, err := v.issuer.VerificationKeys(ctx, refresh)
		if err != nil {
			return jose.JSONWebKey{}, false, err
		}
		for _, k := range keys {
			if k.KeyID == kid {
				return k, true, nil
			}
		}
		return jose.JSONWebKey{}, false, nil
	}
	k, ok, err := find(false)
	if err == nil && !ok && kid != "" {
		v.mu.Lock()
		again := v.now().Sub(v.lastRefresh) >= keyRefreshEvery
		if again {
			v.lastRefresh = v.now()
		}
		v.mu.Unlock()
		if again {
			k, ok, err = find(true)
		}
	}
	switch {
	case err != nil:
		return k, fail(ReasonUnknownKey, "reading keys: "+err.Error())
	case !ok:
		return k, fail(ReasonUnknownKey, "")
	}
	return k, nil
}

// cacheEntry is a verified token: who it proves, until when.
type cacheEntry struct {
	id       Identity
	expires  time.Time // the token's exp (plus clock skew for external JWTs)
	audience []string  // issued tokens: the resources they are for
	grantID  string    // issued tokens: rechecked every recheck
	// recheck is when (Unix nanoseconds) to look at the grant (issued
	// tokens) or verify again (external JWTs, whose keys may have been
	// withdrawn); atomic, since hits update it concurrently.
	recheck atomic.Int64
}

// tokenCache keeps verified tokens until they expire, so that a request
// with a known token costs a map lookup rather than a signature check.
//
// Invariants: at most max entries (when full, expired entries are dropped
// first, then arbitrary ones: a re-verification is the only cost); an
// entry is never returned after its token's expiry; an issued token's
// grant is looked at again every recheck interval, so that a revocation
// takes effect within it.
type tokenCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]*cacheEntry
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]*cacheEntry)}
}

func (c *tokenCache) get(raw string) *cacheEntry {
	c.mu.RLock()
	e := c.entries[raw]
	c.mu.RUnlock()
	return e
}

func (c *tokenCache) put(raw string, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[raw] = e
}

func (c *tokenCache) drop(raw string) {
	c.mu.Lock()
	delete(c.entries, raw)
	c.mu.Unlock()
}
