package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// Session is one MCP client session (session-era Streamable HTTP, or a
// legacy HTTP+SSE stream), pinned to one server process.
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
	base
	created time.Time
	daemon  bool

	// Set once by Initialize before the session is published.
	protocolVersion string
	caps            clientCaps

	gone      atomic.Bool // no new requests: ended, reclaimed or expired
	stopping  atomic.Bool // stopAsync has been called
	published atomic.Bool // Manager.add accepted it: its end is logged

	// Guarded by base.mu.
	expired  bool               // launcher: max lifetime reached
	outbound map[string]*outReq // server→client requests by client-facing id
	nextOut  int64
	streams  []*Sink   // the open GET streams (or the one HTTP+SSE stream)
	rr       int       // the stream the next message tries first
	detached time.Time // when the last stream closed (reclaim.go)
	held     []heldMsg
	subs     map[string]bool // daemon: subscribed resource URIs
	level    string          // daemon: the client's logging level ("" = all)

	closeOnce sync.Once
	closeErr  error

	resume resumeState // resumable streams (resume.go)

	// agg is set for a session of an aggregate (aggregate.go), which has
	// no process of its own.
	agg *aggSession
	// instructions are the server's initialize instructions, kept for a
	// member session of an aggregate.
	instructions string
	// member is set for a member session of an aggregate: on a daemon
	// process its list requests use the process's cache (listcache.go).
	member atomic.Bool
}

var _ owner = (*Session)(nil)

// clientCaps are the client capabilities the gateway checks before routing
// a server request to a client.
type clientCaps struct {
	sampling, elicitation, roots bool
}

// has reports whether the client declared what a server request needs.
func (c clientCaps) has(method string) bool {
	switch method {
	case "sampling/createMessage":
		return c.sampling
	case "elicitation/create":
		return c.elicitation
	case "roots/list":
		return c.roots
	}
	return false
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
func (s *Session) ClientName() string { return s.caller.Client }

// Identity is the identity that created the session.
func (s *Session) Identity() string { return s.caller.Identity }

// shape implements owner: a session's client gets the server's responses
// as they are.
func (s *Session) shape(*jsonrpc.Message) problem.Kind { return 0 }

// isGone reports whether the session takes no new requests: it was ended,
// reclaimed or expired, or (launcher) its process has failed.
func (s *Session) isGone() bool {
	if s.gone.Load() {
		return true
	}
	if s.daemon {
		return false
	}
	p := s.pinnedProc()
	return p != nil && p.b != nil && p.b.Err() != nil
}

func (s *Session) markGone() { s.gone.Store(true) }

func (s *Session) lastActivity() time.Time {
	last, _ := s.idleState()
	return last
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

// initParams is the part of a client's initialize the gateway reads.
type initParams struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities"`
}

// sessionVersions are the protocol versions a session may negotiate,
// newest first; the front-end applies each version's transport rules.
var sessionVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// SessionVersions returns the protocol versions a session may negotiate,
// newest first.
func SessionVersions() []string { return slices.Clone(sessionVersions) }

func (srv *Server) newSession(caller Caller) *Session {
	return &Session{
		base:     newBase(srv, srv.m.newID(), caller),
		created:  time.Now(),
		daemon:   srv.cfg.Mode == modeDaemon,
		outbound: make(map[string]*outReq),
		subs:     make(map[string]bool),
	}
}

// Initialize creates a session for a client's initialize request and
// returns it with the response (its id the client's). In launcher mode a
// process is started and the request forwarded to it; in daemon mode the
// answer comes from the pooled process's cached handshake. Errors are
// *Error; a server that refuses initialize yields a nil session and its
// error response.
func (srv *Server) Initialize(ctx context.Context, caller Caller, req *jsonrpc.Message) (*Session, *jsonrpc.Message, error) {
	m := srv.m
	if m.Draining() {
		return nil, nil, errDraining()
	}
	if err := m.roomForSession(); err != nil {
		srv.rejected("session_limit")
		return nil, nil, err
	}
	if srv.agg() != nil {
		return srv.initializeAggregate(ctx, caller, req)
	}
	if srv.pool != nil {
		return srv.initializeDaemon(ctx, caller, req)
	}
	s := srv.newSession(caller)
	p, err := srv.launch(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, srv.cfg.Timeouts.Startup)
	defer cancel()
	resp, err := p.b.Roundtrip(ictx, req)
	// A failed start is answered at once and the process stopped in the
	// background: the client gets its 504 at the configured startup time,
	// not after the stop sequence's grace periods.
	switch {
	case err == nil:
	case ctx.Err() != nil:
		s.abandon(stopped("the client went away during initialize"))
		return nil, nil, clientGone("during initialize")
	case ictx.Err() != nil:
		s.abandon(errStartupTimeout)
		m.log.Warn("server did not answer initialize in time", "tool", srv.Name, "runtime", srv.cfg.Runtime,
			"startup_timeout_ms", srv.cfg.Timeouts.Startup.Milliseconds())
		return nil, nil, errStartup(srv)
	default:
		s.abandon(err)
		return nil, nil, backendError(srv.Name, err)
	}
	resp.ID = req.ID
	if resp.Error != nil {
		// The server refused; the client sees its error and no session.
		s.close(errInitRefused)
		return nil, resp, nil
	}
	version, err := checkInitResult(srv, resp.Result)
	if err != nil {
		s.close(errBadInit)
		return nil, nil, err
	}
	s.protocolVersion = version
	resp.Result = srv.declareListChanged(resp.Result)
	if err := m.add(s); err != nil {
		s.close(errShutdown)
		return nil, nil, err
	}
	if s.isGone() { // the process died between answering and being published
		m.remove(s)
		return nil, nil, backendError(srv.Name, s.closeErr)
	}
	m.log.Info("session started", "tool", srv.Name, "runtime", srv.cfg.Runtime, "session_id", s.id,
		"process", p.b.ID(), "protocol_version", s.protocolVersion, "client", caller.logName(), "client_info", caller.Client,
		"startup_ms", time.Since(s.created).Milliseconds())
	return s, resp, nil
}

// checkInitResult is the one check of an initialize result: it must name
// a protocol version the gateway supports for sessions. It returns that
// version, or a 502 error.
func checkInitResult(srv *Server, result json.RawMessage) (string, error) {
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(result, &ir); err != nil || ir.ProtocolVersion == "" {
		return "", errBadBackend(errBadInit, "server %q answered initialize without a protocolVersion", srv.Name)
	}
	if !slices.Contains(sessionVersions, ir.ProtocolVersion) {
		return "", errBadBackend(errBadInit, "server %q negotiated protocol version %q, which the gateway does not support (supported: %v)",
			srv.Name, clip.String(ir.ProtocolVersion, 40), sessionVersions)
	}
	return ir.ProtocolVersion, nil
}

// launch starts a launcher-mode process in a new process slot, pinned to s
// when s is not nil (s is registered before the start, so that a process
// that dies at once ends it). From its return the slot is released by
// proc.HandleClose.
func (srv *Server) launch(ctx context.Context, s *Session) (_ *proc, err error) {
	m := srv.m
	if err := m.reserve(ctx, srv); err != nil {
		return nil, err
	}
	_, endSpan := srv.span(ctx, "process start")
	defer func() { endSpan(err) }()
	p := newProc(srv, false)
	if s != nil {
		p.sessions[s] = struct{}{}
		s.proc = p
	}
	if err := srv.startBackend(p); err != nil {
		m.release(srv, false)
		return nil, err
	}
	srv.observe(Event{Kind: ProcessStarted, Class: "ok", Duration: time.Since(p.started)})
	return p, nil
}

// startBackend starts p's process through the launcher. The start is
// bounded by the startup timeout and by the gateway's shutdown, not by the
// client that asked for it (a daemon process outlives its first client).
func (srv *Server) startBackend(p *proc) error {
	b, err := srv.m.launcher.Start(srv.m.ctx, srv.cfg, p)
	if err != nil {
		srv.m.log.Error("cannot start server", "tool", srv.Name, "runtime", srv.cfg.Runtime, "error", err.Error())
		srv.observe(Event{Kind: ProcessStarted, Class: "failed", Duration: time.Since(p.started)})
		return errUnavailable(fmt.Sprintf("server %q cannot be started: %v", srv.Name, err), 30*time.Second, err)
	}
	p.b = b
	return nil
}

func (srv *Server) initializeDaemon(ctx context.Context, caller Caller, req *jsonrpc.Message) (*Session, *jsonrpc.Message, error) {
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
		return nil, nil, errBadBackend(errBadInit, "server %q: cached initialize result is unusable: %v", srv.Name, err)
	}
	s := srv.newSession(caller)
	s.protocolVersion = version
	s.caps = capsOf(ip.Capabilities)
	s.proc = p
	p.addSession(s)
	if err := m.add(s); err != nil {
		p.removeSession(s)
		return nil, nil, err
	}
	m.log.Info("session started", "tool", srv.Name, "runtime", srv.cfg.Runtime, "session_id", s.id,
		"process", p.b.ID(), "mode", srv.cfg.Mode, "protocol_version", version, "client", caller.logName(), "client_info", caller.Client,
		"startup_ms", time.Since(s.created).Milliseconds())
	return s, &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: srv.declareListChanged(result)}, nil
}

var (
	errStartupTimeout = stopped("startup timeout")
	errInitRefused    = errors.New("server refused initialize")
	errBadInit        = errors.New("invalid initialize result")
	errClientEnded    = stopped("client ended the session (DELETE)")
)

// ---------------------------------------------------------------------------
// Client → backend

// pinned returns the session's process, pinning it to a new one first in
// daemon mode when its process has ended or is draining.
func (s *Session) pinned(ctx context.Context) (*proc, error) {
	p := s.pinnedProc()
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
	subs := slices.Collect(maps.Keys(s.subs))
	level := s.level
	s.mu.Unlock()
	if old != nil {
		old.removeSession(s)
	}
	np.addSession(s)
	s.srv.m.log.Info("session moved to another server process", "tool", s.srv.Name, "runtime", s.srv.cfg.Runtime,
		"session_id", s.id, "process", np.b.ID(), "subscriptions", len(subs))
	np.subscribeURIs("resources/subscribe", subs)
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
		return errDraining()
	}
	if req.Method == "initialize" {
		return errBadRequest("this session is already initialized; start a new session without Mcp-Session-Id")
	}
	if s.agg != nil {
		s.touch()
		return s.agg.begin(ctx, req, sink)
	}
	key := jsonrpc.IDKey(req.ID)
	s.mu.Lock()
	_, dup := s.inflight[key]
	s.mu.Unlock()
	if dup {
		return errDuplicateID(key)
	}
	s.touch()
	if s.daemon {
		if done, err := s.local(req, sink); done || err != nil {
			return err
		}
	}
	p, release, err := s.srv.admit(ctx, s.pinned)
	if err != nil {
		return err
	}
	return forward(ctx, s, p, req, sink, release)
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
			return false, errInvalidParams(fmt.Sprintf("unknown logging level %q", clip.String(f.Level, 40)))
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
	if s.agg != nil {
		return s.agg.deliver(ctx, m)
	}
	switch {
	case m.Kind == jsonrpc.KindResponse:
		key := jsonrpc.IDKey(m.ID)
		s.mu.Lock()
		out := s.outbound[key]
		delete(s.outbound, key)
		s.mu.Unlock()
		if out == nil {
			s.srv.m.log.Debug("client answered an unknown server request", "tool", s.srv.Name, "session_id", s.id, "id", clip.String(key, 64))
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
		gwID := ex.backendID()
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

// fromServer implements owner: it delivers a server-initiated request or
// log message that belongs to this session. They go to the POST stream of
// the session's only request in flight, else to the GET stream (MCP spec,
// basic/transports).
func (s *Session) fromServer(p *proc, m *jsonrpc.Message) {
	if s.daemon {
		switch m.Method {
		case "sampling/createMessage", "elicitation/create", "roots/list":
			if !s.caps.has(m.Method) {
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
		if ex := s.onlyLocked(); ex != nil {
			target = ex.sink
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

// deliverToStream queues a message for the GET stream.
func (s *Session) deliverToStream(line []byte, backendID json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.toStreamLocked(line, backendID, nil)
	}
}

// toStreamLocked sends to one of the GET streams (MCP spec, basic/
// transports: each message on exactly one of them; they take turns) or
// holds the message until one opens. Called with s.mu held.
func (s *Session) toStreamLocked(line []byte, backendID json.RawMessage, p *proc) {
	for i := range s.streams {
		k := (s.rr + i) % len(s.streams)
		if s.streams[k].push(line) {
			s.rr = k + 1
			return
		}
	}
	if len(s.held) >= s.srv.m.conf().Limits.MaxHeldMessages {
		s.dropHeldLocked(s.held[0], "too many messages held")
		s.held = s.held[1:]
	}
	s.held = append(s.held, heldMsg{msg: line, at: time.Now(), backendID: backendID, proc: p})
	s.srv.observe(Event{Kind: MessageHeld})
}

// dropHeldLocked accounts for a held message that will never be delivered;
// a server request among them is answered with an error so the server does
// not wait for it forever.
func (s *Session) dropHeldLocked(h heldMsg, why string) {
	s.srv.m.log.Warn("dropping a server message: no GET stream is open to receive it",
		"tool", s.srv.Name, "runtime", s.srv.cfg.Runtime, "session_id", s.id, "reason", why)
	s.srv.observe(Event{Kind: MessageDropped, Reason: dropReason(why)})
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
	hold := s.srv.m.conf().Limits.HoldMessages
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
	streams := s.streams
	s.streams = nil
	held := len(s.held)
	s.held = nil
	s.mu.Unlock()
	for _, st := range streams {
		st.close()
	}
	if held > 0 {
		s.srv.m.log.Warn("session ended with undelivered server messages", "tool", s.srv.Name,
			"session_id", s.id, "messages", held)
	}
	s.logEnded()
}

// OpenStream attaches a new GET stream besides the open ones (the spec
// allows several) and hands it every held message.
func (s *Session) OpenStream() (*Sink, error) {
	if s.isGone() {
		return nil, errSessionGone()
	}
	if s.srv.m.Draining() {
		return nil, errDraining()
	}
	sink := NewStreamSink()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, errSessionGone()
	}
	s.streams = append(s.streams, sink)
	for _, h := range s.held {
		sink.push(h.msg)
	}
	if len(s.held) > 0 {
		s.srv.observe(Event{Kind: Replayed, N: len(s.held)})
	}
	s.held = nil
	s.srv.observe(Event{Kind: StreamOpened, Era: "session", Reason: "get"})
	return sink, nil
}

// AttachStream makes sink the session's stream for server-initiated
// messages (legacy SSE: the one stream carries everything), replacing (and
// ending) any earlier one and handing it the held messages.
func (s *Session) AttachStream(sink *Sink) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return errSessionGone()
	}
	old := s.streams
	s.streams = []*Sink{sink}
	for _, h := range s.held {
		sink.push(h.msg)
	}
	if len(s.held) > 0 {
		s.srv.observe(Event{Kind: Replayed, N: len(s.held)})
	}
	s.held = nil
	s.mu.Unlock()
	for _, o := range old {
		if o != sink {
			o.close()
		}
	}
	return nil
}

// CloseStream detaches sink if it is still the session's GET stream; what it
// had not written is held again for the next stream.
func (s *Session) CloseStream(sink *Sink) {
	rest := sink.drain()
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.streams, sink); i >= 0 {
		s.streams = slices.Delete(s.streams, i, i+1)
		if len(s.streams) == 0 {
			s.detached = time.Now()
		}
	}
	if s.ended {
		return
	}
	if len(s.streams) > 0 { // another stream is open: hand over what is left
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
	streams := slices.Clone(s.streams)
	s.mu.Unlock()
	for _, st := range streams {
		st.close()
	}
}

// End is the client's DELETE: the session is gone at once; its process
// (launcher) is stopped in the background.
func (s *Session) End() {
	s.srv.m.remove(s)
	s.srv.m.stopAsync(s, errClientEnded)
}

// abandon ends a launcher session whose start failed without waiting for
// its process: the process is stopped in the background (its slot is
// waited for by the next reserve, as a retiring process's is), so that the
// caller answers its client first.
func (s *Session) abandon(why error) {
	s.markGone()
	s.closeOnce.Do(func() { s.closeErr = why })
	if p := s.pinnedProc(); p != nil && p.b != nil {
		p.retire(why)
		return
	}
	s.finish()
}

// close ends the session and waits: in launcher mode by stopping its
// process, in daemon mode by cancelling its requests and leaving the
// shared process.
func (s *Session) close(why error) {
	s.markGone()
	s.closeOnce.Do(func() { s.closeErr = why })
	if s.agg != nil {
		s.agg.close(why)
		s.finish()
		return
	}
	if !s.daemon {
		if p := s.pinnedProc(); p != nil && p.b != nil {
			p.b.End(why) // the log and the failed requests say why
			<-p.b.Done()
		} else {
			s.finish()
		}
		return
	}
	pending := s.pending()
	s.mu.Lock()
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
