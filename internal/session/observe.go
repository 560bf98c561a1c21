package session

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
)

// Observer is told what the session layer does, for metrics. Observe is
// called synchronously on the request path, from many goroutines at once
// and sometimes with the layer's locks held: it must be safe for
// concurrent use, must not block and must not call back into the layer.
// Values that come from clients (tool names) are passed as they came:
// bounding them is the observer's job.
type Observer interface {
	Observe(e Event)
}

// EventKind says what happened; each kind documents the Event fields it
// sets besides Server, Runtime and Mode, which every event carries.
type EventKind uint8

const (
	// RequestDone: a client request forwarded to a process has its one
	// outcome. Era, Method, Tool (tools/call only), Class, Duration (from
	// forwarding to the outcome).
	RequestDone EventKind = iota + 1
	// QueueWaited: a request got its in-flight slots and its process.
	// Duration is the wait.
	QueueWaited
	// Rejected: a request or session was refused by a limit before any
	// work was done. Reason: "concurrency", "process_cap", "session_limit",
	// "stream_limit", "backoff".
	Rejected
	// ProcessStarted: a process answered its handshake (Class "ok") or
	// failed to start (Class "failed"). Duration is the startup time.
	ProcessStarted
	// ProcessExited: a process is gone. Reason: "stopped" (the gateway's
	// decision), "exited" (on its own) or "crashed" (a protocol violation
	// or a failed write).
	ProcessExited
	// BackoffEntered: consecutive failures put the server into crash
	// back-off. N is the number of consecutive failures.
	BackoffEntered
	// Recycled: a shared process that ignored a cancellation is replaced.
	Recycled
	// MessageHeld: a server message waits for the client's GET stream.
	MessageHeld
	// MessageDropped: a held server message will never be delivered.
	// Reason: "overflow" or "expired".
	MessageDropped
	// Replayed: N held messages were handed to a newly attached stream.
	Replayed
	// Resumed: a client resumed a session stream with Last-Event-ID; N
	// is the number of kept events replayed to it.
	Resumed
	// ResumeDropped: N events kept for resumption are gone before a client
	// resumed with them. Reason: "limit" (limits.replay_events or
	// limits.replay_bytes) or "expired" (limits.replay_age).
	ResumeDropped
	// InputRound: a modern request asks its client for input (one MRTR
	// round).
	InputRound
	// StreamOpened: a long-lived stream opened. Reason: "get" (a
	// session's GET stream) or "listen" (subscriptions/listen).
	StreamOpened
	// ToolsListed: a process answered tools/list. Tools are the names it
	// listed: the only tool names an observer should use as labels.
	ToolsListed
)

// Event is one observation. Zero fields are not set for that kind.
type Event struct {
	Kind     EventKind
	Server   string
	Runtime  string
	Mode     string
	Era      string // the client's: "session" or "modern"
	Method   string // as the client sent it: bound it before using it as a label
	Tool     string // tools/call's name, as the client sent it
	Class    string // "ok", "error", "timeout", "backend_error", "cancelled"; "ok"/"failed" for starts
	Reason   string
	Duration time.Duration
	N        int
	Tools    []string
}

// Outcome classes of RequestDone.
const (
	ClassOK           = "ok"            // a result
	ClassError        = "error"         // the server answered with a JSON-RPC error
	ClassTimeout      = "timeout"       // the gateway's request timeout
	ClassBackendError = "backend_error" // the process failed before answering
	ClassCancelled    = "cancelled"     // the client (or the session's end) cancelled it
)

// Tracer makes the spans of the layer's work, for tracing. Span begins a
// span named name, a child of the span in ctx (none: a root or nothing,
// as the tracer decides), and returns the context that carries it and the
// function that ends it (err nil: success); end must be called exactly
// once and may be called from any goroutine. Inject returns the W3C
// traceparent and tracestate of ctx's span ("" when there is none), which
// the layer forwards to the server in params._meta. Both are called on
// the request path and must not block.
type Tracer interface {
	Span(ctx context.Context, name string, attrs ...Attr) (context.Context, func(err error))
	Inject(ctx context.Context) (traceparent, tracestate string)
}

// Attr is one span attribute.
type Attr struct {
	Key   string
	Value string
}

// observe fills the server's fields of e and tells the observer, if any.
func (srv *Server) observe(e Event) {
	switch e.Kind {
	case ProcessStarted:
		if e.Class == "ok" {
			srv.counts.starts.Add(1)
		}
	case ProcessExited:
		if e.Reason != "stopped" {
			srv.counts.crashes.Add(1)
		}
	}
	o := srv.m.obs
	if o == nil {
		return
	}
	e.Server = srv.Name
	e.Runtime = string(srv.cfg.Runtime)
	e.Mode = string(srv.cfg.Mode)
	o.Observe(e)
}

// observing reports whether an observer is set, so that callers skip
// work (decoding a tool name) that only it needs.
func (srv *Server) observing() bool { return srv.m.obs != nil }

// eraOf is an owner's client era for events.
func eraOf(o owner) string {
	if _, ok := o.(*Call); ok {
		return "modern"
	}
	return "session"
}

// rejected tells the observer that a limit refused work.
func (srv *Server) rejected(reason string) {
	srv.observe(Event{Kind: Rejected, Reason: reason})
}

// span begins a span through the manager's tracer; without one it returns
// ctx and a no-op.
func (srv *Server) span(ctx context.Context, name string, attrs ...Attr) (context.Context, func(error)) {
	t := srv.m.tracer
	if t == nil {
		return ctx, func(error) {}
	}
	return t.Span(ctx, name, append(attrs, Attr{"mcp.server.name", srv.Name})...)
}

// exitReason classifies why a process ended, for ProcessExited.
func exitReason(err error) string {
	switch {
	case errors.Is(err, backend.ErrStopped):
		return "stopped"
	case errors.Is(err, backend.ErrExited):
		return "exited"
	}
	return "crashed"
}

// dropReason classifies dropHeldLocked's why, for MessageDropped.
func dropReason(why string) string {
	if strings.HasPrefix(why, "held longer") {
		return "expired"
	}
	return "overflow"
}

// ended reports whether p's backend is gone (HandleClose has run or is
// running). Lock order: a pool's mu may be held (pool.mu before proc.mu).
func (p *proc) ended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == procEnded
}
