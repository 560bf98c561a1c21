// Package auth owns client authentication, the resource server's side of
// OAuth: static bearer tokens compared by SHA-256 digest in constant time;
// JSON Web Tokens of another issuer (OIDC ID tokens, Cloudflare Access
// application tokens) verified with github.com/coreos/go-oidc/v3 against
// the issuer's published keys; and the access tokens of mcpgw's own
// authorization server (auth.oauth), whose audience must be the resource
// the request is for (RFC 8707, RFC 9068). Verified JWTs are cached until
// they expire, so that a known token costs a map lookup.
//
// An Authenticator turns the headers of a request into an Identity or a
// *Failure whose Reason is safe to log. Nothing in this package logs, and
// no error it returns contains a token.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
)

// Identity is who made a request.
type Identity struct {
	// Name is the token's name, or the JWT's email (lower-cased), else
	// common_name (Cloudflare Access service tokens), else sub.
	Name string
	// Method is "token", "jwt" or "oauth" (a token of mcpgw's own
	// authorization server).
	Method string
	// Scopes are the scopes an "oauth" token carries.
	Scopes []string
	// Email is the verified email address of a "jwt" or "oauth"
	// identity (lower-cased), "" when there is none.
	Email string
	// Claims are a "jwt" token's claims as JSON decodes them, for policy
	// rules; nil for other methods. Shared: read only.
	Claims map[string]any
}

// Reason is why authentication failed. Reasons are fixed words, safe to
// log and to show the client.
type Reason string

// Reasons for a *Failure.
const (
	ReasonMissing     Reason = "missing credentials"
	ReasonUnknown     Reason = "unknown token"
	ReasonMalformed   Reason = "malformed token"
	ReasonAlgorithm   Reason = "unsupported algorithm"
	ReasonUnknownKey  Reason = "unknown key"
	ReasonSignature   Reason = "bad signature"
	ReasonIssuer      Reason = "wrong issuer"
	ReasonAudience    Reason = "wrong audience"
	ReasonExpired     Reason = "expired"
	ReasonNotYetValid Reason = "not yet valid"
	ReasonNoIdentity  Reason = "no identity claim"
	ReasonRevoked     Reason = "revoked"
	// ReasonUnavailable: the token's grant could not be looked up (the
	// authorization server's store does not answer). Not the client's
	// fault: the gateway answers 503, so that it keeps its token.
	ReasonUnavailable Reason = "authorization state unavailable"
)

// Failure is an authentication failure: the request gets 401 (503 for
// ReasonUnavailable).
type Failure struct {
	Reason Reason
	// Presented is true when the request carried a credential (which
	// was wrong), false when it carried none; it decides between the
	// plain challenge and error="invalid_token" (RFC 6750, section 3.1).
	Presented bool
	// Detail says more for the log (never a token); may be "".
	Detail string
}

func (f *Failure) Error() string {
	if f.Detail != "" {
		return string(f.Reason) + ": " + f.Detail
	}
	return string(f.Reason)
}

func fail(r Reason, detail string) *Failure {
	return &Failure{Reason: r, Presented: true, Detail: detail}
}

// Options tune an Authenticator. The zero value (or nil) is the production
// setting.
type Options struct {
	// HTTPClient fetches the JWKS; nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for exp/nbf and key refresh; nil means time.Now.
	Now func() time.Time
	// MinRefresh is the least time between two JWKS fetches triggered
	// by unknown key ids; 0 means 30s.
	MinRefresh time.Duration
	// Issuer, when set, is mcpgw's own authorization server, whose
	// access tokens are accepted in Authorization.
	Issuer Issuer
	// Recheck is how long a cached verification of an issued token is
	// trusted before its grant is looked at again (a revocation takes
	// effect within it); 0 means 30s. External JWTs are verified again
	// after 10 times as long.
	Recheck time.Duration
	// CacheSize bounds the cached verifications; 0 means 10000.
	CacheSize int
}

const (
	defaultRecheck   = 30 * time.Second
	defaultCacheSize = 10000
)

// Authenticator checks credentials against an auth configuration. It is
// safe for concurrent use; it starts no goroutines.
type Authenticator struct {
	tokens []config.Token
	jwt    *jwtVerifier
	// bearerIsJWT: an Authorization bearer that is no configured token
	// is verified as a JWT.
	bearerIsJWT bool
	issued      *issuedVerifier // nil without auth.oauth
	cache       *tokenCache
	now         func() time.Time
	recheck     time.Duration
}

// New returns an Authenticator for a validated auth configuration with
// mode required.
func New(cfg *config.Auth, opts *Options) *Authenticator {
	if opts == nil {
		opts = &Options{}
	}
	a := &Authenticator{tokens: cfg.Tokens, now: opts.Now, recheck: opts.Recheck}
	if a.now == nil {
		a.now = time.Now
	}
	if a.recheck <= 0 {
		a.recheck = defaultRecheck
	}
	size := opts.CacheSize
	if size <= 0 {
		size = defaultCacheSize
	}
	a.cache = newTokenCache(size)
	if opts.Issuer != nil {
		a.issued = &issuedVerifier{issuer: opts.Issuer, now: a.now}
	}
	if cfg.JWT != nil {
		a.jwt = newJWTVerifier(cfg.JWT, opts)
		for _, h := range cfg.JWT.Headers {
			if h == "Authorization" {
				a.bearerIsJWT = true
			}
		}
	}
	return a
}

// Close releases idle connections to the JWKS server. The Authenticator
// remains usable; Close may be called more than once.
func (a *Authenticator) Close() {
	if a.jwt != nil {
		a.jwt.keys.close()
	}
}

// Authenticate returns the identity that the headers prove, or a *Failure.
//
// A bearer token in Authorization that matches a configured token wins.
// Otherwise the JWT headers are tried in their configured order, and the
// first one present decides: a credential that is present but invalid is a
// failure, never a fall-through to another header or to anonymous.
func (a *Authenticator) Authenticate(ctx context.Context, h http.Header) (Identity, error) {
	return a.AuthenticateResource(ctx, h, "")
}

// AuthenticateResource is Authenticate for a request to resource (the
// canonical URL of one server, public_url/mcp/NAME): a token of mcpgw's
// own authorization server must have been issued for it (RFC 8707). An
// empty resource accepts such a token for any of the gateway's servers.
//
// A configured static token is checked first, so that presenting one
// never meets an OAuth challenge.
func (a *Authenticator) AuthenticateResource(ctx context.Context, h http.Header, resource string) (Identity, error) {
	bearer, hasBearer, err := bearerToken(h)
	if err != nil {
		return Identity{}, err
	}
	if hasBearer && len(a.tokens) > 0 {
		if name, ok := a.matchToken(bearer); ok {
			return Identity{Name: name, Method: "token"}, nil
		}
	}
	if hasBearer && a.issued != nil && strings.Count(bearer, ".") == 2 {
		if e := a.cache.get(bearer); e != nil && e.grantID != "" {
			return a.issuedHit(ctx, bearer, e, resource)
		}
		if issuedBy(bearer, a.issued.issuer.Issuer()) {
			e, err := a.issued.verify(ctx, bearer)
			if err != nil {
				return Identity{}, err
			}
			e.recheck.Store(a.now().Add(a.recheck).UnixNano())
			a.cache.put(bearer, e, a.now())
			return a.issuedHit(ctx, bearer, e, resource)
		}
	}
	if a.jwt != nil {
		for _, name := range a.jwt.cfg.Headers {
			var raw string
			if name == "Authorization" {
				if !hasBearer {
					continue
				}
				if strings.Count(bearer, ".") != 2 {
					// Not JWT-shaped: a static token that matched none.
					return Identity{}, fail(ReasonUnknown, "")
				}
				raw = bearer
			} else {
				vals := h.Values(name)
				if len(vals) == 0 {
					continue
				}
				if len(vals) > 1 {
					return Identity{}, fail(ReasonMalformed, "more than one "+name+" header")
				}
				raw = vals[0]
			}
			return a.verifyJWT(ctx, raw)
		}
	}
	if hasBearer {
		return Identity{}, fail(ReasonUnknown, "")
	}
	return Identity{}, &Failure{Reason: ReasonMissing}
}

// issuedHit checks a verified issued token against the request: not
// expired, for this resource, its grant still standing (looked at again
// once recheck has passed).
func (a *Authenticator) issuedHit(ctx context.Context, raw string, e *cacheEntry, resource string) (Identity, error) {
	now := a.now()
	if !now.Before(e.expires) {
		a.cache.drop(raw)
		return Identity{}, fail(ReasonExpired, "")
	}
	if resource != "" && !slices.Contains(e.audience, resource) {
		return Identity{}, fail(ReasonAudience, "the token was issued for another server")
	}
	if now.UnixNano() >= e.recheck.Load() {
		ok, err := a.issued.issuer.GrantActive(ctx, e.grantID)
		if err != nil {
			// The grant stood when this token was verified, and nothing
			// can revoke it while the store does not answer (a
			// revocation needs the store too): the last known state
			// holds until the next recheck, so that requests do not
			// each wait for a store that does not answer.
			e.recheck.Store(now.Add(a.recheck).UnixNano())
			return e.id, nil
		}
		if !ok {
			a.cache.drop(raw)
			return Identity{}, fail(ReasonRevoked, "")
		}
		e.recheck.Store(now.Add(a.recheck).UnixNano())
	}
	return e.id, nil
}

// verifyJWT verifies a JWT of auth.jwt's issuer, through the cache: a
// token verified before is trusted until it expires, and verified again
// every 10 recheck intervals (the issuer may have withdrawn its key).
func (a *Authenticator) verifyJWT(ctx context.Context, raw string) (Identity, error) {
	now := a.now()
	if e := a.cache.get(raw); e != nil && e.grantID == "" {
		if !now.Before(e.expires) {
			a.cache.drop(raw)
			return Identity{}, fail(ReasonExpired, "")
		}
		if now.UnixNano() < e.recheck.Load() {
			return e.id, nil
		}
	}
	id, exp, err := a.jwt.verifyExp(ctx, raw)
	if err != nil {
		a.cache.drop(raw)
		return Identity{}, err
	}
	e := &cacheEntry{id: id, expires: exp}
	e.recheck.Store(now.Add(10 * a.recheck).UnixNano())
	a.cache.put(raw, e, now)
	return id, nil
}

// matchToken compares the token's digest with every configured digest in
// constant time. It never returns early: how long it takes depends on the
// number of tokens, not on which (if any) matches or how much of a digest
// does. Comparing digests rather than tokens also hides the tokens' length.
func (a *Authenticator) matchToken(token string) (string, bool) {
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i, t := range a.tokens {
		if compareHook != nil {
			compareHook()
		}
		eq := subtle.ConstantTimeCompare(sum[:], t.SHA256)
		match = subtle.ConstantTimeSelect(eq&boolInt(match < 0), i, match)
	}
	if match < 0 {
		return "", false
	}
	return a.tokens[match].Name, true
}

// compareHook, when set by a test, is called for every digest compared.
var compareHook func()

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxCredentialBytes bounds a token or JWT; Cloudflare Access JWTs are
// about 1 KiB, headers as a whole are bounded by the HTTP server.
const maxCredentialBytes = 16 << 10

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header (RFC 6750, section 2.1). has is false without an Authorization
// header; a header of another form, or more than one, is a *Failure.
func bearerToken(h http.Header) (token string, has bool, err error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, fail(ReasonMalformed, "more than one Authorization header")
	}
	tok, ok := parseBearer(vals[0])
	if !ok {
		return "", false, fail(ReasonMalformed, "Authorization is not \"Bearer <token>\"")
	}
	return tok, true, nil
}

// parseBearer parses the value of an Authorization header of the Bearer
// scheme: the scheme name case-insensitively, one or more spaces, then a
// b64token (RFC 6750: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/",
// then "=" padding).
func parseBearer(v string) (string, bool) {
	const scheme = "bearer"
	if len(v) < len(scheme)+2 || !equalFoldASCII(v[:len(scheme)], scheme) || v[len(scheme)] != ' ' {
		return "", false
	}
	tok := v[len(scheme):]
	for len(tok) > 0 && tok[0] == ' ' {
		tok = tok[1:]
	}
	if tok == "" || len(tok) > maxCredentialBytes {
		return "", false
	}
	pad := false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case b64token[c] && !pad:
		case c == '=':
			pad = true
		default:
			return "", false // not b64token, or not only padding after the first "="
		}
	}
	if tok[0] == '=' {
		return "", false
	}
	return tok, true
}

// b64token marks the characters of RFC 6750's b64token before padding: a
// table, since every request's token (up to 16 KiB) is scanned.
var b64token = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// IsFailure returns the *Failure in err's chain, if any.
func IsFailure(err error) (*Failure, bool) {
	var f *Failure
	ok := errors.As(err, &f)
	return f, ok
}
