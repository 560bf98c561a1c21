package gateway

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// reqInfo accumulates what the access log line says about one request.
// Handlers fill it; the front door writes the line when the handler returns.
type reqInfo struct {
	id        string
	tool      string
	runtime   string
	sessionID string
	method    string
	identity  string         // who: token name or JWT identity, "anonymous", "" before authentication
	email     string         // the identity's verified email, for policy rules
	claims    map[string]any // a JWT's claims, for policy rules; read only
	clientIP  string         // see Gateway.clientIP
	client    string         // the MCP clientInfo "name/version"
	errMsg    string
}

type ctxKey struct{}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(ctxKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// statusWriter records the status code for the log, and passes Flush and
// deadline control through (http.ResponseController uses Unwrap).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// validRequestID accepts client-supplied X-Request-Id values that are safe
// to log and echo.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:", c) >= 0) {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ServeHTTP is the front door: request id, panic containment, routing,
// Host/Origin validation, and one access log line per request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ri := &reqInfo{id: r.Header.Get("X-Request-Id"), clientIP: g.clientIP(r)}
	if !validRequestID(ri.id) {
		ri.id = newRequestID()
	}
	w.Header().Set("X-Request-Id", ri.id)
	sw := &statusWriter{ResponseWriter: w}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))
	r, endTrace := g.traceRequest(r)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			ri.errMsg = fmt.Sprintf("internal error: %v", p)
			g.log.Error("handler panic", "request_id", ri.id, "panic", fmt.Sprint(p))
			if sw.status == 0 {
				writeError(sw, r, http.StatusInternalServerError, nil, jsonrpc.CodeInternalError, "internal gateway error", 0)
			}
		}
		g.logRequest(r, ri, sw.status, time.Since(start))
		g.observeRequest(r, ri, sw.status)
		endTrace(ri, sw.status)
	}()
	g.route(sw, r)
}

func (g *Gateway) logRequest(r *http.Request, ri *reqInfo, status int, d time.Duration) {
	lvl := slog.LevelInfo
	switch {
	case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
		// Probes poll: each poll is debug, whatever its status; a change
		// of readiness gets its own line (readinessLog).
		lvl = slog.LevelDebug
	case status >= 500:
		lvl = slog.LevelError
	case status >= 400:
		lvl = slog.LevelWarn
	}
	if !g.log.Enabled(r.Context(), lvl) {
		return
	}
	attrs := []slog.Attr{
		slog.String("tool", ri.tool),
		slog.String("runtime", ri.runtime),
		slog.String("request_id", ri.id),
		slog.Float64("duration", float64(d.Microseconds())/1000),
		slog.String("error", ri.errMsg),
		slog.String("http_method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.String("remote", r.RemoteAddr),
		slog.String("client_ip", ri.clientIP),
		// client is who made the request; the MCP client
		// software is client_info.
		slog.String("client", cmp.Or(ri.identity, anonymous)),
	}
	if ri.sessionID != "" {
		attrs = append(attrs, slog.String("session_id", ri.sessionID))
	}
	if ri.method != "" {
		attrs = append(attrs, slog.String("method", ri.method))
	}
	if ri.client != "" {
		attrs = append(attrs, slog.String("client_info", ri.client))
	}
	g.log.LogAttrs(context.Background(), lvl, "request", attrs...)
}

func (g *Gateway) route(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.EscapedPath()
	if !cleanPath(raw) {
		writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "malformed path: dot segments and encoded separators are not allowed", 0)
		return
	}
	switch raw {
	case "/healthz":
		g.handleHealth(w, r)
		return
	case "/readyz":
		g.handleReady(w, r)
		return
	case "/status":
		g.handleStatus(w, r)
		return
	}
	if g.clusterPath(w, r, raw) {
		return
	}
	if g.conf().Auth.OAuth != nil && oauthPath(raw) {
		g.serveOAuth(w, r)
		return
	}
	if rest, ok := strings.CutPrefix(raw, metadataPath); ok && (rest == "" || rest[0] == '/') {
		g.handleMetadata(w, r, rest)
		return
	}
	rest, ok := strings.CutPrefix(raw, "/mcp/")
	if !ok {
		writeError(w, r, http.StatusNotFound, nil, jsonrpc.CodeInvalidRequest, "not found: MCP servers are served at /mcp/{server}", 0)
		return
	}
	name, sub, _ := strings.Cut(rest, "/")
	if !validServerName(name) {
		writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "invalid server name in path: it must match "+serverName.String(), 0)
		return
	}
	// A request a peer forwarded was checked there (Host, Origin, CORS,
	// credentials); see cluster.go.
	fromPeer, ok := g.fromPeer(w, r)
	if !ok {
		return
	}
	if !fromPeer {
		if !g.checkHostOrigin(w, r) {
			return
		}
		g.allowCORS(w, r)
		if isPreflight(r) {
			info(r.Context()).method = "CORS preflight"
			g.preflight(w, r)
			return
		}
		if !g.authenticate(w, r, name) {
			return
		}
	}
	srv := g.mgr.Server(name)
	if srv == nil && continuesSession(r, sub) {
		srv = g.mgr.Retired(name) // a reload removed it: its sessions drain
	}
	if srv == nil {
		writeError(w, r, http.StatusNotFound, nil, jsonrpc.CodeInvalidRequest, fmt.Sprintf("unknown server %q", name), 0)
		return
	}
	if !g.allowed(w, r, g.serverConf(srv)) {
		return
	}
	ri := info(r.Context())
	ri.tool = name
	ri.runtime = string(srv.Config().Runtime)
	if !fromPeer && g.toOwner(w, r, sub) {
		return
	}
	if sub != "" {
		g.serveLegacy(w, r, srv, sub)
		return
	}
	g.serveStreamable(w, r, srv)
}

// validServerName is serverName.MatchString without the regexp engine,
// which costs a microsecond on every request.
func validServerName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// cleanPath rejects dot segments, empty segments and encoded separators so
// that nothing ambiguous reaches routing (docs/design.md, "Endpoints").
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	lp := strings.ToLower(p)
	if strings.Contains(lp, "%2f") || strings.Contains(lp, "%5c") || strings.Contains(lp, "%2e") ||
		strings.Contains(p, "\\") || strings.Contains(lp, "%00") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return !strings.Contains(p, "//")
}

// checkHostOrigin implements DNS-rebinding protection (MCP spec,
// basic/transports, "Security Warning"): loopback Hosts and Origins always
// pass, others only when listed; an absent Origin passes.
func (g *Gateway) checkHostOrigin(w http.ResponseWriter, r *http.Request) bool {
	if !g.hostAllowed(r.Host) {
		info(r.Context()).errMsg = "host not allowed"
		writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("Host %q is not allowed: add it to allowed_hosts", clip.String(r.Host, 100)), 0)
		return false
	}
	if origin, ok := r.Header["Origin"]; ok && !g.originAllowed(strings.Join(origin, ",")) {
		info(r.Context()).errMsg = "origin not allowed"
		writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("Origin %q is not allowed: add it to allowed_origins", clip.String(strings.Join(origin, ","), 100)), 0)
		return false
	}
	return true
}

func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func splitHost(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.Trim(hostport, "[]"), ""
}

func (g *Gateway) hostAllowed(hostport string) bool {
	hostport = strings.ToLower(hostport)
	host, _ := splitHost(hostport)
	if host == "" {
		return false
	}
	if isLoopbackHost(host) {
		return true
	}
	for _, a := range g.conf().AllowedHosts {
		// An entry without a port matches any port; "[v6]" is a bare host.
		if a == hostport || a == host || strings.Trim(a, "[]") == host && !strings.Contains(strings.TrimPrefix(a, "["), "]:") {
			return true
		}
	}
	return false
}

func (g *Gateway) originAllowed(origin string) bool {
	norm, ok := normOrigin(origin)
	if !ok {
		return false
	}
	if u, err := url.Parse(norm); err == nil && isLoopbackHost(u.Hostname()) {
		return true
	}
	return slices.Contains(g.conf().AllowedOrigins, norm)
}

// writeError answers before anything was streamed: HTTP status plus a
// JSON-RPC error body (docs/design.md, "Errors").
func writeError(w http.ResponseWriter, r *http.Request, status int, id json.RawMessage, code int, msg string, retryAfter time.Duration) {
	var data any
	if retryAfter > 0 {
		secs := retrySeconds(retryAfter)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		data = map[string]any{"retryAfterSeconds": secs}
	}
	writeErrorData(w, r, status, id, code, msg, data)
}

// writeErrorData is writeError with the error's data member.
func writeErrorData(w http.ResponseWriter, r *http.Request, status int, id json.RawMessage, code int, msg string, data any) {
	ri := info(r.Context())
	if ri.errMsg == "" {
		ri.errMsg = msg
	}
	writeJSON(w, status, jsonrpc.Encode(jsonrpc.NewError(id, code, msg, data)))
}

// Header values shared by every JSON response. Assigned directly (the keys
// are canonical), which saves Header.Set's canonicalisation and one
// allocation each; len == cap, so an append by anyone copies.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
)

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
