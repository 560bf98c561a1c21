package config

import (
	"fmt"
	"net/url"
)

// observe checks metrics, tracing and status.
func (v *validator) observe(c *Config) {
	if l := c.Metrics.Listen; l != "" {
		if err := checkListen(l); err != nil {
			v.add("metrics.listen", err.Error()+v.got("metrics.listen", l))
		} else if !IsLoopbackListen(l) && !c.Metrics.AllowRemote {
			v.add("metrics.listen", "is not a loopback address: metrics show server names, traffic and errors to anyone who can reach it; "+
				"listen on 127.0.0.1 (and let Prometheus scrape through a tunnel or proxy), or set metrics.allow_remote: true"+v.got("metrics.listen", l))
		}
	} else if c.Metrics.AllowRemote {
		v.add("metrics.allow_remote", "has no effect without metrics.listen: set metrics.listen to turn metrics on")
	}
	if e := c.Tracing.OTLPEndpoint; e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			v.add("tracing.otlp_endpoint", "must be the http:// or https:// URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318"+v.got("tracing.otlp_endpoint", e))
		}
	}
	if r := c.Tracing.SampleRatio; r != -1 && (r < 0 || r > 1) {
		v.add("tracing.sample_ratio", fmt.Sprintf("must be from 0 to 1 (the fraction of traces kept), e.g. 0.1 (got %g)", r))
	}
	if n := c.Status.RecentErrors; n < 1 || n > maxRecentErrors {
		v.add("status.recent_errors", fmt.Sprintf("must be from 1 to %d (got %d)", maxRecentErrors, n))
	}
}
