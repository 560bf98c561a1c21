package session

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/policy"
)

// modeDaemon is config.ModeDaemon, which the layer tests often.
const modeDaemon = config.ModeDaemon

// Server is one configured server: its limits, its pool (daemon mode) and
// the modern requests and listeners it serves.
type Server struct {
	Name string
	cfg  *config.Server
	m    *Manager
	sem  *slots // in-flight request slots (max_concurrent)
	pool *pool  // daemon mode only
	// guard is the server's tool policy (policy.go); nil: none.
	guard *policy.Guard

	// silentProbe is set once a process of this server ignored the
	// server/discover probe: later processes are assumed legacy (era.go).
	silentProbe atomic.Bool
	// legacyOnly is set once a process of this server showed that it speaks
	// only the session-era protocol: later processes are not probed
	// (era.go).
	legacyOnly atomic.Bool
	// warm are the processes kept for the identities of modern requests
	// (launcher mode, warm.go).
	warm warmSet
	// listeners are the open subscriptions/listen streams (listen.go).
	listeners listeners
	// inputs are the modern requests waiting for their client's input
	// (mrtr.go).
	inputs inputs

	counts serverCounts // for the status page (snapshot.go)

	procs    int // guarded by m.mu
	retiring int // guarded by m.mu: launcher processes stopping because their work is done

	// drainBy is set (Unix nanoseconds) when a reload replaced or removed
	// this generation of the server; its sessions end once it passes
	// (reload.go). Zero for a current server.
	drainBy atomic.Int64
	removed atomic.Bool // the reload removed the server altogether

	// An aggregate's members that failed in one of its sessions and are
	// not back yet, with why (aggregate.go), for readiness.
	aggMu   sync.Mutex
	aggDown map[string]string
	// Name collisions of the aggregate's modern lists already logged
	// (aggregate_modern.go), guarded by aggMu.
	aggLogged map[string]bool
}

func newServer(m *Manager, name string, cfg *config.Server) *Server {
	s := &Server{Name: name, cfg: cfg, m: m, guard: m.guardOf(name, cfg)}
	s.sem = newSlots(cfg.MaxConcurrent, func() error {
		return errTooMany(fmt.Sprintf("server %q has %d requests in flight (servers.%s.max_concurrent); retry later",
			name, cfg.MaxConcurrent, name))
	})
	if cfg.Mode == modeDaemon {
		s.pool = newPool(s)
	}
	return s
}

// Config returns the server's configuration.
func (s *Server) Config() *config.Server { return s.cfg }

// Failing reports a daemon server in crash-loop back-off, for readiness.
func (s *Server) Failing() (bool, string) {
	if s.agg() != nil {
		down := s.MembersDown()
		return len(down) > 0, strings.Join(down, "; ")
	}
	if s.pool == nil {
		return false, ""
	}
	return s.pool.state()
}
