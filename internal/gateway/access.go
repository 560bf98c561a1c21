package gateway

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/ratelimit"
	"github.com/mcpgw/mcpgw/internal/session"
)

// Access control: who is calling (authentication), may they use
// this server (allow), and how often (rate limits). The order on /mcp/NAME
// is Host/Origin → authentication (401) → server lookup (404) → allow (403)
// → rate limit (429) → the transport, so that nothing about the servers is
// revealed to anonymous callers and no work is done for refused ones.

// anonymous is the identity of callers when no authentication is
// configured (local mode or auth.mode none).
const anonymous = "anonymous"

// limits are the rate limiters of one scope (gateway-wide or one server).
type limits struct {
	requests, sessions       *ratelimit.Limiter
	requestsPer, sessionsPer string
}

func newLimits(req, sess *config.Rate) limits {
	var l limits
	if req != nil {
		l.requests, l.requestsPer = ratelimit.New(req.RequestsPerSecond, req.Burst, 0), req.Per
	}
	if sess != nil {
		l.sessions, l.sessionsPer = ratelimit.New(sess.RequestsPerSecond, sess.Burst, 0), sess.Per
	}
	return l
}

// authenticate establishes the identity of a request to /mcp/ and records
// it for the log; without it the request is answered with 401.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, server string) bool {
	ri := info(r.Context())
	a := g.authn()
	if a == nil {
		ri.identity = anonymous
		return true
	}
	id, err := a.AuthenticateResource(r.Context(), r.Header, g.resource(r, server))
	if err == nil {
		ri.identity, ri.email, ri.claims = id.Name, id.Email, id.Claims
		return g.scoped(w, r, server, id)
	}
	f, ok := auth.IsFailure(err)
	if !ok {
		f = &auth.Failure{Reason: auth.ReasonMalformed, Presented: true}
	}
	// The log gets the reason with its detail, never the credential; the
	// client gets the reason only (RFC 6750, section 3).
	ri.errMsg = "authentication failed: " + f.Error()
	if f.Reason == auth.ReasonUnavailable {
		writeError(w, r, http.StatusServiceUnavailable, nil, jsonrpc.CodeUnavailable,
			"the token cannot be checked now: the authorization server's state store does not answer; retry shortly", time.Second)
		return false
	}
	challenge := g.challenge(r, server, "", "")
	msg := "authentication required: send Authorization: Bearer TOKEN"
	if f.Presented {
		challenge = g.challenge(r, server, "invalid_token", string(f.Reason))
		msg = "invalid credentials: " + string(f.Reason)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, r, http.StatusUnauthorized, nil, jsonrpc.CodeInvalidRequest, msg, 0)
	return false
}

// identityFor returns the identity the credentials of r prove, or "" when
// there are none or they are invalid; for endpoints that serve everyone
// but say more to authenticated callers.
func (g *Gateway) identityFor(r *http.Request) string {
	a := g.authn()
	if a == nil {
		return anonymous
	}
	id, err := a.Authenticate(r.Context(), r.Header)
	if err != nil {
		return ""
	}
	return id.Name
}

// allowed applies the server's allow list: 403 for an authenticated
// identity it does not list.
func (g *Gateway) allowed(w http.ResponseWriter, r *http.Request, s *config.Server) bool {
	ri := info(r.Context())
	if g.authn() == nil || config.AllowsIdentity(s.Allow, ri.identity) {
		return true
	}
	ri.errMsg = "identity not allowed"
	writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest,
		fmt.Sprintf("%q may not use server %q (servers.%s.allow)", clip.String(ri.identity, 100), s.Name, s.Name), 0)
	return false
}

// rateLimited counts a POST's client requests (not notifications,
// responses or ping) and its initialize against every limit that applies,
// and answers 429 when one is exhausted, before anything is streamed.
func (g *Gateway) rateLimited(w http.ResponseWriter, r *http.Request, server string, msgs []*jsonrpc.Message, id json.RawMessage) bool {
	requests, inits := 0, 0
	for _, m := range msgs {
		if m.Kind != jsonrpc.KindRequest || m.Method == "ping" {
			continue
		}
		requests++
		if m.Method == "initialize" {
			inits++
		}
	}
	if requests == 0 {
		return false
	}
	ri := info(r.Context())
	key := func(per string) string {
		switch per {
		case "identity":
			return ri.identity
		case "ip":
			return ri.clientIP
		}
		return ""
	}
	if g.shared.on() {
		return g.sharedRateLimited(w, r, server, requests, inits, id, key) // redis.go
	}
	var checks []ratelimit.Check
	f := g.front.Load()
	for _, l := range []limits{f.limits, f.serverLimits[server]} {
		checks = append(checks,
			ratelimit.Check{L: l.requests, Key: key(l.requestsPer), N: requests},
			ratelimit.Check{L: l.sessions, Key: key(l.sessionsPer), N: inits})
	}
	ok, retry := ratelimit.Take(time.Now(), checks...)
	if ok {
		return false
	}
	ri.errMsg = "rate limit exceeded"
	writeError(w, r, http.StatusTooManyRequests, id, jsonrpc.CodeTooManyRequests,
		fmt.Sprintf("rate limit exceeded; retry in %s", retry.Round(time.Millisecond)), retry)
	return true
}

// clientIP is the client's address: from CF-Connecting-IP, else the
// right-most X-Forwarded-For entry that is not a trusted proxy, when the
// peer is a trusted proxy (trusted_proxies); otherwise the peer's.
func (g *Gateway) clientIP(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return host
	}
	addr := peer.Addr().Unmap()
	if !g.trusted(addr) {
		return addr.String()
	}
	if v := strings.TrimSpace(r.Header.Get("Cf-Connecting-Ip")); v != "" {
		if a, err := netip.ParseAddr(v); err == nil {
			return a.Unmap().String()
		}
	}
	xff := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	hops := strings.Split(xff, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a forged or broken list: trust nothing left of it
		}
		a = a.Unmap()
		if !g.trusted(a) {
			return a.String()
		}
	}
	return addr.String()
}

// ClientIP is clientIP for other components of the front door (the
// authorization server's registration rate limit).
func (g *Gateway) ClientIP(r *http.Request) string { return g.clientIP(r) }

func (g *Gateway) trusted(a netip.Addr) bool {
	for _, p := range g.conf().TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// metadataPath is where RFC 9728 protected resource metadata is served;
// the per-resource form appends the resource's path.
const metadataPath = "/.well-known/oauth-protected-resource"

// baseURL is how clients reach the gateway: public_url, else the scheme
// and (validated) Host of the request.
func (g *Gateway) baseURL(r *http.Request) string {
	if g.conf().PublicURL != "" {
		return g.conf().PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + strings.ToLower(r.Host)
}

// resourceMetadata is RFC 9728, section 2.
type resourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// handleMetadata serves the protected resource metadata of the gateway
// (rest "") or of /mcp/NAME (rest "/mcp/NAME"), which MCP clients fetch
// after a 401 (MCP spec 2025-06-18, basic/authorization, "Authorization
// Server Discovery"). Only served when authentication is required.
func (g *Gateway) handleMetadata(w http.ResponseWriter, r *http.Request, rest string) {
	if g.authn() == nil || !g.conf().Auth.Advertise {
		writeError(w, r, http.StatusNotFound, nil, jsonrpc.CodeInvalidRequest, "not found: no authentication is configured", 0)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest, "method not allowed", 0)
		return
	}
	// The Host names the resource when public_url is unset, so it is
	// checked; the Origin is not: the metadata is public, and browser
	// clients of any origin may read it (hence the CORS header below).
	if !g.hostAllowed(r.Host) {
		info(r.Context()).errMsg = "host not allowed"
		writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("Host %q is not allowed: add it to allowed_hosts", clip.String(r.Host, 100)), 0)
		return
	}
	if rest != "" {
		name, ok := strings.CutPrefix(rest, "/mcp/")
		if !ok || !serverName.MatchString(name) || g.mgr.Server(name) == nil {
			writeError(w, r, http.StatusNotFound, nil, jsonrpc.CodeInvalidRequest, "not found: metadata is served for /mcp/{server}", 0)
			return
		}
	}
	md := resourceMetadata{
		Resource:               g.baseURL(r) + rest,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "mcpgw",
	}
	if g.conf().Auth.OAuth != nil {
		md.AuthorizationServers = append(md.AuthorizationServers, g.conf().PublicURL)
		md.ScopesSupported = g.requiredScopes()
	}
	if j := g.conf().Auth.JWT; j != nil {
		md.AuthorizationServers = append(md.AuthorizationServers, j.Issuer)
	}
	body, _ := json.Marshal(md)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, body)
}

// caller is who makes the request, for the session layer; client is the
// MCP client software as "name/version".
func (ri *reqInfo) caller(client string) session.Caller {
	return session.Caller{Identity: ri.identity, Client: client, Email: ri.email, Claims: ri.claims}
}
