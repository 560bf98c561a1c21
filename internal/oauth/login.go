package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcpgw/mcpgw/internal/config"
)

// upstream is the identity provider that logs the user in. mcpgw is its
// OAuth client (golang.org/x/oauth2), with PKCE.
type upstream interface {
	// authCodeURL returns where to send the browser.
	authCodeURL(ctx context.Context, state, nonce, verifier string) (string, error)
	// identity exchanges the code and returns the user's verified
	// e-mail address (lower-cased) and a display name.
	identity(ctx context.Context, code, nonce, verifier string) (email, display string, err error)
}

// errNoVerifiedEmail is a login whose provider vouches for no address.
var errNoVerifiedEmail = errors.New("the identity provider reports no verified e-mail address")

// oidcLogin logs in with an OpenID Connect provider: go-oidc discovers it
// (at the first login, retried until it succeeds) and verifies the ID
// token, its audience and nonce.
type oidcLogin struct {
	cfg      *config.OIDCLogin
	redirect string
	client   *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCLogin(cfg *config.OIDCLogin, redirect string, client *http.Client) *oidcLogin {
	return &oidcLogin{cfg: cfg, redirect: redirect, client: client}
}

func (l *oidcLogin) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, l.client), l.client)
}

func (l *oidcLogin) discover(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.provider == nil {
		p, err := oidc.NewProvider(l.ctx(ctx), l.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discovering OpenID provider %s: %w", l.cfg.Issuer, err)
		}
		l.provider = p
	}
	return l.provider, &oauth2.Config{
		ClientID:     l.cfg.ClientID,
		ClientSecret: l.cfg.ClientSecret,
		Endpoint:     l.provider.Endpoint(),
		RedirectURL:  l.redirect,
		Scopes:       append([]string{oidc.ScopeOpenID}, l.cfg.Scopes...),
	}, nil
}

func (l *oidcLogin) authCodeURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	_, oc, err := l.discover(ctx)
	if err != nil {
		return "", err
	}
	return oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

type oidcClaims struct {
	Email    string `json:"email"`
	Verified *bool  `json:"email_verified"`
	Name     string `json:"name"`
}

func (l *oidcLogin) identity(ctx context.Context, code, nonce, verifier string) (string, string, error) {
	p, oc, err := l.discover(ctx)
	if err != nil {
		return "", "", err
	}
	ctx = l.ctx(ctx)
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", "", fmt.Errorf("exchanging the code at %s: %w", l.cfg.Issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", "", fmt.Errorf("the token response of %s has no id_token", l.cfg.Issuer)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: l.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return "", "", fmt.Errorf("verifying the ID token of %s: %w", l.cfg.Issuer, err)
	}
	if idt.Nonce != nonce {
		return "", "", errors.New("the ID token's nonce does not match the login's")
	}
	var c oidcClaims
	if err := idt.Claims(&c); err != nil {
		return "", "", fmt.Errorf("reading the ID token's claims: %w", err)
	}
	if c.Email == "" {
		// Providers may put the address in the UserInfo response only
		// (OIDC Core, section 5.4).
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return "", "", fmt.Errorf("reading UserInfo of %s: %w", l.cfg.Issuer, err)
		}
		if ui.Subject != idt.Subject {
			return "", "", errors.New("UserInfo names another subject than the ID token")
		}
		if err := ui.Claims(&c); err != nil {
			return "", "", fmt.Errorf("reading UserInfo claims: %w", err)
		}
	}
	// An address the provider has not verified could be anyone's (OIDC
	// Core, section 5.1): it is no identity.
	if c.Email == "" || c.Verified == nil || !*c.Verified {
		return "", "", errNoVerifiedEmail
	}
	return strings.ToLower(c.Email), c.Name, nil
}

// githubLogin logs in with a GitHub OAuth app: GitHub speaks OAuth 2.0 but
// not OpenID Connect, so the identity is the verified primary address of
// GET /user/emails (scope user:email), and the login name from GET /user.
type githubLogin struct {
	cfg      *config.GitHubLogin
	client   *http.Client
	oc       *oauth2.Config
	redirect string
}

func newGitHubLogin(cfg *config.GitHubLogin, redirect string, client *http.Client) *githubLogin {
	base := strings.TrimSuffix(cfg.URL, "/")
	return &githubLogin{cfg: cfg, client: client, redirect: redirect, oc: &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   base + "/login/oauth/authorize",
			TokenURL:  base + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: redirect,
		Scopes:      []string{"read:user", "user:email"},
	}}
}

func (l *githubLogin) authCodeURL(_ context.Context, state, _, verifier string) (string, error) {
	return l.oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

func (l *githubLogin) identity(ctx context.Context, code, _, verifier string) (string, string, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, l.client)
	tok, err := l.oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", "", fmt.Errorf("exchanging the code at GitHub: %w", err)
	}
	hc := l.oc.Client(ctx, tok)
	var user struct {
		Login string `json:"login"`
	}
	if err := l.get(ctx, hc, "/user", &user); err != nil {
		return "", "", err
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := l.get(ctx, hc, "/user/emails", &emails); err != nil {
		return "", "", err
	}
	for _, e := range emails {
		if e.Primary && e.Verified && e.Email != "" {
			return strings.ToLower(e.Email), user.Login, nil
		}
	}
	return "", "", errNoVerifiedEmail
}

func (l *githubLogin) get(ctx context.Context, hc *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(l.cfg.APIURL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("GitHub API %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GitHub API %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GitHub API %s: HTTP status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GitHub API %s: %w", path, err)
	}
	return nil
}
