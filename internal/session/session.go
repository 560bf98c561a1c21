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

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// Session is one MCP client session (session-era Streamable HTTP) pinned to
// one backend process. In launcher mode the process is the session's own.
//
// Ids are rewritten in both directions even though the process is not
// shared: client request ids become backend-unique integers (package
// backend) and server-initiated request ids become session-unique integers,
// so that sharing a backend (daemon mode) is never a special case.
type Session struct {
	id      string
	srv     *Server
	created time.Time
	backend *backend.Backend

	// Set once by Initialize before the session is published.
	protocolVersion string
	clientName      string
	serverName      string
	identity        string // who created the session (identity.go)

	gone     atomic.Bool // no new requests: ended, reclaimed or expired
	stopping atomic.Bool // stopAsync has been called

	mu         sync.Mutex
	lastActive time.Time
	expired    bool                 // max lifetime reached
	ended      bool                 // close has run
	inflight   map[string]*exchange // by client id
	byProgress map[string]*exchange // by progress token
	outbound   map[string]*outReq   // server→client requests by client-facing id
	nextOut    int64
	stream     *Sink // the open GET stream, or nil
	held       []heldMsg
	heldDrops  int

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

type outReq struct {
	backendID json.RawMessage
	sink      *Sink // where it was delivered, or nil (GET/held)
}

type heldMsg struct {
	msg       []byte
	at        time.Time
	backendID json.RawMessage // set for server→client requests
}

// ID is the Mcp-Session-Id.
func (s *Session) ID() string { return s.id }

// Server is the session's server.
func (s *Session) Server() *Server { return s.srv }

// ProtocolVersion is the version negotiated in initialize.
func (s *Session) ProtocolVersion() string { return s.protocolVersion }

// ClientName is the client's clientInfo "name/version", for logs.
func (s *Session) ClientName() string { return s.clientName }

// Closed is closed once the session has ended.
func (s *Session) Closed() <-chan struct{} { return s.closed }

// isGone reports whether the session takes no new requests: it was ended,
// reclaimed or expired, or its backend has failed (whose HandleClose may
// still be stopping the process).
func (s *Session) isGone() bool {
	return s.gone.Load() || (s.backend != nil && s.backend.Err() != nil)
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

// expire marks the session as past its lifetime; it reports whether this
// call did it.
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

// SessionVersions are the protocol versions a session may negotiate; the
// front-end applies each version's transport rules.
var SessionVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// Initialize starts a process for a new session, forwards the client's
// initialize request to it and returns the session with the backend's
// response (its id restored to the client's). Errors are *Error.
func (srv *Server) Initialize(ctx context.Context, req *jsonrpc.Message, clientName string) (*Session, *jsonrpc.Message, error) {
	m := srv.m
	if m.Draining() {
		return nil, nil, errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	if err := m.reserve(ctx, srv); err != nil {
		return nil, nil, err
	}
	s := &Session{
		id:         newSessionID(),
		srv:        srv,
		created:    time.Now(),
		clientName: clientName,
		identity:   identityFrom(ctx),
		lastActive: time.Now(),
		inflight:   make(map[string]*exchange),
		byProgress: make(map[string]*exchange),
		outbound:   make(map[string]*outReq),
		closed:     make(chan struct{}),
	}
	b, err := srv.start(s)
	if err != nil {
		m.release(srv)
		m.log.Error("cannot start server", "tool", srv.Name, "runtime", srv.cfg.Runtime, "error", err.Error())
		return nil, nil, errUnavailable(fmt.Sprintf("server %q cannot be started: %v", srv.Name, err), 30*time.Second, err)
	}
	s.backend = b
	// From here the process slot is released by HandleClose.

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
	s.serverName = ir.ServerInfo.Name
	if err := m.add(s); err != nil {
		s.close(errShutdown)
		return nil, nil, err
	}
	if s.isGone() { // the process died between answering and being published
		m.remove(s)
		return nil, nil, backendError(srv.Name, s.closeErr)
	}
	m.log.Info("session started", "tool", srv.Name, "runtime", srv.cfg.Runtime, "session_id", s.id,
		"process", b.ID(), "protocol_version", s.protocolVersion, "client", clientName,
		"startup_ms", time.Since(s.created).Milliseconds())
	return s, resp, nil
}

var (
	errStartupTimeout = errors.New("startup timeout")
	errInitRefused    = errors.New("server refused initialize")
	errBadInit        = errors.New("invalid initialize result")
	errClientEnded    = errors.New("client ended the session (DELETE)")
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
	if err := s.srv.acquire(ctx); err != nil {
		return err
	}
	ex := &exchange{s: s, clientID: req.ID, key: key, sink: sink, method: req.Method}
	if tok := jsonrpc.ParamsFields(req.Params).MetaProgressToken; tok != nil {
		ex.progress = jsonrpc.IDKey(tok)
	}
	s.mu.Lock()
	if s.ended || s.inflight[key] != nil {
		s.mu.Unlock()
		s.srv.releaseSlot()
		if s.ended {
			return errSessionGone()
		}
		return &Error{Status: http.StatusBadRequest, Code: jsonrpc.CodeInvalidRequest,
			Message: fmt.Sprintf("request id %s is already in flight in this session", key)}
	}
	s.inflight[key] = ex
	if ex.progress != "" {
		s.byProgress[ex.progress] = ex
	}
	s.lastActive = time.Now()
	s.mu.Unlock()
	sink.expectOne()

	ex.mu.Lock() // held until gwID is known, so a timeout cannot miss it
	timeout := s.srv.cfg.Timeouts.Request
	ex.timer = time.AfterFunc(timeout, func() { ex.timeout(timeout) })
	gwID, err := s.backend.Call(ctx, req, ex)
	ex.gwID = gwID
	ex.mu.Unlock()
	if err != nil {
		if ex.claim() {
			ex.finish(nil, 0)
			return backendError(s.srv.Name, err)
		}
		// Fail already delivered an outcome for it.
	}
	return nil
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
		return s.sendBackend(ctx, &fwd)
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
		s.backend.Forget(gwID)
		params, err := jsonrpc.ReplaceParamsField(m.Params, "requestId", jsonrpc.IntID(gwID))
		if err != nil {
			return nil
		}
		ex.finish(nil, 0) // the client asked for no response
		return s.sendBackend(ctx, &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: m.Method, Params: params})
	default:
		return s.sendBackend(ctx, m)
	}
}

func (s *Session) sendBackend(ctx context.Context, m *jsonrpc.Message) error {
	if err := s.backend.Send(ctx, m); err != nil {
		return backendError(s.srv.Name, err)
	}
	return nil
}

// exchange is one client request in flight.
type exchange struct {
	s        *Session
	clientID json.RawMessage
	key      string
	progress string
	method   string
	sink     *Sink

	mu    sync.Mutex // guards gwID and timer during Begin
	gwID  int64
	timer *time.Timer

	claimed atomic.Bool
}

// claim reserves the right to deliver the outcome; only one path wins.
func (e *exchange) claim() bool { return e.claimed.CompareAndSwap(false, true) }

// Respond implements backend.Waiter.
func (e *exchange) Respond(m *jsonrpc.Message) {
	if !e.claim() {
		return
	}
	out := *m
	out.ID = e.clientID
	e.finish(jsonrpc.Encode(&out), 0)
}

// Fail implements backend.Waiter.
func (e *exchange) Fail(err error) {
	if !e.claim() {
		return
	}
	code, status := backendErrorCode(err)
	e.finish(jsonrpc.Encode(jsonrpc.NewError(e.clientID, code,
		fmt.Sprintf("server %q failed before answering: %v", e.s.srv.Name, err), nil)), status)
}

func (e *exchange) timeout(d time.Duration) {
	if !e.claim() {
		return
	}
	e.mu.Lock()
	gwID := e.gwID
	e.mu.Unlock()
	s := e.s
	s.backend.Forget(gwID)
	s.srv.m.log.Warn("request timed out", "tool", s.srv.Name, "runtime", s.srv.cfg.Runtime,
		"session_id", s.id, "method", e.method, "timeout_ms", d.Milliseconds(), "error", "request timeout")
	e.finish(jsonrpc.Encode(jsonrpc.NewError(e.clientID, jsonrpc.CodeTimeout,
		fmt.Sprintf("request timed out after %s at the gateway (servers.%s.timeouts.request)", d, s.srv.Name),
		map[string]any{"timeoutSeconds": d.Seconds()})), http.StatusGatewayTimeout)
	// Tell the server to stop working on it (MCP spec, utilities/cancellation).
	params, _ := json.Marshal(map[string]any{"requestId": gwID, "reason": "request timed out at the gateway"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.backend.Send(ctx, &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/cancelled", Params: params})
}

// finish delivers the outcome (nil = none) and releases the request's
// resources. Callers must have won claim.
func (e *exchange) finish(out []byte, status int) {
	e.mu.Lock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.mu.Unlock()
	s := e.s
	s.mu.Lock()
	if s.inflight[e.key] == e {
		delete(s.inflight, e.key)
	}
	if e.progress != "" && s.byProgress[e.progress] == e {
		delete(s.byProgress, e.progress)
	}
	s.lastActive = time.Now()
	s.mu.Unlock()
	s.srv.releaseSlot()
	e.sink.final(out, status)
}

// ---------------------------------------------------------------------------
// Backend → client (backend.Handler)

// HandleMessage routes a server-initiated message (MCP spec, basic/transports,
// "Sending Messages to the Server"): progress to the stream of the request
// that carries its token; logging and server→client requests to the POST
// stream of the only request in flight; everything else, and those when zero
// or several requests are in flight, to the GET stream.
func (s *Session) HandleMessage(m *jsonrpc.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	var target *Sink
	switch {
	case m.Method == "notifications/progress":
		if tok := jsonrpc.ParamsFields(m.Params).ProgressToken; tok != nil {
			if ex := s.byProgress[jsonrpc.IDKey(tok)]; ex != nil {
				target = ex.sink
			}
		}
	case m.Method == "notifications/message" || m.Kind == jsonrpc.KindRequest:
		if len(s.inflight) == 1 {
			for _, ex := range s.inflight {
				target = ex.sink
			}
		}
	case m.Method == "notifications/cancelled":
		// The server cancels one of its own requests to the client.
		if rid := jsonrpc.ParamsFields(m.Params).RequestID; rid != nil {
			for cid, out := range s.outbound {
				if jsonrpc.IDKey(out.backendID) == jsonrpc.IDKey(rid) {
					params, err := jsonrpc.ReplaceParamsField(m.Params, "requestId", json.RawMessage(cid))
					if err == nil {
						m = &jsonrpc.Message{Kind: m.Kind, Method: m.Method, Params: params}
					}
					target = out.sink
					delete(s.outbound, cid)
					break
				}
			}
		}
	}
	var backendID json.RawMessage
	if m.Kind == jsonrpc.KindRequest {
		s.nextOut++
		cid := strconv.AppendInt(nil, s.nextOut, 10)
		backendID = m.ID
		s.outbound[string(cid)] = &outReq{backendID: m.ID, sink: target}
		fwd := *m
		fwd.ID = cid
		m = &fwd
	}
	line := jsonrpc.Encode(m)
	if target != nil && target.push(line) {
		return
	}
	s.toStream(line, backendID)
}

// toStream sends to the GET stream or holds the message until one opens.
// Called with s.mu held.
func (s *Session) toStream(line []byte, backendID json.RawMessage) {
	if s.stream != nil && s.stream.push(line) {
		return
	}
	max := s.srv.m.cfg.Limits.MaxHeldMessages
	if len(s.held) >= max {
		s.dropHeldLocked(s.held[0], "too many messages held")
		s.held = s.held[1:]
	}
	s.held = append(s.held, heldMsg{msg: line, at: time.Now(), backendID: backendID})
}

// dropHeldLocked accounts for a held message that will never be delivered;
// a server request among them is answered with an error so the server does
// not wait for it forever.
func (s *Session) dropHeldLocked(h heldMsg, why string) {
	s.heldDrops++
	s.srv.m.log.Warn("dropping a server message: no GET stream is open to receive it",
		"tool", s.srv.Name, "runtime", s.srv.cfg.Runtime, "session_id", s.id, "reason", why)
	if h.backendID != nil {
		for cid, out := range s.outbound {
			if jsonrpc.IDKey(out.backendID) == jsonrpc.IDKey(h.backendID) {
				delete(s.outbound, cid)
			}
		}
		resp := jsonrpc.NewError(h.backendID, jsonrpc.CodeInternalError,
			"the client has no open stream to receive this request", nil)
		b := s.backend
		s.srv.m.wg.Add(1)
		go func() { // owner: the manager; bounded by the backend write timeout
			defer s.srv.m.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = b.Send(ctx, resp)
		}()
	}
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

// HandleClose implements backend.Handler: the process is gone.
func (s *Session) HandleClose(err error) {
	s.closeOnce.Do(func() { s.closeErr = err })
	s.markGone()
	s.srv.m.remove(s)
	s.mu.Lock()
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
	s.srv.m.release(s.srv)
	close(s.closed)
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
			s.toStream(m, nil)
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

// End is the client's DELETE: the session is gone at once, and its process
// is stopped in the background.
func (s *Session) End() {
	s.srv.m.remove(s)
	s.srv.m.stopAsync(s, errClientEnded)
}

// close stops the backend (and so the session) and waits for the process.
func (s *Session) close(why error) {
	s.markGone()
	s.closeOnce.Do(func() { s.closeErr = why })
	if s.backend != nil {
		_ = s.backend.Close()
	}
}
