package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// Session is one MCP client session (session-era Streamable HTTP), pinned
// to one server process.
//
// In launcher mode the process is the session's own and the session ends
// with it. In daemon mode the process is shared; when it ends, the session
// is pinned to another process on its next request and its resource
// subscriptions are re-established there.
//
// Ids are rewritten in both directions in both modes: client request ids
// become backend-unique integers (package backend), progress tokens become
// backend-unique strings, and server-initiated request ids become
// session-unique integers. Multiplexing is therefore never a special case.
type Session struct {
	id      string
	srv     *Server
	created time.Time
	daemon  bool

	// Set once by Initialize before the session is published.
	protocolVersion string
	clientName      string
	caps            clientCaps
	identity        string // who created the session (identity.go)

	// Modern requests only (stateless.go): the session is the request's
	// own and is never published.
	modern    bool
	shape     func(*jsonrpc.Message) int // adapts the server's response; returns its HTTP status or 0
	call      *Call
	reqParams json.RawMessage // the request's params, for a retry's check (mrtr.go)

	gone     atomic.Bool // no new requests: ended, reclaimed or expired
	stopping atomic.Bool // stopAsync has been called

	mu         sync.Mutex
	proc       *proc // pinned process; nil while unpinned (daemon)
	lastActive time.Time
	expired    bool                 // launcher: max lifetime reached
	ended      bool                 // the session is over
	inflight   map[string]*exchange // by client id
	outbound   map[string]*outReq   // server→client requests by client-facing id
	nextOut    int64
	stream     *Sink // the open GET stream, or nil
	held       []heldMsg
	subs       map[string]bool // daemon: subscribed resource URIs
	level      string          // daemon: the client's logging level ("" = all); modern: the request's ("" = none)
	input      *parked         // modern: waiting for the client's input (mrtr.go)

	closeOnce sync.Once
	closeErr  error
}

// clientCaps are the client capabilities the gateway checks before routing
// a server request to it (daemon mode).
type clientCaps struct {
	sampling, elicitation, roots bool
}

type outReq struct {
	backendID json.RawMessage
	proc      *proc
	sink      *Sink // where it was delivered, or nil (GET/held)
}

type heldMsg struct {
	msg       []byte
	at        time.Time
	backendID json.RawMessage // set for server→client requests
	proc      *proc
}

// ID is the Mcp-Session-Id.
func (s *Session) ID() string { return s.id }

// ProtocolVersion is the version negotiated in initialize.
func (s *Session) ProtocolVersion() string { return s.protocolVersion }

// ClientName is the client's clientInfo "name/version", for logs.
func (s *Session) ClientName() string { return s.clientName }

// isGone reports whether the session takes no new requests: it was ended,
// reclaimed or expired, or (launcher) its process has failed.
func (s *Session) isGone() bool {
	if s.gone.Load() {
		return true
	}
	if s.daemon {
		return false
	}
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	return p != nil && p.b != nil && p.b.Err() != nil
}

func (s *Session) markGone() { s.gone.Store(true) }

func (s *Session) touch() {
	s.mu.Lock()
	s.lastActive = time.Now()
	s.mu.Unlock()
}

func (s *Session) lastActivity() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastActive
}

// idleState returns the last activity and whether requests are in flight.
func (s *Session) idleState() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastActive, len(s.inflight) > 0
}

// expire marks a launcher session as past its process's lifetime; it
// reports whether this call did it.
func (s *Session) expire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone.Store(true)
	if s.expired {
		return false
	}
	s.expired = true
	return true
}

func (s *Session) pinnedProc() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

func (s *Session) subscribed(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[uri]
}

func (s *Session) logLevel() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// ---------------------------------------------------------------------------
// Initialize

// initResult is the part of an initialize result the gateway reads.
type initResult struct {
	ProtocolVersion string `json:"protocolVersion"`
	ServerInfo      struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"serverInfo"`
}

// initParams is the part of a client's initialize the gateway reads.
type initParams struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities"`
}

// SessionVersions are the protocol versions a session may negotiate,
// newest first; the front-end applies each version's transport rules.
var SessionVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

func (srv *Server) newSession(ctx context.Context, clientName string) *Session {
	return &Session{
		id:         newSessionID(),
		srv:        srv,
		created:    time.Now(),
		daemon:     srv.cfg.Mode == "daemon",
		clientName: clientName,
		identity:   identityFrom(ctx),
		lastActive: time.Now(),
		inflight:   make(map[string]*exchange),
		outbound:   make(map[string]*outReq),
		subs:       make(map[string]bool),
	}
}

// Initialize creates a session for a client's initialize request and
// returns it with the response (its id the client's). In launcher mode a
// process is started and the request forwarded to it; in daemon mode the
// answer comes from the pooled process's cached handshake. Errors are
// *Error; a server that refuses initialize yields a nil session and its
// error response.
func (srv *Server) Initialize(ctx context.Context, req *jsonrpc.Message, clientName string) (*Session, *jsonrpc.Message, error) {
	m := srv.m
	if m.Draining() {
		return nil, nil, errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	if err := m.roomForSession(); err != nil {
		return nil, nil, err
	}
	if srv.cfg.Mode == "daemon" {
		return srv.initializeDaemon(ctx, req, clientName)
	}
	s := srv.newSession(ctx, clientName)
	p, err := srv.launch(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	b := p.b

	startup := srv.cfg.Timeouts.Startup
	w := newChanWaiter()
	ictx, cancel := context.WithTimeout(ctx, startup)
	defer cancel()
	if _, err := b.Call(ictx, req, w); err != nil {
		s.close(err)
		return nil, nil, backendError(srv.Name, err)
	}
	var resp *jsonrpc.Message
	select {
	case resp = <-w.resp:
	case err := <-w.err:
		s.close(err)
		return nil, nil, backendError(srv.Name, err)
	case <-ictx.Done():
		s.close(errStartupTimeout)
		if ctx.Err() != nil {
			return nil, nil, &Error{Status: 499, Code: jsonrpc.CodeTimeout, Message: "client went away during initialize", Err: ctx.Err()}
		}
		m.log.Warn("server did not answer initialize in time", "tool", srv.Name, "runtime", srv.cfg.Runtime,
			"startup_timeout_ms", startup.Milliseconds())
		return nil, nil, &Error{
			Status: http.StatusGatewayTimeout, Code: jsonrpc.CodeTimeout, Err: errStartupTimeout,
			Message: fmt.Sprintf("server %q did not answer initialize within %s (servers.%s.timeouts.startup)", srv.Name, startup, srv.Name),
		}
	}
	resp.ID = req.ID
	if resp.Error != nil {
		// The server refused; the client sees its error and no session.
		s.close(errInitRefused)
		return nil, resp, nil
	}
	var ir initResult
	if err := json.Unmarshal(resp.Result, &ir); err != nil || ir.ProtocolVersion == "" {
		s.close(errBadInit)
		return nil, nil, &Error{Status: http.StatusBadGateway, Code: jsonrpc.CodeBackendInvalid, Err: errBadInit,
			Message: fmt.Sprintf("server %q answered initialize without a protocolVersion", srv.Name)}
	}
	if !contains(SessionVersions, ir.ProtocolVersion) {
		s.close(errBadInit)
		return nil, nil, &Error{Status: http.StatusBadGateway, Code: jsonrpc.CodeBackendInvalid, Err: errBadInit,
			Message: fmt.Sprintf("server %q negotiated protocol version %q, which the gateway does not support (supported: %v)",
				srv.Name, ir.ProtocolVersion, SessionVersions)}
	}
	s.protocolVersion = ir.ProtocolVersion
	if err := m.add(s); err != nil {
		s.close(errShutdown)
		return nil, nil, err
	}
	if s.isGone() { // the process died between answering and being published
		m.remove(s)
		return nil, nil, backendError(srv.Name, s.closeErr)
	}
	m.log.Info("session started", "tool", srv.Name, "runtime", srv.cfg.Runtime, "session_id", s.id,
		"process", b.ID(), "protocol_version", s.protocolVersion, "client", s.clientIdentity(), "client_info", clientName,
		"startup_ms", time.Since(s.created).Milliseconds())
	return s, resp, nil
}

// launch starts a launcher-mode process in a new process slot, owned by s
// when s is not nil (s is registered before the start, so that a process
// that dies at once ends it). From its return the slot is released by
// proc.HandleClose.
func (srv *Server) launch(ctx context.Context, s *Session) (*proc, error) {
	m := srv.m
	if err := m.reserve(ctx, srv); err != nil {
		return nil, err
	}
	p := newProc(srv, false)
	if s != nil {
		p.sessions[s] = struct{}{}
		s.proc = p
	}
	b, err := srv.start(p)
	if err != nil {
		m.release(srv)
		m.log.Error("cannot start server", "tool", srv.Name, "runtime", srv.cfg.Runtime, "error", err.Error())
		return nil, errUnavailable(fmt.Sprintf("server %q cannot be started: %v", srv.Name, err), 30*time.Second, err)
	}
	p.b = b
	return p, nil
}

func (srv *Server) initializeDaemon(ctx context.Context, req *jsonrpc.Message, clientName string) (*Session, *jsonrpc.Message, error) {
	m := srv.m
	var ip initParams
	_ = json.Unmarshal(req.Params, &ip)
	p, err := srv.pool.pick(ctx)
	if err != nil {
		return nil, nil, err
	}
	if p.initResult == nil {
		return nil, nil, errModernOnly(srv.Name)
	}
	result, version, err := p.initResponse(ip.ProtocolVersion)
	if err != nil {
		return nil, nil, &Error{Status: http.StatusBadGateway, Code: jsonrpc.CodeBackendInvalid, Err: errBadInit,
			Message: fmt.Sprintf("server %q: cached initialize result is unusable: %v", srv.Name, err)}
	}
	s := srv.newSession(ctx, clientName)
	s.protocolVersion = version
	s.caps = capsOf(ip.Capabilities)
	s.proc = p
	p.addSession(s)
	if err := m.add(s); err != nil {
		p.removeSession(s)
		return nil, nil, err
	}
	m.log.Info("session started", "tool", srv.Name, "runtime", srv.cfg.Runtime, "session_id", s.id,
		"process", p.b.ID(), "mode", "daemon", "protocol_version", version, "client", s.clientIdentity(), "client_info", clientName,
		"startup_ms", time.Since(s.created).Milliseconds())
	return s, &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: result}, nil
}

var (
	errStartupTimeout = stopped("startup timeout")
	errInitRefused    = errors.New("server refused initialize")
	errBadInit        = errors.New("invalid initialize result")
	errClientEnded    = stopped("client ended the session (DELETE)")
)

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

type chanWaiter struct {
	resp chan *jsonrpc.Message
	err  chan error
}

func newChanWaiter() *chanWaiter {
	return &chanWaiter{resp: make(chan *jsonrpc.Message, 1), err: make(chan error, 1)}
}
func (w *chanWaiter) Respond(m *jsonrpc.Message) { w.resp <- m }
func (w *chanWaiter) Fail(err error)             { w.err <- err }

// ---------------------------------------------------------------------------
// Client → backend

// pinned returns the session's process, pinning it to a new one first in
// daemon mode when its process has ended or is draining.
func (s *Session) pinned(ctx context.Context) (*proc, error) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if !s.daemon || (p != nil && p.usable()) {
		return p, nil
	}
	np, err := s.srv.pool.pick(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil, errSessionGone()
	}
	old := s.proc
	s.proc = np
	subs := make([]string, 0, len(s.subs))
	for uri := range s.subs {
		subs = append(subs, uri)
	}
	level := s.level
	s.mu.Unlock()
	if old != nil {
		old.removeSession(s)
	}
	np.addSession(s)
	s.srv.m.log.Info("session moved to another server process", "tool", s.srv.Name, "runtime", s.srv.cfg.Runtime,
		"session_id", s.id, "process", np.b.ID(), "subscriptions", len(subs))
	for _, uri := range subs { // re-establish subscriptions (issue 4)
		params, _ := json.Marshal(map[string]string{"uri": uri})
		np.callDetached(&jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "resources/subscribe", Params: params})
	}
	if level != "" {
		np.syncLevel()
	}
	return np, nil
}

// answer completes a request locally with result.
func answer(sink *Sink, id json.RawMessage, result string) {
	sink.expectOne()
	sink.final(jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: id, Result: json.RawMessage(result)}), 0)
}

// Begin forwards a client request and arranges for exactly one outcome to
// reach sink: the backend's response, a timeout error, a backend-failure
// error, or nothing if the client cancels it. Errors are *Error and mean
// nothing was forwarded.
func (s *Session) Begin(ctx context.Context, req *jsonrpc.Message, sink *Sink) error {
	if s.isGone() {
		return errSessionGone()
	}
	if s.srv.m.Draining() {
		return errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	if req.Method == "initialize" {
		return &Error{Status: http.StatusBadRequest, Code: jsonrpc.CodeInvalidRequest,
			Message: "this session is already initialized; start a new session without Mcp-Session-Id"}
	}
	key := jsonrpc.IDKey(req.ID)
	s.mu.Lock()
	_, dup := s.inflight[key]
	s.mu.Unlock()
	if dup {
		return &Error{Status: http.StatusBadRequest, Code: jsonrpc.CodeInvalidRequest,
			Message: fmt.Sprintf("request id %s is already in flight in this session", key)}
	}
	s.touch()
	if s.daemon {
		if done, err := s.local(req, sink); done || err != nil {
			return err
		}
	}
	if err := s.srv.acquire(ctx); err != nil {
		return err
	}
	p, err := s.pinned(ctx)
	if err != nil {
		s.srv.releaseSlot()
		return err
	}
	if err := p.acquireSlot(ctx); err != nil {
		s.srv.releaseSlot()
		return err
	}
	release := func() { p.releaseSlot(); s.srv.releaseSlot() }
	ex := &exchange{s: s, p: p, clientID: req.ID, key: key, sink: sink, method: req.Method, release: release}
	s.mu.Lock()
	if s.ended || s.inflight[key] != nil {
		s.mu.Unlock()
		release()
		if s.ended {
			return errSessionGone()
		}
		return &Error{Status: http.StatusBadRequest, Code: jsonrpc.CodeInvalidRequest,
			Message: fmt.Sprintf("request id %s is already in flight in this session", key)}
	}
	s.inflight[key] = ex
	s.lastActive = time.Now()
	s.mu.Unlock()
	params, err := p.track(ex, req.Params, jsonrpc.MetaProgressToken(req.Params))
	if err != nil {
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
		release()
		return backendError(s.srv.Name, err)
	}
	sink.expectOne()
	out := *req
	out.Params = params

	ex.mu.Lock() // held until gwID is known, so a timeout cannot miss it
	timeout := s.srv.cfg.Timeouts.Request
	ex.timer = time.AfterFunc(timeout, func() { ex.timeout(timeout) })
	gwID, err := p.b.Call(ctx, &out, ex)
	ex.gwID = gwID
	ex.mu.Unlock()
	if err != nil && ex.claim() {
		ex.finish(nil, 0)
		return backendError(s.srv.Name, err)
	}
	return nil
}

// local handles the requests a daemon-mode gateway answers itself: the
// logging level is per session (the gateway filters), and unsubscribing
// keeps the backend subscription while other sessions on the process need
// it. Subscriptions are recorded so they survive a move to another process.
func (s *Session) local(req *jsonrpc.Message, sink *Sink) (bool, error) {
	switch req.Method {
	case "logging/setLevel", "resources/subscribe", "resources/unsubscribe":
	default:
		return false, nil // the hot path: no need to decode the params
	}
	f := jsonrpc.ParamsFields(req.Params)
	switch req.Method {
	case "logging/setLevel":
		if levelRank(f.Level) == 0 && f.Level != "debug" {
			return false, &Error{Status: http.StatusBadRequest, Code: jsonrpc.CodeInvalidParams,
				Message: fmt.Sprintf("unknown logging level %q", f.Level)}
		}
		s.mu.Lock()
		s.level = f.Level
		p := s.proc
		s.mu.Unlock()
		if p != nil {
			p.syncLevel()
		}
		answer(sink, req.ID, "{}")
		return true, nil
	case "resources/subscribe":
		s.mu.Lock()
		s.subs[f.URI] = true
		s.mu.Unlock()
	case "resources/unsubscribe":
		s.mu.Lock()
		delete(s.subs, f.URI)
		p := s.proc
		s.mu.Unlock()
		if s.srv.listeners.wantsURI(f.URI) { // a subscription stream still needs it (listen.go)
			answer(sink, req.ID, "{}")
			return true, nil
		}
		if p != nil {
			for _, o := range p.sessionList() {
				if o != s && o.subscribed(f.URI) {
					answer(sink, req.ID, "{}")
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// Deliver forwards a client notification or a client response to a
// server-initiated request.
func (s *Session) Deliver(ctx context.Context, m *jsonrpc.Message) error {
	if s.isGone() {
		return errSessionGone()
	}
	s.touch()
	switch {
	case m.Kind == jsonrpc.KindResponse:
		key := jsonrpc.IDKey(m.ID)
		s.mu.Lock()
		out := s.outbound[key]
		delete(s.outbound, key)
		s.mu.Unlock()
		if out == nil {
			s.srv.m.log.Debug("client answered an unknown server request", "tool", s.srv.Name, "session_id", s.id, "id", key)
			return nil
		}
		fwd := *m
		fwd.ID = out.backendID
		_ = out.proc.b.Send(ctx, &fwd) // the process may be gone; nothing waits for this
		return nil
	case m.Method == "notifications/cancelled":
		f := jsonrpc.ParamsFields(m.Params)
		if f.RequestID == nil {
			return nil
		}
		s.mu.Lock()
		ex := s.inflight[jsonrpc.IDKey(f.RequestID)]
		s.mu.Unlock()
		if ex == nil || !ex.claim() {
			return nil // already answered: nothing to cancel
		}
		ex.mu.Lock()
		gwID := ex.gwID
		ex.mu.Unlock()
		ex.p.b.Forget(gwID)
		params, err := jsonrpc.ReplaceParamsField(m.Params, "requestId", jsonrpc.IntID(gwID))
		ex.finish(nil, 0) // the client asked for no response
		if err != nil {
			return nil
		}
		return s.sendBackend(ctx, ex.p, &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: m.Method, Params: params})
	case s.daemon && m.Method == "notifications/initialized":
		return nil // the gateway completed the handshake itself
	default:
		p := s.pinnedProc()
		if p == nil {
			return nil // daemon: no process right now; client notifications are advisory
		}
		return s.sendBackend(ctx, p, m)
	}
}

func (s *Session) sendBackend(ctx context.Context, p *proc, m *jsonrpc.Message) error {
	if err := p.b.Send(ctx, m); err != nil {
		if s.daemon {
			return nil // the session moves on its next request
		}
		return backendError(s.srv.Name, err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Backend → client

// fromServer delivers a server-initiated request or notification that
// belongs to this session (proc.owner). Logging and server requests go to
// the POST stream of the session's only request in flight, else to the GET
// stream (MCP spec, basic/transports).
func (s *Session) fromServer(p *proc, m *jsonrpc.Message) {
	if s.modern {
		switch {
		case m.Kind == jsonrpc.KindRequest:
			s.inputRequest(p, m)
			return
		case m.Method == "notifications/message":
			// Only what the request asked for with _meta logLevel.
			if lvl := s.logLevel(); lvl == "" || levelRank(jsonrpc.ParamsFields(m.Params).Level) < levelRank(lvl) {
				return
			}
		}
	} else if s.daemon {
		switch m.Method {
		case "sampling/createMessage", "elicitation/create", "roots/list":
			ok := map[string]bool{"sampling/createMessage": s.caps.sampling, "elicitation/create": s.caps.elicitation, "roots/list": s.caps.roots}[m.Method]
			if !ok {
				p.refuse(m.ID, fmt.Sprintf("the client of this session did not declare support for %s", m.Method))
				return
			}
		case "notifications/message":
			if lvl := s.logLevel(); lvl != "" && levelRank(jsonrpc.ParamsFields(m.Params).Level) < levelRank(lvl) {
				return
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		if m.Kind == jsonrpc.KindRequest {
			p.refuse(m.ID, "the client session has ended")
		}
		return
	}
	var target *Sink
	if m.Kind == jsonrpc.KindRequest || m.Method == "notifications/message" {
		if len(s.inflight) == 1 {
			for _, ex := range s.inflight {
				target = ex.sink
			}
		}
	}
	var backendID json.RawMessage
	if m.Kind == jsonrpc.KindRequest {
		s.nextOut++
		cid := strconv.AppendInt(nil, s.nextOut, 10)
		backendID = m.ID
		s.outbound[string(cid)] = &outReq{backendID: m.ID, proc: p, sink: target}
		fwd := *m
		fwd.ID = cid
		m = &fwd
	}
	line := jsonrpc.Encode(m)
	if target != nil && target.push(line) {
		return
	}
	s.toStreamLocked(line, backendID, p)
}

// withdraw forwards the server's cancellation of one of its requests to
// this session, if the request was this session's.
func (s *Session) withdraw(p *proc, backendID json.RawMessage, m *jsonrpc.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cid, out := range s.outbound {
		if out.proc != p || jsonrpc.IDKey(out.backendID) != jsonrpc.IDKey(backendID) {
			continue
		}
		delete(s.outbound, cid)
		params, err := jsonrpc.ReplaceParamsField(m.Params, "requestId", json.RawMessage(cid))
		if err != nil {
			return true
		}
		line := jsonrpc.Encode(&jsonrpc.Message{Kind: m.Kind, Method: m.Method, Params: params})
		if out.sink != nil && out.sink.push(line) {
			return true
		}
		s.toStreamLocked(line, nil, nil)
		return true
	}
	return false
}

// deliverToRequest queues a message related to an in-flight request on
// that request's stream.
func (s *Session) deliverToRequest(ex *exchange, line []byte) { ex.sink.push(line) }

// deliverToStream queues a message for the GET stream.
func (s *Session) deliverToStream(line []byte, backendID json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.toStreamLocked(line, backendID, nil)
	}
}

// toStreamLocked sends to the GET stream or holds the message until one
// opens. Called with s.mu held.
func (s *Session) toStreamLocked(line []byte, backendID json.RawMessage, p *proc) {
	if s.modern {
		// A modern request's session has no stream for unrelated
		// messages (list changes reach listeners at the process level).
		s.srv.m.log.Debug("dropping a server message unrelated to the modern request", "tool", s.srv.Name,
			"runtime", s.srv.cfg.Runtime, "message", truncateBytes(line, 200))
		if backendID != nil && p != nil {
			p.refuse(backendID, "the client of this request cannot receive it")
		}
		return
	}
	if s.stream != nil && s.stream.push(line) {
		return
	}
	max := s.srv.m.cfg.Limits.MaxHeldMessages
	if len(s.held) >= max {
		s.dropHeldLocked(s.held[0], "too many messages held")
		s.held = s.held[1:]
	}
	s.held = append(s.held, heldMsg{msg: line, at: time.Now(), backendID: backendID, proc: p})
}

// dropHeldLocked accounts for a held message that will never be delivered;
// a server request among them is answered with an error so the server does
// not wait for it forever.
func (s *Session) dropHeldLocked(h heldMsg, why string) {
	s.srv.m.log.Warn("dropping a server message: no GET stream is open to receive it",
		"tool", s.srv.Name, "runtime", s.srv.cfg.Runtime, "session_id", s.id, "reason", why)
	if h.backendID == nil || h.proc == nil {
		return
	}
	for cid, out := range s.outbound {
		if out.proc == h.proc && jsonrpc.IDKey(out.backendID) == jsonrpc.IDKey(h.backendID) {
			delete(s.outbound, cid)
		}
	}
	h.proc.refuse(h.backendID, "the client has no open stream to receive this request")
}

// expireHeld drops held messages older than limits.hold_messages.
func (s *Session) expireHeld(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hold := s.srv.m.cfg.Limits.HoldMessages
	i := 0
	for ; i < len(s.held) && now.Sub(s.held[i].at) >= hold; i++ {
		s.dropHeldLocked(s.held[i], "held longer than limits.hold_messages")
	}
	s.held = s.held[i:]
}

// backendEnded ends a launcher session with its process.
func (s *Session) backendEnded(err error) {
	s.closeOnce.Do(func() { s.closeErr = err })
	s.finish()
}

// unpin forgets a daemon session's ended process; the next request pins
// the session to another.
func (s *Session) unpin(p *proc) {
	s.mu.Lock()
	if s.proc == p {
		s.proc = nil
	}
	s.mu.Unlock()
}

// finish ends the session: no longer found, streams closed.
func (s *Session) finish() {
	s.markGone()
	s.srv.m.remove(s)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	stream := s.stream
	s.stream = nil
	held := len(s.held)
	s.held = nil
	s.mu.Unlock()
	if stream != nil {
		stream.close()
	}
	if held > 0 {
		s.srv.m.log.Warn("session ended with undelivered server messages", "tool", s.srv.Name,
			"session_id", s.id, "messages", held)
	}
}

// OpenStream attaches a new GET stream, replacing (and ending) any earlier
// one, and hands it every held message.
func (s *Session) OpenStream() (*Sink, error) {
	if s.isGone() {
		return nil, errSessionGone()
	}
	if s.srv.m.Draining() {
		return nil, errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	sink := newStreamSink(1024)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil, errSessionGone()
	}
	old := s.stream
	s.stream = sink
	for _, h := range s.held {
		sink.push(h.msg)
	}
	s.held = nil
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	return sink, nil
}

// AttachStream makes sink the session's stream for server-initiated
// messages (legacy SSE: the one stream carries everything), handing it the
// held messages.
func (s *Session) AttachStream(sink *Sink) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return errSessionGone()
	}
	old := s.stream
	s.stream = sink
	for _, h := range s.held {
		sink.push(h.msg)
	}
	s.held = nil
	s.mu.Unlock()
	if old != nil && old != sink {
		old.close()
	}
	return nil
}

// CloseStream detaches sink if it is still the session's GET stream; what it
// had not written is held again for the next stream.
func (s *Session) CloseStream(sink *Sink) {
	rest := sink.drain()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == sink {
		s.stream = nil
	}
	if s.ended {
		return
	}
	if s.stream != nil { // replaced by a newer stream: hand over what is left
		for _, m := range rest {
			s.toStreamLocked(m, nil, nil)
		}
		return
	}
	now := time.Now()
	held := make([]heldMsg, 0, len(rest)+len(s.held))
	for _, m := range rest {
		held = append(held, heldMsg{msg: m, at: now})
	}
	s.held = append(held, s.held...)
}

func (s *Session) closeStream() {
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	if st != nil {
		st.close()
	}
}

// End is the client's DELETE: the session is gone at once; its process
// (launcher) is stopped in the background.
func (s *Session) End() {
	s.srv.m.remove(s)
	s.srv.m.stopAsync(s, errClientEnded)
}

// close ends the session and waits: in launcher mode by stopping its
// process, in daemon mode by cancelling its requests and leaving the
// shared process.
func (s *Session) close(why error) {
	s.markGone()
	s.closeOnce.Do(func() { s.closeErr = why })
	if !s.daemon {
		if p := s.pinnedProc(); p != nil && p.b != nil {
			p.b.End(why) // the log and the failed requests say why
			<-p.b.Done()
		} else {
			s.finish()
		}
		return
	}
	s.mu.Lock()
	pending := make([]*exchange, 0, len(s.inflight))
	for _, ex := range s.inflight {
		pending = append(pending, ex)
	}
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	for _, ex := range pending {
		ex.cancel("the client session ended")
	}
	if p != nil {
		p.removeSession(s)
	}
	s.finish()
}
