package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/config"
)

// jwtVerifier checks JWTs: go-oidc verifies the signature (through
// keySet), the algorithm and the issuer; audience, exp and nbf are checked
// here so that the clock skew is the configured one and each failure has
// its own reason.
type jwtVerifier struct {
	cfg      *config.JWT
	algs     []string
	keys     *keySet
	verifier *oidc.IDTokenVerifier
	now      func() time.Time
}

func newJWTVerifier(cfg *config.JWT, opts *Options) *jwtVerifier {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ks := newKeySet(cfg.JWKSURL, cfg.Algorithms, opts.HTTPClient, now, opts.MinRefresh)
	return &jwtVerifier{
		cfg:  cfg,
		algs: cfg.Algorithms,
		keys: ks,
		now:  now,
		verifier: oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
			SupportedSigningAlgs: cfg.Algorithms,
			// Several audiences may be configured and skew is ours:
			// both are checked below, after the signature.
			SkipClientIDCheck: true,
			SkipExpiryCheck:   true,
		}),
	}
}

// claims are the claims read after verification.
type claims struct {
	Email      string          `json:"email"`
	Verified   *bool           `json:"email_verified"`
	CommonName string          `json:"common_name"`
	Subject    string          `json:"sub"`
	Expiry     *json.Number    `json:"exp"`
	NotBefore  *json.Number    `json:"nbf"`
	Audience   json.RawMessage `json:"aud"`
}

type reasonKey struct{}

// setReason records why the key set refused a token: go-oidc formats the
// key set's error with %v, which would lose a typed one.
func setReason(ctx context.Context, r Reason) {
	if p, ok := ctx.Value(reasonKey{}).(*Reason); ok {
		*p = r
	}
}

// verifyExp verifies a JWT and returns its identity and until when the
// token is valid (its exp plus the clock skew).
func (v *jwtVerifier) verifyExp(ctx context.Context, raw string) (Identity, time.Time, error) {
	var noTime time.Time
	if len(raw) > maxCredentialBytes {
		return Identity{}, noTime, fail(ReasonMalformed, "token too long")
	}
	hdr, err := parseHeader(raw)
	if err != nil {
		return Identity{}, noTime, fail(ReasonMalformed, err.Error())
	}
	if !slices.Contains(v.algs, hdr.Alg) {
		// Refused before any key is looked at: "none", and HMAC with a
		// public key as the secret, never reach a verifier.
		return Identity{}, noTime, fail(ReasonAlgorithm, fmt.Sprintf("alg %q", clip.String(hdr.Alg, 16)))
	}
	var reason Reason
	tok, err := v.verifier.Verify(context.WithValue(ctx, reasonKey{}, &reason), raw)
	if err != nil {
		switch {
		case reason != "":
			return Identity{}, noTime, fail(reason, "")
		case strings.Contains(err.Error(), "issued by a different provider"):
			return Identity{}, noTime, fail(ReasonIssuer, "")
		default:
			return Identity{}, noTime, fail(ReasonMalformed, "")
		}
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return Identity{}, noTime, fail(ReasonMalformed, "claims")
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(v.cfg.Audiences, a) }) {
		return Identity{}, noTime, fail(ReasonAudience, "")
	}
	now := v.now()
	exp, ok := numericDate(c.Expiry)
	if !ok {
		return Identity{}, noTime, fail(ReasonMalformed, "no valid exp claim")
	}
	if !now.Before(exp.Add(v.cfg.ClockSkew)) {
		return Identity{}, noTime, fail(ReasonExpired, "")
	}
	if c.NotBefore != nil {
		nbf, ok := numericDate(c.NotBefore)
		if !ok {
			return Identity{}, noTime, fail(ReasonMalformed, "invalid nbf claim")
		}
		if now.Add(v.cfg.ClockSkew).Before(nbf) {
			return Identity{}, noTime, fail(ReasonNotYetValid, "")
		}
	}
	var all map[string]any
	if err := tok.Claims(&all); err != nil {
		return Identity{}, noTime, fail(ReasonMalformed, "claims")
	}
	var name, email string
	if c.Email != "" && (c.Verified == nil || *c.Verified) {
		email = clip.String(strings.ToLower(c.Email), 256)
	}
	switch {
	// An address the provider says it has not verified could be anyone's:
	// it is not an identity (OIDC Core, section 5.1). Cloudflare Access
	// does not send the claim; its addresses are verified at login.
	case c.Email != "" && (c.Verified == nil || *c.Verified):
		name = strings.ToLower(c.Email)
	case c.CommonName != "":
		name = c.CommonName
	case c.Subject != "":
		name = c.Subject
	default:
		return Identity{}, noTime, fail(ReasonNoIdentity, "")
	}
	return Identity{Name: clip.String(name, 256), Method: "jwt", Email: email, Claims: all}, exp.Add(v.cfg.ClockSkew), nil
}

// numericDate converts a NumericDate claim (RFC 7519, section 2: seconds
// since the epoch, possibly fractional).
func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(0, 0).Add(time.Duration(f * float64(time.Second))), true
}

// jwtHeader is the part of a JOSE header read before verification.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// parseHeader decodes the protected header of a compact JWS without
// trusting it: it only chooses the algorithm check's answer and the key.
func parseHeader(raw string) (jwtHeader, error) {
	var h jwtHeader
	if strings.Count(raw, ".") != 2 {
		return h, errors.New("not a compact JWS (three dot-separated parts)")
	}
	enc, _, _ := strings.Cut(raw, ".")
	if len(enc) > 4096 {
		return h, errors.New("header too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return h, errors.New("header is not base64url")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, errors.New("header is not a JSON object")
	}
	if h.Alg == "" {
		return h, errors.New("header has no alg")
	}
	return h, nil
}
