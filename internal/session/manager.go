package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/config"
)

// Launcher starts one process of a configured server and returns its
// backend, whose Handler is h. Start is called concurrently; it must be
// bounded by the server's startup timeout and by ctx.
type Launcher interface {
	Start(ctx context.Context, server *config.Server, h backend.Handler) (*backend.Backend, error)
}

// Options configure a Manager. A nil *Options is valid.
type Options struct {
	// Logger receives session and backend events; nil means slog.Default().
	Logger *slog.Logger
	// Observer is told what the layer does (observe.go); nil means nobody.
	Observer Observer
	// Tracer makes spans of queueing, process starts and backend round
	// trips (observe.go); nil means none.
	Tracer Tracer
	// NewID makes the session ids and the random part of requestState
	// handles; nil means 24 random bytes, base64url. A cluster passes ids
	// that name their replica and carry its signature (package cluster).
	// It must return unguessable, URL- and header-safe strings.
	NewID func() string
}

// Manager owns all sessions of all servers, the process slots, and the
// janitor that enforces idle and lifetime deadlines.
type Manager struct {
	log      *slog.Logger
	launcher Launcher
	obs      Observer      // nil: none
	tracer   Tracer        // nil: none
	newID    func() string // session ids and requestState handles (Options.NewID)

	// cfg and servers are the current configuration and its servers,
	// replaced as a whole by Reload (reload.go) so that the hot path reads
	// them without a lock. A Server whose definition changed or that was
	// removed leaves servers for retired until its drain is over.
	cfg     atomic.Pointer[config.Config]
	servers atomic.Pointer[map[string]*Server]

	reloadMu sync.Mutex               // serialises Reload
	pins     atomic.Pointer[pinStore] // where tool pins persist (policy.go); nil: in memory

	mu        sync.Mutex
	retired   []*Server // generations draining after a reload (reload.go)
	sessions  map[string]*Session
	live      int                // processes alive or starting, all servers
	listening int                // open subscriptions/listen streams, all servers
	adhoc     map[*proc]struct{} // launcher processes of modern requests (stateless.go)
	slotFreed chan struct{}      // closed and replaced when a process slot frees
	draining  bool
	closed    bool
	opened    bool

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the janitor and every background stop, start and send
}

// NewManager returns a manager for cfg's servers whose processes launcher
// starts. It starts nothing: Open starts the janitor (and the warm
// processes of daemon servers).
func NewManager(cfg *config.Config, launcher Launcher, opts *Options) *Manager {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	newID := opts.NewID
	if newID == nil {
		newID = newSessionID
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		log:       log,
		launcher:  launcher,
		obs:       opts.Observer,
		tracer:    opts.Tracer,
		newID:     newID,
		sessions:  make(map[string]*Session),
		adhoc:     make(map[*proc]struct{}),
		slotFreed: make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
	}
	servers := make(map[string]*Server, len(cfg.Servers))
	for name, sc := range cfg.Servers {
		servers[name] = newServer(m, name, sc)
	}
	m.cfg.Store(cfg)
	m.servers.Store(&servers)
	return m
}

// conf is the current configuration.
func (m *Manager) conf() *config.Config { return m.cfg.Load() }

// current is the current configuration's servers by name; callers must
// not change the map.
func (m *Manager) current() map[string]*Server { return *m.servers.Load() }

// janitorTick is how often the janitor looks: often enough to enforce the
// shortest idle, lifetime and hold bound within a quarter of it, never
// more often than every 50ms, at least every second.
func (m *Manager) janitorTick() time.Duration {
	tick := time.Second
	cfg := m.conf()
	for _, sc := range cfg.Servers {
		for _, d := range []time.Duration{sc.Timeouts.Idle / 4, sc.Timeouts.MaxLifetime / 4} {
			if d > 0 && d < tick {
				tick = d
			}
		}
	}
	if h := cfg.Limits.HoldMessages / 4; h > 0 && h < tick {
		tick = h
	}
	return max(tick, 50*time.Millisecond)
}

// Open starts the janitor, which starts the warm processes of daemon
// servers at once. Calling it again does nothing.
func (m *Manager) Open() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opened || m.closed {
		return
	}
	m.opened = true
	tick := m.janitorTick()
	m.wg.Go(func() { m.janitor(tick) })
	m.wg.Go(m.watchPins)
}

// Server returns the named server, or nil.
func (m *Manager) Server(name string) *Server { return m.current()[name] }

// Servers returns the configured servers sorted by name.
func (m *Manager) Servers() []*Server {
	servers := m.current()
	out := make([]*Server, 0, len(servers))
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		out = append(out, servers[name])
	}
	return out
}

// Lookup returns the live session id of server created by identity, or
// an *Error (404). A session is bound to the identity that created it: a
// request that presents its id under another identity is told it does not
// exist, exactly as for an unknown id, so that a leaked or guessed session
// id is worth nothing to anyone else and its existence is not revealed.
func (m *Manager) Lookup(server, id, identity string) (*Session, error) {
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	if s == nil || s.srv.Name != server || s.caller.Identity != identity || s.isGone() {
		return nil, errSessionGone()
	}
	return s, nil
}

// Draining reports whether Drain was called.
func (m *Manager) Draining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.draining
}

// Drain refuses new sessions and requests (503) and ends every GET stream
// so that HTTP shutdown can complete; in-flight requests continue.
func (m *Manager) Drain() {
	m.mu.Lock()
	m.draining = true
	sessions := slices.Collect(maps.Values(m.sessions))
	m.mu.Unlock()
	for _, s := range sessions {
		s.closeStream()
	}
	for _, srv := range m.generations() {
		srv.listeners.finishAll()
	}
}

// Close stops every session and process and the janitor. It returns once
// every process is gone; it is bounded by twice the largest kill grace.
func (m *Manager) Close() {
	m.mu.Lock()
	m.draining = true
	m.closed = true
	sessions := slices.Collect(maps.Values(m.sessions))
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { s.close(errShutdown) })
	}
	wg.Wait()
	// Daemon pools and the processes of modern requests still running:
	// stop every one (each waits for its stop). Requests waiting for their
	// client's input are forgotten; their processes are among these.
	m.mu.Lock()
	procs := slices.Collect(maps.Keys(m.adhoc))
	m.mu.Unlock()
	for _, srv := range m.generations() {
		srv.inputs.clear()
		if srv.pool != nil {
			procs = append(procs, srv.pool.list()...)
		}
	}
	for _, p := range procs {
		wg.Go(func() { p.b.End(errShutdown); <-p.b.Done() })
	}
	wg.Wait()
	m.cancel()
	m.wg.Wait()
}

var errShutdown = stopped("gateway shutting down")

// trackAdhoc records a process that belongs to no session so that Close
// stops it; it reports false when the manager is already closed. A process
// that ended before it was tracked is waited for and not tracked.
func (m *Manager) trackAdhoc(p *proc) bool {
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.adhoc[p] = struct{}{}
	}
	m.mu.Unlock()
	if p.b.Err() != nil { // ended before it was tracked: HandleClose has run or will not find it
		<-p.b.Done()
		m.untrackAdhoc(p)
	}
	return !closed
}

func (m *Manager) untrackAdhoc(p *proc) {
	m.mu.Lock()
	delete(m.adhoc, p)
	m.mu.Unlock()
}

// Stats is a snapshot for readiness and tests.
type Stats struct {
	Sessions  int
	Processes int
	InFlight  int // client requests awaiting an outcome
}

// Stats reports the current numbers for one server ("" = all).
func (m *Manager) Stats(server string) Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st Stats
	for _, s := range m.sessions {
		if server == "" || s.srv.Name == server {
			st.Sessions++
			s.mu.Lock()
			st.InFlight += len(s.inflight)
			s.mu.Unlock()
		}
	}
	if server == "" {
		st.Processes = m.live
	} else if srv := m.Server(server); srv != nil {
		st.Processes = srv.procs
	}
	return st
}

// reserve takes a process slot for srv, reclaiming an idle session at a
// cap, waiting up to the server's queue_timeout.
func (m *Manager) reserve(ctx context.Context, srv *Server) error {
	var deadline time.Time
	if qt := srv.cfg.QueueTimeout; qt > 0 {
		deadline = time.Now().Add(qt)
	}
	for {
		m.mu.Lock()
		if m.draining {
			m.mu.Unlock()
			return errDraining()
		}
		if srv.drainOver(time.Now()) {
			m.mu.Unlock()
			return errReplaced(srv)
		}
		maxProcesses := m.conf().Limits.MaxProcesses
		serverFull := srv.procs >= srv.cfg.MaxProcesses
		globalFull := m.live >= maxProcesses
		if !serverFull && !globalFull {
			srv.procs++
			m.live++
			m.mu.Unlock()
			return nil
		}
		// An idle warm process of 2026-07-28 requests holds no client
		// state: it goes before any session (warm.go).
		warmVictim := m.warmCandidate(srv, serverFull)
		var victim *Session
		if warmVictim == nil {
			victim = m.reclaimCandidate(srv, serverFull)
		}
		wait := m.slotFreed
		retiring := srv.retiring > 0
		m.mu.Unlock()
		if retiring {
			// Processes whose request is over are on their way out (a
			// stop takes at most two grace periods): wait for their slots
			// even when queue_timeout is zero.
			if d := time.Now().Add(2*srv.cfg.Timeouts.KillGrace + time.Second); d.After(deadline) {
				deadline = d
			}
		}

		if warmVictim != nil {
			m.log.Info("reclaiming an idle process of 2026-07-28 requests to make room", "tool", warmVictim.srv.Name,
				"runtime", warmVictim.srv.cfg.Runtime, "process", warmVictim.b.ID(), "for_tool", srv.Name)
			warmVictim.retire(errReclaimedWarm)
			if d := time.Now().Add(2*warmVictim.srv.cfg.Timeouts.KillGrace + time.Second); d.After(deadline) {
				deadline = d
			}
		}
		if victim != nil {
			m.log.Warn("reclaiming an idle session to make room for a new one",
				"tool", victim.srv.Name, "runtime", victim.srv.cfg.Runtime,
				"session_id", victim.id, "idle_ms", time.Since(victim.lastActivity()).Milliseconds(),
				"for_tool", srv.Name)
			m.stopAsync(victim, errReclaimed)
			// Stopping takes at most two grace periods; wait that long for
			// the slot even when queue_timeout is zero.
			if d := time.Now().Add(2*victim.srv.cfg.Timeouts.KillGrace + time.Second); d.After(deadline) {
				deadline = d
			}
		}
		if deadline.IsZero() || !time.Now().Before(deadline) {
			what := fmt.Sprintf("server %q is at its process limit (servers.%s.max_processes = %d)", srv.Name, srv.Name, srv.cfg.MaxProcesses)
			srv.rejected("process_cap")
			if !serverFull {
				what = fmt.Sprintf("the gateway is at its process limit (limits.max_processes = %d)", maxProcesses)
			}
			return errTooMany(what + " and no idle session could be reclaimed; retry later")
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errTooMany("client gave up while waiting for a process slot")
		}
		t.Stop()
	}
}

var errReclaimed = stopped("session reclaimed: the process limit was reached and it was the longest idle")

// warmCandidate takes the longest-idle warm process of srv (or of any
// launcher server when !sameServer) out of its set. Called with m.mu held.
func (m *Manager) warmCandidate(srv *Server, sameServer bool) *proc {
	if sameServer {
		return srv.idleWarm()
	}
	for _, srv := range m.retired { // a replaced generation's first (reload.go)
		if p := srv.idleWarm(); p != nil {
			return p
		}
	}
	servers := m.current()
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		if p := servers[name].idleWarm(); p != nil {
			return p
		}
	}
	return nil
}

// reclaimCandidate picks the longest-idle reclaimable session (reclaim.go).
// Called with m.mu held.
func (m *Manager) reclaimCandidate(srv *Server, sameServer bool) *Session {
	var best *Session
	var bestIdle time.Time
	now := time.Now()
	for _, s := range m.sessions {
		if (sameServer && s.srv != srv) || s.isGone() {
			continue
		}
		if s.daemon {
			continue // ending it would free no process
		}
		last, ok := s.reclaimable(now)
		if !ok {
			continue
		}
		if best == nil || last.Before(bestIdle) {
			best, bestIdle = s, last
		}
	}
	return best
}

// release returns a process slot; retired reports a process that was
// counted in srv.retiring.
func (m *Manager) release(srv *Server, retired bool) {
	m.mu.Lock()
	srv.procs--
	m.live--
	if retired {
		srv.retiring--
	}
	close(m.slotFreed)
	m.slotFreed = make(chan struct{})
	m.mu.Unlock()
}

func (m *Manager) add(s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.draining {
		return errDraining()
	}
	if s.srv.drainOver(time.Now()) {
		return errReplaced(s.srv)
	}
	if limit := m.conf().Limits.MaxSessions; len(m.sessions) >= limit {
		return errTooMany(fmt.Sprintf("the gateway is at its session limit (limits.max_sessions = %d); retry later", limit))
	}
	m.sessions[s.id] = s
	s.published.Store(true)
	return nil
}

// roomForSession makes sure a new session fits under limits.max_sessions
// before any work is done for it: at the limit it ends the longest-idle
// reclaimable session (reclaim.go), else it refuses with 429.
func (m *Manager) roomForSession() error {
	m.mu.Lock()
	limit := m.conf().Limits.MaxSessions
	if len(m.sessions) < limit {
		m.mu.Unlock()
		return nil
	}
	var victim *Session
	var oldest time.Time
	now := time.Now()
	for _, s := range m.sessions {
		last, ok := s.reclaimable(now)
		if !ok {
			continue
		}
		if victim == nil || last.Before(oldest) {
			victim, oldest = s, last
		}
	}
	if victim == nil {
		m.mu.Unlock()
		return errTooMany(fmt.Sprintf("the gateway is at its session limit (limits.max_sessions = %d) and no session is idle enough to end; retry later", limit))
	}
	delete(m.sessions, victim.id) // the slot is free at once
	m.mu.Unlock()
	m.log.Warn("ending the longest-idle session: the session limit was reached", "tool", victim.srv.Name,
		"runtime", victim.srv.cfg.Runtime, "session_id", victim.id, "idle_ms", time.Since(oldest).Milliseconds())
	m.stopAsync(victim, errReclaimed)
	return nil
}

func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
	m.mu.Unlock()
}

// stopAsync ends s without making the caller wait for its process.
func (m *Manager) stopAsync(s *Session, why error) {
	s.markGone()
	if !s.stopping.CompareAndSwap(false, true) {
		return // already being stopped
	}
	m.wg.Go(func() { s.close(why) })
}

// janitor enforces idle and lifetime deadlines and expires held messages.
func (m *Manager) janitor(tick time.Duration) {
	for _, srv := range m.current() {
		if srv.pool != nil {
			srv.pool.maintain(time.Now()) // warm processes start with the gateway
		}
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		if next := m.janitorTick(); next != tick { // a reload changed the timeouts
			tick = next
			t.Reset(tick)
		}
		m.mu.Lock()
		sessions := slices.Collect(maps.Values(m.sessions))
		m.mu.Unlock()
		now := time.Now()
		for _, s := range sessions {
			s.expireHeld(now)
			if s.stopping.Load() {
				continue
			}
			last, busy := s.idleState()
			if s.agg != nil {
				busy = busy || s.agg.busy()
			}
			to := s.srv.cfg.Timeouts
			switch {
			case s.srv.drainOver(now):
				// A reload replaced or removed its server and the drain
				// deadline passed: as at the maximum lifetime, new requests
				// get 404 (the client re-initialises with the new
				// definition) and the running ones finish first.
				if s.expire() {
					m.log.Info("session of a replaced server definition reached the drain deadline; ending it", "tool", s.srv.Name,
						"runtime", s.srv.cfg.Runtime, "session_id", s.id, "in_flight", busy)
				}
				if !busy {
					m.stopAsync(s, errReplacedStop)
				}
			case !busy && now.Sub(last) >= to.Idle:
				m.log.Info("session idle timeout", "tool", s.srv.Name, "runtime", s.srv.cfg.Runtime,
					"session_id", s.id, "idle_ms", now.Sub(last).Milliseconds())
				m.stopAsync(s, errIdle)
			case !s.daemon && s.agg == nil && now.Sub(s.pinnedProc().started) >= to.MaxLifetime:
				// New requests now get 404; in-flight ones finish first, each
				// bounded by its own request timeout.
				if s.expire() {
					m.log.Info("process reached its maximum lifetime; draining it", "tool", s.srv.Name,
						"runtime", s.srv.cfg.Runtime, "session_id", s.id, "in_flight", busy)
				}
				if !busy {
					m.stopAsync(s, errLifetime)
				}
			}
		}
		for _, srv := range m.generations() {
			if srv.pool != nil {
				srv.pool.maintain(now)
			}
			srv.listeners.expire(now, srv.cfg.Timeouts.MaxLifetime)
			if srv.drainOver(now) {
				srv.listeners.finishAll()
			}
			if srv.pool == nil {
				srv.maintainWarm(now)
			}
		}
		m.forgetDrained(now)
	}
}

var (
	errIdle     = stopped("idle timeout")
	errLifetime = stopped("maximum lifetime reached")
)

func newSessionID() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
