package session

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// Caller is who makes a request: the authenticated identity (the
// front-end's; "" without authentication) and, for logs, the MCP client
// software as "name/version".
type Caller struct {
	Identity string
	Client   string
	// Email and Claims are what the identity's credentials say, for
	// policy rules: the verified email ("" when none), and a JWT's claims
	// (nil for other credentials). Claims are shared: read only.
	Email  string
	Claims map[string]any
}

// logName is the identity for logs ("anonymous" without authentication),
// like the access log's client field.
func (c Caller) logName() string {
	if c.Identity == "" {
		return "anonymous"
	}
	return c.Identity
}

// An owner is whoever the client requests in flight on a process belong
// to: a session-era *Session, or a modern request's *Call. The process
// routes what the server sends on its own initiative through it, and every
// exchange finishes through it.
type owner interface {
	// common returns the part every owner has: its server, caller, pinned
	// process and table of requests in flight.
	common() *base
	// fromServer handles a server request, or a log message, that belongs
	// to this owner. Called from the backend's reader: it must not block.
	fromServer(p *proc, m *jsonrpc.Message)
	// shape adapts a server's response before it reaches the client, and
	// returns the problem kind of a lone error response, or 0.
	shape(m *jsonrpc.Message) problem.Kind
}

// base is what a Session and a Call share. Its mu guards its fields and
// those of the type that embeds it (lock order: package doc).
type base struct {
	srv    *Server
	id     string // the Mcp-Session-Id; "" for a modern request
	caller Caller

	mu         sync.Mutex
	proc       *proc                // the pinned process; nil while unpinned (daemon)
	inflight   map[string]*exchange // client requests in flight, by client id
	lastActive time.Time
	ended      bool // no more requests are taken
}

func newBase(srv *Server, id string, caller Caller) base {
	return base{srv: srv, id: id, caller: caller, inflight: make(map[string]*exchange), lastActive: time.Now()}
}

func (b *base) common() *base { return b }

func (b *base) touch() {
	b.mu.Lock()
	b.lastActive = time.Now()
	b.mu.Unlock()
}

// idleState returns the last activity and whether requests are in flight.
func (b *base) idleState() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastActive, len(b.inflight) > 0
}

func (b *base) pinnedProc() *proc {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proc
}

// pending returns the exchanges in flight.
func (b *base) pending() []*exchange {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Collect(maps.Values(b.inflight))
}

// only returns the one exchange in flight, or nil when there are none or
// several. Called with b.mu held.
func (b *base) onlyLocked() *exchange {
	if len(b.inflight) != 1 {
		return nil
	}
	for _, ex := range b.inflight {
		return ex
	}
	return nil
}
