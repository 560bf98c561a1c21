package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const metricsDaemonYAML = `listen: 127.0.0.1:0
log: {level: error}
metrics: {listen: "127.0.0.1:0"}
limits: {max_sessions: 20000}
servers:
  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
    mode: daemon
    max_processes: 1
    max_concurrent: 64
    max_inflight_per_process: 64
    queue_timeout: 10s
`

// scrape reads the gateway's metrics as Prometheus would, and returns the
// mcpgw_ series as "name{labels} value" lines.
func scrape(t testing.TB, g *Gateway) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	g.MetricsHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	var out []string
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "mcpgw_") {
			continue
		}
		for _, m := range mf.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out = append(out, fmt.Sprintf("%s{%s} %g", name, strings.Join(ls, ","), v))
		}
	}
	return out
}

func seriesValue(series []string, prefix string) string {
	for _, s := range series {
		if strings.HasPrefix(s, prefix) {
			return s[strings.LastIndexByte(s, ' ')+1:]
		}
	}
	return ""
}

// TestMetricsCardinalityIsBounded sends requests with ten thousand
// distinct tool names from a thousand distinct sessions and clients: the
// number of series must not grow with them.
func TestMetricsCardinalityIsBounded(t *testing.T) {
	h := newHarness(t, metricsDaemonYAML)
	cs := h.connect("demo", nil)
	if _, err := cs.ListTools(context.Background(), nil); err != nil { // the listed names become label values
		t.Fatal(err)
	}
	callText(t, cs, "echo", map[string]any{"text": "x"})
	run := func(sessions, callsEach int, offset int) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for s := range sessions {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				n := offset + s
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"client-%d","version":"%d"}}}`, n, n)
				resp := post(t, h.url("demo"), body, "")
				sid := resp.Header.Get("Mcp-Session-Id")
				for c := range callsEach {
					post(t, h.url("demo"), fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"tool-%d-%d","arguments":{}}}`, c+2, n, c), sid)
				}
				post(t, h.url("demo"), fmt.Sprintf(`{"jsonrpc":"2.0","id":"req-%d","method":"no/such/method-%d","params":{}}`, n, n), sid)
				req, _ := http.NewRequest(http.MethodDelete, h.url("demo"), nil)
				req.Header.Set("Mcp-Session-Id", sid)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
	}
	run(2, 2, 0) // every kind of series exists once
	before := scrape(t, h.g)
	run(1000, 10, 2)
	after := scrape(t, h.g)
	if len(after) != len(before) {
		t.Errorf("series grew from %d to %d with distinct tools, sessions and clients", len(before), len(after))
		for _, s := range after {
			if !strings.Contains(strings.Join(before, "\n"), s[:strings.LastIndexByte(s, ' ')]) {
				t.Logf("new series: %s", s)
			}
		}
	}
	if v := seriesValue(after, "mcpgw_requests_total{class=error,era=session,method=tools/call,mode=daemon,runtime=native,server=demo,tool=other}"); v != "10004" {
		t.Errorf("unknown-tool calls counted %q, want 10004\n%s", v, strings.Join(after, "\n"))
	}
	if v := seriesValue(after, "mcpgw_requests_total{class=ok,era=session,method=tools/call,mode=daemon,runtime=native,server=demo,tool=echo}"); v != "1" {
		t.Errorf("echo calls counted %q, want 1", v)
	}
}

// post sends one JSON-RPC message (in session sid, if set) and reads the
// answer.
func post(t testing.TB, url, body, sid string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST: %v", err)
		return &http.Response{Header: http.Header{}}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestMetricsSeeTheTraffic checks the families against what a real client
// did: requests by tool and class, bytes, process starts, sessions.
func TestMetricsSeeTheTraffic(t *testing.T) {
	h := newHarness(t, metricsDaemonYAML)
	cs := h.connect("demo", nil)
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		callText(t, cs, "echo", map[string]any{"text": "hello"})
	}
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 1}}); err != nil {
		t.Fatal(err)
	}
	s := scrape(t, h.g)
	for prefix, want := range map[string]string{
		"mcpgw_requests_total{class=ok,era=session,method=tools/call,mode=daemon,runtime=native,server=demo,tool=echo}":  "3",
		"mcpgw_requests_total{class=ok,era=session,method=tools/call,mode=daemon,runtime=native,server=demo,tool=sleep}": "1",
		"mcpgw_requests_total{class=ok,era=session,method=tools/list,mode=daemon,runtime=native,server=demo,tool=}":      "1",
		"mcpgw_request_duration_seconds{era=session,method=tools/call,server=demo,tool=echo}":                            "3",
		"mcpgw_process_starts_total{result=ok,runtime=native,server=demo}":                                               "1",
		"mcpgw_processes{runtime=native,server=demo,state=ready}":                                                        "1",
		"mcpgw_sessions{protocol_version=2025-11-25,server=demo}":                                                        "1",
		"mcpgw_inflight_requests{server=demo}":                                                                           "0",
		"mcpgw_server_info{mode=daemon,runtime=native,server=demo}":                                                      "1",
	} {
		if got := seriesValue(s, prefix); got != want {
			t.Errorf("%s = %q, want %q", prefix, got, want)
		}
	}
	for _, name := range []string{"mcpgw_backend_sent_bytes_total{server=demo}", "mcpgw_backend_received_bytes_total{server=demo}"} {
		if v := seriesValue(s, name); v == "" || v == "0" {
			t.Errorf("%s = %q, want > 0", name, v)
		}
	}
}
