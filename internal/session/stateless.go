package session

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// Modern (2026-07-28) requests are stateless: each one carries its own
// protocol version, client identity and capabilities in _meta (spec
// 2026-07-28, basic/index, "Statelessness"). The gateway serves each as a
// Call of its own that lives exactly as long as the request (across its
// rounds, when it needs the client's input: mrtr.go) — never published,
// never found by id. Its exchange is the same type as a session's, so id
// rewriting, progress routing, timeouts, cancellation and crash handling
// are the same code as for session-era requests.
//
//   - daemon mode: the request goes to the least-loaded pooled process;
//     pooled processes were initialised once, and probed with
//     server/discover only if they refused (pool.go).
//   - launcher mode: the request goes to its identity's warm process, or to
//     one started for it (probed, and initialised with the client's own
//     clientInfo and capabilities when it is legacy) that then waits for
//     the identity's next request (warm.go); with isolation: request, the
//     process is stopped when the request is over.
//
// A legacy process gets the request without the io.modelcontextprotocol/*
// _meta keys, and its result gets resultType "complete", the server's
// serverInfo and, for cacheable methods, caching hints. A modern process
// gets the request as it came.

// Call is one modern request in flight.
type Call struct {
	base
	caps   clientCaps
	level  string          // the request's _meta logLevel ("" = no log messages)
	params json.RawMessage // the request's params, for a retry's check (mrtr.go)
	method string
	own    bool // launcher: the process is the request's own (isolation: request)
	warm   bool // launcher: the process is its identity's (warm.go)

	// legacy is set when the process is session-era: results are completed
	// for a modern client with the server's serverInfo.
	legacy     bool
	serverInfo json.RawMessage

	input *parked // guarded by base.mu: waiting for the client's input (mrtr.go)
}

var _ owner = (*Call)(nil)

// Stateless forwards one modern request. Exactly one outcome reaches sink,
// as with Session.Begin; the front-end calls End once the response stream
// is over. Errors are *Error and mean nothing was forwarded.
func (srv *Server) Stateless(ctx context.Context, caller Caller, req *jsonrpc.Message, meta *modern.Meta, sink *Sink) (*Call, error) {
	if srv.m.Draining() {
		return nil, errDraining()
	}
	if srv.agg() != nil {
		return srv.statelessAggregate(ctx, caller, req, meta, sink)
	}
	c := &Call{
		base:   newBase(srv, "", caller),
		caps:   capsOf(meta.ClientCapabilities),
		level:  meta.LogLevel,
		params: req.Params,
		method: req.Method,
		own:    srv.pool == nil && !srv.reuses(),
		warm:   srv.reuses(),
	}
	var p *proc
	var err error
	switch {
	case srv.pool != nil:
		p, err = srv.pool.pick(ctx)
	case c.warm:
		p, err = srv.acquireWarm(ctx, caller, meta)
	default:
		p, err = srv.launchFor(ctx, meta)
	}
	if err != nil {
		return nil, err
	}
	c.proc = p
	fwd := *req
	if p.era == eraLegacy {
		params, err := meta.StripMeta(req.Params) // reuses what Validate parsed
		if err != nil {
			c.End()
			return nil, errInvalidParams("invalid params: " + err.Error())
		}
		fwd.Params = params
		c.legacy, c.serverInfo = true, p.serverInfo
	}
	pin := func(context.Context) (*proc, error) { return p, nil }
	if srv.pool != nil {
		pin = func(ctx context.Context) (*proc, error) { return c.repin(ctx) }
	}
	p, release, err := srv.admit(ctx, pin)
	if err == nil {
		err = forward(ctx, c, p, &fwd, sink, release)
	}
	if err != nil {
		c.End()
		return nil, err
	}
	return c, nil
}

// repin is the daemon-mode pin of a call: the process picked for it while
// it is still usable, else another.
func (c *Call) repin(ctx context.Context) (*proc, error) {
	if p := c.pinnedProc(); p != nil && p.usable() {
		return p, nil
	}
	p, err := c.srv.pool.pick(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	return p, nil
}

// shape implements owner: a server's error gets the HTTP status of the
// modern transport, and a session-era server's result is completed for a
// modern client.
func (c *Call) shape(m *jsonrpc.Message) problem.Kind {
	if m.Error != nil {
		return errorKind(m.Error)
	}
	if !c.legacy {
		return 0
	}
	res, err := modern.CompleteResult(m.Result, c.serverInfo, cacheable[c.method])
	if err != nil {
		*m = *jsonrpc.NewError(m.ID, jsonrpc.CodeBackendInvalid,
			fmt.Sprintf("server %q sent an invalid result: %v", c.srv.Name, err), nil)
		return problem.BadGateway
	}
	m.Result = res
	return 0
}

// fromServer implements owner. A server request during the call becomes
// an input_required round (mrtr.go); a log message reaches the response
// stream only at the level the request asked for with _meta logLevel;
// anything else has no client to go to and is dropped.
func (c *Call) fromServer(p *proc, m *jsonrpc.Message) {
	if m.Kind == jsonrpc.KindRequest {
		c.inputRequest(p, m)
		return
	}
	if m.Method == "notifications/message" && c.level != "" && levelRank(jsonrpc.ParamsFields(m.Params).Level) >= levelRank(c.level) {
		c.mu.Lock()
		ex := c.onlyLocked()
		c.mu.Unlock()
		if ex != nil && ex.sink.push(jsonrpc.Encode(m)) {
			return
		}
	}
	c.srv.m.log.Debug("dropping a server message unrelated to the modern request", "tool", c.srv.Name,
		"runtime", c.srv.cfg.Runtime, "method", m.Method)
}

// errorKind is the problem kind of a server's error response to a modern
// request (spec 2026-07-28, basic/transports/streamable-http): not found
// for an unknown method, bad request for the modern protocol errors, else
// none (200).
func errorKind(raw json.RawMessage) problem.Kind {
	var eo jsonrpc.ErrorObject
	if json.Unmarshal(raw, &eo) != nil {
		return 0
	}
	switch {
	case eo.Code == jsonrpc.CodeMethodNotFound:
		return problem.NotFound
	case modern.IsModernError(raw):
		return problem.BadRequest
	}
	return 0
}

// End finishes the call once its response stream is over. A request still
// in flight was given up by the client — closing the response stream is
// cancellation (spec 2026-07-28, basic/patterns/cancellation) — and the
// server gets notifications/cancelled. The request's own process (launcher
// mode, isolation: request) is stopped; its identity's warm process
// (warm.go) waits for the next request.
func (c *Call) End() {
	if c.waitingForRetry() {
		return // the request waits for the client's retry (mrtr.go)
	}
	for _, ex := range c.pending() {
		if ex.claimed.Load() {
			continue
		}
		c.srv.m.log.Info("client closed the response stream: cancelling the request", "tool", c.srv.Name,
			"runtime", c.srv.cfg.Runtime, "method", ex.method)
		ex.cancel("the client closed the response stream")
		if c.warm {
			c.srv.taint(ex.p) // it may still be busy with it: not reused (warm.go)
		}
	}
	c.cancelInput("the client's request is over")
	c.mu.Lock()
	again := c.ended
	c.ended = true
	p := c.proc
	c.mu.Unlock()
	switch {
	case p == nil, again: // a warm process is released once
	case c.own:
		p.retire(errRequestDone)
	case c.warm:
		c.srv.releaseWarm(p)
	}
}

var errRequestDone = stopped("the request it was started for is over")

// launchFor starts a process for one modern request (launcher mode) and
// prepares it: probed, and initialised with the client's identity and
// capabilities when it is legacy.
func (srv *Server) launchFor(ctx context.Context, meta *modern.Meta) (*proc, error) {
	p, err := srv.launchAdhoc(ctx)
	if err != nil {
		return nil, err
	}
	if err = p.probe(ctx); err == nil && p.era == eraLegacy {
		err = p.initializeFor(ctx, meta)
	}
	if err != nil {
		p.retire(err) // answered first, stopped in the background
		return nil, err
	}
	return p, nil
}

// Discover answers server/discover (spec 2026-07-28, server/discover) for
// this server: from a pooled process in daemon mode, from a process started
// for the purpose in launcher mode.
func (srv *Server) Discover(ctx context.Context) (json.RawMessage, error) {
	if srv.m.Draining() {
		return nil, errDraining()
	}
	var p *proc
	var err error
	if srv.pool != nil {
		if p, err = srv.pool.pick(ctx); err != nil {
			return nil, err
		}
	} else {
		if p, err = srv.launchAdhoc(ctx); err != nil {
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
		return nil, errBadBackend(errBadInit, "server %q: cannot describe it: %v", srv.Name, err)
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

// launchAdhoc is launch for a process that belongs to no session (a modern
// request's, or one started to answer server/discover): the manager tracks
// it so that shutdown stops it.
func (srv *Server) launchAdhoc(ctx context.Context) (*proc, error) {
	p, err := srv.launch(ctx, nil)
	if err != nil {
		return nil, err
	}
	if !srv.m.trackAdhoc(p) {
		p.b.End(errShutdown)
		<-p.b.Done()
		return nil, errDraining()
	}
	return p, nil
}
