package config

import (
	"net"
	"net/netip"
	"strings"
)

// Metrics is the Prometheus listener (metrics:).
type Metrics struct {
	// Listen is the address of the separate metrics listener; "" means
	// metrics are off.
	Listen string
	// AllowRemote lets Listen be a non-loopback address. Without it such
	// an address is refused: metrics reveal server names, traffic and
	// error rates.
	AllowRemote bool
}

// Tracing is the OpenTelemetry trace export (tracing:). The OTEL_*
// environment variables fill what the file leaves out (see package
// tracing).
type Tracing struct {
	// OTLPEndpoint is the OTLP/HTTP collector URL (http(s)://host[:port],
	// optionally with a path); "" leaves tracing off unless
	// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// is set.
	OTLPEndpoint string
	// SampleRatio is the fraction of new traces sampled, 0 to 1; a
	// request that comes with a sampled traceparent is always sampled.
	// -1 means unset (OTEL_TRACES_SAMPLER_ARG, else 1).
	SampleRatio float64
	// ServiceName is service.name; "" means OTEL_SERVICE_NAME, else "mcpgw".
	ServiceName string
}

// Status is the status page (status:).
type Status struct {
	// Enabled serves GET /status; nil is the default: on when the
	// listener is a loopback address, off otherwise (see StatusEnabled).
	Enabled *bool
	// RecentErrors is how many recent errors the page keeps (default 50,
	// at most 1000).
	RecentErrors int
}

// StatusEnabled reports whether GET /status is served: status.enabled
// when set, else whether the gateway listens on a loopback address only.
func (c *Config) StatusEnabled() bool {
	if c.Status.Enabled != nil {
		return *c.Status.Enabled
	}
	return IsLoopbackListen(c.Listen)
}

// IsLoopbackListen reports whether addr (host:port) listens on loopback
// only: 127.0.0.0/8, ::1 or localhost. An empty host is every interface.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
