package session

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/jsonscan"
)

// obs is what an exchange keeps for its observer and tracer. It is written
// by forward before the request is sent and by the path that won claim,
// and read by finish on that same path.
type obs struct {
	start   time.Time
	class   string
	tool    string
	endSpan func(error) // nil: no tracer
}

// begin starts the exchange's observation: its clock, its tool name for
// metrics, and its backend span, whose trace context is forwarded to the
// server in params._meta (traceparent, tracestate) so that an
// instrumented server continues the trace. It returns the context and the
// request to forward.
func (e *exchange) begin(ctx context.Context, req *jsonrpc.Message) (context.Context, *jsonrpc.Message) {
	srv := e.o.common().srv
	if srv.observing() {
		e.start = time.Now()
		if req.Method == "tools/call" {
			e.tool = toolName(req.Params)
		}
	}
	t := srv.m.tracer
	if t == nil {
		return ctx, req
	}
	attrs := []Attr{{"mcp.method.name", req.Method}, {"jsonrpc.request.id", string(req.ID)}}
	if e.o.common().id != "" {
		attrs = append(attrs, Attr{"mcp.session.id", e.o.common().id})
	}
	if req.Method == "tools/call" {
		if e.tool == "" {
			e.tool = toolName(req.Params)
		}
		attrs = append(attrs, Attr{"gen_ai.tool.name", e.tool})
	}
	ctx, e.endSpan = srv.span(ctx, "backend "+req.Method, attrs...)
	tp, ts := t.Inject(ctx)
	if tp == "" {
		return ctx, req
	}
	params, err := withTraceContext(req.Params, tp, ts)
	if err != nil {
		return ctx, req // params that are not an object: forwarded as they came
	}
	out := *req
	out.Params = params
	return ctx, &out
}

// withTraceContext sets params._meta.traceparent (and tracestate).
func withTraceContext(params json.RawMessage, traceparent, tracestate string) (json.RawMessage, error) {
	if len(params) > 0 && params[jsonscan.SkipSpace(params, 0)] != '{' {
		return nil, errors.New("params is not an object")
	}
	out, err := jsonrpc.SetMeta(params, "traceparent", json.RawMessage(strconv.Quote(traceparent)))
	if err == nil && tracestate != "" {
		out, err = jsonrpc.SetMeta(out, "tracestate", json.RawMessage(strconv.Quote(tracestate)))
	}
	return out, err
}

// responded classifies a server's response, and tells the observer the
// tool names of a tools/list result.
func (e *exchange) responded(m *jsonrpc.Message) {
	e.class = ClassOK
	if m.Error != nil {
		e.class = ClassError
		return
	}
	srv := e.o.common().srv
	if e.method == "tools/list" && srv.observing() {
		var r struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		if json.Unmarshal(m.Result, &r) == nil && len(r.Tools) > 0 {
			names := make([]string, len(r.Tools))
			for i, t := range r.Tools {
				names[i] = t.Name
			}
			srv.observe(Event{Kind: ToolsListed, Tools: names})
		}
	}
}

// done reports the exchange's outcome; out is what reached the client.
func (e *exchange) done(out []byte) {
	if e.class == "" {
		e.class = ClassCancelled
		if out != nil {
			e.class = ClassError // a gateway-made error response
		}
	}
	srv := e.o.common().srv
	if srv.observing() {
		srv.observe(Event{Kind: RequestDone, Era: eraOf(e.o), Method: e.method, Tool: e.tool,
			Class: e.class, Duration: time.Since(e.start)})
	}
	if e.endSpan != nil {
		var err error
		if e.class != ClassOK {
			err = errors.New(e.class)
		}
		e.endSpan(err)
	}
}

// toolName returns params.name of a tools/call without decoding the
// params: a scan of the top-level members. Escaped or non-string names
// are decoded the slow way.
func toolName(params json.RawMessage) string {
	i := jsonscan.SkipSpace(params, 0)
	if i >= len(params) || params[i] != '{' {
		return ""
	}
	i++
	for {
		i = jsonscan.SkipSpace(params, i)
		if i >= len(params) || params[i] != '"' {
			return ""
		}
		kEnd, _ := jsonscan.StringEnd(params, i)
		key := params[i:kEnd]
		i = jsonscan.SkipSpace(params, kEnd)
		if i >= len(params) || params[i] != ':' {
			return ""
		}
		i = jsonscan.SkipSpace(params, i+1)
		if i >= len(params) {
			return ""
		}
		vEnd := jsonscan.ValueEnd(params, i)
		if string(key) == `"name"` {
			v := params[i:vEnd]
			if end, plain := jsonscan.StringEnd(v, 0); plain && len(v) >= 2 && v[0] == '"' && end == len(v) {
				return string(v[1 : len(v)-1])
			}
			var s string
			_ = json.Unmarshal(v, &s)
			return s
		}
		i = jsonscan.SkipSpace(params, vEnd)
		if i >= len(params) || params[i] != ',' {
			return ""
		}
		i++
	}
}
