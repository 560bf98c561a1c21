package session

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// proc is one running server process and the routing of what it sends.
// It is the backend.Handler of its backend.
//
// In launcher mode a proc serves exactly one session for its whole life and
// the session ends with it. In daemon mode it serves every session pinned
// to it; when it ends, its sessions stay and are pinned to another process
// on their next request.
type proc struct {
	srv     *Server
	b       *backend.Backend
	daemon  bool
	started time.Time
	slots   chan struct{} // daemon: max_inflight_per_process

	// Set once by the probe and the handshake, before the proc is
	// published. initResult is nil for a modern-only server.
	era              era
	discover         json.RawMessage // the server's DiscoverResult (modern)
	discoverVersions []string        // its supportedVersions
	serverInfo       json.RawMessage // for modern clients' results (legacy era)
	initResult       json.RawMessage
	backendVersion   string

	mu       sync.Mutex
	sessions map[*Session]struct{}
	inflight map[*exchange]struct{}
	progress map[string]*exchange // gateway progress token → exchange
	nextTok  int64
	lastUsed time.Time
	draining bool   // lifetime reached or recycled: no new pins
	stopping bool   // stopAsync was called
	retired  bool   // retire was called (counted in srv.retiring)
	ended    bool   // the backend is gone
	endErr   error  // why, once ended
	level    string // daemon: logging level set on the backend ("" = never)
}

func newProc(srv *Server, daemon bool) *proc {
	p := &proc{
		srv:      srv,
		daemon:   daemon,
		started:  time.Now(),
		sessions: make(map[*Session]struct{}),
		inflight: make(map[*exchange]struct{}),
		progress: make(map[string]*exchange),
		lastUsed: time.Now(),
	}
	if daemon {
		p.slots = make(chan struct{}, srv.cfg.MaxInflightPerProcess)
	}
	return p
}

// usable reports whether the proc can take new work: not draining, and
// its backend has not failed (HandleClose may still be stopping it).
func (p *proc) usable() bool {
	p.mu.Lock()
	ok := !p.ended && !p.draining
	p.mu.Unlock()
	return ok && (p.b == nil || p.b.Err() == nil)
}

// load is the routing weight for least-loaded scheduling.
func (p *proc) load() (inflight, sessions int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight), len(p.sessions)
}

func (p *proc) addSession(s *Session) {
	p.mu.Lock()
	p.sessions[s] = struct{}{}
	p.lastUsed = time.Now()
	p.mu.Unlock()
}

func (p *proc) removeSession(s *Session) {
	p.mu.Lock()
	delete(p.sessions, s)
	p.lastUsed = time.Now()
	p.mu.Unlock()
}

// acquireSlot takes one of the process's in-flight slots (daemon mode),
// waiting up to the server's queue_timeout.
func (p *proc) acquireSlot(ctx context.Context) error {
	if p.slots == nil {
		return nil
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	cfg := p.srv.cfg
	tooMany := func() error {
		return errTooMany(fmt.Sprintf("server %q: its process has %d requests in flight (servers.%s.max_inflight_per_process) and the pool is at max_processes (%d); retry later",
			p.srv.Name, cfg.MaxInflightPerProcess, p.srv.Name, cfg.MaxProcesses))
	}
	if cfg.QueueTimeout <= 0 {
		return tooMany()
	}
	t := time.NewTimer(cfg.QueueTimeout)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return tooMany()
	case <-ctx.Done():
		return tooMany()
	}
}

func (p *proc) releaseSlot() {
	if p.slots != nil {
		<-p.slots
	}
}

// track registers an exchange in flight on this process and, when the
// request carries a progress token, gives it a gateway token that is unique
// on this backend. It returns the params to forward.
func (p *proc) track(ex *exchange, params json.RawMessage, clientToken json.RawMessage) (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return nil, p.endErr
	}
	p.inflight[ex] = struct{}{}
	p.lastUsed = time.Now()
	if clientToken == nil {
		return params, nil
	}
	p.nextTok++
	tok := "mcpgw-" + strconv.FormatInt(p.nextTok, 10)
	out, err := jsonrpc.SetMetaProgressToken(params, tok)
	if err != nil {
		delete(p.inflight, ex)
		return nil, err
	}
	ex.gwToken = tok
	ex.clientToken = clientToken
	p.progress[tok] = ex
	return out, nil
}

func (p *proc) untrack(ex *exchange) {
	p.mu.Lock()
	delete(p.inflight, ex)
	if ex.gwToken != "" && p.progress[ex.gwToken] == ex {
		delete(p.progress, ex.gwToken)
	}
	p.lastUsed = time.Now()
	p.mu.Unlock()
}

// HandleMessage implements backend.Handler: it routes a message the server
// sent on its own initiative (MCP spec, basic/transports).
//
//   - progress goes to the request that owns the token, with the client's
//     own token restored;
//   - list_changed notifications go to every session on the process;
//   - resources/updated goes to the sessions subscribed to that resource;
//   - logging and server→client requests go to the one session with
//     requests in flight (or the only session) — never to another client;
//     when that is ambiguous a request is answered with an error and a log
//     message is dropped (and logged at debug by the gateway).
func (p *proc) HandleMessage(m *jsonrpc.Message) {
	switch {
	case m.Method == "notifications/progress":
		f := jsonrpc.ParamsFields(m.Params)
		if f.ProgressToken == nil {
			return
		}
		var tok string
		if json.Unmarshal(f.ProgressToken, &tok) != nil {
			return
		}
		p.mu.Lock()
		ex := p.progress[tok]
		p.mu.Unlock()
		if ex == nil {
			return // the request is over
		}
		params, err := jsonrpc.ReplaceParamsField(m.Params, "progressToken", ex.clientToken)
		if err != nil {
			return
		}
		ex.s.deliverToRequest(ex, jsonrpc.Encode(&jsonrpc.Message{Kind: m.Kind, Method: m.Method, Params: params}))
	case m.Method == "notifications/subscriptions/acknowledged":
		// The gateway's own subscription on a modern process (listen.go).
	case isListChanged(m.Method):
		if subscriptionOf(m.Params) != nil {
			// Sent on the gateway's subscription: for modern listeners.
			p.srv.listeners.notify(m)
			return
		}
		for _, s := range p.sessionList() {
			s.deliverToStream(jsonrpc.Encode(m), nil)
		}
		if p.daemon && p.era == eraLegacy {
			p.srv.listeners.notify(m)
		}
	case m.Method == "notifications/resources/updated":
		uri := jsonrpc.ParamsFields(m.Params).URI
		for _, s := range p.sessionList() {
			if !p.daemon || s.subscribed(uri) {
				s.deliverToStream(jsonrpc.Encode(m), nil)
			}
		}
		if p.daemon {
			p.srv.listeners.notifyResource(m, uri)
		}
	case m.Method == "notifications/cancelled":
		// The server withdraws one of its own requests to a client.
		if rid := jsonrpc.ParamsFields(m.Params).RequestID; rid != nil {
			for _, s := range p.sessionList() {
				if s.withdraw(p, rid, m) {
					return
				}
			}
		}
	default:
		s := p.owner()
		if s == nil {
			p.ambiguous(m)
			return
		}
		s.fromServer(p, m)
	}
}

func isListChanged(method string) bool {
	switch method {
	case "notifications/tools/list_changed", "notifications/prompts/list_changed",
		"notifications/resources/list_changed":
		return true
	}
	return false
}

func (p *proc) sessionList() []*Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Session, 0, len(p.sessions))
	for s := range p.sessions {
		out = append(out, s)
	}
	return out
}

// owner is the session a server-initiated message belongs to, when that is
// unambiguous: the only session with requests in flight, or else the only
// session on the process.
func (p *proc) owner() *Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	var owner *Session
	for ex := range p.inflight {
		if owner != nil && owner != ex.s {
			return nil
		}
		owner = ex.s
	}
	if owner != nil {
		return owner
	}
	if len(p.sessions) == 1 {
		for s := range p.sessions {
			return s
		}
	}
	return nil
}

// ambiguous handles a message no single session can be said to own.
func (p *proc) ambiguous(m *jsonrpc.Message) {
	if m.Kind == jsonrpc.KindRequest {
		p.refuse(m.ID, fmt.Sprintf("the gateway cannot tell which client %s is for: several clients share this server process (mode: daemon)", m.Method))
		return
	}
	p.srv.m.log.Debug("dropping a server notification that belongs to no single session",
		"tool", p.srv.Name, "runtime", p.srv.cfg.Runtime, "process", p.b.ID(), "method", m.Method)
}

// refuse answers a server→client request with an error, in the background
// (the reader goroutine must not block on a write).
func (p *proc) refuse(id json.RawMessage, msg string) {
	resp := jsonrpc.NewError(id, jsonrpc.CodeMethodNotFound, msg, nil)
	b := p.b
	m := p.srv.m
	m.wg.Add(1)
	go func() { // owner: the manager; bounded by the backend's write timeout
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Send(ctx, resp)
	}()
}

// HandleClose implements backend.Handler: the process is gone.
func (p *proc) HandleClose(err error) {
	p.mu.Lock()
	p.ended = true
	p.endErr = err
	sessions := make([]*Session, 0, len(p.sessions))
	for s := range p.sessions {
		sessions = append(sessions, s)
	}
	p.mu.Unlock()
	m := p.srv.m
	if p.daemon {
		// Free the process slot before the pool wakes its waiters: a
		// waiter woken by remove starts the replacement at once and must
		// find the slot free, or a max_lifetime replacement fails its
		// request with 429 (queue_timeout 0) instead of waiting for it.
		m.release(p.srv)
		p.srv.pool.remove(p, err)
		for _, s := range sessions {
			s.unpin(p)
		}
		return
	}
	for _, s := range sessions {
		s.backendEnded(err)
	}
	p.mu.Lock()
	retired := p.retired
	p.mu.Unlock()
	m.mu.Lock()
	delete(m.adhoc, p)
	m.mu.Unlock()
	m.releaseRetired(p.srv, retired)
}

// retire stops a launcher process whose work is done (a modern request's
// own process); until it is gone, reserve waits for its slot rather than
// refusing new work.
func (p *proc) retire(why error) {
	p.mu.Lock()
	if p.ended || p.retired {
		p.mu.Unlock()
		return
	}
	p.retired = true
	p.mu.Unlock()
	m := p.srv.m
	m.mu.Lock()
	p.srv.retiring++
	m.mu.Unlock()
	p.stopAsync(why)
}

// stopAsync stops the process in the background (owner: the manager).
func (p *proc) stopAsync(why error) {
	p.mu.Lock()
	if p.ended || (p.draining && p.stopping) {
		p.mu.Unlock()
		return
	}
	p.draining = true
	p.stopping = true
	p.mu.Unlock()
	m := p.srv.m
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		p.b.End(why)
		<-p.b.Done()
	}()
}

// recycle replaces a process that ignored a cancellation: its other
// in-flight requests fail at once, and its sessions move on their next
// request (issue 4).
func (p *proc) recycle(reason string) {
	p.srv.m.log.Warn("recycling a stuck server process", "tool", p.srv.Name, "runtime", p.srv.cfg.Runtime,
		"process", p.b.ID(), "reason", reason)
	p.stopAsync(fmt.Errorf("%w: %s", errRecycled, reason))
}

var errRecycled = stopped("server process recycled")

// setLevel keeps the backend's logging level at the most verbose level any
// of its sessions asked for; each session's own level is applied by the
// gateway when it routes log messages (daemon mode).
func (p *proc) syncLevel() {
	want := ""
	for _, s := range p.sessionList() {
		if l := s.logLevel(); l != "" && (want == "" || levelRank(l) < levelRank(want)) {
			want = l
		}
	}
	p.mu.Lock()
	if want == "" || want == p.level || p.ended {
		p.mu.Unlock()
		return
	}
	p.level = want
	p.mu.Unlock()
	params, _ := json.Marshal(map[string]string{"level": want})
	p.callDetached(&jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "logging/setLevel", Params: params})
}

// callDetached sends a gateway-originated request whose answer is only
// logged (re-subscriptions, logging level), in the background.
func (p *proc) callDetached(req *jsonrpc.Message) {
	m := p.srv.m
	m.wg.Add(1)
	go func() { // owner: the manager; bounded by the request timeout
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), p.srv.cfg.Timeouts.Request)
		defer cancel()
		w := newChanWaiter()
		id, err := p.b.Call(ctx, req, w)
		if err != nil {
			return
		}
		select {
		case resp := <-w.resp:
			if resp.Error != nil {
				m.log.Warn("server refused a gateway request", "tool", p.srv.Name, "method", req.Method,
					"error", string(resp.Error))
			}
		case <-w.err:
		case <-ctx.Done():
			p.b.Forget(id)
		}
	}()
}

// levelRank orders MCP logging levels (RFC 5424 severities).
func levelRank(l string) int {
	switch l {
	case "debug":
		return 0
	case "info":
		return 1
	case "notice":
		return 2
	case "warning":
		return 3
	case "error":
		return 4
	case "critical":
		return 5
	case "alert":
		return 6
	case "emergency":
		return 7
	}
	return 0
}
