package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/session"
)

func testMetrics(t testing.TB) *Metrics {
	t.Helper()
	cfg, err := config.Parse([]byte("servers: {a: {command: [x]}, b: {command: [y], mode: daemon}}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := func() session.Snapshot {
		return session.Snapshot{Servers: []session.ServerSnapshot{{
			Name: "a", Runtime: "native", Mode: "launcher", Failing: true, Failures: 3,
			Processes: []session.ProcessSnapshot{{ID: "1", State: "ready", InFlight: 2}},
			Sessions:  map[string]int{"2025-11-25": 2, "1999-01-01": 1}, Streams: map[string]int{"get": 1},
			InFlight: 2,
		}}}
	}
	return New(cfg, snap, "test")
}

// everyEvent sends one event of each kind for server "a".
func everyEvent(m *Metrics) {
	base := session.Event{Server: "a", Runtime: "native", Mode: "launcher"}
	for _, e := range []session.Event{
		{Kind: session.ToolsListed, Tools: []string{"echo"}},
		{Kind: session.RequestDone, Era: "session", Method: "tools/call", Tool: "echo", Class: session.ClassOK, Duration: time.Millisecond},
		{Kind: session.QueueWaited, Duration: time.Millisecond},
		{Kind: session.Rejected, Reason: "concurrency"},
		{Kind: session.ProcessStarted, Class: "ok", Duration: time.Second},
		{Kind: session.ProcessExited, Reason: "crashed"},
		{Kind: session.BackoffEntered, N: 2},
		{Kind: session.Recycled},
		{Kind: session.MessageHeld},
		{Kind: session.MessageDropped, Reason: "overflow"},
		{Kind: session.Replayed, N: 3},
		{Kind: session.Resumed, N: 2},
		{Kind: session.ResumeDropped, N: 4, Reason: "limit"},
		{Kind: session.InputRound, Method: "tools/call"},
		{Kind: session.StreamOpened, Reason: "get"},
	} {
		e.Server, e.Runtime, e.Mode = base.Server, base.Runtime, base.Mode
		m.Observe(e)
	}
	m.Rejected("a", "rate")
	m.AuthFailed("expired")
	m.HTTPRequest("mcp", 200)
	mt := m.Meter("a")
	mt.Wrote(10)
	mt.Read(20)
}

func gather(t testing.TB, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// TestEveryFamilyDocumented holds docs/metrics.md's table and the registry
// to each other, both ways.
func TestEveryFamilyDocumented(t *testing.T) {
	m := testMetrics(t)
	everyEvent(m)
	var exported []string
	for name := range gather(t, m) {
		if strings.HasPrefix(name, "mcpgw_") {
			exported = append(exported, name)
		}
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, match := range regexp.MustCompile("(?m)^\\| `(mcpgw_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, match[1])
	}
	slices.Sort(exported)
	slices.Sort(documented)
	if diff := cmp.Diff(documented, exported); diff != "" {
		t.Errorf("docs/metrics.md (-documented +exported):\n%s", diff)
	}
	if len(exported) < 25 {
		t.Errorf("only %d families exported", len(exported))
	}
	// Prometheus naming: counters end in _total, durations in _seconds.
	for name, mf := range gather(t, m) {
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		case dto.MetricType_HISTOGRAM:
			if !strings.HasSuffix(name, "_seconds") {
				t.Errorf("histogram %s does not end in _seconds", name)
			}
		}
	}
}

func labelsOf(mf *dto.MetricFamily) []map[string]string {
	var out []map[string]string
	for _, mt := range mf.Metric {
		l := map[string]string{}
		for _, lp := range mt.Label {
			l[lp.GetName()] = lp.GetValue()
		}
		out = append(out, l)
	}
	return out
}

func TestToolLabelOnlyForListedTools(t *testing.T) {
	m := testMetrics(t)
	done := func(tool string) {
		m.Observe(session.Event{Kind: session.RequestDone, Server: "a", Runtime: "native", Mode: "launcher", Era: "session",
			Method: "tools/call", Tool: tool, Class: session.ClassOK})
	}
	done("echo") // before it is listed
	m.Observe(session.Event{Kind: session.ToolsListed, Server: "a", Tools: []string{"echo"}})
	done("echo")
	done("rm -rf /")
	m.Observe(session.Event{Kind: session.RequestDone, Server: "a", Era: "session", Method: "x/evil", Class: session.ClassOK})
	m.Observe(session.Event{Kind: session.RequestDone, Server: "../not a name", Era: "session", Method: "ping", Class: session.ClassOK})
	got := map[string]float64{}
	for i, l := range labelsOf(gather(t, m)["mcpgw_requests_total"]) {
		got[l["server"]+" "+l["method"]+" "+l["tool"]] = gather(t, m)["mcpgw_requests_total"].Metric[i].GetCounter().GetValue()
	}
	want := map[string]float64{"a tools/call other": 2, "a tools/call echo": 1, "a other ": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func TestListedToolsAreBounded(t *testing.T) {
	m := testMetrics(t)
	names := make([]string, 2*MaxToolsPerServer)
	for i := range names {
		names[i] = "tool" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	m.Observe(session.Event{Kind: session.ToolsListed, Server: "a", Tools: names})
	m.mu.RLock()
	n := len(m.tools["a"])
	m.mu.RUnlock()
	if n != MaxToolsPerServer {
		t.Errorf("%d tool names kept, want %d", n, MaxToolsPerServer)
	}
}

func TestGaugesFromSnapshot(t *testing.T) {
	m := testMetrics(t)
	mfs := gather(t, m)
	value := func(name string, want map[string]string) float64 {
		t.Helper()
		for i, l := range labelsOf(mfs[name]) {
			ok := true
			for k, v := range want {
				ok = ok && l[k] == v
			}
			if ok {
				return mfs[name].Metric[i].GetGauge().GetValue()
			}
		}
		t.Errorf("%s%v: no series", name, want)
		return -1
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mcpgw_processes", map[string]string{"server": "a", "state": "ready"}, 1},
		{"mcpgw_processes", map[string]string{"server": "a", "state": "draining"}, 0},
		{"mcpgw_sessions", map[string]string{"server": "a", "protocol_version": "2025-11-25"}, 2},
		{"mcpgw_sessions", map[string]string{"server": "a", "protocol_version": "other"}, 1},
		{"mcpgw_inflight_requests", map[string]string{"server": "a"}, 2},
		{"mcpgw_open_streams", map[string]string{"server": "a", "kind": "get"}, 1},
		{"mcpgw_backoff", map[string]string{"server": "a"}, 1},
		{"mcpgw_consecutive_failures", map[string]string{"server": "a"}, 3},
	} {
		if got := value(tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := testMetrics(b)
	m.Observe(session.Event{Kind: session.ToolsListed, Server: "a", Tools: []string{"echo"}})
	e := session.Event{Kind: session.RequestDone, Server: "a", Runtime: "native", Mode: "launcher", Era: "session",
		Method: "tools/call", Tool: "echo", Class: session.ClassOK, Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(e)
	}
}

func TestServerLabelMatchesThePattern(t *testing.T) {
	m := testMetrics(t)
	for _, name := range []string{"a", "fs", "git_2", "my-server", "0x", "-a", "_a", "A", "a.b", "", strings.Repeat("a", 64), strings.Repeat("a", 65), "a/b", "é"} {
		if got, want := m.server(name) != "", config.ValidServerName(name); got != want {
			t.Errorf("server(%q) accepted = %v, config.ValidServerName = %v", name, got, want)
		}
	}
}

// TestResumptionCounts: a resumed stream counts once, its replayed and lost
// events by their number.
func TestResumptionCounts(t *testing.T) {
	m := testMetrics(t)
	everyEvent(m)
	fams := gather(t, m)
	for name, want := range map[string]float64{
		"mcpgw_stream_resumptions_total":         1,
		"mcpgw_resumption_replayed_events_total": 2,
		"mcpgw_resumption_dropped_events_total":  4,
	} {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetCounter().GetValue() != want {
			t.Errorf("%s = %v, want one series of %v", name, f, want)
		}
	}
}
