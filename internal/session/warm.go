package session

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/modern"
)

// Launcher mode for 2026-07-28 requests. Launcher mode promises that no
// two clients share a process; a modern request has no session, so the
// unit of isolation becomes the authenticated identity (with
// isolation: session, the default): the requests of one identity reuse
// that identity's processes, kept warm between requests until the idle
// timeout, bounded by max_processes, max_lifetime and every other timeout,
// and different identities never share a process. Without authentication
// every caller is anonymous and they share one.
//
// A warm process serves one request at a time, so that what the server
// sends on its own initiative (a sampling or elicitation request, a log
// message) belongs to exactly one request, as for a process of its own;
// concurrent requests of one identity get further processes. A
// session-era server is initialised with the first request's clientInfo
// and capabilities, so a process is reused only for requests that declare
// the same ones (its key). A process whose request timed out or was given
// up by its client is not reused: it may still be busy with it.
//
// isolation: request keeps a process per request, stopped when the
// request is over.

// warmSet holds a launcher server's processes of modern requests. Its mu
// comes after Manager.mu and before a proc's mu in the lock order; nothing
// blocks while it is held.
type warmSet struct {
	mu    sync.Mutex
	procs map[*proc]*warmProc
}

// warmProc is what the set knows of one process.
type warmProc struct {
	key       string    // identity and declared client, see warmKey
	busy      bool      // a request is on it
	tainted   bool      // not to be reused (a request timed out on it)
	idleSince time.Time // when its last request ended
}

// warmKey is the identity of the requests a process may serve: the caller's
// identity and what a session-era server was told at initialize.
func warmKey(caller Caller, meta *modern.Meta) string {
	var b bytes.Buffer
	b.WriteString(caller.Identity)
	b.WriteByte(0)
	_ = json.Compact(&b, meta.ClientInfo)
	b.WriteByte(0)
	_ = json.Compact(&b, meta.ClientCapabilities)
	return b.String()
}

// reuses reports whether srv keeps the processes of modern requests warm.
func (srv *Server) reuses() bool {
	return srv.pool == nil && srv.cfg.Isolation != config.IsolationRequest
}

// acquireWarm returns a process for one modern request of caller: an idle
// warm process of the same key that is still usable and within its
// lifetime, else a new one (launchFor), which joins the set busy.
func (srv *Server) acquireWarm(ctx context.Context, caller Caller, meta *modern.Meta) (*proc, error) {
	key := warmKey(caller, meta)
	w := &srv.warm
	now := time.Now()
	w.mu.Lock()
	var best *proc
	for p, wp := range w.procs {
		if wp.key != key || wp.busy || wp.tainted || now.Sub(p.started) >= srv.cfg.Timeouts.MaxLifetime || !p.usable() {
			continue
		}
		if best == nil || wp.idleSince.After(w.procs[best].idleSince) {
			best = p // the most recently used: the others may idle out
		}
	}
	if best != nil {
		w.procs[best].busy = true
		w.mu.Unlock()
		return best, nil
	}
	w.mu.Unlock()
	p, err := srv.launchFor(ctx, meta)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	if w.procs == nil {
		w.procs = make(map[*proc]*warmProc)
	}
	w.procs[p] = &warmProc{key: key, busy: true}
	w.mu.Unlock()
	srv.m.log.Info("started a process for an identity's 2026-07-28 requests", "tool", srv.Name, "runtime", srv.cfg.Runtime,
		"process", p.b.ID(), "client", caller.logName(), "client_info", caller.Client, "era", p.era)
	return p, nil
}

// releaseWarm is the end of a request on a warm process: it waits for the
// identity's next request, unless it may not be reused, which stops it.
func (srv *Server) releaseWarm(p *proc) {
	w := &srv.warm
	w.mu.Lock()
	wp := w.procs[p]
	keep := wp != nil && !wp.tainted && p.usable() && time.Since(p.started) < srv.cfg.Timeouts.MaxLifetime && !srv.replaced()
	if wp != nil {
		wp.busy = false
		wp.idleSince = time.Now()
		if !keep {
			delete(w.procs, p)
		}
	}
	w.mu.Unlock()
	if !keep {
		p.retire(errRequestDone)
	}
}

// taint marks a warm process as not to be reused.
func (srv *Server) taint(p *proc) {
	w := &srv.warm
	w.mu.Lock()
	if wp := w.procs[p]; wp != nil {
		wp.tainted = true
	}
	w.mu.Unlock()
}

// maintainWarm forgets ended processes and stops the idle ones that
// reached the idle timeout or their lifetime (the janitor).
func (srv *Server) maintainWarm(now time.Time) {
	w := &srv.warm
	to := srv.cfg.Timeouts
	var stop []*proc
	var why []error
	w.mu.Lock()
	for p, wp := range w.procs {
		switch {
		case p.b.Err() != nil:
			delete(w.procs, p)
		case wp.busy:
		case srv.replaced(): // a reload replaced the server's definition (reload.go)
			delete(w.procs, p)
			stop, why = append(stop, p), append(why, errReplacedStop)
		case now.Sub(wp.idleSince) >= to.Idle:
			delete(w.procs, p)
			stop, why = append(stop, p), append(why, errIdle)
		case now.Sub(p.started) >= to.MaxLifetime:
			delete(w.procs, p)
			stop, why = append(stop, p), append(why, errLifetime)
		}
	}
	w.mu.Unlock()
	for i, p := range stop {
		srv.m.log.Info("stopping an idle process of 2026-07-28 requests", "tool", srv.Name, "runtime", srv.cfg.Runtime,
			"process", p.b.ID(), "reason", why[i].Error())
		p.retire(why[i])
	}
}

// idleWarm returns the longest-idle warm process with nothing on it and
// takes it out of the set, for reclaim at a process cap: it holds no client
// state a client would miss. Called with m.mu held.
func (srv *Server) idleWarm() *proc {
	w := &srv.warm
	w.mu.Lock()
	defer w.mu.Unlock()
	var best *proc
	for p, wp := range w.procs {
		if wp.busy || p.b.Err() != nil {
			continue
		}
		if best == nil || wp.idleSince.Before(w.procs[best].idleSince) {
			best = p
		}
	}
	if best != nil {
		delete(w.procs, best)
	}
	return best
}

// warmCount is the number of processes in the set, for tests and stats.
func (srv *Server) warmCount() int {
	w := &srv.warm
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.procs)
}

var errReclaimedWarm = stopped("reclaimed: the process limit was reached and it was the longest-idle process of 2026-07-28 requests")

// DiscoverFor answers server/discover for one caller: from the caller's
// warm process in launcher mode (which the caller's next request then
// reuses), else as Discover.
func (srv *Server) DiscoverFor(ctx context.Context, caller Caller, meta *modern.Meta) (json.RawMessage, error) {
	if srv.agg() != nil {
		return srv.discoverAggregate(ctx, caller, meta)
	}
	if !srv.reuses() {
		return srv.Discover(ctx)
	}
	if srv.m.Draining() {
		return nil, errDraining()
	}
	p, err := srv.acquireWarm(ctx, caller, meta)
	if err != nil {
		return nil, err
	}
	defer srv.releaseWarm(p)
	res, err := p.discoverResult()
	if err != nil {
		return nil, errBadBackend(errBadInit, "server %q: cannot describe it: %v", srv.Name, err)
	}
	return res, nil
}
