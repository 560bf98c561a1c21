package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/clip"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AccessClaims are the claims of an access token (RFC 9068, section 2.2).
type AccessClaims struct {
	jwt.Claims
	Email    string `json:"email"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	// GrantID names the grant, so that a resource server can see its
	// revocation before the token expires.
	GrantID string `json:"gid"`
}

// tokenResponse is RFC 6749, section 5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

const maxTokenRequestBytes = 16 << 10

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded, at most 16 KiB")
		return
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameter "+clip.String(k, 40)+" is repeated")
			return
		}
	}
	c, oerr := s.authenticateClient(r)
	if oerr == errStoreDown {
		s.unavailableToken(w)
		return
	}
	if oerr != nil {
		status := http.StatusBadRequest
		if oerr.Error == "invalid_client" {
			status = http.StatusUnauthorized
			if _, _, basic := r.BasicAuth(); basic {
				w.Header().Set("WWW-Authenticate", `Basic realm="mcpgw"`)
			}
		}
		writeOAuthError(w, status, oerr.Error, oerr.Description)
		return
	}
	var resp *tokenResponse
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, oerr = s.exchangeCode(r.Context(), c, r)
	case "refresh_token":
		if !slices.Contains(c.GrantTypes, "refresh_token") && !c.Document {
			oerr = &oauthError{"unauthorized_client", "the client did not register the refresh_token grant"}
			break
		}
		resp, oerr = s.refresh(r.Context(), c, r)
	case "":
		oerr = &oauthError{"invalid_request", "grant_type is required"}
	default:
		oerr = &oauthError{"unsupported_grant_type", "grant_type must be authorization_code or refresh_token"}
	}
	if oerr == errStoreDown {
		s.unavailableToken(w)
		return
	}
	if oerr != nil {
		s.log.Warn("token request refused", "client_id", c.ID, "error", oerr.Error, "detail", oerr.Description)
		writeOAuthError(w, http.StatusBadRequest, oerr.Error, oerr.Description)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// verifyPKCE checks a code verifier against an S256 challenge (RFC 7636,
// section 4.6).
func verifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (s *Server) exchangeCode(ctx context.Context, c *Client, r *http.Request) (*tokenResponse, *oauthError) {
	code := r.PostForm.Get("code")
	if code == "" || len(code) > 128 {
		return nil, &oauthError{"invalid_request", "code is required"}
	}
	now := s.now()
	stored, err := s.store.UseCode(ctx, digest(code), now)
	switch {
	case storeDown(err):
		return nil, errUnavailable(s, "using an authorization code", err)
	case errors.Is(err, ErrUsed):
		// A code used twice was stolen or replayed: everything issued
		// from it goes (OAuth 2.1, section 4.1.3).
		if rerr := s.store.RevokeGrant(ctx, stored.GrantID, "authorization code reused", now); rerr != nil {
			s.log.Error("revoking a grant after code reuse", "grant", stored.GrantID, "error", rerr.Error())
		}
		s.log.Warn("authorization code reused: grant revoked", "client_id", c.ID, "grant", stored.GrantID)
		return nil, &oauthError{"invalid_grant", "the code was already used"}
	case err != nil:
		return nil, &oauthError{"invalid_grant", "unknown or expired code"}
	}
	switch {
	case stored.ClientID != c.ID:
		return nil, &oauthError{"invalid_grant", "the code was issued to another client"}
	case r.PostForm.Get("redirect_uri") != "" && r.PostForm.Get("redirect_uri") != stored.RedirectURI:
		return nil, &oauthError{"invalid_grant", "redirect_uri differs from the authorization request's"}
	case !verifyPKCE(r.PostForm.Get("code_verifier"), stored.CodeChallenge):
		return nil, &oauthError{"invalid_grant", "code_verifier does not match the code_challenge"}
	case r.PostForm.Get("resource") != "" && canonicalResource(r.PostForm.Get("resource")) != stored.Resource:
		return nil, &oauthError{"invalid_target", "resource differs from the authorization request's"}
	}
	g, err := s.store.Grant(ctx, stored.GrantID)
	if storeDown(err) {
		return nil, errUnavailable(s, "reading a grant", err)
	}
	if err != nil || !g.Active() {
		return nil, &oauthError{"invalid_grant", "the grant was revoked"}
	}
	return s.issue(ctx, c, g, stored.Subject, stored.Resource, stored.Scopes)
}

func (s *Server) refresh(ctx context.Context, c *Client, r *http.Request) (*tokenResponse, *oauthError) {
	tok := r.PostForm.Get("refresh_token")
	if tok == "" || len(tok) > 128 {
		return nil, &oauthError{"invalid_request", "refresh_token is required"}
	}
	now := s.now()
	stored, err := s.store.UseRefresh(ctx, digest(tok), now)
	switch {
	case storeDown(err):
		return nil, errUnavailable(s, "using a refresh token", err)
	case errors.Is(err, ErrUsed):
		// Rotation makes a used refresh token worthless; one presented
		// again was copied: revoke the grant (OAuth 2.1, section 4.3.1).
		if rerr := s.store.RevokeGrant(ctx, stored.GrantID, "refresh token replayed", now); rerr != nil {
			s.log.Error("revoking a grant after refresh token replay", "grant", stored.GrantID, "error", rerr.Error())
		}
		s.log.Warn("refresh token replayed: grant revoked", "client_id", c.ID, "grant", stored.GrantID)
		return nil, &oauthError{"invalid_grant", "the refresh token was already used"}
	case err != nil:
		return nil, &oauthError{"invalid_grant", "unknown, expired or revoked refresh token"}
	case stored.ClientID != c.ID:
		return nil, &oauthError{"invalid_grant", "the refresh token was issued to another client"}
	}
	if res := r.PostForm.Get("resource"); res != "" && canonicalResource(res) != stored.Resource {
		return nil, &oauthError{"invalid_target", "resource differs from the grant's"}
	}
	scopes := stored.Scopes
	if sc := r.PostForm.Get("scope"); sc != "" {
		req, ok := s.requestedScopes(sc)
		if !ok || !subset(req, stored.Scopes) {
			return nil, &oauthError{"invalid_scope", "a refresh cannot add scopes"}
		}
		scopes = req
	}
	g, err := s.store.Grant(ctx, stored.GrantID)
	if storeDown(err) {
		return nil, errUnavailable(s, "reading a grant", err)
	}
	if err != nil || !g.Active() {
		return nil, &oauthError{"invalid_grant", "the grant was revoked"}
	}
	return s.issue(ctx, c, g, stored.Subject, stored.Resource, scopes)
}

// issue mints an access token and a new refresh token.
func (s *Server) issue(ctx context.Context, c *Client, g *Grant, subject, resource string, scopes []string) (*tokenResponse, *oauthError) {
	now := s.now()
	scope := strings.Join(scopes, " ")
	claims := AccessClaims{
		Claims: jwt.Claims{
			Issuer: s.issuer, Subject: subject, Audience: jwt.Audience{resource},
			Expiry: jwt.NewNumericDate(now.Add(s.cfg.AccessTokenTTL)), IssuedAt: jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Second)), ID: randomID(),
		},
		Email: subject, ClientID: c.ID, Scope: scope, GrantID: g.ID,
	}
	at, err := s.keys.sign(ctx, claims)
	if err != nil {
		s.log.Error("signing an access token", "error", err.Error())
		return nil, &oauthError{"server_error", "could not sign the token"}
	}
	rt := randomToken()
	err = s.store.SaveRefresh(ctx, &Refresh{
		Digest: digest(rt), GrantID: g.ID, ClientID: c.ID, Resource: resource, Subject: subject,
		Scopes: scopes, Expires: now.Add(s.cfg.RefreshTokenTTL),
	})
	if storeDown(err) {
		return nil, errUnavailable(s, "storing a refresh token", err)
	}
	if err != nil {
		s.log.Error("storing a refresh token", "error", err.Error())
		return nil, &oauthError{"server_error", "could not store the refresh token"}
	}
	s.log.Info("access token issued", "user", subject, "client_id", c.ID, "resource", resource, "grant", g.ID)
	return &tokenResponse{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int(s.cfg.AccessTokenTTL.Seconds()),
		RefreshToken: rt, Scope: scope,
	}, nil
}

// Issuer returns the iss of the tokens the server issues (public_url).
func (s *Server) Issuer() string { return s.issuer }

// VerificationKeys returns the public keys of current tokens; refresh
// reads them from the store again (a key id was not found).
func (s *Server) VerificationKeys(ctx context.Context, refresh bool) ([]jose.JSONWebKey, error) {
	return s.keys.public(ctx, refresh)
}

// GrantActive reports whether a grant stands: a resource server asks this
// of a token before trusting it, and again from time to time while it
// caches the verification, so that a revocation (also one made by `mcpgw
// oauth revoke` in another process) ends the token's use.
func (s *Server) GrantActive(ctx context.Context, id string) (bool, error) {
	g, err := s.store.Grant(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return g.Active(), nil
}
