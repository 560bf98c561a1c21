package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/redisrate"
)

// sharedRate holds the rate limits of a cluster with cluster.redis in
// Redis (package redisrate), so that each limit holds across the replicas
// together. Without Redis (cluster.redis absent) each replica keeps its
// own buckets and a limit of N lets N through per replica.
type sharedRate struct {
	lim *redisrate.Limiter // nil with err set: the URL could not be used
	err error
}

func newSharedRate(cfg *config.Config, log *slog.Logger) sharedRate {
	if cfg.Cluster == nil || cfg.Cluster.Redis == nil {
		return sharedRate{}
	}
	lim, err := redisrate.New(cfg.Cluster.Redis)
	if err != nil {
		log.Error("rate limits cannot be shared: requests to rate-limited servers answer 503 until the URL is fixed", "error", err.Error(), "url_env", cfg.Cluster.Redis.URLEnv)
		return sharedRate{err: err}
	}
	log.Info("rate limits are shared by the replicas through Redis", "url_env", cfg.Cluster.Redis.URLEnv, "timeout", cfg.Cluster.Redis.Timeout.String())
	return sharedRate{lim: lim}
}

// on reports whether rate limits are kept in Redis (cluster.redis).
func (s sharedRate) on() bool { return s.lim != nil || s.err != nil }

func (s sharedRate) close() {
	if s.lim != nil {
		_ = s.lim.Close()
	}
}

// sharedRateLimited is rateLimited with the buckets in Redis: all of a
// request's limits in one atomic step. When Redis does not answer within
// cluster.redis.timeout, a request that faces a limit is refused with 503
// (the limits cannot be kept, and ignoring them would multiply them by the
// replicas); a request to a server without limits does not need Redis.
func (g *Gateway) sharedRateLimited(w http.ResponseWriter, r *http.Request, server string, requests, inits int, id json.RawMessage, key func(string) string) bool {
	cfg := g.conf()
	var sRate, sSession *config.Rate
	if s := cfg.Servers[server]; s != nil { // nil: removed by a reload, its sessions draining
		sRate, sSession = s.Rate, s.SessionRate
	}
	check := func(limit string, rate *config.Rate, n int) redisrate.Check {
		c := redisrate.Check{Limit: limit, Rate: rate, N: n}
		if rate != nil {
			c.Key = key(rate.Per)
		}
		return c
	}
	checks := []redisrate.Check{
		check("rate", cfg.Rate, requests),
		check("session_rate", cfg.SessionRate, inits),
		check("servers."+server+".rate", sRate, requests),
		check("servers."+server+".session_rate", sSession, inits),
	}
	needed := false
	for _, c := range checks {
		needed = needed || c.Rate != nil && c.N > 0
	}
	if !needed {
		return false
	}
	ri := info(r.Context())
	err := g.shared.err
	ok, retry := false, time.Duration(0)
	if g.shared.lim != nil {
		ok, retry, err = g.shared.lim.Take(r.Context(), checks...)
	}
	if err != nil {
		ri.errMsg = "rate limit store unavailable: " + err.Error()
		writeError(w, r, http.StatusServiceUnavailable, id, jsonrpc.CodeUnavailable,
			"the rate limits of this server are kept in Redis (cluster.redis), which does not answer; the request was not run: retry shortly", time.Second)
		return true
	}
	if ok {
		return false
	}
	ri.errMsg = "rate limit exceeded"
	writeError(w, r, http.StatusTooManyRequests, id, jsonrpc.CodeTooManyRequests,
		fmt.Sprintf("rate limit exceeded; retry in %s", retry.Round(time.Millisecond)), retry)
	return true
}
