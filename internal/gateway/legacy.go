package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/session"
)

// The HTTP+SSE transport of protocol version 2024-11-05 (spec
// 2024-11-05, basic/transports, "HTTP with SSE"): GET /mcp/{server}/sse
// opens a stream whose first event names the endpoint for POSTs; every
// reply and server message travels on that stream; the session lives as
// long as the stream.

// maxLegacyStreams bounds SSE streams that have not initialized a session
// yet (an initialized one is bounded by the session limits).
const maxLegacyStreams = 1024

// legacyConn is one open SSE stream and, once initialized, its session.
type legacyConn struct {
	id       string
	srv      *session.Server
	sink     *session.Sink
	identity string // who opened the stream; only they may post to it

	mu   sync.Mutex
	sess *session.Session
	init bool // an initialize is under way or done
}

type legacyConns struct {
	mu    sync.Mutex
	conns map[string]*legacyConn
}

func (lc *legacyConns) add(c *legacyConn) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.conns == nil {
		lc.conns = make(map[string]*legacyConn)
	}
	if len(lc.conns) >= maxLegacyStreams {
		return false
	}
	lc.conns[c.id] = c
	return true
}

func (lc *legacyConns) get(id string) *legacyConn {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.conns[id]
}

func (lc *legacyConns) remove(id string) {
	lc.mu.Lock()
	delete(lc.conns, id)
	lc.mu.Unlock()
}

// serveLegacy routes /mcp/{server}/sse and /mcp/{server}/message.
func (g *Gateway) serveLegacy(w http.ResponseWriter, r *http.Request, srv *session.Server, sub string) {
	switch {
	case sub == "sse" && r.Method == http.MethodGet:
		g.legacyStream(w, r, srv)
	case sub == "message" && r.Method == http.MethodPost:
		g.legacyMessage(w, r, srv)
	case sub == "sse" || sub == "message":
		allow := map[string]string{"sse": "GET", "message": "POST"}[sub]
		w.Header().Set("Allow", allow)
		writeError(w, r, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("method %s not allowed on /%s: use %s", r.Method, sub, allow), 0)
	default:
		writeError(w, r, http.StatusNotFound, nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("not found: server %q is served at /mcp/%s (Streamable HTTP) and /mcp/%s/sse (HTTP+SSE)", srv.Name, srv.Name, srv.Name), 0)
	}
}

func (g *Gateway) legacyStream(w http.ResponseWriter, r *http.Request, srv *session.Server) {
	ri := info(r.Context())
	ri.method = "SSE stream"
	if r.Header.Get("Accept") != "" && !accepts(r, "text/event-stream") {
		writeError(w, r, http.StatusNotAcceptable, nil, jsonrpc.CodeInvalidRequest, "Accept must list text/event-stream", 0)
		return
	}
	if g.mgr.Draining() {
		writeProblem(w, r, nil, session.DrainingError())
		return
	}
	c := &legacyConn{id: g.legacyID(), srv: srv, sink: session.NewStreamSink(), identity: ri.identity}
	if !g.legacy.add(c) {
		writeError(w, r, http.StatusTooManyRequests, nil, jsonrpc.CodeTooManyRequests,
			"too many HTTP+SSE streams without a session; retry later", time.Second)
		return
	}
	ri.sessionID = c.id
	defer func() {
		g.legacy.remove(c.id)
		c.mu.Lock()
		sess := c.sess
		c.mu.Unlock()
		if sess != nil {
			// The session lives as long as its stream (launcher: its
			// process stops now).
			sess.End()
		}
	}()

	endpoint := "/mcp/" + srv.Name + "/message?sessionId=" + url.QueryEscape(c.id)
	if g.conf().PublicURL != "" {
		endpoint = g.conf().PublicURL + endpoint
	}
	g.stream(w, r, c.sink, legacyStream, false, endpoint, nil)
}

func (g *Gateway) legacyMessage(w http.ResponseWriter, r *http.Request, srv *session.Server) {
	ri := info(r.Context())
	id := r.URL.Query().Get("sessionId")
	ri.sessionID = id
	c := g.legacy.get(id)
	// Another identity presenting this stream's id gets the same 404 as an
	// unknown id, never the session.
	// By name: a reload may have replaced the server's definition since
	// the stream opened, and the stream keeps its own (c.srv).
	if c == nil || c.srv.Name != srv.Name || c.identity != ri.identity {
		writeError(w, r, http.StatusNotFound, nil, jsonrpc.CodeInvalidRequest,
			"unknown sessionId: open a stream with GET /mcp/"+srv.Name+"/sse first", 0)
		return
	}
	msgs, isBatch, ok := g.readMessages(w, r)
	if !ok {
		return
	}
	if g.rateLimited(w, r, srv.Name, msgs, idOf(msgs, isBatch)) {
		return
	}
	c.mu.Lock()
	sess, started := c.sess, c.init
	if !started && !isBatch && msgs[0].Method == "initialize" && msgs[0].Kind == jsonrpc.KindRequest {
		c.init = true
	}
	c.mu.Unlock()

	if sess == nil {
		if started || isBatch || msgs[0].Method != "initialize" || msgs[0].Kind != jsonrpc.KindRequest {
			// As a 2024-11-05 server would: the error travels on the stream
			// (a dual-era client's server/discover probe lands here and falls
			// back to initialize).
			for _, m := range msgs {
				if m.Kind == jsonrpc.KindRequest {
					c.sink.Push(jsonrpc.Encode(jsonrpc.NewError(m.ID, jsonrpc.CodeInvalidRequest,
						"this HTTP+SSE session is not initialized: send initialize first", nil)))
				}
			}
			w.WriteHeader(http.StatusAccepted)
			return
		}
		g.legacyInitialize(w, r, c, msgs[0])
		return
	}
	ri.client = sess.ClientName()
	// Responses travel on the stream: a refused request of a batch gets
	// its error there too.
	if _, ok := g.dispatch(w, r, sess, msgs, isBatch, c.sink); !ok {
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (g *Gateway) legacyInitialize(w http.ResponseWriter, r *http.Request, c *legacyConn, req *jsonrpc.Message) {
	ri := info(r.Context())
	name := clientName(req)
	ri.client = name
	sess, resp, err := c.srv.Initialize(r.Context(), ri.caller(name), req)
	if err != nil {
		c.mu.Lock()
		c.init = false // the client may try again on the same stream
		c.mu.Unlock()
		writeProblem(w, r, req.ID, err)
		return
	}
	if sess != nil {
		c.mu.Lock()
		c.sess = sess
		c.mu.Unlock()
		if err := sess.AttachStream(c.sink); err != nil {
			writeProblem(w, r, req.ID, err)
			return
		}
	} else {
		c.mu.Lock()
		c.init = false
		c.mu.Unlock()
	}
	c.sink.Push(jsonrpc.Encode(resp))
	w.WriteHeader(http.StatusAccepted)
}
