package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpgw/mcpgw/internal/clip"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// AuthorizationServer is mcpgw's own OAuth authorization server
// (auth.oauth), built by the caller over its persistent state: the
// gateway routes its paths to it and verifies the tokens it issues.
// Implemented by *oauth.Server.
type AuthorizationServer interface {
	http.Handler
	auth.Issuer
}

// oauthPath reports the paths of the authorization server: its metadata
// (RFC 8414, and the OpenID configuration path that MCP clients also
// try) and /oauth/….
func oauthPath(p string) bool {
	return p == "/.well-known/oauth-authorization-server" || p == "/.well-known/openid-configuration" ||
		strings.HasPrefix(p, "/oauth/")
}

// serveOAuth hands a request to the authorization server, after the Host
// check that every endpoint naming the gateway's URL gets. The Origin is
// not checked: the metadata, registration and token endpoints are for
// browser-based clients of any origin too (CORS), and the authorization
// endpoint is a top-level navigation.
func (g *Gateway) serveOAuth(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r.Host) {
		info(r.Context()).errMsg = "host not allowed"
		writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("Host %q is not allowed: add it to allowed_hosts", clip.String(r.Host, 100)), 0)
		return
	}
	if g.oauth == nil {
		writeError(w, r, http.StatusServiceUnavailable, nil, jsonrpc.CodeUnavailable,
			"the authorization server is not running", 0)
		return
	}
	g.oauth.ServeHTTP(w, r)
}

// resource is the canonical URL of a server, the audience its tokens must
// have (MCP spec 2025-06-18, basic/authorization, "Canonical Server URI").
func (g *Gateway) resource(r *http.Request, server string) string {
	return g.baseURL(r) + "/mcp/" + server
}

// requiredScopes are the scopes a token of the gateway's own authorization
// server must carry.
func (g *Gateway) requiredScopes() []string {
	if o := g.conf().Auth.OAuth; o != nil {
		return o.Scopes
	}
	return nil
}

// challenge is the WWW-Authenticate value of a 401 or 403 for server:
// RFC 6750, section 3, with the RFC 9728 resource_metadata URL and the
// scopes (MCP spec 2025-11-25, basic/authorization, "Protected Resource
// Metadata Discovery Requirements", "Scope Selection Strategy") unless
// auth.advertise is false. errCode and desc are "" for a request without
// credentials.
func (g *Gateway) challenge(r *http.Request, server, errCode, desc string) string {
	var parts []string
	if g.conf().Auth.Advertise {
		parts = append(parts, fmt.Sprintf("resource_metadata=%q", g.baseURL(r)+metadataPath+"/mcp/"+server))
		if sc := g.requiredScopes(); len(sc) > 0 {
			parts = append(parts, fmt.Sprintf("scope=%q", strings.Join(sc, " ")))
		}
	} else {
		parts = append(parts, `realm="mcpgw"`)
	}
	if errCode != "" {
		parts = append(parts, fmt.Sprintf("error=%q", errCode))
		if desc != "" {
			parts = append(parts, fmt.Sprintf("error_description=%q", desc))
		}
	}
	return "Bearer " + strings.Join(parts, ", ")
}

// scoped answers 403 insufficient_scope (RFC 6750, section 3.1; MCP spec
// 2025-11-25, basic/authorization, "Runtime Insufficient Scope Errors")
// when an OAuth token lacks a required scope.
func (g *Gateway) scoped(w http.ResponseWriter, r *http.Request, server string, id auth.Identity) bool {
	if id.Method != "oauth" {
		return true
	}
	for _, s := range g.requiredScopes() {
		if !slices.Contains(id.Scopes, s) {
			ri := info(r.Context())
			ri.errMsg = "insufficient scope"
			w.Header().Set("WWW-Authenticate", g.challenge(r, server, "insufficient_scope", "the token lacks scope "+s))
			writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest, "insufficient scope: the token lacks "+s, 0)
			return false
		}
	}
	return true
}
