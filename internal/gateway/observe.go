package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/launch"
	"github.com/mcpgw/mcpgw/internal/metrics"
	"github.com/mcpgw/mcpgw/internal/session"
	"github.com/mcpgw/mcpgw/internal/status"
	"github.com/mcpgw/mcpgw/internal/tracing"
)

// What the front door tells the metrics and the status page: one call per
// answered request (observeRequest, from ServeHTTP), which classifies the
// request by what the handlers recorded in its reqInfo, so that the
// handlers themselves stay as they are.

// newMetrics builds the metrics when they are on: a metrics listener was
// given, or metrics.listen is set (the caller then gives the listener).
func newMetrics(cfg *config.Config, opts *Options, g *Gateway) *metrics.Metrics {
	if opts.MetricsListener == nil && cfg.Metrics.Listen == "" && !opts.Metrics {
		return nil
	}
	return metrics.New(cfg, g.mgrSnapshot, opts.Version)
}

// MetricsHandler serves the metrics in the Prometheus text and OpenMetrics
// formats; nil when metrics are off.
func (g *Gateway) MetricsHandler() http.Handler {
	if g.metrics == nil {
		return nil
	}
	return g.metrics.Handler()
}

// serveMetrics serves the metrics listener until Shutdown (owner: Serve's
// caller through Gateway.wg).
func (g *Gateway) serveMetrics(ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metrics.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: metrics are at /metrics", http.StatusNotFound)
	})
	g.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	addr := ln.Addr().String()
	level := g.log.Info
	if !config.IsLoopbackListen(addr) {
		level = g.log.Warn // exposure widened by metrics.allow_remote
	}
	level("metrics listening", "listen", addr, "url", "http://"+addr+"/metrics")
	g.wg.Go(func() { // owner: the gateway; ends when Shutdown closes the server
		if err := g.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("metrics listener failed", "listen", addr, "error", err.Error())
		}
	})
}

// handlerName classifies a path for mcpgw_http_requests_total.
func handlerName(path string) string {
	switch {
	case strings.HasPrefix(path, "/mcp/"):
		if strings.Count(path, "/") > 2 {
			return "legacy"
		}
		return "mcp"
	case path == "/healthz":
		return "healthz"
	case path == "/readyz":
		return "readyz"
	case path == "/status":
		return "status"
	case strings.HasPrefix(path, metadataPath):
		return "metadata"
	case oauthPath(path):
		return "oauth"
	}
	return metrics.Other
}

// authReasons are the label values of mcpgw_auth_failures_total.
var authReasons = map[string]string{}

func init() {
	for _, r := range []auth.Reason{auth.ReasonMissing, auth.ReasonUnknown, auth.ReasonMalformed, auth.ReasonAlgorithm,
		auth.ReasonUnknownKey, auth.ReasonSignature, auth.ReasonIssuer, auth.ReasonAudience, auth.ReasonExpired,
		auth.ReasonNotYetValid, auth.ReasonNoIdentity, auth.ReasonRevoked} {
		authReasons[string(r)] = strings.ReplaceAll(string(r), " ", "_")
	}
}

// frontRejections map what the front door's refusals record to the
// reasons of mcpgw_rejections_total.
var frontRejections = map[string]string{
	"rate limit exceeded":  "rate",
	"identity not allowed": "allow",
	"origin not allowed":   "origin",
	"host not allowed":     "host",
	"insufficient scope":   "scope",
}

// observeRequest counts one answered request and keeps its error for the
// status page.
func (g *Gateway) observeRequest(r *http.Request, ri *reqInfo, code int) {
	if m := g.metrics; m != nil {
		m.HTTPRequest(handlerName(r.URL.Path), code)
		if reason, ok := frontRejections[ri.errMsg]; ok {
			m.Rejected(ri.tool, reason)
		}
		if code == http.StatusUnauthorized {
			why, _ := strings.CutPrefix(ri.errMsg, "authentication failed: ")
			why, _, _ = strings.Cut(why, ":")
			if label, ok := authReasons[why]; ok {
				m.AuthFailed(label)
			} else {
				m.AuthFailed(authReasons[string(auth.ReasonMissing)])
			}
		}
	}
	streamErr := code < 400 && ri.errMsg != "" && !strings.HasPrefix(ri.errMsg, "client ")
	if g.recent != nil && (code >= 500 || code == http.StatusTooManyRequests || streamErr) {
		g.recent.Add(status.Error{Time: time.Now(), Server: ri.tool, RequestID: ri.id, Status: code,
			Message: clip.String(ri.errMsg, 300)})
	}
}

// observability is the gateway's part of metrics, tracing and the status
// page.
type observability struct {
	metrics    *metrics.Metrics // nil: metrics off
	metricsLn  net.Listener     // nil: no metrics listener
	metricsSrv *http.Server     // set by serveMetrics
	recent     *status.Recent   // errors for the status page; nil: status off
	started    time.Time
	configPath string
	configAt   atomic.Int64    // when the config was (re)loaded, Unix ns; 0: not known
	wg         sync.WaitGroup  // the metrics listener
	tracer     *tracing.Tracer // nil: tracing off
}

// observe sets up metrics, tracing and the status page for New, and
// returns the options of the launcher and the session layer that feed
// them.
func (g *Gateway) observe(cfg *config.Config, opts *Options) (*launch.Options, *session.Options) {
	g.started = time.Now()
	g.configPath = opts.ConfigPath
	if !opts.ConfigLoaded.IsZero() {
		g.configAt.Store(opts.ConfigLoaded.UnixNano())
	}
	g.metricsLn = opts.MetricsListener
	g.metrics = newMetrics(cfg, opts, g)
	g.recent = status.NewRecent(cfg.Status.RecentErrors)
	lopts := &launch.Options{Logger: g.log, Getenv: opts.Getenv}
	sopts := &session.Options{Logger: g.log}
	if g.metrics != nil {
		lopts.Meter = g.metrics.Meter
		sopts.Observer = g.metrics
	}
	if opts.Tracer != nil {
		g.tracer = opts.Tracer
		sopts.Tracer = opts.Tracer
	}
	return lopts, sopts
}

// mgrSnapshot is the session layer's snapshot, for the metrics' gauges.
func (g *Gateway) mgrSnapshot() session.Snapshot { return g.mgr.Snapshot() }

// closeObservability stops the metrics listener once the gateway is
// stopped, so that a last scrape sees the final counts.
func (g *Gateway) closeObservability() {
	if g.metricsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if g.metricsSrv.Shutdown(ctx) != nil {
			_ = g.metricsSrv.Close()
		}
	}
	g.wg.Wait()
}

// noTrace is traceRequest's end without a tracer.
func noTrace(*reqInfo, int) {}

// traceRequest begins the server span of a request to /mcp/, whose context
// the session layer's spans continue; the returned function ends it.
func (g *Gateway) traceRequest(r *http.Request) (*http.Request, func(*reqInfo, int)) {
	if g.tracer == nil || !strings.HasPrefix(r.URL.Path, "/mcp/") {
		return r, noTrace
	}
	ctx, span := g.tracer.StartRequest(r)
	return r.WithContext(ctx), func(ri *reqInfo, code int) {
		tracing.EndRequest(span, code, ri.method, ri.tool, ri.sessionID, r.Header.Get("Mcp-Protocol-Version"), ri.errMsg)
	}
}
