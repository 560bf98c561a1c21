// Package gateway is the HTTP front door of mcpgw: routing, Host/Origin
// validation, request ids and access logs, the Streamable HTTP transport
// (MCP spec 2025-03-26, 2025-06-18, 2025-11-25, basic/transports) over the
// sessions of package session, and the health endpoints.
//
// A Gateway owns its http.Server, its session.Manager and the
// launch.Launcher that starts the servers' processes. Open connects to the
// container engine (if a server needs it) and starts the session layer's
// janitor; Serve opens the gateway if that was not done and runs until
// Shutdown; Shutdown turns readiness off, drains in-flight requests up to
// limits.shutdown_timeout, then stops every process.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/cluster"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/launch"
	"github.com/mcpgw/mcpgw/internal/session"
	"github.com/mcpgw/mcpgw/internal/tracing"
)

var serverName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Options configure a Gateway.
type Options struct {
	// Logger is the gateway's logger; nil means slog.Default().
	Logger *slog.Logger
	// Getenv reads the gateway's environment (children's base PATH, HOME,
	// LANG, TZ); nil means none.
	Getenv func(string) (string, bool)
	// Version is reported by /readyz.
	Version string
	// Auth tunes authentication (JWKS client, clock); nil is production.
	Auth *auth.Options
	// OAuth is the authorization server of auth.oauth, which the caller
	// builds over the state directory and closes after Shutdown; without
	// it the authorization server's paths answer 503 and its tokens are
	// refused.
	OAuth AuthorizationServer
	// MetricsListener is the listener of metrics.listen, which the caller
	// opens (so that it reports a port in use as it does for listen);
	// Serve serves /metrics on it until Shutdown. nil: no metrics
	// listener.
	MetricsListener net.Listener
	// Metrics turns the metrics on without a listener (MetricsHandler
	// serves them), for tests and benchmarks.
	Metrics bool
	// ConfigPath and ConfigLoaded are shown by the status page: the
	// configuration file ("" for the built-in one) and when it was read.
	ConfigPath   string
	ConfigLoaded time.Time
	// Tracer makes the spans of requests; nil traces nothing. The caller
	// builds it (tracing.New) and shuts it down after Shutdown.
	Tracer *tracing.Tracer
}

// Gateway serves MCP for the configured servers.
type Gateway struct {
	log      *slog.Logger
	launcher *launch.Launcher
	mgr      *session.Manager
	cluster  *cluster.Node // nil: a single gateway
	shared   sharedRate    // rate limits in Redis (cluster.redis); see redis.go
	srv      *http.Server
	version  string
	openOnce sync.Once
	openErr  error

	// front is the configuration of the front door (reload.go): read
	// once per use, replaced whole by Reload.
	front    atomic.Pointer[front]
	authOpts auth.Options        // what New was given, for Reload's authenticators
	oauth    AuthorizationServer // nil: no auth.oauth
	reloadMu sync.Mutex          // serialises Reload
	lnMu     sync.Mutex          // guards ln and moved
	ln       net.Listener        // the listener Serve accepts on
	moved    bool                // Reload replaced ln: Serve goes on with the new one

	listening    atomic.Bool
	draining     atomic.Bool
	drained      chan struct{} // closed when Shutdown begins
	drainOnce    sync.Once
	legacy       legacyConns
	readinessLog readinessLog // the last readiness /readyz reported
	pinsMu       sync.Mutex   // guards pins
	pins         pinDB        // tool pins (pins.go); nil while no server pins

	observability // metrics, tracing, status page (observe.go, status.go)
}

// drainCh is closed when shutdown begins; long-lived streams end on it.
func (g *Gateway) drainCh() <-chan struct{} { return g.drained }

// New builds a gateway for cfg. It does no I/O and starts no process.
func New(cfg *config.Config, opts *Options) *Gateway {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	g := &Gateway{
		log:     log,
		version: opts.Version,
		drained: make(chan struct{}),
	}
	lopts, sopts := g.observe(cfg, opts)
	if cfg.Cluster != nil {
		g.cluster = cluster.New(cfg.Cluster, &cluster.Options{Logger: log})
		sopts.NewID = g.cluster.NewID
	}
	g.launcher = launch.New(cfg, lopts)
	g.mgr = session.NewManager(cfg, g.launcher, sopts)
	g.shared = newSharedRate(cfg, log)
	if opts.Auth != nil {
		g.authOpts = *opts.Auth
	}
	if cfg.Auth.OAuth != nil && opts.OAuth != nil {
		g.oauth = opts.OAuth
		g.authOpts.Issuer = opts.OAuth
	} else if cfg.Auth.OAuth != nil {
		log.Error("auth.oauth is configured but no authorization server was given: its endpoints answer 503")
	}
	g.front.Store(g.newFront(cfg, nil))
	if cfg.Auth.Mode == config.AuthNone {
		log.Warn("authentication is off (auth: {mode: none}): anyone who can reach the gateway can use every server", "listen", cfg.Listen)
	}
	g.srv = &http.Server{
		Handler: g,
		// Slow clients cannot hold connections open without sending:
		// headers must arrive promptly, bodies are bounded per request
		// (limits.read_timeout), idle keep-alive connections are closed.
		// There is no global WriteTimeout because SSE streams are long;
		// every write sets its own deadline instead.
		ReadHeaderTimeout: min(10*time.Second, cfg.Limits.ReadTimeout),
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return g
}

// Open prepares the gateway to serve: the launcher connects to the
// container engine and removes the containers an earlier instance left
// (when a server runs in a container), and the session layer starts its
// janitor and the warm processes of daemon servers. Only the first call
// does anything; Serve calls it when it was not called.
func (g *Gateway) Open(ctx context.Context) error {
	g.openOnce.Do(func() {
		if g.openErr = g.openPins(ctx, g.front.Load().cfg); g.openErr != nil {
			return
		}
		if g.openErr = g.launcher.Open(ctx); g.openErr == nil {
			g.mgr.Open()
			if g.cluster != nil {
				g.cluster.Start()
			}
		}
	})
	return g.openErr
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// clean shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	if err := g.Open(context.Background()); err != nil {
		return fmt.Errorf("opening the gateway: %w", err)
	}
	if g.metricsLn != nil {
		g.serveMetrics(g.metricsLn)
	}
	g.listening.Store(true)
	defer g.listening.Store(false)
	g.lnMu.Lock()
	g.ln = ln
	g.lnMu.Unlock()
	for {
		err := g.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		// A reload that moves the listener closes the old one: go on
		// accepting on the new one (connections already accepted are
		// the http.Server's and are not affected).
		g.lnMu.Lock()
		next, moved := g.ln, g.moved
		g.moved = false
		g.lnMu.Unlock()
		if !moved {
			return fmt.Errorf("serving HTTP on %s: %w", ln.Addr(), err)
		}
		ln = next
	}
}

// Shutdown drains and stops: readiness turns 503 at once, new sessions and
// requests get 503, GET streams end, in-flight requests get until ctx's
// deadline to finish, then every process is stopped. It returns once
// nothing the gateway started is left running.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.draining.Store(true)
	if g.cluster != nil {
		g.cluster.Leave(ctx) // first: peers stop sending this replica work
	}
	g.drainOnce.Do(func() { close(g.drained) })
	defer g.closeAuth()
	g.mgr.Drain()
	defer g.closePins() // after the processes, which may still list tools
	defer g.closeLauncher()
	defer g.closeObservability()
	if g.cluster != nil {
		defer g.cluster.Close() // after the last forwarded request
	}
	defer g.shared.close()
	err := g.srv.Shutdown(ctx)
	if err == nil {
		g.mgr.Close()
		return nil
	}
	// The deadline passed with requests still running. Stopping the
	// backends fails each of them with exactly one JSON-RPC error, which
	// their handlers deliver (as a status or on the open stream) before the
	// connections are closed.
	g.log.Warn("shutdown timeout reached with requests in flight; stopping them", "error", err.Error())
	g.mgr.Close()
	grace, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if g.srv.Shutdown(grace) != nil {
		_ = g.srv.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // drained as far as the timeout allowed; not a failure
	}
	return err
}

// closeLauncher releases the launcher once every process is gone.
func (g *Gateway) closeLauncher() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.launcher.Close(ctx); err != nil {
		g.log.Warn("closing the launcher", "error", err.Error())
	}
}
