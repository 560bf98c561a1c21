package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/status"
)

// handleStatus serves the status page (status.enabled): HTML, or JSON
// when the client asks for application/json. It is checked like /mcp/
// (Host and Origin, then the same credentials) and, like /readyz, gives
// its detail only to authenticated callers; the page holds counts, never
// session ids or tokens.
func (g *Gateway) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !g.front.Load().cfg.StatusEnabled() {
		writeError(w, r, http.StatusNotFound, nil, -32600, "not found: the status page is off (status.enabled)", 0)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, nil, -32600, "method not allowed", 0)
		return
	}
	if !g.checkHostOrigin(w, r) {
		return
	}
	identity := g.identityFor(r)
	info(r.Context()).identity = identity
	p := g.statusPage(r, identity != "")
	code := http.StatusOK
	if p.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept, Authorization")
	if wantsJSON(r.Header.Get("Accept")) {
		body, _ := json.Marshal(p)
		writeJSON(w, code, body)
		return
	}
	var buf bytes.Buffer
	if err := status.HTML(&buf, p); err != nil {
		writeError(w, r, http.StatusInternalServerError, nil, -32603, "rendering the status page: "+err.Error(), 0)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The page has no script and loads nothing: a policy that forbids both
	// costs nothing and contains an injection if one slipped through.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// wantsJSON reports whether an Accept header prefers JSON to HTML.
func wantsJSON(accept string) bool {
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// statusPage builds the page from readiness, the session layer's snapshot
// and the recent errors.
func (g *Gateway) statusPage(r *http.Request, detail bool) *status.Page {
	rd, _ := g.readiness(r.Context())
	now := time.Now()
	p := &status.Page{Status: rd.Status, Version: g.version, Time: now, Detail: detail}
	if !detail {
		return p
	}
	p.Started, p.Uptime = g.started, status.Age(now.Sub(g.started))
	p.ConfigPath = g.configPath
	if at := g.configAt.Load(); at != 0 {
		p.ConfigLoaded = time.Unix(0, at)
	}
	for _, ss := range g.mgr.Snapshot().Servers {
		sr := rd.Servers[ss.Name]
		s := status.Server{Name: ss.Name, Runtime: ss.Runtime, Mode: ss.Mode, Ready: sr.Ready, Reason: sr.Detail,
			Backoff: ss.Failing, Failures: ss.Failures, Starts: ss.Starts, Crashes: ss.Crashes, InFlight: ss.InFlight,
			Starting: ss.Starting, Sessions: ss.Sessions, Identities: ss.SessionsByIdentity, Streams: ss.Streams,
			Processes: []status.Process{}}
		for _, pr := range ss.Processes {
			s.Processes = append(s.Processes, status.Process{ID: pr.ID, State: pr.State, Era: pr.Era, Started: pr.Started,
				Age: status.Age(now.Sub(pr.Started)), InFlight: pr.InFlight, Sessions: pr.Sessions})
		}
		p.Servers = append(p.Servers, s)
	}
	if g.recent != nil {
		p.Errors = g.recent.List()
	}
	return p
}
