// Package session maps MCP clients — session-era sessions and 2026-07-28
// requests — onto the processes of the configured servers, and enforces
// the limits and deadlines of every process. It knows neither HTTP (the
// front-end maps its *Error kinds to statuses) nor how a process is
// started (a Launcher does that).
//
// # Types
//
//	Manager        every server, session and process slot; the janitor
//	└─ Server      one configured server: its in-flight slots, its pool,
//	   │           its parked modern requests (inputs) and listeners
//	   ├─ pool     daemon mode: the shared processes, least-loaded pick,
//	   │           crash back-off, warm floor
//	   └─ proc     one running process: the routing of what it sends
//	      │        (backend.Handler), its requests in flight, its state
//	      └─ backend.Backend   newline-delimited JSON-RPC over stdio
//
// Requests belong to an owner:
//
//	Session    a session-era client session (Mcp-Session-Id, or a legacy
//	           HTTP+SSE stream), pinned to one proc; held messages and its
//	           GET stream
//	Call       one modern (2026-07-28) request, across its input rounds
//	           (mrtr.go); never published
//	exchange   one client request in flight of either owner: exactly one
//	           outcome reaches its Sink
//	Sink       what one HTTP response stream will carry; producers never
//	           block
//	Listener   one subscriptions/listen stream (listen.go)
//
// # The core rule: no process without a deadline
//
// It is enforced here and in the runtimes (package spawn):
//   - startup: a process must answer initialize within timeouts.startup, or
//     it is stopped and the client gets 504;
//   - request: each request has timeouts.request; on expiry the client gets
//     one -32001 error and the backend a notifications/cancelled; a shared
//     process whose cancelled request is still unanswered after kill_grace
//     is pinged, and recycled if that goes unanswered for kill_grace too
//     (liveness.go: a well-behaved server never answers a cancelled
//     request, so silence alone is no reason);
//   - idle: a session without client traffic for timeouts.idle is ended and
//     its process stopped (the janitor); an idle pooled process beyond
//     min_processes is stopped;
//   - lifetime: a process older than timeouts.max_lifetime takes no new
//     requests and is stopped once its in-flight requests are done (each of
//     which is itself bounded by the request timeout);
//   - cancellation: DELETE, reclaim at the process cap, backend failure and
//     gateway shutdown all stop the process;
//   - stopping is the runtime's: close stdin → grace → SIGTERM to the group
//     → grace → SIGKILL → reap.
//
// # Goroutines and their owners
//
// The Manager owns the janitor and every background goroutine of the
// layer (stops, detached gateway requests, refusals, warm starts) through
// its WaitGroup; Close stops every session and process and returns once
// they are gone. Each Backend owns its reader, stderr and supervisor
// goroutines and calls its proc's HandleMessage (in stdout order, never
// blocking) and HandleClose (once). Timers of exchanges and parked
// requests are time.AfterFunc callbacks that claim their outcome before
// acting, so that exactly one path delivers it.
//
// # Locks
//
// When two are held at once they are taken in this order: Manager.mu,
// a Server's inputs.mu, an owner's base.mu, a proc's mu, a Sink's mu.
// Nothing blocks (no channel send, no write to a process) while one of
// them is held.
package session
