package session

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// procState is where a process is in its life. States only move forward
// (see advanceLocked).
type procState uint8

const (
	// procReady: it takes new work.
	procReady procState = iota
	// procDraining: its lifetime is reached; it takes no new sessions and
	// is stopped once its requests are done.
	procDraining
	// procStopping: it is being stopped (idle, lifetime, recycle).
	procStopping
	// procRetiring: it is being stopped because the work it was started
	// for is done (a modern request's own process); until it is gone,
	// reserve waits for its slot rather than refusing new work.
	procRetiring
	// procEnded: the backend is gone.
	procEnded
)

// proc is one running server process and the routing of what it sends.
// It is the backend.Handler of its backend.
//
// In launcher mode a proc serves one session (or one modern request) for
// its whole life, and the session ends with it. In daemon mode it serves
// every session pinned to it and every modern request sent to it; when it
// ends, its sessions stay and are pinned to another process on their next
// request.
type proc struct {
	srv     *Server
	b       *backend.Backend // set once, right after the start, before the proc is used
	daemon  bool
	started time.Time
	slots   *slots // daemon: max_inflight_per_process; nil in launcher mode
	// counted is set by the one path that counts this process's failure
	// toward the back-off (pool.countFailure): its failed start, or its
	// early death. Each process counts at most once.
	counted atomic.Bool

	// Set once by the probe and the handshake, before the proc is
	// published. initResult is nil for a modern-only server.
	era              era
	discover         json.RawMessage // the server's DiscoverResult (modern)
	discoverVersions []string        // its supportedVersions
	serverInfo       json.RawMessage // for modern clients' results (legacy era)
	initResult       json.RawMessage
	backendVersion   string

	mu       sync.Mutex
	state    procState
	endErr   error                 // why it ended, once procEnded
	sessions map[*Session]struct{} // session-era sessions pinned to it
	inflight map[*exchange]struct{}
	progress map[string]*exchange // gateway progress token → exchange
	nextTok  int64
	lastUsed time.Time
	level    string // daemon: logging level set on the backend ("" = never)

	lists listCache // daemon: list answers for aggregate members (listcache.go)
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
		cfg := srv.cfg
		p.slots = newSlots(cfg.MaxInflightPerProcess, func() error {
			return errTooMany(fmt.Sprintf("server %q: its process has %d requests in flight (servers.%s.max_inflight_per_process) and the pool is at max_processes (%d); retry later",
				srv.Name, cfg.MaxInflightPerProcess, srv.Name, cfg.MaxProcesses))
		})
	}
	return p
}

// advanceLocked moves p to state s when s is later than its current
// state, and returns the state it was in. Called with p.mu held.
func (p *proc) advanceLocked(s procState) (prev procState) {
	prev = p.state
	if s > p.state {
		p.state = s
	}
	return prev
}

// usable reports whether the proc can take new work: ready, and its
// backend has not failed (HandleClose may still be stopping it).
func (p *proc) usable() bool {
	p.mu.Lock()
	ok := p.state == procReady
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

func (p *proc) sessionList() []*Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Keys(p.sessions))
}

// track registers an exchange in flight on this process and, when the
// request carries a progress token, gives it a gateway token that is unique
// on this backend. It returns the params to forward.
func (p *proc) track(ex *exchange, params json.RawMessage, clientToken json.RawMessage) (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == procEnded {
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
//   - list_changed notifications go to every session on the process (and
//     to the modern listeners, daemon mode);
//   - resources/updated goes to the sessions subscribed to that resource;
//   - logging and server→client requests go to the owner of the requests
//     in flight when there is one (else to the only session) — never to
//     another client; when that is ambiguous a request is answered with an
//     error and a log message is dropped (and logged at debug).
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
		ex.sink.push(jsonrpc.Encode(&jsonrpc.Message{Kind: m.Kind, Method: m.Method, Params: params}))
	case m.Method == "notifications/subscriptions/acknowledged":
		// The gateway's own subscription on a modern process (listen.go).
	case isListChanged(m.Method):
		// Before anyone hears of it, so that a list asked for after the
		// notification is the new one.
		p.lists.invalidate(m.Method)
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
		o := p.owner()
		if o == nil {
			p.ambiguous(m)
			return
		}
		o.fromServer(p, m)
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

// owner is the owner a server-initiated message belongs to, when that is
// unambiguous: the only owner with requests in flight, or else the only
// session on the process.
func (p *proc) owner() owner {
	p.mu.Lock()
	defer p.mu.Unlock()
	var o owner
	for ex := range p.inflight {
		if o != nil && o != ex.o {
			return nil
		}
		o = ex.o
	}
	if o != nil {
		return o
	}
	if len(p.sessions) == 1 {
		for s := range p.sessions {
			return s
		}
	}
	return nil
}

// ambiguous handles a message no single owner can be said to own.
func (p *proc) ambiguous(m *jsonrpc.Message) {
	if m.Kind == jsonrpc.KindRequest {
		why := fmt.Sprintf("the gateway cannot tell which client %s is for: several clients share this server process (mode: daemon)", m.Method)
		if !p.daemon {
			why = fmt.Sprintf("the gateway cannot relay %s: no client request is in flight on this process", m.Method)
		}
		p.refuse(m.ID, why)
		return
	}
	p.srv.m.log.Debug("dropping a server notification that belongs to no single session",
		"tool", p.srv.Name, "runtime", p.srv.cfg.Runtime, "process", p.b.ID(), "method", m.Method)
}

// refuse answers a server→client request with an error, in the background
// (the reader goroutine must not block on a write).
func (p *proc) refuse(id json.RawMessage, msg string) {
	p.srv.m.wg.Go(func() { p.refuseNow(id, msg) }) // owner: the manager; bounded by refuseNow
}

// refuseTimeout bounds the write of a refusal to a server.
const refuseTimeout = 5 * time.Second

// refuseNow answers a server→client request with an error and returns
// once it is written (or the process is gone).
func (p *proc) refuseNow(id json.RawMessage, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), refuseTimeout)
	defer cancel()
	_ = p.b.Send(ctx, jsonrpc.NewError(id, jsonrpc.CodeMethodNotFound, msg, nil))
}

// HandleClose implements backend.Handler: the process is gone.
func (p *proc) HandleClose(err error) {
	p.mu.Lock()
	prev := p.advanceLocked(procEnded)
	p.endErr = err
	sessions := slices.Collect(maps.Keys(p.sessions))
	p.mu.Unlock()
	p.srv.observe(Event{Kind: ProcessExited, Reason: exitReason(err)})
	m := p.srv.m
	if p.daemon {
		// Free the process slot before the pool wakes its waiters: a
		// waiter woken by remove starts the replacement at once and must
		// find the slot free, or a max_lifetime replacement fails its
		// request with 429 (queue_timeout 0) instead of waiting for it.
		m.release(p.srv, prev == procRetiring)
		p.srv.pool.remove(p, err)
		for _, s := range sessions {
			s.unpin(p)
		}
		return
	}
	for _, s := range sessions {
		s.backendEnded(err)
	}
	m.untrackAdhoc(p)
	m.release(p.srv, prev == procRetiring)
}

// retire stops a process whose work is done (a modern request's own
// process) or whose start failed; until it is gone, reserve waits for its
// slot rather than refusing new work.
func (p *proc) retire(why error) {
	p.mu.Lock()
	prev := p.advanceLocked(procRetiring)
	p.mu.Unlock()
	if prev >= procRetiring {
		return // already retiring, or gone
	}
	m := p.srv.m
	m.mu.Lock()
	p.srv.retiring++
	m.mu.Unlock()
	if prev < procStopping {
		p.stopInBackground(why)
	}
}

// stopAsync stops the process in the background, unless it is already
// being stopped.
func (p *proc) stopAsync(why error) {
	p.mu.Lock()
	prev := p.advanceLocked(procStopping)
	p.mu.Unlock()
	if prev < procStopping {
		p.stopInBackground(why)
	}
}

// stopInBackground ends the backend and waits for it (owner: the manager).
func (p *proc) stopInBackground(why error) {
	p.srv.m.wg.Go(func() {
		p.b.End(why)
		<-p.b.Done()
	})
}

// recycle replaces a process that ignored a cancellation: its other
// in-flight requests fail at once, and its sessions move on their next
// request.
func (p *proc) recycle(reason string) {
	p.srv.m.log.Warn("recycling a stuck server process", "tool", p.srv.Name, "runtime", p.srv.cfg.Runtime,
		"process", p.b.ID(), "reason", reason)
	p.srv.observe(Event{Kind: Recycled})
	p.stopAsync(fmt.Errorf("%w: %s", errRecycled, reason))
}

var errRecycled = stopped("server process recycled")

// syncLevel keeps the backend's logging level at the most verbose level
// any of its sessions asked for; each session's own level is applied by
// the gateway when it routes log messages (daemon mode).
func (p *proc) syncLevel() {
	want := ""
	for _, s := range p.sessionList() {
		if l := s.logLevel(); l != "" && (want == "" || levelRank(l) < levelRank(want)) {
			want = l
		}
	}
	p.mu.Lock()
	if want == "" || want == p.level || p.state == procEnded {
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
	m.wg.Go(func() { // owner: the manager; bounded by the request timeout
		ctx, cancel := context.WithTimeout(context.Background(), p.srv.cfg.Timeouts.Request)
		defer cancel()
		resp, err := p.b.Roundtrip(ctx, req)
		if err == nil && resp.Error != nil {
			m.log.Warn("server refused a gateway request", "tool", p.srv.Name, "method", req.Method,
				"error", string(resp.Error))
		}
	})
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
