package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/session"
)

// The 2026-07-28 ("modern") Streamable HTTP transport, on the same
// /mcp/{server} URL as the session-era one (spec 2026-07-28,
// basic/transports/streamable-http). handlePost dispatches here a POST
// without Mcp-Session-Id whose MCP-Protocol-Version is 2026-07-28 or later
// and which is not initialize. Every request is answered on its own: plain
// JSON, or an SSE stream of its related notifications and its response.

// removedMethods are session-era client requests that 2026-07-28 dropped;
// a modern request for one gets 404 with -32601 from the gateway.
var removedMethods = map[string]bool{
	"initialize": true, "ping": true, "logging/setLevel": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
}

// The version lists of every modern request's validation, built once (hot
// path). Validate only reads them.
var (
	modernVersions    = []string{modern.Version}
	supportedVersions = session.Supported()
)

// handleModern serves one modern POST. Its body was parsed and rate limits
// applied by handlePost.
func (g *Gateway) handleModern(w http.ResponseWriter, r *http.Request, srv *session.Server, msgs []*jsonrpc.Message, isBatch bool) {
	ri := info(r.Context())
	if isBatch {
		writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("JSON-RPC batches are not part of MCP %s: send one message per POST", modern.Version), 0)
		return
	}
	msg := msgs[0]
	switch msg.Kind {
	case jsonrpc.KindResponse:
		writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("a client must not send JSON-RPC responses in MCP %s: server requests come as input_required results", modern.Version), 0)
		return
	case jsonrpc.KindNotification:
		// 2026-07-28 defines no client notification over HTTP (closing the
		// stream is cancellation); accepted and dropped.
		g.log.Debug("dropping a client notification on the modern path", "tool", srv.Name, "method", msg.Method)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	meta, prob := modern.Validate(r.Header, msg, modernVersions, supportedVersions)
	if prob != nil {
		writeProblem(w, r, msg.ID, prob)
		return
	}
	ri.client = implName(meta.ClientInfo)
	if removedMethods[msg.Method] {
		writeError(w, r, http.StatusNotFound, msg.ID, jsonrpc.CodeMethodNotFound,
			fmt.Sprintf("method %q is not part of MCP %s", msg.Method, modern.Version), 0)
		return
	}
	ctx := r.Context()
	caller := ri.caller(ri.client)
	switch msg.Method {
	case "server/discover":
		res, err := srv.DiscoverFor(ctx, caller, meta)
		if err != nil {
			writeProblem(w, r, msg.ID, err)
			return
		}
		writeJSON(w, http.StatusOK, jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: msg.ID, Result: res}))
		return
	case "subscriptions/listen":
		g.listen(w, r, srv, msg)
		return
	}
	var mrtr struct {
		RequestState   string          `json:"requestState"`
		InputResponses json.RawMessage `json:"inputResponses"`
	}
	// Only a retry has a requestState: decoding every request's params costs
	// (hot path). A key could be spelled with escapes: then decode anyway.
	if bytes.Contains(msg.Params, []byte(`"requestState"`)) || bytes.IndexByte(msg.Params, '\\') >= 0 {
		_ = json.Unmarshal(msg.Params, &mrtr)
	}
	var call *session.Call
	var sink *session.Sink
	var err error
	if session.IsGatewayState(mrtr.RequestState) {
		// The generation that parked it, which a reload may have replaced.
		call, sink, err = g.mgr.Holding(srv, mrtr.RequestState).Resume(ctx, caller, msg, mrtr.RequestState, mrtr.InputResponses)
	} else {
		sink = session.NewSink(1024)
		call, err = srv.Stateless(ctx, caller, msg, meta, sink)
	}
	if err != nil {
		writeProblem(w, r, msg.ID, err)
		return
	}
	if paused := g.stream(w, r, sink, postStream, false, "", nil); !paused {
		call.End() // a request still in flight was given up: cancelled
	}
}

// listen serves subscriptions/listen: an SSE stream that opens with the
// acknowledgment and stays open (session/listen.go).
func (g *Gateway) listen(w http.ResponseWriter, r *http.Request, srv *session.Server, msg *jsonrpc.Message) {
	var p struct {
		Notifications *session.Filter `json:"notifications"`
	}
	if err := json.Unmarshal(msg.Params, &p); err != nil || p.Notifications == nil {
		writeError(w, r, http.StatusBadRequest, msg.ID, jsonrpc.CodeInvalidParams,
			"subscriptions/listen needs params.notifications, the filter of notification types to receive", 0)
		return
	}
	l, err := srv.Listen(msg.ID, *p.Notifications)
	if err != nil {
		writeProblem(w, r, msg.ID, err)
		return
	}
	defer l.Close()
	g.stream(w, r, l.Sink(), listenStream, false, "", nil)
}

// bodyVersion is params._meta's protocol version of a request, or "".
func bodyVersion(m *jsonrpc.Message) string {
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if m.Kind != jsonrpc.KindRequest || json.Unmarshal(m.Params, &p) != nil {
		return ""
	}
	var v string
	_ = json.Unmarshal(p.Meta[modern.MetaProtocolVersion], &v)
	return v
}
