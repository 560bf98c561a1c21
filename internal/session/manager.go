// Package session maps MCP client sessions and requests onto backend
// processes, and enforces the deadlines and limits of DESIGN.md.
//
// The core rule — no process without a deadline — is enforced here and in
// package runtime:
//   - startup: a process must answer initialize within timeouts.startup, or
//     it is stopped and the client gets 504;
//   - request: each request has timeouts.request; on expiry the client gets
//     one -32001 error and the backend a notifications/cancelled;
//   - idle: a session without client traffic for timeouts.idle is ended and
//     its process stopped (the janitor);
//   - lifetime: a process older than timeouts.max_lifetime takes no new
//     requests and is stopped once its in-flight requests are done (each of
//     which is itself bounded by the request timeout);
//   - cancellation: DELETE, reclaim at the process cap, backend failure and
//     gateway shutdown all stop the process;
//   - stopping is runtime.Process.Stop: close stdin → grace → SIGTERM to the
//     group → grace → SIGKILL → reap.
//
// A Manager owns every session and a janitor goroutine; Close stops them all
// and returns once every process is gone.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/runtime"
	"github.com/mcpgw/mcpgw/internal/sandbox"
)

// Options configure a Manager.
type Options struct {
	// Logger receives session and backend events; nil means slog.Default().
	Logger *slog.Logger
	// Getenv reads the gateway's environment for the children's minimal
	// base (PATH, HOME, LANG, TZ); nil means no base beyond a default PATH.
	Getenv func(string) (string, bool)
}

// Manager owns all sessions of all servers.
type Manager struct {
	cfg    *config.Config
	log    *slog.Logger
	getenv func(string) (string, bool)

	servers map[string]*Server
	// engine is the container engine, nil when no server runs in a
	// container (issue 3).
	engine *runtime.Engine

	mu        sync.Mutex
	sessions  map[string]*Session
	live      int                // processes alive or starting, all servers
	listening int                // open subscriptions/listen streams, all servers
	adhoc     map[*proc]struct{} // launcher processes of modern requests (stateless.go)
	slotFreed chan struct{}      // closed and replaced when a process slot frees
	draining  bool
	closed    bool

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // janitor and background stops
}

// NewManager returns a manager for cfg's servers and starts its janitor.
func NewManager(cfg *config.Config, opts *Options) *Manager {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:       cfg,
		log:       log,
		getenv:    getenv,
		servers:   make(map[string]*Server),
		sessions:  make(map[string]*Session),
		adhoc:     make(map[*proc]struct{}),
		slotFreed: make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
	}
	tick := time.Second
	for name, sc := range cfg.Servers {
		m.servers[name] = newServer(m, name, sc)
		for _, d := range []time.Duration{sc.Timeouts.Idle / 4, sc.Timeouts.MaxLifetime / 4} {
			if d > 0 && d < tick {
				tick = d
			}
		}
	}
	m.engine = m.openEngine()
	tick = max(tick, 50*time.Millisecond)
	if h := cfg.Limits.HoldMessages / 4; h > 0 && h < tick {
		tick = max(h, 50*time.Millisecond)
	}
	m.wg.Add(1)
	go m.janitor(tick)
	return m
}

// Server returns the named server, or nil.
func (m *Manager) Server(name string) *Server { return m.servers[name] }

// Servers returns the configured servers sorted by name.
func (m *Manager) Servers() []*Server {
	out := make([]*Server, 0, len(m.servers))
	for _, s := range m.servers {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the live session id of server, or an *Error (404).
func (m *Manager) Lookup(server, id string) (*Session, error) {
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	if s == nil || s.srv.Name != server || s.isGone() {
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
	sessions := m.sessionList()
	m.mu.Unlock()
	for _, s := range sessions {
		s.closeStream()
	}
	for _, srv := range m.servers {
		srv.listeners.finishAll()
	}
}

// Close stops every session and process and the janitor. It returns once
// every process is gone; it is bounded by twice the largest kill grace.
func (m *Manager) Close() {
	m.mu.Lock()
	m.draining = true
	m.closed = true
	sessions := m.sessionList()
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() { defer wg.Done(); s.close(errShutdown) }()
	}
	wg.Wait()
	// Daemon pools and the processes of modern requests still running:
	// stop every one (each waits for its stop). Requests waiting for their
	// client's input are forgotten; their processes are among these.
	m.mu.Lock()
	adhoc := make([]*proc, 0, len(m.adhoc))
	for p := range m.adhoc {
		adhoc = append(adhoc, p)
	}
	m.mu.Unlock()
	for _, srv := range m.servers {
		srv.inputs.clear()
		if srv.pool != nil {
			adhoc = append(adhoc, srv.pool.list()...)
		}
	}
	for _, p := range adhoc {
		wg.Add(1)
		go func() { defer wg.Done(); p.b.End(errShutdown); <-p.b.Done() }()
	}
	wg.Wait()
	m.cancel()
	m.wg.Wait()
	if m.engine != nil {
		_ = m.engine.Close()
	}
}

var errShutdown = stopped("gateway shutting down")

func (m *Manager) sessionList() []*Session {
	out := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	return out
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
	} else if srv := m.servers[server]; srv != nil {
		st.Processes = srv.procs
	}
	return st
}

// reserve takes a process slot for srv, reclaiming an idle session at a
// cap, waiting up to the server's queue_timeout (DESIGN.md, issue 2).
func (m *Manager) reserve(ctx context.Context, srv *Server) error {
	var deadline time.Time
	if qt := srv.cfg.QueueTimeout; qt > 0 {
		deadline = time.Now().Add(qt)
	}
	for {
		m.mu.Lock()
		if m.draining {
			m.mu.Unlock()
			return errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
		}
		serverFull := srv.procs >= srv.cfg.MaxProcesses
		globalFull := m.live >= m.cfg.Limits.MaxProcesses
		if !serverFull && !globalFull {
			srv.procs++
			m.live++
			m.mu.Unlock()
			return nil
		}
		victim := m.reclaimCandidate(srv, serverFull)
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
			if !serverFull {
				what = fmt.Sprintf("the gateway is at its process limit (limits.max_processes = %d)", m.cfg.Limits.MaxProcesses)
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

// reclaimCandidate picks the longest-idle session with nothing in flight
// that has been idle for at least its server's reclaim_idle. Called with
// m.mu held.
func (m *Manager) reclaimCandidate(srv *Server, sameServer bool) *Session {
	var best *Session
	var bestIdle time.Time
	for _, s := range m.sessions {
		if (sameServer && s.srv != srv) || s.isGone() {
			continue
		}
		if s.daemon {
			continue // ending it would free no process
		}
		last, busy := s.idleState()
		if busy || time.Since(last) < s.srv.cfg.Timeouts.ReclaimIdle {
			continue
		}
		if best == nil || last.Before(bestIdle) {
			best, bestIdle = s, last
		}
	}
	return best
}

// release returns a process slot.
func (m *Manager) release(srv *Server) { m.releaseRetired(srv, false) }

// releaseRetired returns a process slot; retired reports a process that
// was counted in srv.retiring.
func (m *Manager) releaseRetired(srv *Server, retired bool) {
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
		return errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	if len(m.sessions) >= m.cfg.Limits.MaxSessions {
		return errTooMany(fmt.Sprintf("the gateway is at its session limit (limits.max_sessions = %d); retry later", m.cfg.Limits.MaxSessions))
	}
	m.sessions[s.id] = s
	return nil
}

// roomForSession makes sure a new session fits under limits.max_sessions
// before any work is done for it: at the limit it ends the longest-idle
// session (idle at least its server's reclaim_idle, nothing in flight),
// else it refuses with 429.
func (m *Manager) roomForSession() error {
	m.mu.Lock()
	if len(m.sessions) < m.cfg.Limits.MaxSessions {
		m.mu.Unlock()
		return nil
	}
	var victim *Session
	var oldest time.Time
	for _, s := range m.sessions {
		if s.isGone() {
			continue
		}
		last, busy := s.idleState()
		if busy || time.Since(last) < s.srv.cfg.Timeouts.ReclaimIdle {
			continue
		}
		if victim == nil || last.Before(oldest) {
			victim, oldest = s, last
		}
	}
	if victim == nil {
		m.mu.Unlock()
		return errTooMany(fmt.Sprintf("the gateway is at its session limit (limits.max_sessions = %d) and no session is idle enough to end; retry later", m.cfg.Limits.MaxSessions))
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
	m.wg.Add(1)
	go func() { defer m.wg.Done(); s.close(why) }()
}

// janitor enforces idle and lifetime deadlines and expires held messages.
func (m *Manager) janitor(tick time.Duration) {
	defer m.wg.Done()
	for _, srv := range m.servers {
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
		m.mu.Lock()
		sessions := m.sessionList()
		m.mu.Unlock()
		now := time.Now()
		for _, s := range sessions {
			s.expireHeld(now)
			if s.stopping.Load() {
				continue
			}
			last, busy := s.idleState()
			to := s.srv.cfg.Timeouts
			switch {
			case !busy && now.Sub(last) >= to.Idle:
				m.log.Info("session idle timeout", "tool", s.srv.Name, "runtime", s.srv.cfg.Runtime,
					"session_id", s.id, "idle_ms", now.Sub(last).Milliseconds())
				m.stopAsync(s, errIdle)
			case !s.daemon && now.Sub(s.pinnedProc().started) >= to.MaxLifetime:
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
		for _, srv := range m.servers {
			if srv.pool != nil {
				srv.pool.maintain(now)
			}
			srv.listeners.expire(now, srv.cfg.Timeouts.MaxLifetime)
		}
	}
}

var (
	errIdle     = stopped("idle timeout")
	errLifetime = stopped("maximum lifetime reached")
)

// Server is one configured server and its limits.
type Server struct {
	Name string
	cfg  *config.Server
	m    *Manager
	sem  chan struct{} // in-flight request slots (max_concurrent)
	env  []string
	pool *pool // daemon mode only

	// silentProbe is set once a process of this server ignored the
	// server/discover probe: later processes are assumed legacy (era.go).
	silentProbe atomic.Bool
	// listeners are the open subscriptions/listen streams (listen.go).
	listeners listeners
	// inputs are the modern requests waiting for their client's input
	// (mrtr.go).
	inputs inputs

	procs    int // guarded by m.mu
	retiring int // guarded by m.mu: launcher processes stopping because their work is done
}

func newServer(m *Manager, name string, cfg *config.Server) *Server {
	s := &Server{Name: name, cfg: cfg, m: m, sem: make(chan struct{}, cfg.MaxConcurrent)}
	s.env = m.childEnv(cfg)
	if cfg.Runtime == "container" {
		s.env = containerEnv(cfg)
	}
	s.env = append(s.env, workspaceEnv(cfg)...)
	if cfg.Runtime != "container" && cfg.Sandbox == config.SandboxNone {
		m.log.Info("server runs without a sandbox", "tool", name, "runtime", cfg.Runtime, "sandbox", cfg.Sandbox)
	}
	if cfg.Mode == "daemon" {
		s.pool = newPool(s)
	}
	return s
}

// Config returns the server's configuration.
func (s *Server) Config() *config.Server { return s.cfg }

// childEnv builds the explicit environment of a child: a minimal base from
// the gateway plus the server's env. Nothing else is inherited, so secrets
// in the gateway's environment never reach servers not configured for them.
func (m *Manager) childEnv(cfg *config.Server) []string {
	env := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin"}
	for _, k := range []string{"PATH", "HOME", "LANG", "TZ"} {
		if v, ok := m.getenv(k); ok {
			env[k] = v
		}
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// Failing reports a daemon server in crash-loop back-off, for readiness.
func (s *Server) Failing() (bool, string) {
	if s.pool == nil {
		return false, ""
	}
	return s.pool.state()
}

// workspaceEnv returns MCPGW_WORKSPACE_<NAME>=path for each of a server's
// workspaces: the path the server sees (issue 7).
func workspaceEnv(cfg *config.Server) []string {
	var out []string
	for _, w := range cfg.Workspaces {
		p := w.HostPath
		if cfg.Runtime == "container" {
			p = w.Target
		}
		out = append(out, config.WorkspaceEnv(w.Name)+"="+p)
	}
	return out
}

// Check reports whether the server's runtime can start it (readiness).
func (s *Server) Check() error {
	if s.cfg.Runtime == "container" {
		return s.checkContainer()
	}
	if s.cfg.Sandbox == config.SandboxLandlock {
		if err := sandbox.Check(); err != nil {
			return err
		}
	}
	_, err := runtime.LookPath(s.cfg.Command[0], s.env)
	if err != nil {
		return fmt.Errorf("command %q: %w", s.cfg.Command[0], err)
	}
	return nil
}

// SandboxState describes, for readiness, how the server's native processes
// are confined: "none", or the sandbox mode with the kernel's Landlock ABI
// version or why Landlock is unavailable. It is "" for a container server.
func (s *Server) SandboxState() string {
	if s.cfg.Runtime == "container" {
		return ""
	}
	if s.cfg.Sandbox == config.SandboxNone {
		return config.SandboxNone
	}
	abi, err := sandbox.ABI()
	switch {
	case err != nil && s.cfg.Sandbox == config.SandboxBestEffort:
		return s.cfg.Sandbox + ": unconfined, " + err.Error()
	case err != nil:
		return s.cfg.Sandbox + ": " + err.Error()
	}
	return fmt.Sprintf("%s (landlock ABI %d)", s.cfg.Sandbox, abi)
}

// acquire takes an in-flight request slot, waiting up to queue_timeout.
func (s *Server) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	tooMany := func() error {
		return errTooMany(fmt.Sprintf("server %q has %d requests in flight (servers.%s.max_concurrent); retry later",
			s.Name, s.cfg.MaxConcurrent, s.Name))
	}
	if s.cfg.QueueTimeout <= 0 {
		return tooMany()
	}
	t := time.NewTimer(s.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-t.C:
		return tooMany()
	case <-ctx.Done():
		return tooMany()
	}
}

func (s *Server) releaseSlot() { <-s.sem }

// start launches one process for a new session.
func (s *Server) start(h backend.Handler) (*backend.Backend, error) {
	if s.cfg.Runtime == "container" {
		return s.startContainer(h)
	}
	if err := s.verifyWorkspaces(); err != nil {
		return nil, err
	}
	spec := runtime.NativeSpec{
		Command:   s.cfg.Command,
		Env:       s.env,
		Dir:       s.cfg.Workdir,
		KillGrace: s.cfg.Timeouts.KillGrace,
	}
	if s.cfg.Sandbox != config.SandboxNone {
		if s.cfg.Sandbox == config.SandboxLandlock {
			if err := sandbox.Check(); err != nil {
				return nil, fmt.Errorf("server %q needs sandbox: landlock: %w", s.Name, err)
			}
		}
		sb := &runtime.Sandbox{BestEffort: s.cfg.Sandbox == config.SandboxBestEffort}
		for _, w := range s.cfg.Workspaces {
			sb.Rules = append(sb.Rules, sandbox.Rule{Path: w.HostPath, Write: !w.ReadOnly(), Exact: true})
		}
		for _, p := range s.cfg.ReadPaths {
			sb.Rules = append(sb.Rules, sandbox.Rule{Path: p})
		}
		spec.Sandbox = sb
		if spec.Dir == "" && len(s.cfg.Workspaces) > 0 {
			spec.Dir = s.cfg.Workspaces[0].HostPath
		}
	}
	proc, err := runtime.StartNative(spec)
	if err != nil {
		return nil, err
	}
	b := backend.New(nativeProcess{proc}, h, backend.Options{
		Name:            s.Name,
		Runtime:         s.cfg.Runtime,
		MaxMessageBytes: s.m.cfg.Limits.MaxMessageBytes,
		Logger:          s.m.log,
	})
	return b, nil
}

// verifyWorkspaces re-checks at spawn that every workspace still resolves
// to the real path checked at load (config.VerifyMount).
func (s *Server) verifyWorkspaces() error {
	for _, w := range s.cfg.Workspaces {
		if err := config.VerifyMount(s.m.cfg.Workspaces[w.Name], w); err != nil {
			return fmt.Errorf("starting server %q: %w", s.Name, err)
		}
	}
	return nil
}

// nativeProcess adapts runtime.Process to backend.Process.
type nativeProcess struct{ *runtime.Process }

func (p nativeProcess) Stdin() backend.WriteDeadliner { return p.Process.Stdin() }

func newSessionID() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
