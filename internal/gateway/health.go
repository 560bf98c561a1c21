package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/mcpgw/mcpgw/internal/config"
)

// handleHealth is liveness: 200 while the process serves HTTP.
func (g *Gateway) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, nil, -32600, "method not allowed", 0)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

type serverReadiness struct {
	Ready   bool           `json:"ready"`
	Runtime config.Runtime `json:"runtime"`
	Mode    config.Mode    `json:"mode"`
	Failed  bool           `json:"failed,omitempty"`
	Detail  string         `json:"detail,omitempty"`
	Image   string         `json:"image,omitempty"` // container servers
	// Sandbox is how native processes are confined.
	Sandbox   string `json:"sandbox,omitempty"`
	Sessions  int    `json:"sessions"`
	Processes int    `json:"processes"`
}

type readiness struct {
	Status    string                     `json:"status"`
	Version   string                     `json:"version,omitempty"`
	Listening bool                       `json:"listening"`
	Draining  bool                       `json:"draining"`
	Processes int                        `json:"processes"`
	Engine    *engineReadiness           `json:"engine,omitempty"`
	Servers   map[string]serverReadiness `json:"servers"`
}

// engineReadiness is the container engine's state, reported when any
// server runs in a container.
type engineReadiness struct {
	Ready   bool   `json:"ready"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

// handleReady is readiness (docs/design.md, "Endpoints"): 200 when the listener
// is up, the gateway is not draining and every server's runtime can start
// it; otherwise 503. The body gives per-server detail.
func (g *Gateway) handleReady(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, nil, -32600, "method not allowed", 0)
		return
	}
	// With authentication required, anonymous callers learn only the
	// status: server names, versions and counts are detail for
	// authenticated callers.
	detail := g.authn() == nil || g.identityFor(r) != ""
	rd, ok := g.readiness(r.Context())
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	g.readinessLog.report(g.log, &rd)
	var body []byte
	if detail {
		body, _ = json.Marshal(rd)
	} else {
		body, _ = json.Marshal(map[string]string{"status": rd.Status})
	}
	writeJSON(w, status, body)
}

// readiness computes what /readyz (and the status page) report; ok is
// whether the gateway as a whole is ready.
func (g *Gateway) readiness(ctx context.Context) (rd readiness, ok bool) {
	rd = readiness{
		Version:   g.version,
		Listening: g.listening.Load(),
		Draining:  g.draining.Load(),
		Processes: g.mgr.Stats("").Processes,
		Servers:   map[string]serverReadiness{},
	}
	ok = rd.Listening && !rd.Draining
	if v, used, err := g.launcher.EngineVersion(ctx); used {
		rd.Engine = &engineReadiness{Ready: err == nil, Version: v}
		if err != nil {
			rd.Engine.Error = err.Error()
			ok = false
		}
	}
	for _, srv := range g.mgr.Servers() {
		st := g.mgr.Stats(srv.Name)
		sc := srv.Config()
		sr := serverReadiness{Ready: true, Runtime: sc.Runtime, Mode: sc.Mode,
			Sessions: st.Sessions, Processes: st.Processes, Sandbox: g.launcher.SandboxState(sc)}
		if c := srv.Config().Container; c != nil {
			sr.Image = c.Image
		}
		if err := g.launcher.Check(ctx, sc); err != nil {
			sr.Ready = false
			sr.Detail = err.Error()
			ok = false
		} else if failing, detail := srv.Failing(); failing {
			// A crash-looping server is reported here, but the gateway as a
			// whole stays ready: its other servers still work.
			sr.Ready = false
			sr.Failed = true
			sr.Detail = detail
		}
		rd.Servers[srv.Name] = sr
	}
	rd.Status = "ready"
	if !ok {
		rd.Status = "not ready"
		if rd.Draining {
			rd.Status = "draining"
		}
	}
	return rd, ok
}

// readinessLog logs readiness when it changes, so that a probe polling
// /readyz (each poll logged at debug) leaves one line per change: info
// when the gateway becomes ready, warn with the problems when it stops
// being ready.
type readinessLog struct {
	mu   sync.Mutex
	last string // status and problems last logged; "" before the first poll
}

func (l *readinessLog) report(log *slog.Logger, rd *readiness) {
	// The state compared is which parts are not ready, not their detail
	// (a back-off's detail counts down between polls).
	var problems []string
	state := rd.Status
	if rd.Engine != nil && !rd.Engine.Ready {
		problems = append(problems, "container engine: "+rd.Engine.Error)
		state += " engine"
	}
	for _, name := range slices.Sorted(maps.Keys(rd.Servers)) {
		if sr := rd.Servers[name]; !sr.Ready {
			problems = append(problems, "server "+name+": "+sr.Detail)
			state += " " + name
		}
	}
	l.mu.Lock()
	changed := state != l.last
	l.last = state
	l.mu.Unlock()
	if !changed {
		return
	}
	if len(problems) == 0 && rd.Status == "ready" {
		log.Info("readiness changed", "status", rd.Status)
		return
	}
	log.Warn("readiness changed", "status", rd.Status, "problems", strings.Join(problems, "; "))
}

// ServerState is one server as readiness sees it.
type ServerState struct {
	Name    string
	Runtime config.Runtime
	Mode    config.Mode
	// Sandbox is how its native processes are confined ("" for a
	// container server); see launch.Launcher.SandboxState.
	Sandbox string
	// Problem is why /readyz would report it not ready; nil when ready.
	Problem error
}

// ServerStates checks every server as /readyz does, in name order, for
// the lines serve logs at start.
func (g *Gateway) ServerStates(ctx context.Context) []ServerState {
	var out []ServerState
	cfg := g.conf()
	for _, name := range slices.Sorted(maps.Keys(cfg.Servers)) {
		sc := cfg.Servers[name]
		out = append(out, ServerState{Name: name, Runtime: sc.Runtime, Mode: sc.Mode,
			Sandbox: g.launcher.SandboxState(sc), Problem: g.launcher.Check(ctx, sc)})
	}
	return out
}
