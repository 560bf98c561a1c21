package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
)

// pool is a daemon-mode server's set of shared processes.
//
// Invariants: procs holds only processes that completed the handshake and
// have not ended; starting counts handshakes under way; together they never
// exceed max_processes (the process slots of Manager.reserve enforce it).
// A crash shortly after start counts as a failure; consecutive failures
// back off exponentially, during which new processes are not started and
// requests that need one get 503 with Retry-After.
type pool struct {
	srv *Server

	mu        sync.Mutex
	procs     []*proc
	starting  int
	changed   chan struct{} // closed and replaced when procs change
	failures  int           // consecutive early deaths or failed starts
	retryAt   time.Time     // no new process before this
	lastError string
}

const (
	// A process that dies within crashWindow of its start counts as a crash
	// for the back-off; one that lived longer resets it.
	crashWindow = 30 * time.Second
	maxBackoff  = 60 * time.Second
)

func newPool(srv *Server) *pool {
	return &pool{srv: srv, changed: make(chan struct{})}
}

func (pl *pool) notify() {
	close(pl.changed)
	pl.changed = make(chan struct{})
}

// pick returns the process a session should be pinned to: the least-loaded
// one with a free in-flight slot; else the one being started, once it is
// ready; else a new one when the pool may grow; else, once processes that
// are draining have gone, a new one; else the least-loaded full one
// (requests then queue on it up to queue_timeout).
func (pl *pool) pick(ctx context.Context) (*proc, error) {
	cfg := pl.srv.cfg
	deadline := time.Now().Add(cfg.Timeouts.Startup + cfg.QueueTimeout)
	for {
		pl.mu.Lock()
		// Least loaded: fewest requests in flight, then fewest sessions.
		var best, bestFull *proc
		var bestIn, bestSess, bestFullIn int
		draining := 0
		for _, p := range pl.procs {
			if !p.usable() {
				draining++
				continue
			}
			in, sess := p.load()
			if in < cfg.MaxInflightPerProcess {
				if best == nil || in < bestIn || (in == bestIn && sess < bestSess) {
					best, bestIn, bestSess = p, in, sess
				}
			} else if bestFull == nil || in < bestFullIn {
				bestFull, bestFullIn = p, in
			}
		}
		switch {
		case best != nil:
			pl.mu.Unlock()
			return best, nil
		case pl.starting > 0:
			// One is on its way: use it rather than starting another.
		case len(pl.procs) < cfg.MaxProcesses:
			if wait := time.Until(pl.retryAt); wait > 0 {
				last := pl.lastError
				pl.mu.Unlock()
				if bestFull != nil {
					return bestFull, nil
				}
				pl.srv.rejected("backoff")
				return nil, errUnavailable(fmt.Sprintf("server %q keeps failing (last: %s); next start after its back-off", pl.srv.Name, clip.String(last, 300)),
					wait, errBackoff)
			}
			pl.starting++
			pl.mu.Unlock()
			return pl.grow(ctx)
		case draining > 0:
			// Slots are held by processes on their way out: wait for them.
		case bestFull != nil:
			pl.mu.Unlock()
			return bestFull, nil
		}
		ch := pl.changed
		pl.mu.Unlock()
		if err := waitChange(ctx, ch, deadline); err != nil {
			if bestFull != nil {
				return bestFull, nil
			}
			pl.srv.rejected("process_cap")
			return nil, errTooMany(fmt.Sprintf("server %q has no process available (servers.%s.max_processes = %d)", pl.srv.Name, pl.srv.Name, cfg.MaxProcesses))
		}
	}
}

// waitChange waits for ch to close, ctx to end or the deadline to pass.
func waitChange(ctx context.Context, ch <-chan struct{}, deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return context.DeadlineExceeded
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errBackoff = errors.New("restart back-off")

// start launches a process and performs the MCP handshake with it, bounded
// by the startup timeout (core rule).
func (pl *pool) start(ctx context.Context) (_ *proc, err error) {
	srv := pl.srv
	m := srv.m
	if err := m.reserve(ctx, srv); err != nil {
		return nil, err
	}
	ctx, endSpan := srv.span(ctx, "process start")
	defer func() { endSpan(err) }()
	p := newProc(srv, true)
	if err := srv.startBackend(p); err != nil {
		m.release(srv, false)
		pl.failed(err.Error())
		return nil, err
	}
	// From here the slot is released by HandleClose, and an early death is
	// counted by remove (from HandleClose), not here: each crash counts
	// once.
	//
	// A pooled process serves both eras, so it is initialised first: a
	// dual-era server must not see server/discover before initialize (the
	// Go SDK, v1.8.0, then refuses initialize as a duplicate) nor after it
	// (it then re-scopes the connection to 2026-07-28 and would answer the
	// session-era clients' sampling with input_required results). Only a
	// server that refuses initialize is probed, and serves modern clients
	// alone if it answers server/discover.
	err = p.handshake(ctx)
	if refusedInit(err) && p.b.Err() == nil {
		if perr := p.probe(ctx); perr != nil {
			err = perr
		} else if p.era == eraModern {
			m.log.Info("server refused initialize but speaks MCP "+modern.Version+": it serves modern clients only",
				"tool", srv.Name, "runtime", srv.cfg.Runtime, "process", p.b.ID(), "initialize_error", err.Error())
			err = nil
		}
	}
	if err != nil {
		// The failed start counts once, now, before the client is
		// answered (unless the client went away, which is not the
		// server's fault); the process is stopped in the background so
		// that the answer comes at the configured startup time, not after
		// the stop sequence.
		cause := err
		if errors.Is(err, context.Canceled) {
			cause = stopped("the client went away during the server's startup")
		} else {
			pl.countFailure(p, err.Error())
			srv.observe(Event{Kind: ProcessStarted, Class: "failed", Duration: time.Since(p.started)})
		}
		p.retire(cause)
		return nil, err
	}
	if p.era == eraModern {
		if lerr := p.listenBackend(ctx); lerr != nil {
			m.log.Warn("cannot subscribe to the server's list changes", "tool", srv.Name, "process", p.b.ID(), "error", lerr.Error())
		}
	}
	if m.Draining() { // the gateway began shutting down meanwhile
		p.b.End(errShutdown)
		<-p.b.Done()
		return nil, errDraining()
	}
	srv.observe(Event{Kind: ProcessStarted, Class: "ok", Duration: time.Since(p.started)})
	m.log.Info("server process ready", "tool", srv.Name, "runtime", srv.cfg.Runtime, "process", p.b.ID(),
		"mode", srv.cfg.Mode, "era", p.era.String(), "protocol_version", p.backendVersion, "startup_ms", time.Since(p.started).Milliseconds())
	return p, nil
}

// refusedInit reports an initialize the server answered with an error or an
// unusable result (not a timeout or a dead process).
func refusedInit(err error) bool {
	return errors.Is(err, errInitRefused) || errors.Is(err, errBadInit)
}

// gatewayInit is what the gateway declares when it initializes a pooled
// process. It declares sampling and elicitation, which it can route to the
// client whose request is in flight (and refuses for clients that did not
// declare them); it does not declare roots, which are one client's view of
// its files and mean nothing for a process shared by many clients.
func gatewayInit() json.RawMessage {
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": sessionVersions[0],
		"capabilities":    map[string]any{"sampling": map[string]any{}, "elicitation": map[string]any{}},
		"clientInfo":      map[string]any{"name": "mcpgw", "version": "1"},
	})
	return params
}

// handshake performs initialize / notifications/initialized once for a
// pooled process and caches the result for every client's initialize.
func (p *proc) handshake(ctx context.Context) error { return p.handshakeWith(ctx, gatewayInit()) }

// handshakeWith performs initialize with params, then
// notifications/initialized, bounded by what is left of the startup
// timeout, and records the result.
func (p *proc) handshakeWith(ctx context.Context, params json.RawMessage) error {
	srv := p.srv
	hctx, cancel := context.WithTimeout(ctx, srv.cfg.Timeouts.Startup-time.Since(p.started))
	defer cancel()
	req := &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "initialize", Params: params}
	resp, err := p.b.Roundtrip(hctx, req)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return clientGone("during the server's startup")
	case hctx.Err() != nil:
		return errStartup(srv)
	default:
		return backendError(srv.Name, err)
	}
	if resp.Error != nil {
		return errBadBackend(errInitRefused, "server %q refused the gateway's initialize: %s", srv.Name, clip.Bytes(resp.Error, 300))
	}
	version, err := checkInitResult(srv, resp.Result)
	if err != nil {
		return err
	}
	p.initResult = resp.Result
	p.backendVersion = version
	if p.serverInfo == nil {
		p.serverInfo = modern.ServerInfo(resp.Result)
	}
	if err := p.b.Send(hctx, &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/initialized"}); err != nil {
		return backendError(srv.Name, err)
	}
	return nil
}

// negotiate picks the version for a client (MCP spec, lifecycle, "Version
// Negotiation"): the client's if the gateway and the backend support it,
// else the newest both support.
func negotiate(client, backendVersion string) string {
	for _, v := range sessionVersions {
		if v == client && v <= backendVersion {
			return v
		}
	}
	return backendVersion
}

// initResponse answers a client's initialize from the cached result, with
// the version negotiated for that client.
func (p *proc) initResponse(clientVersion string) (json.RawMessage, string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p.initResult, &obj); err != nil {
		return nil, "", err
	}
	v := negotiate(clientVersion, p.backendVersion)
	obj["protocolVersion"], _ = json.Marshal(v)
	out, err := json.Marshal(obj)
	return out, v, err
}

// remove drops an ended process and accounts for an early death: a
// process that died on its own within crashWindow of its start, or whose
// start failed, counts as one failure for the back-off.
func (pl *pool) remove(p *proc, why error) {
	pl.mu.Lock()
	pl.procs = slices.DeleteFunc(pl.procs, func(q *proc) bool { return q == p })
	pl.notify()
	pl.mu.Unlock()
	switch {
	case p.counted.Load():
		// Its failed start was counted when it was answered.
	case errors.Is(why, backend.ErrStopped):
		// The gateway's own decision (idle, lifetime, recycle, shutdown),
		// not a crash.
	case time.Since(p.started) < crashWindow:
		pl.countFailure(p, why.Error())
	default:
		pl.mu.Lock()
		pl.failures = 0
		pl.mu.Unlock()
	}
}

// countFailure counts p's failed start or early death once, whichever
// path sees it first.
func (pl *pool) countFailure(p *proc, reason string) {
	if p.counted.CompareAndSwap(false, true) {
		pl.failed(reason)
	}
}

// failed records a crash or failed start and sets the back-off: the first
// failure restarts at once, then 1s, 2s, 4s … up to maxBackoff.
func (pl *pool) failed(reason string) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.failures++
	pl.lastError = reason
	if pl.failures > 1 {
		d := time.Second << min(pl.failures-2, 6)
		pl.retryAt = time.Now().Add(min(d, maxBackoff))
		pl.srv.observe(Event{Kind: BackoffEntered, N: pl.failures})
		pl.srv.m.log.Warn("server keeps failing; backing off", "tool", pl.srv.Name, "runtime", pl.srv.cfg.Runtime,
			"failures", pl.failures, "retry_in_ms", min(d, maxBackoff).Milliseconds(), "error", reason)
	}
}

// state reports back-off for readiness detail.
func (pl *pool) state() (failing bool, detail string) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if wait := time.Until(pl.retryAt); wait > 0 {
		return true, fmt.Sprintf("crash loop: %d consecutive failures (last: %s); next start in %s", pl.failures, pl.lastError, wait.Round(time.Millisecond))
	}
	return false, ""
}

func (pl *pool) list() []*proc {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return append([]*proc(nil), pl.procs...)
}

// maintain runs from the janitor: lifetime drain, idle shrink, warm floor.
func (pl *pool) maintain(now time.Time) {
	srv := pl.srv
	to := srv.cfg.Timeouts
	// A generation that a reload replaced keeps no warm process and no
	// idle one, and drains every process at its drain deadline.
	replaced, drainOver := srv.replaced(), srv.drainOver(now)
	minProcs := srv.cfg.MinProcesses
	if replaced {
		minProcs = 0
	}
	procs := pl.list()
	live := 0
	for _, p := range procs {
		if p.usable() {
			live++
		}
	}
	for _, p := range procs {
		p.mu.Lock()
		idle := len(p.sessions) == 0 && len(p.inflight) == 0 && (replaced || now.Sub(p.lastUsed) >= to.Idle)
		busy := len(p.inflight) > 0
		if now.Sub(p.started) >= to.MaxLifetime && p.advanceLocked(procDraining) == procReady {
			live--
			srv.m.log.Info("server process reached its maximum lifetime; draining it", "tool", srv.Name,
				"runtime", srv.cfg.Runtime, "process", p.b.ID())
		}
		if drainOver && p.advanceLocked(procDraining) == procReady {
			live--
			srv.m.log.Info("server process of a replaced definition reached the drain deadline; draining it", "tool", srv.Name,
				"runtime", srv.cfg.Runtime, "process", p.b.ID())
		}
		draining := p.state >= procDraining
		p.mu.Unlock()
		switch {
		case draining && !busy:
			// Its sessions move to another process on their next request.
			p.stopAsync(errLifetime)
		case !draining && idle && live > minProcs:
			srv.m.log.Info("stopping an idle server process", "tool", srv.Name, "runtime", srv.cfg.Runtime, "process", p.b.ID())
			p.stopAsync(errIdle)
			live--
		}
	}
	pl.mu.Lock()
	need := minProcs - live - pl.starting
	backoff := time.Now().Before(pl.retryAt)
	pl.mu.Unlock()
	if need > 0 && !backoff && !srv.m.Draining() {
		m := srv.m
		for range need {
			m.wg.Go(func() { // owner: the manager; bounded by the startup timeout
				if _, err := pl.warm(m.ctx); err != nil {
					m.log.Warn("cannot start a warm server process", "tool", srv.Name, "error", err.Error())
				}
			})
		}
	}
}

// warm starts one process for min_processes.
func (pl *pool) warm(ctx context.Context) (*proc, error) {
	pl.mu.Lock()
	if len(pl.procs)+pl.starting >= pl.srv.cfg.MaxProcesses {
		pl.mu.Unlock()
		return nil, nil
	}
	pl.starting++
	pl.mu.Unlock()
	return pl.grow(ctx)
}

// grow starts a process for which the caller counted pl.starting, and adds
// it to the pool.
func (pl *pool) grow(ctx context.Context) (*proc, error) {
	p, err := pl.start(ctx)
	pl.mu.Lock()
	pl.starting--
	if err == nil && p.ended() {
		// It died between its handshake and here: HandleClose has already
		// run pool.remove, which found nothing to remove. Listing it now
		// would keep a dead process in the pool for ever, holding a place
		// of max_processes and making pick wait for it as if it drained.
		err = backendError(pl.srv.Name, p.b.Err())
	}
	if err == nil {
		pl.procs = append(pl.procs, p)
	}
	pl.notify()
	pl.mu.Unlock()
	if err == nil {
		// Subscription streams' resources (listen.go). Read after the
		// process is listed, so a stream granted a URI meanwhile either
		// sees this process or is seen here.
		p.subscribeURIs("resources/subscribe", pl.srv.listeners.grantedURIs())
	}
	return p, err
}

// modern reports whether the pool's processes speak only the modern
// protocol (they refused initialize); false while it has none.
func (pl *pool) modern() bool {
	for _, p := range pl.list() {
		if p.era == eraModern {
			return true
		}
	}
	return false
}
