package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/internal/clip"

	"github.com/mcpgw/mcpgw/internal/ratelimit"
)

// Limits of what a client may send us.
const (
	maxRegistrationBytes = 16 << 10
	maxRedirectURIs      = 10
	maxRedirectURIBytes  = 2000
	maxClientNameBytes   = 200
	maxClientIDBytes     = 2000
)

// registration is the RFC 7591 client metadata that mcpgw reads.
type registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
	// ClientID is only in a client metadata document, where it must be
	// the document's own URL.
	ClientID string `json:"client_id"`
}

// registrationResponse is RFC 7591, section 3.2.1.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// parseRegistration parses and checks client metadata (RFC 7591, section
// 2) against the server's rules; document is true for a client metadata
// document, which may only describe a public client.
func (s *Server) parseRegistration(body []byte, document bool) (*Client, error) {
	var reg registration
	if err := json.Unmarshal(body, &reg); err != nil {
		return nil, fmt.Errorf("client metadata is not a JSON object of the expected fields: %w", err)
	}
	if len(reg.RedirectURIs) == 0 {
		return nil, errors.New("redirect_uris is required")
	}
	if len(reg.RedirectURIs) > maxRedirectURIs {
		return nil, fmt.Errorf("at most %d redirect_uris", maxRedirectURIs)
	}
	for _, u := range reg.RedirectURIs {
		if err := s.checkRedirectURI(u); err != nil {
			return nil, err
		}
	}
	method := reg.TokenEndpointAuthMethod
	switch {
	case method == "" && document:
		method = "none"
	case method == "":
		method = "client_secret_basic" // RFC 7591, section 2
	case method == "none", !document && (method == "client_secret_post" || method == "client_secret_basic"):
	default:
		return nil, fmt.Errorf("token_endpoint_auth_method %q is not supported (use none, client_secret_post or client_secret_basic)", clip.String(method, 40))
	}
	grants := reg.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code"}
	}
	for _, g := range grants {
		if g != "authorization_code" && g != "refresh_token" {
			return nil, fmt.Errorf("grant type %q is not supported (authorization_code, refresh_token)", clip.String(g, 40))
		}
	}
	if !slices.Contains(grants, "authorization_code") {
		return nil, errors.New("grant_types must include authorization_code")
	}
	for _, t := range reg.ResponseTypes {
		if t != "code" {
			return nil, fmt.Errorf("response type %q is not supported (code)", clip.String(t, 40))
		}
	}
	if len(reg.ClientName) > maxClientNameBytes {
		return nil, fmt.Errorf("client_name is longer than %d bytes", maxClientNameBytes)
	}
	return &Client{
		Name:         strings.TrimSpace(reg.ClientName),
		RedirectURIs: reg.RedirectURIs,
		AuthMethod:   method,
		GrantTypes:   grants,
		Scope:        reg.Scope,
		ID:           reg.ClientID,
	}, nil
}

// checkRedirectURI enforces the redirect URI rules of OAuth 2.1 (section
// 2.3.1) and RFC 8252: an absolute URL without fragment or user info,
// https, or http to a loopback address for native clients, on a host in
// auth.oauth.redirect_hosts.
func (s *Server) checkRedirectURI(raw string) error {
	if len(raw) > maxRedirectURIBytes {
		return fmt.Errorf("redirect URI longer than %d bytes", maxRedirectURIBytes)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("redirect URI %q is not an absolute URL", clip.String(raw, 100))
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q has a fragment", clip.String(raw, 100))
	}
	if u.User != nil {
		return fmt.Errorf("redirect URI %q has user info", clip.String(raw, 100))
	}
	host := strings.ToLower(u.Hostname())
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackHost(host) {
			return fmt.Errorf("redirect URI %q: http is allowed only for loopback addresses (native clients); use https", clip.String(raw, 100))
		}
	default:
		return fmt.Errorf("redirect URI %q: scheme must be https (or http for loopback)", clip.String(raw, 100))
	}
	if !slices.Contains(s.cfg.RedirectHosts, host) {
		return fmt.Errorf("redirect URI host %q is not allowed (auth.oauth.redirect_hosts)", clip.String(host, 100))
	}
	return nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// redirectMatches compares a requested redirect URI with a registered one:
// exactly, except that a loopback http URI may use any port (RFC 8252,
// section 7.3).
func redirectMatches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	ru, err1 := url.Parse(registered)
	qu, err2 := url.Parse(requested)
	if err1 != nil || err2 != nil || ru.Scheme != "http" || qu.Scheme != "http" || !loopbackHost(ru.Hostname()) {
		return false
	}
	return ru.Hostname() == qu.Hostname() && ru.EscapedPath() == qu.EscapedPath() && ru.RawQuery == qu.RawQuery &&
		qu.Fragment == "" && qu.User == nil
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if s.cfg.Registration != "open" {
		writeOAuthError(w, http.StatusForbidden, "access_denied", "dynamic client registration is off (auth.oauth.registration)")
		return
	}
	if s.regLimit != nil {
		key := ""
		if s.cfg.RegistrationRate.Per == "ip" {
			key = s.clientIP(r)
		}
		if ok, retry := ratelimit.Take(s.now(), ratelimit.Check{L: s.regLimit, Key: key, N: 1}); !ok {
			w.Header().Set("Retry-After", fmt.Sprint(int(retry.Seconds())+1))
			writeOAuthError(w, http.StatusTooManyRequests, "too_many_requests", "too many client registrations; retry later")
			s.log.Warn("client registration refused: rate limit", "client_ip", s.clientIP(r))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBytes))
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", fmt.Sprintf("request body unreadable or larger than %d bytes", maxRegistrationBytes))
		return
	}
	c, err := s.parseRegistration(body, false)
	if err != nil {
		code := "invalid_client_metadata"
		if strings.Contains(err.Error(), "redirect") {
			code = "invalid_redirect_uri"
		}
		writeOAuthError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	if c.ID != "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "client_id is assigned by the server")
		return
	}
	now := s.now()
	c.ID, c.Created = randomID(), now
	var secret string
	if c.AuthMethod != "none" {
		secret = randomToken()
		c.SecretDigest = digest(secret)
	}
	switch err := s.store.CreateClient(r.Context(), c, s.cfg.MaxClients); {
	case storeDown(err):
		s.unavailable(w, "storing a registered client", err)
		return
	case errors.Is(err, ErrLimit):
		writeOAuthError(w, http.StatusForbidden, "access_denied", "the gateway holds as many clients as auth.oauth.max_clients allows; ask its operator")
		s.log.Warn("client registration refused: auth.oauth.max_clients reached", "max_clients", s.cfg.MaxClients)
		return
	case err != nil:
		s.log.Error("storing a registered client", "error", err.Error())
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "could not store the client")
		return
	}
	s.log.Info("OAuth client registered", "client_id", c.ID, "client_name", clip.String(c.Name, 100),
		"redirect_uris", strings.Join(c.RedirectURIs, " "), "client_ip", s.clientIP(r))
	resp := registrationResponse{
		ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: now.Unix(),
		RedirectURIs: c.RedirectURIs, TokenEndpointAuthMethod: c.AuthMethod, GrantTypes: c.GrantTypes,
		ResponseTypes: []string{"code"}, ClientName: c.Name, Scope: c.Scope,
	}
	if secret != "" {
		zero := int64(0)
		resp.ClientSecretExpiresAt = &zero
	}
	writeJSON(w, http.StatusCreated, resp)
}

// isMetadataURL reports a client_id that names a client metadata
// document: an https URL with a path (draft-ietf-oauth-client-id-metadata-document,
// section 3).
func isMetadataURL(id string) bool {
	u, err := url.Parse(id)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Path != "" && u.Path != "/"
}

// client returns the client with id: a registered one, or the one a
// client metadata document describes.
func (s *Server) client(ctx context.Context, id string) (*Client, error) {
	if id == "" || len(id) > maxClientIDBytes {
		return nil, ErrNotFound
	}
	if isMetadataURL(id) {
		if !s.cfg.ClientMetadataDocuments {
			return nil, ErrNotFound
		}
		return s.metadata.client(ctx, id, func(b []byte) (*Client, error) { return s.parseRegistration(b, true) })
	}
	return s.store.Client(ctx, id)
}

// authenticateClient checks the client authentication of a token request
// (RFC 6749, section 2.3): client_secret_basic, client_secret_post, or
// none for public clients. An unknown client or a wrong secret is
// invalid_client (401), which makes clients such as Claude register again.
func (s *Server) authenticateClient(r *http.Request) (*Client, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, &oauthError{"invalid_client", "malformed HTTP Basic client credentials"}
		}
		if f := r.PostForm.Get("client_id"); f != "" && f != id {
			return nil, &oauthError{"invalid_request", "client_id differs from the HTTP Basic user"}
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, err := s.client(r.Context(), id)
	if storeDown(err) {
		return nil, errUnavailable(s, "reading a client", err)
	}
	if err != nil {
		return nil, &oauthError{"invalid_client", "unknown client: register again"}
	}
	switch c.AuthMethod {
	case "none":
		if secret != "" && !c.Document {
			return nil, &oauthError{"invalid_client", "a public client sends no secret"}
		}
	default:
		if secret == "" || subtle.ConstantTimeCompare([]byte(digest(secret)), []byte(c.SecretDigest)) != 1 {
			return nil, &oauthError{"invalid_client", "client authentication failed"}
		}
	}
	return c, nil
}

// metadataFetcher fetches client metadata documents: https only, without
// redirects or proxies, bounded in size and time, never from loopback,
// private, link-local or other non-public addresses (checked on the
// address actually dialled, so DNS cannot smuggle one in), and cached.
type metadataFetcher struct {
	http  *http.Client
	cache *docCache
	// limit bounds the fetches (not the cache hits) of all clients
	// together, so that unauthenticated requests naming ever new URLs
	// cannot turn the gateway into a fetcher at their command.
	limit *ratelimit.Limiter
}

const (
	maxMetadataBytes = 64 << 10
	metadataTimeout  = 5 * time.Second
	metadataCacheTTL = 10 * time.Minute
	maxCachedDocs    = 1000
	// At most this many document fetches a second, after a burst.
	metadataFetchRPS, metadataFetchBurst = 2, 20
)

func newMetadataFetcher(allowPrivate bool, tr *http.Transport) *metadataFetcher {
	if tr == nil {
		tr = &http.Transport{TLSHandshakeTimeout: metadataTimeout, ResponseHeaderTimeout: metadataTimeout}
	} else {
		tr = tr.Clone()
	}
	tr.Proxy = nil
	dialer := &net.Dialer{Timeout: metadataTimeout}
	if !allowPrivate {
		dialer.Control = publicAddressOnly
	}
	tr.DialContext = dialer.DialContext
	tr.MaxResponseHeaderBytes = 16 << 10
	return &metadataFetcher{
		http: &http.Client{
			Transport: tr,
			Timeout:   metadataTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("client metadata documents are not fetched through redirects")
			},
		},
		cache: newDocCache(maxCachedDocs),
		limit: ratelimit.New(metadataFetchRPS, metadataFetchBurst, 1),
	}
}

// errFetchLimit is a document fetch over the rate limit.
var errFetchLimit = errors.New("too many client metadata documents fetched just now; retry later")

func (f *metadataFetcher) close() { f.http.CloseIdleConnections() }

// errPrivateAddress is the dialer's refusal.
var errPrivateAddress = errors.New("address is not public (loopback, private, link-local or reserved)")

// publicAddressOnly is a net.Dialer Control function that refuses every
// address that is not globally routable.
func publicAddressOnly(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dialing %s: %w", address, err)
	}
	if !PublicAddress(ap.Addr()) {
		return fmt.Errorf("dialing %s: %w", address, errPrivateAddress)
	}
	return nil
}

// PublicAddress reports an address that is globally routable: not
// loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC 6598),
// unspecified, multicast or otherwise reserved.
func PublicAddress(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range reservedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var reservedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach private IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4 embeds IPv4
}

func (f *metadataFetcher) client(ctx context.Context, id string, parse func([]byte) (*Client, error)) (*Client, error) {
	if c, ok := f.cache.get(id, time.Now()); ok {
		return c, nil
	}
	if ok, _ := ratelimit.Take(time.Now(), ratelimit.Check{L: f.limit, N: 1}); !ok {
		return nil, errFetchLimit
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", clip.String(id, 200), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching client metadata document %s: %w", clip.String(id, 200), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching client metadata document %s: HTTP status %d", clip.String(id, 200), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading client metadata document %s: %w", clip.String(id, 200), err)
	}
	if len(body) > maxMetadataBytes {
		return nil, fmt.Errorf("client metadata document %s is larger than %d bytes", clip.String(id, 200), maxMetadataBytes)
	}
	c, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("client metadata document %s: %w", clip.String(id, 200), err)
	}
	if c.ID != id {
		return nil, fmt.Errorf("client metadata document %s: its client_id is not its own URL", clip.String(id, 200))
	}
	c.Document = true
	f.cache.put(id, c, time.Now().Add(metadataCacheTTL))
	return c, nil
}
