package session

import (
	"maps"
	"slices"
	"sync/atomic"
	"time"
)

// serverCounts are a server's totals since the gateway started.
type serverCounts struct {
	starts  atomic.Int64 // processes that started
	crashes atomic.Int64 // processes that ended on their own
}

// Snapshot is the state of every server at one moment, for the status
// page and the metrics' gauges. It holds counts, never session ids.
type Snapshot struct {
	At      time.Time
	Servers []ServerSnapshot // sorted by name
}

// ServerSnapshot is one server's state.
type ServerSnapshot struct {
	Name    string
	Runtime string
	Mode    string
	// Failing is set during a crash back-off; Detail says why and when
	// the next start is allowed.
	Failing  bool
	Detail   string
	Failures int // consecutive failures (daemon mode)
	// Processes are the running processes, oldest first; Starting counts
	// those still starting.
	Processes []ProcessSnapshot
	Starting  int
	// Sessions counts session-era sessions by negotiated protocol version,
	// and by identity ("anonymous" without authentication).
	Sessions           map[string]int
	SessionsByIdentity map[string]int
	// Streams counts open long-lived streams: "get" (sessions' GET
	// streams) and "listen" (subscriptions/listen).
	Streams  map[string]int
	InFlight int // client requests awaiting an outcome
	Starts   int64
	Crashes  int64
}

// ProcessSnapshot is one running process.
type ProcessSnapshot struct {
	ID       string
	State    string // "ready", "draining", "stopping"
	Era      string // the protocol the process speaks: "session" or "modern"
	Started  time.Time
	InFlight int
	Sessions int
}

var stateNames = [...]string{procReady: "ready", procDraining: "draining", procStopping: "stopping",
	procRetiring: "stopping", procEnded: "ended"}

// Snapshot returns the state of every server. It takes each lock briefly
// and in the package's order, so it may be called at any time (a scrape,
// a status page) without holding up requests for long.
func (m *Manager) Snapshot() Snapshot {
	snap := Snapshot{At: time.Now()}
	byName := map[string]*ServerSnapshot{}
	for _, srv := range m.Servers() {
		ss := ServerSnapshot{Name: srv.Name, Runtime: string(srv.cfg.Runtime), Mode: string(srv.cfg.Mode),
			Sessions: map[string]int{}, SessionsByIdentity: map[string]int{}, Streams: map[string]int{},
			Starts: srv.counts.starts.Load(), Crashes: srv.counts.crashes.Load()}
		if srv.pool != nil {
			srv.pool.mu.Lock()
			ss.Starting = srv.pool.starting
			ss.Failures = srv.pool.failures
			srv.pool.mu.Unlock()
		}
		ss.Failing, ss.Detail = srv.Failing()
		srv.listeners.mu.Lock()
		if n := len(srv.listeners.set); n > 0 {
			ss.Streams["listen"] = n
		}
		srv.listeners.mu.Unlock()
		snap.Servers = append(snap.Servers, ss)
	}
	for i := range snap.Servers {
		byName[snap.Servers[i].Name] = &snap.Servers[i]
	}

	// Processes: the pools', the sessions' own (launcher) and the modern
	// requests' own.
	procs := map[*proc]struct{}{}
	m.mu.Lock()
	sessions := slices.Collect(maps.Values(m.sessions))
	for p := range m.adhoc {
		procs[p] = struct{}{}
	}
	reserved := map[string]int{}
	current := m.current()
	for _, srv := range current {
		reserved[srv.Name] = srv.procs
	}
	m.mu.Unlock()
	for _, s := range sessions {
		ss := byName[s.srv.Name]
		if ss == nil || current[s.srv.Name] != s.srv {
			continue // a generation retired by a reload: it is draining
		}
		s.mu.Lock()
		ss.Sessions[s.protocolVersion]++
		ss.SessionsByIdentity[s.caller.logName()]++
		ss.Streams["get"] += len(s.streams)
		p := s.proc
		s.mu.Unlock()
		if p != nil && !s.daemon {
			procs[p] = struct{}{}
		}
	}
	for _, srv := range current {
		if srv.pool != nil {
			for _, p := range srv.pool.list() {
				procs[p] = struct{}{}
			}
		}
	}
	for p := range procs {
		ss := byName[p.srv.Name]
		if ss == nil || current[p.srv.Name] != p.srv || p.b == nil {
			continue // still starting, or of a retired generation
		}
		p.mu.Lock()
		st := p.state
		ps := ProcessSnapshot{ID: p.b.ID(), State: stateNames[st], Era: "session", Started: p.started,
			InFlight: len(p.inflight), Sessions: len(p.sessions)}
		p.mu.Unlock()
		if st == procEnded {
			continue
		}
		if p.era == eraModern {
			ps.Era = "modern"
		}
		ss.InFlight += ps.InFlight
		ss.Processes = append(ss.Processes, ps)
	}
	for i := range snap.Servers {
		ss := &snap.Servers[i]
		slices.SortFunc(ss.Processes, func(a, b ProcessSnapshot) int { return a.Started.Compare(b.Started) })
		// Slots reserved but not yet a listed process are starting.
		if n := reserved[ss.Name] - len(ss.Processes); n > ss.Starting {
			ss.Starting = n
		}
	}
	return snap
}
