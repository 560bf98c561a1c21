package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/tracing"
	"github.com/mcpgw/mcpgw/internal/tracing/tracingtest"
)

// tracedHarness is a gateway whose spans go, through the real OTLP/HTTP
// exporter, to an in-process receiver.
func tracedHarness(t *testing.T, yaml string) (*harness, *tracingtest.Receiver, *tracing.Tracer) {
	t.Helper()
	rcv := tracingtest.New(t)
	tr, err := tracing.New(t.Context(), tracing.Settings{Endpoint: rcv.URL() + "/v1/traces", SampleRatio: 1, ServiceName: "mcpgw-test"}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, yaml, &Options{Tracer: tr})
	return h, rcv, tr
}

// flush exports every ended span and returns what the receiver got.
func flush(t *testing.T, h *harness, tr *tracing.Tracer, rcv *tracingtest.Receiver) []tracingtest.Span {
	t.Helper()
	h.shutdown(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("tracer shutdown: %v", err)
	}
	return rcv.Spans()
}

func children(spans []tracingtest.Span, parent string) []tracingtest.Span {
	var out []tracingtest.Span
	for _, s := range spans {
		if s.ParentID == parent {
			out = append(out, s)
		}
	}
	return out
}

func spanNames(spans []tracingtest.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestTraceOfToolCallWithProgress checks the span tree of a tools/call
// that sends progress: the client's traceparent is continued, the request
// span has the queue and the backend round trip as children with MCP
// attributes, and the server received the trace context in params._meta.
func TestTraceOfToolCallWithProgress(t *testing.T) {
	yaml := "listen: 127.0.0.1:0\nservers:\n" + serverYAML("t", "    mode: daemon\n")
	h, rcv, tr := tracedHarness(t, yaml)
	sid := h.rawSession("t", "2025-11-25")
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparent := "00-" + clientTrace + "-00f067aa0ba902b7-01"
	r := h.post("t", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":200},"_meta":{"progressToken":"p1"}}}`,
		map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25", "Traceparent": traceparent})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "notifications/progress") {
		t.Fatalf("tools/call: %d %s", r.Status, r.Body)
	}
	// The server sees the backend span's context in _meta.
	r = h.post("t", `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"meta","arguments":{}}}`,
		map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25", "Traceparent": traceparent})
	var metaResult struct {
		Result struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"result"`
	}
	body := string(r.Body)
	if i := strings.Index(body, "{"); i >= 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
		body = body[i : strings.LastIndex(body, "}")+1]
	}
	if err := json.Unmarshal([]byte(body), &metaResult); err != nil || len(metaResult.Result.Content) == 0 {
		t.Fatalf("meta: %v %s", err, r.Body)
	}
	var meta struct{ Traceparent string }
	_ = json.Unmarshal([]byte(metaResult.Result.Content[0].Text), &meta)

	spans := flush(t, h, tr, rcv)
	var root *tracingtest.Span
	for i, s := range spans {
		if s.Name == "tools/call" && s.Attrs["mcp.session.id"] == sid && root == nil {
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no tools/call request span; got %v", spanNames(spans))
	}
	if root.TraceID != clientTrace || root.ParentID != "00f067aa0ba902b7" {
		t.Errorf("request span trace %s parent %s, want the client's %s / 00f067aa0ba902b7", root.TraceID, root.ParentID, clientTrace)
	}
	if root.Service != "mcpgw-test" || root.Attrs["mcp.method.name"] != "tools/call" || root.Attrs["mcp.protocol.version"] != "2025-11-25" {
		t.Errorf("request span: service %q attrs %v", root.Service, root.Attrs)
	}
	kids := children(spans, root.SpanID)
	names := strings.Join(spanNames(kids), ",")
	if names != "queue,backend tools/call" && names != "backend tools/call,queue" {
		t.Fatalf("children of the request span: %q, want queue and backend tools/call", names)
	}
	for _, k := range kids {
		if k.Name != "backend tools/call" {
			continue
		}
		if k.Attrs["gen_ai.tool.name"] != "sleep" || k.Attrs["jsonrpc.request.id"] != "7" || k.Attrs["mcp.method.name"] != "tools/call" ||
			k.Attrs["mcp.session.id"] != sid || k.Error {
			t.Errorf("backend span attrs %v error %v", k.Attrs, k.Error)
		}
	}
	// The meta call's backend span is the parent the server was told of.
	found := false
	for _, s := range spans {
		if s.Name == "backend tools/call" && meta.Traceparent == fmt.Sprintf("00-%s-%s-01", s.TraceID, s.SpanID) {
			found = true
		}
	}
	if !found {
		t.Errorf("the server got traceparent %q in _meta, which is no backend span", meta.Traceparent)
	}
	// The pool's process started during initialize: its span is a child
	// of that request's span.
	for _, s := range spans {
		if s.Name == "process start" {
			if s.ParentID == "" {
				t.Errorf("process start span has no parent")
			}
			return
		}
	}
	t.Errorf("no process start span; got %v", spanNames(spans))
}

// TestTraceSampledOff: with sample_ratio 0 and no client traceparent
// nothing is exported, and nothing is forwarded in _meta.
func TestTraceSampledOff(t *testing.T) {
	rcv := tracingtest.New(t)
	tr, err := tracing.New(t.Context(), tracing.Settings{Endpoint: rcv.URL() + "/v1/traces", SampleRatio: 0, ServiceName: "x"}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, "listen: 127.0.0.1:0\nservers:\n"+serverYAML("t", ""), &Options{Tracer: tr})
	cs := h.connect("t", nil)
	got := callText(t, cs, "meta", nil)
	if strings.Contains(got, "traceparent") {
		t.Errorf("an unsampled request forwarded %s", got)
	}
	if spans := flush(t, h, tr, rcv); len(spans) != 0 {
		t.Errorf("exported %d spans with sample_ratio 0: %v", len(spans), spanNames(spans))
	}
}
