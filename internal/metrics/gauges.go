package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpgw/mcpgw/internal/session"
)

// versions are the protocol versions used as label values.
var versions = session.SessionVersions()

// gauges is the collector of the families read from the session layer's
// Snapshot at scrape time: their values are states, not events.
type gauges struct{ m *Metrics }

var (
	descServer = prometheus.NewDesc("mcpgw_server_info",
		"Always 1 for each configured server; the labels say how it runs.", []string{"server", "runtime", "mode"}, nil)
	descProcesses = prometheus.NewDesc("mcpgw_processes",
		"Server processes by state (starting, ready, draining, stopping).", []string{"server", "runtime", "state"}, nil)
	descSessions = prometheus.NewDesc("mcpgw_sessions",
		"Open session-era sessions, by negotiated protocol version.", []string{"server", "protocol_version"}, nil)
	descInFlight = prometheus.NewDesc("mcpgw_inflight_requests",
		"Client requests forwarded and awaiting their outcome.", []string{"server"}, nil)
	descStreams = prometheus.NewDesc("mcpgw_open_streams",
		"Open long-lived streams, by kind (get: session GET streams, listen: subscriptions/listen).", []string{"server", "kind"}, nil)
	descBackoff = prometheus.NewDesc("mcpgw_backoff",
		"1 while the server is in crash back-off (no new process is started), else 0.", []string{"server"}, nil)
	descFailures = prometheus.NewDesc("mcpgw_consecutive_failures",
		"Consecutive early deaths or failed starts of a daemon server's processes.", []string{"server"}, nil)
)

// procStates are the states reported, so that a state with no process
// reads 0 rather than disappearing.
var procStates = []string{"starting", "ready", "draining", "stopping"}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServer, descProcesses, descSessions, descInFlight, descStreams, descBackoff, descFailures} {
		ch <- d
	}
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	if g.m.snap == nil {
		return
	}
	for _, s := range g.m.snap().Servers {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		gauge(descServer, 1, s.Name, s.Runtime, s.Mode)
		count := map[string]int{"starting": s.Starting}
		for _, p := range s.Processes {
			count[p.State]++
		}
		for _, st := range procStates {
			gauge(descProcesses, float64(count[st]), s.Name, s.Runtime, st)
		}
		byVersion := map[string]int{}
		for v, n := range s.Sessions {
			if !slices.Contains(versions, v) {
				v = Other // a launcher server's own answer: not a label
			}
			byVersion[v] += n
		}
		for v, n := range byVersion {
			gauge(descSessions, float64(n), s.Name, v)
		}
		gauge(descInFlight, float64(s.InFlight), s.Name)
		for _, k := range []string{"get", "listen"} {
			gauge(descStreams, float64(s.Streams[k]), s.Name, k)
		}
		backoff := 0.0
		if s.Failing {
			backoff = 1
		}
		gauge(descBackoff, backoff, s.Name)
		gauge(descFailures, float64(s.Failures), s.Name)
	}
}
