// Package oauth is mcpgw's own OAuth 2.1 authorization server (auth.oauth),
// for MCP clients that only speak OAuth (Claude.ai and ChatGPT connectors):
//
//   - metadata: RFC 8414 at /.well-known/oauth-authorization-server and the
//     OpenID configuration path clients also try;
//   - clients: dynamic registration (RFC 7591) at /oauth/register, and
//     Client ID Metadata Documents (https client_id URLs, fetched);
//   - /oauth/authorize: exact redirect URIs, PKCE S256 only, a resource
//     (RFC 8707) naming one server, the user's login delegated to an
//     OpenID Connect provider or GitHub, then a consent page; the
//     response carries iss (RFC 9207);
//   - /oauth/token: single-use codes checked against PKCE, access tokens
//     that are signed JWTs (RFC 9068) for exactly one resource, refresh
//     tokens rotated on every use;
//   - /oauth/jwks: the public signing keys.
//
// The MCP authorization specification (2025-06-18, 2025-11-25,
// basic/authorization) profiles these RFCs. State lives behind Store;
// nothing in this package logs a secret (codes, tokens, client secrets,
// keys) or puts one in an error.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/ratelimit"
)

// Paths served by a Server.
const (
	MetadataPath     = "/.well-known/oauth-authorization-server"
	OpenIDConfigPath = "/.well-known/openid-configuration"
	PathPrefix       = "/oauth/"
	authorizePath    = "/oauth/authorize"
	callbackPath     = "/oauth/callback"
	consentPath      = "/oauth/consent"
	tokenPath        = "/oauth/token"
	registerPath     = "/oauth/register"
	jwksPath         = "/oauth/jwks"
)

// requestTTL bounds the time from /oauth/authorize to consent (the user's
// login at the provider happens in between).
const requestTTL = 10 * time.Minute

// Options tune a Server. The zero value (or nil) is the production
// setting.
type Options struct {
	// Logger receives the login and issuance events (never a secret);
	// nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClientIP returns the client's address of a request, for the
	// registration rate limit; nil means the peer address.
	ClientIP func(*http.Request) string
	// HTTPClient makes the requests to the upstream identity provider;
	// nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// MetadataTransport, when set, replaces the transport that fetches
	// client metadata documents (tests: to trust a loopback TLS server).
	// Its dialer is wrapped in the address check all the same, unless
	// auth.oauth.unsafe_metadata_private_addresses is set.
	MetadataTransport *http.Transport
	// KeyCacheTTL is how long the signing keys read from the store are
	// used before they are read again (so that a key rotated by another
	// process is picked up); 0 means 30s.
	KeyCacheTTL time.Duration
}

// Server is the authorization server. Safe for concurrent use; Close
// stops its one goroutine (expired state is purged every few minutes).
type Server struct {
	cfg      *config.OAuth
	issuer   string // public_url
	servers  map[string]*config.Server
	store    Store
	log      *slog.Logger
	now      func() time.Time
	clientIP func(*http.Request) string
	login    upstream
	keys     *keyring
	metadata *metadataFetcher
	regLimit *ratelimit.Limiter
	secure   bool // public_url is https: cookies are Secure

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New returns a Server for a validated configuration with auth.oauth set.
// It makes sure a signing key exists and starts the purge loop; it does
// not contact the identity provider (that happens at the first login).
func New(ctx context.Context, cfg *config.Config, store Store, opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	o := cfg.Auth.OAuth
	if o == nil {
		return nil, errors.New("auth.oauth is not configured")
	}
	s := &Server{
		cfg:      o,
		issuer:   cfg.PublicURL,
		servers:  cfg.Servers,
		store:    store,
		log:      opts.Logger,
		now:      opts.Now,
		clientIP: opts.ClientIP,
		secure:   strings.HasPrefix(cfg.PublicURL, "https://"),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.clientIP == nil {
		s.clientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	switch {
	case o.Login.OIDC != nil:
		s.login = newOIDCLogin(o.Login.OIDC, s.issuer+callbackPath, httpClient)
	case o.Login.GitHub != nil:
		s.login = newGitHubLogin(o.Login.GitHub, s.issuer+callbackPath, httpClient)
	default:
		return nil, errors.New("auth.oauth.login: no identity provider configured")
	}
	if r := o.RegistrationRate; r != nil {
		s.regLimit = ratelimit.New(r.RequestsPerSecond, r.Burst, 0)
	}
	s.metadata = newMetadataFetcher(o.UnsafeMetadataPrivateAddresses, opts.MetadataTransport)
	s.keys = newKeyring(store, s.now, opts.KeyCacheTTL, o.AccessTokenTTL)
	if err := s.keys.ensure(ctx); err != nil {
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go s.purgeLoop(loopCtx) // owner: s; Close waits for it
	return s, nil
}

// Close stops the purge loop and drops idle connections. It may be called
// more than once; the Store is the caller's to close.
func (s *Server) Close() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.metadata.close()
	})
}

const purgeEvery = 5 * time.Minute

func (s *Server) purgeLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.store.Purge(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.log.Warn("purging expired OAuth state", "error", err.Error())
			}
			if err := s.keys.purge(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("purging expired OAuth signing keys", "error", err.Error())
			}
		}
	}
}

// ServeHTTP serves MetadataPath, OpenIDConfigPath and the paths under
// PathPrefix. The caller has checked the Host header.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case MetadataPath, OpenIDConfigPath:
		s.handleMetadata(w, r)
	case authorizePath:
		s.handleAuthorize(w, r)
	case callbackPath:
		s.handleCallback(w, r)
	case consentPath:
		s.handleConsent(w, r)
	case tokenPath:
		s.handleToken(w, r)
	case registerPath:
		s.handleRegister(w, r)
	case jwksPath:
		s.handleJWKS(w, r)
	default:
		writeOAuthError(w, http.StatusNotFound, "invalid_request", "no such OAuth endpoint")
	}
}

// Resource returns the canonical resource URL of a server (MCP spec
// 2025-06-18, basic/authorization, "Canonical Server URI").
func (s *Server) Resource(server string) string { return s.issuer + "/mcp/" + server }

// canonicalResource brings a resource URL to the form of Resource: scheme
// and host lower-cased (MCP spec 2025-11-25, basic/authorization,
// "Canonical Server URI": servers should accept upper-case ones), no
// trailing "/". A URL with a query or fragment is returned as it is,
// and matches no server.
func canonicalResource(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return raw
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	return strings.TrimSuffix(u.String(), "/")
}

// serverOf returns the configured server whose resource URL is resource
// (in canonical form).
func (s *Server) serverOf(resource string) (*config.Server, bool) {
	name, ok := strings.CutPrefix(canonicalResource(resource), s.issuer+"/mcp/")
	if !ok {
		return nil, false
	}
	srv, ok := s.servers[name]
	return srv, ok && srv != nil
}

// randomToken returns 256 random bits, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// randomID returns 128 random bits in hex: ids that are not secrets. Hex,
// not base64url, so that an id never begins with "-" and reads as a flag
// when an operator passes it to "mcpgw oauth revoke".
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// digest is how secrets (codes, refresh tokens, client secrets, cookies)
// are stored: hex SHA-256. They carry 256 random bits, so no salt or slow
// hash is needed.
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
