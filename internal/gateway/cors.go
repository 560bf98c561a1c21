package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// CORS for browser-based MCP clients (the MCP Inspector in a browser, web
// agents) on /mcp/{server}. Only origins listed in allowed_origins get CORS
// headers: a loopback origin passes the Origin check (docs/design.md,
// "Endpoints") but a page there may read responses only once it is listed,
// so that no web page on the operator's machine reads them by default.
// Origins that are not allowed at all are refused with 403 by
// checkHostOrigin before anything here runs.

// corsAllowHeaders are the request headers a browser client may send:
// those of both transports' eras, authentication, resumption and request
// ids. Requested headers with the Mcp- prefix are allowed too (the
// 2026-07-28 transport's per-request headers).
var corsAllowHeaders = []string{"Accept", "Authorization", "Content-Type", "Last-Event-ID",
	hdrSessionID, hdrProtocolVersion, "Mcp-Method", "Mcp-Name", "X-Request-Id"}

// corsExposeHeaders are the response headers a browser client must read:
// the session id, the version, the authentication challenge, Retry-After of
// 429 and 503, and the request id for support.
const corsExposeHeaders = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Retry-After, X-Request-Id"

// corsOrigin returns the request's Origin when it is listed in
// allowed_origins, else "".
func (g *Gateway) corsOrigin(r *http.Request) string {
	vals := r.Header.Values("Origin")
	if len(vals) != 1 || len(g.conf().AllowedOrigins) == 0 {
		return ""
	}
	norm, ok := normOrigin(vals[0])
	if !ok || !slices.Contains(g.conf().AllowedOrigins, norm) {
		return ""
	}
	return vals[0]
}

// allowCORS adds the CORS response headers for a listed origin. The
// response varies with Origin either way, so that no cache hands one
// origin's answer to another.
func (g *Gateway) allowCORS(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.Header["Origin"]; !ok {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := g.corsOrigin(r)
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// isPreflight reports whether r is a CORS preflight (Fetch standard,
// "CORS-preflight request"): OPTIONS with Origin and
// Access-Control-Request-Method.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a CORS preflight on /mcp/{server}, before
// authentication (a preflight carries no credentials) and without looking
// the server up (it reveals nothing about which servers exist). Called
// after allowCORS, and after checkHostOrigin has refused origins that are
// not allowed at all.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request) {
	origin := g.corsOrigin(r)
	if origin == "" {
		info(r.Context()).errMsg = "origin not listed for CORS"
		writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("Origin %q may not call this gateway from a browser: add it to allowed_origins", clip.String(r.Header.Get("Origin"), 100)), 0)
		return
	}
	method := r.Header.Get("Access-Control-Request-Method")
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		info(r.Context()).errMsg = "preflight for an unsupported method"
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, r, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("method %s not allowed: use POST, GET or DELETE", clip.String(method, 20)), 0)
		return
	}
	allow := slices.Clone(corsAllowHeaders)
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.TrimSpace(name)
			if len(name) > 4 && len(name) <= 64 && strings.EqualFold(name[:4], "mcp-") && validToken(name) &&
				!slices.ContainsFunc(allow, func(a string) bool { return strings.EqualFold(a, name) }) {
				allow = append(allow, name)
			}
		}
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
	h.Set("Access-Control-Allow-Headers", strings.Join(allow, ", "))
	h.Set("Access-Control-Max-Age", "600")
	h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
}

// normOrigin is an Origin value as allowed_origins lists it: lower case,
// scheme and host[:port].
func normOrigin(origin string) (string, bool) {
	u, err := url.Parse(strings.ToLower(strings.TrimSpace(origin)))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// validToken reports whether s is an HTTP token (RFC 9110, section 5.6.2),
// so that nothing else is echoed into a response header.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
