package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/session"
)

// Header names (MCP spec, basic/transports).
const (
	hdrSessionID       = "Mcp-Session-Id"
	hdrProtocolVersion = "Mcp-Protocol-Version"
)

// serveStreamable implements the Streamable HTTP transport on /mcp/{server}.
func (g *Gateway) serveStreamable(w http.ResponseWriter, r *http.Request, srv *session.Server) {
	switch r.Method {
	case http.MethodPost:
		g.handlePost(w, r, srv)
	case http.MethodGet:
		g.handleGet(w, r, srv)
	case http.MethodDelete:
		g.handleDelete(w, r, srv)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, r, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("method %s not allowed: use POST, GET or DELETE", r.Method), 0)
	}
}

// accepts reports whether the Accept header admits mediaType, honouring
// wildcards. mediaType is lower case.
func accepts(r *http.Request, mediaType string) bool {
	major, _, _ := strings.Cut(mediaType, "/")
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if !strings.Contains(part, ";") {
				// No parameters, so no q=0: a plain comparison decides,
				// without mime.ParseMediaType's allocations (hot path).
				if strings.EqualFold(part, mediaType) || part == "*/*" ||
					(len(part) == len(major)+2 && strings.EqualFold(part[:len(major)], major) && part[len(major):] == "/*") {
					return true
				}
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok && (q == "0" || q == "0.0" || q == "0.00" || q == "0.000") {
				continue
			}
			if mt == mediaType || mt == "*/*" || mt == major+"/*" {
				return true
			}
		}
	}
	return false
}

func batchesAllowed(v string) bool { return v <= "2025-03-26" }

// handlePost: MCP spec, basic/transports, "Sending Messages to the Server".
func (g *Gateway) handlePost(w http.ResponseWriter, r *http.Request, srv *session.Server) {
	ri := info(r.Context())
	if !accepts(r, "application/json") || !accepts(r, "text/event-stream") {
		writeError(w, r, http.StatusNotAcceptable, nil, jsonrpc.CodeInvalidRequest,
			"Accept must list both application/json and text/event-stream", 0)
		return
	}
	msgs, isBatch, ok := g.readMessages(w, r)
	if !ok {
		return
	}
	first := msgs[0]
	if g.rateLimited(w, r, srv.Name, msgs, idOf(msgs, isBatch)) {
		return
	}
	pv := r.Header.Get(hdrProtocolVersion)
	sid := r.Header.Get(hdrSessionID)

	if sid == "" {
		switch {
		case !isBatch && first.Kind == jsonrpc.KindRequest && first.Method == "initialize":
			g.initialize(w, r, srv, first)
		case modern.IsModern(pv):
			g.handleModern(w, r, srv, msgs, isBatch)
		case pv == "" && !isBatch && modern.IsModern(bodyVersion(first)):
			writeError(w, r, http.StatusBadRequest, first.ID, modern.CodeHeaderMismatch,
				fmt.Sprintf("the request declares protocol version %q in _meta but has no MCP-Protocol-Version header; MCP %s requires it on every POST",
					clip.String(bodyVersion(first), 40), modern.Version), 0)
		case hasMethod(msgs, "server/discover"):
			// server/discover of a session-era version: not a modern error,
			// so a dual-era client falls back to initialize (spec
			// 2026-07-28, basic/versioning, "backward compatibility").
			writeError(w, r, http.StatusBadRequest, first.ID, jsonrpc.CodeInvalidRequest,
				fmt.Sprintf("server/discover needs MCP-Protocol-Version %s; session-based MCP (protocol versions %s) starts with initialize",
					modern.Version, strings.Join(session.SessionVersions()[:3], ", ")), 0)
		case hasMethod(msgs, "initialize"):
			writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest,
				"initialize must be sent alone, not in a batch", 0)
		default:
			writeError(w, r, http.StatusBadRequest, idOf(msgs, isBatch), jsonrpc.CodeInvalidRequest,
				"missing Mcp-Session-Id header: send initialize first", 0)
		}
		return
	}
	ri.sessionID = sid
	sess, ok := g.lookup(w, r, srv, sid)
	if !ok {
		return
	}
	ri.client = sess.ClientName()
	if !g.checkVersionHeader(w, r, sess, pv) {
		return
	}
	if isBatch && !batchesAllowed(sess.ProtocolVersion()) {
		writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("JSON-RPC batches are not supported in protocol version %s", sess.ProtocolVersion()), 0)
		return
	}

	sink := session.NewSink(1024)
	requests, ok := g.dispatch(w, r, sess, msgs, isBatch, sink)
	if !ok {
		return
	}
	if requests == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	g.stream(w, r, sink, postStream, isBatch, "", &resumable{sess: sess})
}

// dispatch hands a POST's messages to a session: notifications and
// responses are delivered, requests begun with their outcomes bound for
// sink. It returns how many requests were begun. A single message that is
// refused is answered here (ok is false); in a batch, a refused request
// gets its error on sink instead, and the others go on.
func (g *Gateway) dispatch(w http.ResponseWriter, r *http.Request, sess *session.Session, msgs []*jsonrpc.Message, isBatch bool, sink *session.Sink) (requests int, ok bool) {
	for _, m := range msgs {
		if m.Kind != jsonrpc.KindRequest {
			if err := sess.Deliver(r.Context(), m); err != nil && !isBatch {
				writeProblem(w, r, nil, err)
				return 0, false
			}
			continue
		}
		requests++
		if err := sess.Begin(r.Context(), m, sink); err != nil {
			if !isBatch {
				writeProblem(w, r, m.ID, err)
				return 0, false
			}
			sink.Reject(jsonrpc.Encode(jsonrpc.NewError(m.ID, errCode(err), err.Error(), nil)))
		}
	}
	return requests, true
}

func hasMethod(msgs []*jsonrpc.Message, method string) bool {
	for _, m := range msgs {
		if m.Method == method {
			return true
		}
	}
	return false
}

func idOf(msgs []*jsonrpc.Message, isBatch bool) json.RawMessage {
	if isBatch || msgs[0].Kind != jsonrpc.KindRequest {
		return nil
	}
	return msgs[0].ID
}

// readMessages checks the Content-Type, reads the body and parses it as
// one JSON-RPC message or a batch, answering 415, 413 or 400 itself.
func (g *Gateway) readMessages(w http.ResponseWriter, r *http.Request) ([]*jsonrpc.Message, bool, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSONMediaType(ct) {
		writeError(w, r, http.StatusUnsupportedMediaType, nil, jsonrpc.CodeInvalidRequest,
			"Content-Type must be application/json", 0)
		return nil, false, false
	}
	body, ok := g.readBody(w, r)
	if !ok {
		return nil, false, false
	}
	msgs, isBatch, err := jsonrpc.ParseBatch(body)
	if err != nil {
		code := jsonrpc.CodeInvalidRequest
		if jsonrpc.IsSyntaxError(err) {
			code = jsonrpc.CodeParseError
		}
		writeError(w, r, http.StatusBadRequest, nil, code, err.Error(), 0)
		return nil, false, false
	}
	ri := info(r.Context())
	ri.method = msgs[0].Method
	if isBatch {
		ri.method = fmt.Sprintf("batch(%d)", len(msgs))
	}
	return msgs, isBatch, true
}

// isJSONMediaType reports whether a Content-Type is application/json,
// with or without parameters.
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// readBody reads the request body within limits.max_body_bytes and
// limits.read_timeout.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.conf().Limits.ReadTimeout))
	limit := g.conf().Limits.MaxBodyBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		// The deadline stays: net/http must not wait for the rest of a
		// body that a slow client is trickling in.
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest,
				fmt.Sprintf("request body exceeds %d bytes (limits.max_body_bytes)", limit), 0)
			return nil, false
		}
		writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest,
			"reading request body: "+err.Error(), 0)
		return nil, false
	}
	// Cleared so that the SSE response can last longer than the body read.
	_ = rc.SetReadDeadline(time.Time{})
	return body, true
}

func (g *Gateway) lookup(w http.ResponseWriter, r *http.Request, srv *session.Server, sid string) (*session.Session, bool) {
	sess, err := g.mgr.Lookup(srv.Name, sid, info(r.Context()).identity)
	if err != nil {
		writeProblem(w, r, nil, err)
		return nil, false
	}
	return sess, true
}

// checkVersionHeader validates MCP-Protocol-Version on a session's request
// (spec 2025-06-18, basic/transports, "Protocol Version Header"): absent,
// the server assumes 2025-03-26, which changes nothing for an existing
// session; present, it must be a session-era version the gateway supports,
// not necessarily the negotiated one, as the reference SDK servers accept
// (a client library may label requests with its own newest version). Only
// an unsupported or malformed value is 400, and 2026-07-28, which has no
// sessions.
func (g *Gateway) checkVersionHeader(w http.ResponseWriter, r *http.Request, sess *session.Session, pv string) bool {
	if pv == "" || slices.Contains(session.SessionVersions(), pv) {
		return true
	}
	msg := fmt.Sprintf("unsupported MCP-Protocol-Version %q; this session negotiated %s (supported with a session: %s)",
		clip.String(pv, 40), sess.ProtocolVersion(), strings.Join(session.SessionVersions(), ", "))
	if pv == modern.Version {
		msg = fmt.Sprintf("MCP-Protocol-Version %s has no sessions: send its requests without Mcp-Session-Id, or label this session's requests %s",
			pv, sess.ProtocolVersion())
	}
	writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, msg, 0)
	return false
}

// clientName is the clientInfo of an initialize request as "name/version".
func clientName(req *jsonrpc.Message) string {
	var p struct {
		ClientInfo json.RawMessage `json:"clientInfo"`
	}
	_ = json.Unmarshal(req.Params, &p)
	return implName(p.ClientInfo)
}

// implName is an MCP Implementation object (clientInfo) as "name/version",
// for logs, or "" without either.
func implName(raw json.RawMessage) string {
	var ci struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	_ = json.Unmarshal(raw, &ci)
	name := clip.String(strings.TrimSpace(ci.Name+"/"+ci.Version), 100)
	if name == "/" {
		return ""
	}
	return name
}

func (g *Gateway) initialize(w http.ResponseWriter, r *http.Request, srv *session.Server, req *jsonrpc.Message) {
	ri := info(r.Context())
	name := clientName(req)
	ri.client = name
	sess, resp, err := srv.Initialize(r.Context(), ri.caller(name), req)
	if err != nil {
		writeProblem(w, r, req.ID, err)
		return
	}
	if sess != nil {
		ri.sessionID = sess.ID()
		w.Header().Set(hdrSessionID, sess.ID())
	} else {
		ri.errMsg = "server refused initialize"
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	writeJSON(w, http.StatusOK, jsonrpc.Encode(resp))
}

// noteErrors puts the first error response's message into the access log.
func noteErrors(ri *reqInfo, msgs [][]byte) {
	if ri.errMsg != "" {
		return
	}
	for _, m := range msgs {
		if !bytes.Contains(m, []byte(`"error":`)) {
			continue
		}
		if pm, err := jsonrpc.Parse(m); err == nil && pm.Kind == jsonrpc.KindResponse && pm.Error != nil {
			var eo jsonrpc.ErrorObject
			if json.Unmarshal(pm.Error, &eo) == nil {
				ri.errMsg = fmt.Sprintf("%d: %s", eo.Code, clip.String(eo.Message, 200))
				return
			}
		}
	}
}

// handleGet opens the session's standalone SSE stream (MCP spec,
// basic/transports, "Listening for Messages from the Server").
func (g *Gateway) handleGet(w http.ResponseWriter, r *http.Request, srv *session.Server) {
	ri := info(r.Context())
	if !accepts(r, "text/event-stream") {
		writeError(w, r, http.StatusNotAcceptable, nil, jsonrpc.CodeInvalidRequest, "Accept must list text/event-stream", 0)
		return
	}
	ri.method = "GET stream"
	sess, ok := g.sessionFor(w, r, srv)
	if !ok {
		return
	}
	rs := &resumable{sess: sess}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		st, err := sess.Resume(id)
		switch {
		case err != nil:
			// Unknown or too old: the stream without replay.
			g.log.Info("cannot resume a stream; opening a new one", "request_id", ri.id, "tool", ri.tool,
				"session_id", ri.sessionID, "reason", err.Error())
		case st.Post():
			// A POST stream cut before its responses: the rest of it,
			// replayed and then as it comes, on this GET until its
			// responses are delivered.
			ri.method = "GET stream (resumed POST stream)"
			rs.st = st
			g.stream(w, r, st.Sink(), listenStream, false, "", rs)
			return
		default:
			ri.method = "GET stream (resumed)"
			rs.st = st
		}
	}
	sink, err := sess.OpenStream()
	if err != nil {
		if rs.st != nil {
			rs.st.Detach(false)
		}
		writeProblem(w, r, nil, err)
		return
	}
	defer sess.CloseStream(sink)
	if rs.st == nil {
		rs.st = sess.NewStream(false, nil)
	}
	g.stream(w, r, sink, listenStream, false, "", rs)
}

// sessionFor resolves the Mcp-Session-Id of a GET or DELETE: 405 without
// it, 404 for an unknown one, 400 for a bad MCP-Protocol-Version.
func (g *Gateway) sessionFor(w http.ResponseWriter, r *http.Request, srv *session.Server) (*session.Session, bool) {
	ri := info(r.Context())
	sid := r.Header.Get(hdrSessionID)
	if sid == "" {
		// Without a session there is no stream to open or session to end
		// (and MCP 2026-07-28 has neither): 405, which also tells a dual-era
		// client this is not a legacy HTTP+SSE endpoint.
		w.Header().Set("Allow", "POST")
		writeError(w, r, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("%s needs an Mcp-Session-Id (session-based MCP; send initialize first). MCP %s uses POST only", r.Method, modern.Version), 0)
		return nil, false
	}
	ri.sessionID = sid
	sess, ok := g.lookup(w, r, srv, sid)
	if !ok {
		return nil, false
	}
	ri.client = sess.ClientName()
	if !g.checkVersionHeader(w, r, sess, r.Header.Get(hdrProtocolVersion)) {
		return nil, false
	}
	return sess, true
}

// handleDelete ends a session (MCP spec, basic/transports, "Session
// Management").
func (g *Gateway) handleDelete(w http.ResponseWriter, r *http.Request, srv *session.Server) {
	info(r.Context()).method = "DELETE"
	sess, ok := g.sessionFor(w, r, srv)
	if !ok {
		return
	}
	sess.End()
	w.WriteHeader(http.StatusNoContent)
}
