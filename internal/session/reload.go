package session

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// A reload replaces the Manager's configuration without stopping what
// still fits it. Each server of the new configuration is compared with the
// one of the same name:
//
//   - unchanged (SameProcess): the *Server is kept, with its processes,
//     sessions, pool and in-flight requests;
//   - changed or added: a new *Server (a new generation) takes the name;
//     new sessions and modern requests go to it;
//   - changed or removed: the old generation is retired. Its sessions keep
//     their processes and the old definition until they end on their own
//     or until its drain deadline (limits.shutdown_timeout after the
//     reload), when they are ended as at the maximum lifetime: new
//     requests get 404 (clients re-initialise, on the new definition), the
//     requests in flight finish, each bounded by its request timeout, and
//     then the processes are stopped. A retired daemon pool keeps no idle
//     or warm process. After the deadline a retired generation starts no
//     process and takes no session, so it empties and is forgotten.
//
// Every process of a retired generation therefore keeps a deadline: the
// drain deadline plus its request timeout plus the stop sequence (the core
// rule, docs/design.md).
//
// The current configuration and its servers are atomic pointers: the hot
// path (Server, conf) takes no lock.

// ReloadResult says what a reload did to each server, by name, sorted.
type ReloadResult struct {
	Unchanged, Changed, Added, Removed []string
	// DrainBy is when the sessions of changed and removed servers end at
	// the latest (zero when there are none).
	DrainBy time.Time
}

// SameProcess reports whether a server defined as b may keep the processes
// and sessions started for a: everything that shapes a process or a
// session is equal. The identities allowed and the rate limits are the
// front door's (package gateway changes them in place) and are ignored.
func SameProcess(a, b *config.Server) bool {
	x, y := *a, *b
	x.Allow, y.Allow = nil, nil
	x.Rate, y.Rate = nil, nil
	x.SessionRate, y.SessionRate = nil, nil
	return reflect.DeepEqual(&x, &y)
}

// Reload makes cfg the manager's configuration. cfg must be valid. The
// gateway-wide limits apply at once to whatever is checked next (process
// and session slots, held messages); see the comment above for servers.
func (m *Manager) Reload(cfg *config.Config) ReloadResult {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	old := m.current()
	next := make(map[string]*Server, len(cfg.Servers))
	var res ReloadResult
	for _, name := range slices.Sorted(maps.Keys(cfg.Servers)) {
		sc := cfg.Servers[name]
		switch o := old[name]; {
		case o != nil && SameProcess(o.cfg, sc):
			next[name] = o
			res.Unchanged = append(res.Unchanged, name)
		case o != nil:
			next[name] = newServer(m, name, sc)
			res.Changed = append(res.Changed, name)
		default:
			next[name] = newServer(m, name, sc)
			res.Added = append(res.Added, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if _, ok := cfg.Servers[name]; !ok {
			res.Removed = append(res.Removed, name)
		}
	}
	m.mu.Lock()
	if len(res.Changed)+len(res.Removed) > 0 {
		res.DrainBy = time.Now().Add(cfg.Limits.ShutdownTimeout)
	}
	for _, name := range append(slices.Clone(res.Changed), res.Removed...) {
		o := old[name]
		o.removed.Store(next[name] == nil)
		o.drainBy.Store(res.DrainBy.UnixNano())
		m.retired = append(m.retired, o)
	}
	m.cfg.Store(cfg)
	m.servers.Store(&next)
	m.mu.Unlock()
	for _, name := range append(slices.Clone(res.Changed), res.Removed...) {
		o := old[name]
		m.log.Info("server definition replaced; its sessions keep it until they end or the drain deadline",
			"tool", name, "runtime", o.cfg.Runtime, "removed", o.removed.Load(), "sessions", m.sessionsOf(o),
			"drain_by", res.DrainBy.UTC().Format(time.RFC3339))
	}
	return res
}

// Retired returns the newest generation of the named server that a reload
// removed and that still drains, or nil. Requests of its existing sessions
// find it there; it takes no new ones (see gateway's route).
func (m *Manager) Retired(name string) *Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range slices.Backward(m.retired) {
		if s.Name == name && s.removed.Load() {
			return s
		}
	}
	return nil
}

// Holding returns the generation of srv's name whose parked modern
// requests hold state: srv itself, or a retired generation that a reload
// replaced while a request waited for its client's input (mrtr.go).
func (m *Manager) Holding(srv *Server, state string) *Server {
	if srv.holds(state) {
		return srv
	}
	m.mu.Lock()
	retired := slices.Clone(m.retired)
	m.mu.Unlock()
	for _, s := range retired {
		if s.Name == srv.Name && s.holds(state) {
			return s
		}
	}
	return srv
}

func (srv *Server) holds(state string) bool {
	srv.inputs.mu.Lock()
	defer srv.inputs.mu.Unlock()
	return srv.inputs.set[state] != nil
}

// Removed reports whether a reload removed this server from the
// configuration.
func (srv *Server) Removed() bool { return srv.removed.Load() }

// replaced reports whether a reload replaced or removed this generation.
func (srv *Server) replaced() bool { return srv.drainBy.Load() != 0 }

// drainOver reports whether this generation was replaced and its drain
// deadline has passed.
func (srv *Server) drainOver(now time.Time) bool {
	d := srv.drainBy.Load()
	return d != 0 && now.UnixNano() >= d
}

// errReplaced refuses new work for a generation past its drain deadline:
// the client retries and reaches the current definition.
func errReplaced(srv *Server) *Error {
	if srv.removed.Load() {
		return &Error{Kind: problem.NotFound, Code: -32600, Message: fmt.Sprintf("unknown server %q: it was removed from the configuration", srv.Name)}
	}
	return errUnavailable(fmt.Sprintf("server %q was reconfigured; retry", srv.Name), time.Second, errReplacedStop)
}

var errReplacedStop = stopped("the configuration replaced the server's definition (reload)")

// generations returns the current servers and the retired ones.
func (m *Manager) generations() []*Server {
	out := slices.Collect(maps.Values(m.current()))
	m.mu.Lock()
	out = append(out, m.retired...)
	m.mu.Unlock()
	return out
}

// sessionsOf counts the live sessions of one generation.
func (m *Manager) sessionsOf(srv *Server) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.sessions {
		if s.srv == srv {
			n++
		}
	}
	return n
}

// forgetDrained drops the retired generations that are past their drain
// deadline and have nothing left: no session, process, subscription
// stream or parked request. Past the deadline nothing new can start on
// them (reserve and add refuse), so empty stays empty.
func (m *Manager) forgetDrained(now time.Time) {
	m.mu.Lock()
	var idle []*Server
	for _, srv := range m.retired {
		if srv.drainOver(now) && srv.procs == 0 && !slices.ContainsFunc(slices.Collect(maps.Values(m.sessions)),
			func(s *Session) bool { return s.srv == srv }) {
			idle = append(idle, srv)
		}
	}
	m.mu.Unlock()
	// The listeners' and inputs' locks are not taken under m.mu.
	idle = slices.DeleteFunc(idle, func(srv *Server) bool {
		srv.listeners.mu.Lock()
		open := len(srv.listeners.set)
		srv.listeners.mu.Unlock()
		srv.inputs.mu.Lock()
		parked := len(srv.inputs.set)
		srv.inputs.mu.Unlock()
		return open > 0 || parked > 0
	})
	if len(idle) == 0 {
		return
	}
	m.mu.Lock()
	m.retired = slices.DeleteFunc(m.retired, func(srv *Server) bool { return slices.Contains(idle, srv) })
	m.mu.Unlock()
	for _, srv := range idle {
		m.log.Info("replaced server definition drained: its processes are gone", "tool", srv.Name, "runtime", srv.cfg.Runtime,
			"removed", srv.removed.Load())
	}
}
