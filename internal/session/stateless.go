package session

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
)

// Modern (2026-07-28) requests are stateless: each one carries its own
// protocol version, client identity and capabilities in _meta (spec
// 2026-07-28, basic/index, "Statelessness"). The gateway serves each on a
// Session of its own that lives exactly as long as the request (across its
// rounds, when it needs the client's input: mrtr.go) — never published,
// never found by id — so that id rewriting, progress routing, timeouts,
// cancellation and crash handling are the same code as for session-era
// requests.
//
//   - daemon mode: the request goes to the least-loaded pooled process;
//     pooled processes were initialised once, and probed with
//     server/discover only if they refused (pool.go).
//   - launcher mode: a process is started for the request (probed, and
//     initialised with the client's own clientInfo and capabilities when it
//     is legacy) and stopped when the request is over.
//
// A legacy process gets the request without the io.modelcontextprotocol/*
// _meta keys, and its result gets resultType "complete", the server's
// serverInfo and, for cacheable methods, caching hints. A modern process
// gets the request as it came.

// Call is one modern request in flight.
type Call struct {
	s   *Session
	own bool // launcher: the process is the request's own
}

// Stateless forwards one modern request. Exactly one outcome reaches sink,
// as with Session.Begin; the front-end calls End once the response stream
// is over. Errors are *Error and mean nothing was forwarded.
//
// clientName is the client's clientInfo as "name/version", for logs.
func (srv *Server) Stateless(ctx context.Context, req *jsonrpc.Message, meta *modern.Meta, clientName string, sink *Sink) (*Call, error) {
	if srv.m.Draining() {
		return nil, errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	s := srv.newSession(ctx, clientName)
	s.modern = true
	s.protocolVersion = modern.Version
	s.caps = capsOf(meta.ClientCapabilities)
	s.level = meta.LogLevel
	var p *proc
	var err error
	if srv.pool != nil {
		if p, err = srv.pool.pick(ctx); err != nil {
			return nil, err
		}
		s.proc = p
	} else if p, err = srv.launchFor(ctx, s, meta); err != nil {
		return nil, err
	}
	c := &Call{s: s, own: srv.pool == nil}
	s.call = c
	s.reqParams = req.Params
	fwd := *req
	if p.era == eraLegacy {
		params, err := modern.StripMeta(req.Params)
		if err != nil {
			c.End()
			return nil, &Error{Status: http.StatusBadRequest, Code: jsonrpc.CodeInvalidParams, Message: "invalid params: " + err.Error()}
		}
		fwd.Params = params
		info := p.serverInfo
		s.shape = func(m *jsonrpc.Message) int {
			if m.Error != nil {
				return errorStatus(m.Error)
			}
			res, err := modern.CompleteResult(m.Result, info, cacheable[req.Method])
			if err != nil {
				*m = *jsonrpc.NewError(m.ID, jsonrpc.CodeBackendInvalid,
					fmt.Sprintf("server %q sent an invalid result: %v", srv.Name, err), nil)
				return http.StatusBadGateway
			}
			m.Result = res
			return 0
		}
	} else {
		s.shape = func(m *jsonrpc.Message) int {
			if m.Error != nil {
				return errorStatus(m.Error)
			}
			return 0
		}
	}
	if err := s.Begin(ctx, &fwd, sink); err != nil {
		c.End()
		return nil, err
	}
	return c, nil
}

// errorStatus is the HTTP status of a server's error response to a modern
// request (spec 2026-07-28, basic/transports/streamable-http): 404 for an
// unknown method, 400 for the modern protocol errors, else 200.
func errorStatus(raw json.RawMessage) int {
	var eo jsonrpc.ErrorObject
	if json.Unmarshal(raw, &eo) != nil {
		return 0
	}
	switch {
	case eo.Code == jsonrpc.CodeMethodNotFound:
		return http.StatusNotFound
	case modern.IsModernError(raw):
		return http.StatusBadRequest
	}
	return 0
}

// End finishes the call once its response stream is over. A request still
// in flight was given up by the client — closing the response stream is
// cancellation (spec 2026-07-28, basic/patterns/cancellation) — and the
// server gets notifications/cancelled. The request's own process (launcher
// mode) is stopped.
func (c *Call) End() {
	if c.waitingForRetry() {
		return // the request waits for the client's retry (mrtr.go)
	}
	s := c.s
	s.mu.Lock()
	pending := make([]*exchange, 0, len(s.inflight))
	for _, ex := range s.inflight {
		pending = append(pending, ex)
	}
	p := s.proc
	s.mu.Unlock()
	for _, ex := range pending {
		if ex.claimed.Load() {
			continue
		}
		s.srv.m.log.Info("client closed the response stream: cancelling the request", "tool", s.srv.Name,
			"runtime", s.srv.cfg.Runtime, "method", ex.method)
		ex.cancel("the client closed the response stream")
	}
	s.cancelInput("the client's request is over")
	switch {
	case p == nil:
	case c.own:
		p.retire(errRequestDone)
	default:
		p.removeSession(s) // in case a crash moved it and pinning added it
	}
	s.finish()
}

var errRequestDone = stopped("the request it was started for is over")

// launchFor starts a process for one modern request (launcher mode) and
// prepares it: probed, and initialised with the client's identity and
// capabilities when it is legacy.
func (srv *Server) launchFor(ctx context.Context, s *Session, meta *modern.Meta) (*proc, error) {
	p, err := srv.launchAdhoc(ctx, s)
	if err != nil {
		return nil, err
	}
	if err = p.probe(ctx); err == nil && p.era == eraLegacy {
		err = p.initializeFor(ctx, meta)
	}
	if err != nil {
		p.b.End(err)
		<-p.b.Done()
		return nil, err
	}
	return p, nil
}

// Discover answers server/discover (spec 2026-07-28, server/discover) for
// this server: from a pooled process in daemon mode, from a process started
// for the purpose in launcher mode.
func (srv *Server) Discover(ctx context.Context) (json.RawMessage, error) {
	if srv.m.Draining() {
		return nil, errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	var p *proc
	var err error
	if srv.pool != nil {
		if p, err = srv.pool.pick(ctx); err != nil {
			return nil, err
		}
	} else {
		if p, err = srv.launchAdhoc(ctx, nil); err != nil {
			return nil, err
		}
		defer p.retire(errRequestDone)
		if err = p.probe(ctx); err == nil && p.era == eraLegacy {
			err = p.handshake(ctx)
		}
		if err != nil {
			return nil, err
		}
	}
	res, err := p.discoverResult()
	if err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Code: jsonrpc.CodeBackendInvalid, Err: errBadInit,
			Message: fmt.Sprintf("server %q: cannot describe it: %v", srv.Name, err)}
	}
	return res, nil
}

// capsOf reads which server→client requests a client declared in its
// capabilities (initialize's, or a modern request's _meta).
func capsOf(raw json.RawMessage) clientCaps {
	var c struct {
		Sampling    json.RawMessage `json:"sampling"`
		Elicitation json.RawMessage `json:"elicitation"`
		Roots       json.RawMessage `json:"roots"`
	}
	_ = json.Unmarshal(raw, &c)
	present := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }
	return clientCaps{sampling: present(c.Sampling), elicitation: present(c.Elicitation), roots: present(c.Roots)}
}

// cacheable are the methods whose complete results must carry caching
// hints (spec 2026-07-28, server/utilities/caching).
var cacheable = map[string]bool{"tools/list": true, "prompts/list": true, "resources/list": true,
	"resources/templates/list": true, "resources/read": true}

// launchAdhoc is launch for a process that belongs to no published session
// (a modern request's, or one started to answer server/discover): the
// manager tracks it so that shutdown stops it.
func (srv *Server) launchAdhoc(ctx context.Context, s *Session) (*proc, error) {
	p, err := srv.launch(ctx, s)
	if err != nil {
		return nil, err
	}
	m := srv.m
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.adhoc[p] = struct{}{}
	}
	m.mu.Unlock()
	if p.b.Err() != nil { // ended before it was tracked: HandleClose has run or will not find it
		<-p.b.Done()
		m.mu.Lock()
		delete(m.adhoc, p)
		m.mu.Unlock()
	}
	if closed {
		p.b.End(errShutdown)
		<-p.b.Done()
		return nil, errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	return p, nil
}
