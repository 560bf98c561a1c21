package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/session"
)

// front is the configuration of the front door: Host and Origin lists,
// trusted proxies, public URL, request limits, authentication, allow lists
// and rate limits. Each use reads it with one atomic load (Gateway.front),
// so the hot path takes no lock; a request that straddles a reload may pass
// one check under the old configuration and the next under the new, each a
// complete and valid one.
type front struct {
	cfg          *config.Config
	auth         *auth.Authenticator // nil: no authentication (local or none)
	limits       limits              // gateway-wide rate limits
	serverLimits map[string]limits   // per-server rate limits
}

// newFront builds the front door of cfg. What did not change from prev
// (nil at start) is carried over: the authenticator with its verified
// token cache and JWKS, and each rate limiter with its buckets.
func (g *Gateway) newFront(cfg *config.Config, prev *front) *front {
	f := &front{cfg: cfg, serverLimits: make(map[string]limits, len(cfg.Servers))}
	if prev != nil && reflect.DeepEqual(prev.cfg.Rate, cfg.Rate) && reflect.DeepEqual(prev.cfg.SessionRate, cfg.SessionRate) {
		f.limits = prev.limits
	} else {
		f.limits = newLimits(cfg.Rate, cfg.SessionRate)
	}
	for name, s := range cfg.Servers {
		if prev != nil {
			if p := prev.cfg.Servers[name]; p != nil && reflect.DeepEqual(p.Rate, s.Rate) && reflect.DeepEqual(p.SessionRate, s.SessionRate) {
				f.serverLimits[name] = prev.serverLimits[name]
				continue
			}
		}
		f.serverLimits[name] = newLimits(s.Rate, s.SessionRate)
	}
	if cfg.Auth.Mode == config.AuthRequired {
		if prev != nil && prev.auth != nil && reflect.DeepEqual(prev.cfg.Auth, cfg.Auth) {
			f.auth = prev.auth
		} else {
			ao := g.authOpts
			f.auth = auth.New(&cfg.Auth, &ao)
		}
	}
	return f
}

// conf is the current configuration.
func (g *Gateway) conf() *config.Config { return g.front.Load().cfg }

// authn is the current authenticator; nil when none is configured.
func (g *Gateway) authn() *auth.Authenticator { return g.front.Load().auth }

// serverConf is the front door's view of srv: the current configuration's
// entry of its name (whose allow list and rate limits apply at once after
// a reload, also to sessions of an older definition), else srv's own (a
// removed server's sessions, while they drain).
func (g *Gateway) serverConf(srv *session.Server) *config.Server {
	if sc := g.conf().Servers[srv.Name]; sc != nil {
		return sc
	}
	return srv.Config()
}

// continuesSession reports whether r belongs to a session that already
// exists (a session id in the header, or a legacy message's sessionId):
// only those reach a server that a reload removed.
func continuesSession(r *http.Request, sub string) bool {
	return r.Header.Get(hdrSessionID) != "" || sub == "message" && r.URL.Query().Get("sessionId") != ""
}

// closeAuth releases the current authenticator (at shutdown).
func (g *Gateway) closeAuth() {
	if a := g.authn(); a != nil {
		a.Close()
	}
}

// ReloadResult is what a reload changed.
type ReloadResult struct {
	session.ReloadResult
	// Listen is the new listen address when the reload moved the
	// listener, else "".
	Listen string
}

// ErrRestartNeeded is wrapped by Reload's refusals of changes that only a
// restart can apply.
var ErrRestartNeeded = errors.New("needs a restart")

// Reload replaces the gateway's configuration with cfg, which must be
// valid (config.Load or Validate), without dropping what still fits:
//
//   - the front door (allowed_hosts, allowed_origins, trusted_proxies,
//     public_url, limits, auth, allow lists, rate limits) changes at once,
//     for every request that starts after Reload;
//   - servers are replaced as session.Manager.Reload describes: unchanged
//     ones keep their processes and sessions, changed and removed ones
//     drain until limits.shutdown_timeout, added ones serve at once;
//   - a new listen address is bound first; if that fails, nothing
//     changes. The old listener is then closed: connections it accepted
//     (and their SSE streams) go on, new ones go to the new address.
//
// state_dir and auth.oauth belong to the authorization server built at
// start, cluster to the replica's identity, metrics, tracing and
// status.recent_errors to what observes the gateway; changing them is
// refused (errors wrapping ErrRestartNeeded), as is reloading a gateway
// that is shutting down. A refused reload changes nothing.
func (g *Gateway) Reload(ctx context.Context, cfg *config.Config) (*ReloadResult, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.draining.Load() {
		return nil, errors.New("the gateway is shutting down")
	}
	prev := g.front.Load()
	old := prev.cfg
	var problems []string
	if cfg.StateDir != old.StateDir {
		problems = append(problems, fmt.Sprintf("state_dir: changed from %s to %s, which %s: the authorization server keeps its state there; restart mcpgw, or put it back", old.StateDir, cfg.StateDir, ErrRestartNeeded))
	}
	if !reflect.DeepEqual(cfg.Auth.OAuth, old.Auth.OAuth) {
		problems = append(problems, fmt.Sprintf("auth.oauth: changed, which %s (the authorization server is built at start); restart mcpgw, or put it back", ErrRestartNeeded))
	}
	if !reflect.DeepEqual(cfg.Cluster, old.Cluster) {
		// The replica id and key are in every session id handed out.
		problems = append(problems, fmt.Sprintf("cluster: changed, which %s (the replica's id, key and peers are set at start); restart mcpgw, or put it back", ErrRestartNeeded))
	}
	if cfg.Metrics != old.Metrics {
		problems = append(problems, fmt.Sprintf("metrics: changed, which %s (its listener is opened at start); restart mcpgw, or put it back", ErrRestartNeeded))
	}
	if cfg.Tracing != old.Tracing {
		problems = append(problems, fmt.Sprintf("tracing: changed, which %s (the exporter is set up at start); restart mcpgw, or put it back", ErrRestartNeeded))
	}
	if cfg.Status.RecentErrors != old.Status.RecentErrors {
		problems = append(problems, fmt.Sprintf("status.recent_errors: changed, which %s; restart mcpgw, or put it back", ErrRestartNeeded))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrRestartNeeded, &config.Error{Problems: problems})
	}
	res := &ReloadResult{}
	if cfg.Listen != old.Listen {
		if err := g.rebind(cfg.Listen); err != nil {
			return nil, err
		}
		res.Listen = cfg.Listen
	}
	if err := g.launcher.Reload(ctx, cfg); err != nil {
		return nil, fmt.Errorf("reloading the launcher: %w", err)
	}
	if err := g.openPins(ctx, cfg); err != nil {
		return nil, err
	}
	next := g.newFront(cfg, prev)
	g.front.Store(next)
	if prev.auth != nil && prev.auth != next.auth {
		prev.auth.Close() // idle JWKS connections only: requests using it finish
	}
	res.ReloadResult = g.mgr.Reload(cfg)
	g.configAt.Store(time.Now().UnixNano()) // the status page's "loaded"
	g.logChanges(old, cfg)
	return res, nil
}

// rebind moves the listener to addr: the new address is bound before the
// old listener is closed, and Serve goes on with it.
func (g *Gateway) rebind(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: cannot move the listener to %s: %w; still listening on the old address", addr, err)
	}
	g.lnMu.Lock()
	old := g.ln
	if old == nil { // not serving (tests that only Open)
		g.lnMu.Unlock()
		ln.Close()
		return fmt.Errorf("listen: the gateway is not serving; cannot move its listener")
	}
	g.ln, g.moved = ln, true
	g.lnMu.Unlock()
	_ = old.Close()
	g.log.Info("listener moved", "listen", ln.Addr().String(), "previous", old.Addr().String())
	return nil
}

// logChanges logs what widens exposure, as the start does.
func (g *Gateway) logChanges(old, cfg *config.Config) {
	for _, h := range cfg.AllowedHosts {
		if !slices.Contains(old.AllowedHosts, h) {
			g.log.Info("accepting non-loopback Host header", "host", h)
		}
	}
	for _, o := range cfg.AllowedOrigins {
		if !slices.Contains(old.AllowedOrigins, o) {
			g.log.Info("accepting browser Origin", "origin", o)
		}
	}
	if host, _, _ := net.SplitHostPort(cfg.Listen); cfg.Listen != old.Listen && !isLoopbackHost(host) && cfg.Auth.Mode == config.AuthNone {
		g.log.Warn("listening on a non-loopback address: anyone who can reach it can use the servers; put it behind an authenticating proxy",
			"listen", cfg.Listen)
	}
	if cfg.Auth.Mode != old.Auth.Mode {
		g.log.Info("authentication mode changed", "from", old.Auth.Mode, "to", cfg.Auth.Mode)
		if cfg.Auth.Mode == config.AuthNone {
			g.log.Warn("authentication is off (auth: {mode: none}): anyone who can reach the gateway can use every server", "listen", cfg.Listen)
		}
	}
}

// Config returns the configuration the gateway serves now.
func (g *Gateway) Config() *config.Config { return g.conf() }
