// Package metrics exports what the gateway does as Prometheus metrics
// (docs/metrics.md lists every family). It is the session layer's
// Observer and the backends' Meter, and reads the layer's Snapshot at
// scrape time for the gauges, so that the request path pays one cached
// counter increment and one histogram observation per request.
//
// Every label value comes from a bounded set, by construction: server
// names and runtimes from the configuration, methods from MCP's list,
// tool names only from what the server itself listed in tools/list (at
// most MaxToolsPerServer of them; any other name is "other"), reasons and
// classes from the gateway's own constants. Nothing a client sends —
// session ids, request ids, client names, unknown tools — becomes a label.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/session"
)

// MaxToolsPerServer bounds the tool names of one server used as label
// values; a server that lists more gets "other" for the rest.
const MaxToolsPerServer = 256

// Other is the label value of anything outside a bounded set.
const Other = "other"

// methods are the MCP request methods used as label values.
var methods = map[string]bool{
	"initialize": true, "ping": true, "tools/list": true, "tools/call": true,
	"resources/list": true, "resources/read": true, "resources/templates/list": true,
	"resources/subscribe": true, "resources/unsubscribe": true, "prompts/list": true,
	"prompts/get": true, "completion/complete": true, "logging/setLevel": true,
	"server/discover": true, "subscriptions/listen": true, "tasks/get": true,
	"tasks/list": true, "tasks/cancel": true, "tasks/result": true,
}

// Method returns m when it is an MCP method, else Other.
func Method(m string) string {
	if methods[m] {
		return m
	}
	return Other
}

// Metrics is the gateway's metrics: an Observer of the session layer, a
// source of backend Meters, and the HTTP handler of the metrics listener.
// Its methods are safe for concurrent use.
type Metrics struct {
	reg  *prometheus.Registry
	snap func() session.Snapshot

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	queueWait     *prometheus.HistogramVec
	rejections    *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	starts        *prometheus.CounterVec
	startup       *prometheus.HistogramVec
	exits         *prometheus.CounterVec
	crashes       *prometheus.CounterVec
	backoffs      *prometheus.CounterVec
	recycles      *prometheus.CounterVec
	held          *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	replayed      *prometheus.CounterVec
	resumed       *prometheus.CounterVec
	resumeEvents  *prometheus.CounterVec
	resumeDropped *prometheus.CounterVec
	inputRounds   *prometheus.CounterVec
	streamsOpened *prometheus.CounterVec
	sentBytes     *prometheus.CounterVec
	recvBytes     *prometheus.CounterVec

	mu    sync.RWMutex
	tools map[string]map[string]bool // server → tool names it listed
	hot   sync.Map                   // requestKey → *requestSeries

	// Series of the request path, made once: a vector's lookup hashes
	// every label value.
	queueOf map[string]prometheus.Observer // server → its queue wait
	httpOf  map[string]*[5]prometheus.Counter
}

// handlers are the label values of mcpgw_http_requests_total's handler.
var handlers = []string{"mcp", "legacy", "healthz", "readyz", "status", "metadata", "oauth", Other}

// New returns the metrics of cfg's servers. snapshot, called at each
// scrape, gives the gauges their values; version is mcpgw_build_info's.
func New(cfg *config.Config, snapshot func() session.Snapshot, version string) *Metrics {
	m := &Metrics{
		reg:   prometheus.NewRegistry(),
		snap:  snapshot,
		tools: map[string]map[string]bool{},
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(v)
		return v
	}
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m.requests = counter("mcpgw_requests_total", "Client requests forwarded to a server process, by outcome class.",
		"server", "runtime", "mode", "era", "method", "tool", "class")
	m.duration = histogram("mcpgw_request_duration_seconds", "Time from forwarding a client request to its outcome.",
		latency, "server", "era", "method", "tool")
	m.queueWait = histogram("mcpgw_queue_wait_seconds", "Time a request waited for its in-flight slots and its process.",
		latency, "server")
	m.rejections = counter("mcpgw_rejections_total", "Requests and sessions refused before any work was done, by reason.",
		"server", "reason")
	m.authFailures = counter("mcpgw_auth_failures_total", "Requests to /mcp/ refused by authentication, by reason.", "reason")
	m.httpRequests = counter("mcpgw_http_requests_total", "HTTP requests answered by the front door, by handler and status class.",
		"handler", "code")
	m.starts = counter("mcpgw_process_starts_total", "Server process starts, by result (ok, failed).", "server", "runtime", "result")
	m.startup = histogram("mcpgw_process_startup_seconds", "Time from starting a process until it could serve (pooled: its handshake).",
		[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}, "server", "runtime")
	m.exits = counter("mcpgw_process_exits_total", "Server processes that ended, by reason (stopped, exited, crashed).",
		"server", "runtime", "reason")
	m.crashes = counter("mcpgw_process_crashes_total", "Server processes that ended without the gateway stopping them.",
		"server", "runtime")
	m.backoffs = counter("mcpgw_backoffs_total", "Times a server entered crash back-off.", "server")
	m.recycles = counter("mcpgw_process_recycles_total", "Shared processes replaced because they ignored a cancellation.", "server")
	m.held = counter("mcpgw_held_messages_total", "Server messages held until the client opens its GET stream.", "server")
	m.dropped = counter("mcpgw_dropped_messages_total", "Held server messages never delivered, by reason (overflow, expired).",
		"server", "reason")
	m.replayed = counter("mcpgw_replayed_messages_total", "Held server messages handed to a newly opened stream.", "server")
	m.resumed = counter("mcpgw_stream_resumptions_total", "Session streams resumed by a client with Last-Event-ID.", "server")
	m.resumeEvents = counter("mcpgw_resumption_replayed_events_total", "Kept SSE events replayed to clients that resumed a stream.", "server")
	m.resumeDropped = counter("mcpgw_resumption_dropped_events_total", "Kept SSE events lost before a client resumed with them, by reason (limit, expired).",
		"server", "reason")
	m.inputRounds = counter("mcpgw_mrtr_rounds_total", "Input rounds of 2026-07-28 requests (InputRequiredResult sent).",
		"server", "method")
	m.streamsOpened = counter("mcpgw_streams_opened_total", "Long-lived streams opened, by kind (get, listen).", "server", "kind")
	m.sentBytes = counter("mcpgw_backend_sent_bytes_total", "Bytes written to server processes' stdin.", "server")
	m.recvBytes = counter("mcpgw_backend_received_bytes_total", "Bytes read from server processes' stdout.", "server")

	m.queueOf = map[string]prometheus.Observer{}
	for name := range cfg.Servers {
		m.queueOf[name] = m.queueWait.WithLabelValues(name)
	}
	m.httpOf = map[string]*[5]prometheus.Counter{}
	for _, h := range handlers {
		var cs [5]prometheus.Counter
		for i := range cs {
			cs[i] = m.httpRequests.WithLabelValues(h, strconv.Itoa(i+1)+"xx")
		}
		m.httpOf[h] = &cs
	}

	m.reg.MustRegister(&gauges{m: m})
	bi := prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcpgw_build_info", Help: "Always 1; the labels say which mcpgw runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	bi.Set(1)
	st := prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcpgw_start_time_seconds", Help: "When the gateway started, in Unix seconds."})
	st.Set(float64(time.Now().UnixNano()) / 1e9)
	m.reg.MustRegister(bi, st,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format, or
// OpenMetrics when the scraper asks for it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, MaxRequestsInFlight: 4})
}

// Registry is the registry, for tests and the dashboard check.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// server returns name when it is a server name, else "". The session
// layer's events name configured servers only (a reload may add some);
// the front door names a server only once it found it.
func (m *Metrics) server(name string) string {
	if len(name) == 0 || len(name) > 64 {
		return ""
	}
	for i := 0; i < len(name); i++ { // config.ServerNamePattern without the regexp engine
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return ""
		}
	}
	return name
}

// tool returns name when server listed it, else Other ("" when none).
func (m *Metrics) tool(server, name string) string {
	if name == "" {
		return ""
	}
	m.mu.RLock()
	ok := m.tools[server][name]
	m.mu.RUnlock()
	if ok {
		return name
	}
	return Other
}

// listed records the tool names a server listed, up to MaxToolsPerServer.
func (m *Metrics) listed(server string, names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.tools[server]
	if set == nil {
		set = map[string]bool{}
		m.tools[server] = set
	}
	for _, n := range names {
		if len(set) >= MaxToolsPerServer {
			return
		}
		if n != "" && len(n) <= 128 {
			set[n] = true
		}
	}
}

// requestKey is one series of the request families.
type requestKey struct {
	server, era, method, tool, class string
}

// requestSeries caches the series of one requestKey: looking them up in
// the vectors hashes every label value on every request.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// Observe implements session.Observer.
func (m *Metrics) Observe(e session.Event) {
	srv := m.server(e.Server)
	if srv == "" {
		return // not a configured server: cannot happen, never a label
	}
	switch e.Kind {
	case session.RequestDone:
		k := requestKey{srv, e.Era, Method(e.Method), m.tool(srv, e.Tool), e.Class}
		s, ok := m.hot.Load(k)
		if !ok {
			s, _ = m.hot.LoadOrStore(k, &requestSeries{
				count:    m.requests.WithLabelValues(srv, e.Runtime, e.Mode, k.era, k.method, k.tool, k.class),
				duration: m.duration.WithLabelValues(srv, k.era, k.method, k.tool),
			})
		}
		rs := s.(*requestSeries)
		rs.count.Inc()
		rs.duration.Observe(e.Duration.Seconds())
	case session.QueueWaited:
		if q, ok := m.queueOf[srv]; ok {
			q.Observe(e.Duration.Seconds())
		} else { // a server added by a reload
			m.queueWait.WithLabelValues(srv).Observe(e.Duration.Seconds())
		}
	case session.Rejected:
		m.rejections.WithLabelValues(srv, e.Reason).Inc()
	case session.ProcessStarted:
		m.starts.WithLabelValues(srv, e.Runtime, e.Class).Inc()
		if e.Class == "ok" {
			m.startup.WithLabelValues(srv, e.Runtime).Observe(e.Duration.Seconds())
		}
	case session.ProcessExited:
		m.exits.WithLabelValues(srv, e.Runtime, e.Reason).Inc()
		if e.Reason != "stopped" {
			m.crashes.WithLabelValues(srv, e.Runtime).Inc()
		}
	case session.BackoffEntered:
		m.backoffs.WithLabelValues(srv).Inc()
	case session.Recycled:
		m.recycles.WithLabelValues(srv).Inc()
	case session.MessageHeld:
		m.held.WithLabelValues(srv).Inc()
	case session.MessageDropped:
		m.dropped.WithLabelValues(srv, e.Reason).Inc()
	case session.Replayed:
		m.replayed.WithLabelValues(srv).Add(float64(e.N))
	case session.Resumed:
		m.resumed.WithLabelValues(srv).Inc()
		m.resumeEvents.WithLabelValues(srv).Add(float64(e.N))
	case session.ResumeDropped:
		m.resumeDropped.WithLabelValues(srv, e.Reason).Add(float64(e.N))
	case session.InputRound:
		m.inputRounds.WithLabelValues(srv, Method(e.Method)).Inc()
	case session.StreamOpened:
		m.streamsOpened.WithLabelValues(srv, e.Reason).Inc()
	case session.ToolsListed:
		m.listed(srv, e.Tools)
	}
}

// Rejected counts a refusal at the front door (rate, allow list, origin,
// host); server is "" when the request named no configured server.
func (m *Metrics) Rejected(server, reason string) {
	m.rejections.WithLabelValues(m.server(server), reason).Inc()
}

// AuthFailed counts an authentication failure; reason is one of package
// auth's reasons.
func (m *Metrics) AuthFailed(reason string) {
	m.authFailures.WithLabelValues(reason).Inc()
}

// HTTPRequest counts one answered HTTP request; handler is one of the
// front door's handler names.
func (m *Metrics) HTTPRequest(handler string, status int) {
	cs, ok := m.httpOf[handler]
	if !ok {
		cs = m.httpOf[Other]
	}
	cs[min(max(status/100, 1), 5)-1].Inc()
}

// Meter returns the backend meter of server.
func (m *Metrics) Meter(server string) backend.Meter {
	srv := m.server(server)
	return meter{sent: m.sentBytes.WithLabelValues(srv), recv: m.recvBytes.WithLabelValues(srv)}
}

type meter struct{ sent, recv prometheus.Counter }

func (mt meter) Wrote(n int) { mt.sent.Add(float64(n)) }
func (mt meter) Read(n int)  { mt.recv.Add(float64(n)) }
