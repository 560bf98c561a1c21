package session

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// exchange is one client request in flight. Exactly one outcome reaches
// its sink: whoever wins claim delivers it (response, failure, timeout, or
// nothing for a client cancellation) and releases its resources.
type exchange struct {
	s        *Session
	p        *proc
	clientID json.RawMessage
	key      string
	method   string
	sink     *Sink
	release  func() // in-flight slots

	clientToken json.RawMessage // the client's progress token, if any
	gwToken     string          // the token the backend sees

	mu    sync.Mutex // guards gwID and timer during Begin
	gwID  int64
	timer *time.Timer

	claimed atomic.Bool
}

// claim reserves the right to deliver the outcome; only one path wins.
func (e *exchange) claim() bool { return e.claimed.CompareAndSwap(false, true) }

// Respond implements backend.Waiter.
func (e *exchange) Respond(m *jsonrpc.Message) {
	if !e.claim() {
		return
	}
	out := *m
	out.ID = e.clientID
	status := 0
	if e.s.shape != nil {
		status = e.s.shape(&out)
	}
	e.finish(jsonrpc.Encode(&out), status)
}

// Fail implements backend.Waiter.
func (e *exchange) Fail(err error) {
	if !e.claim() {
		return
	}
	code, status := backendErrorCode(err)
	e.finish(jsonrpc.Encode(jsonrpc.NewError(e.clientID, code,
		fmt.Sprintf("server %q failed before answering: %v", e.s.srv.Name, err), nil)), status)
}

// cancel ends the request without a response (session ended) and tells
// the server.
func (e *exchange) cancel(reason string) {
	if !e.claim() {
		return
	}
	e.mu.Lock()
	gwID := e.gwID
	e.mu.Unlock()
	e.p.b.Forget(gwID)
	e.finish(nil, 0)
	e.sendCancel(gwID, reason)
}

func (e *exchange) sendCancel(gwID int64, reason string) {
	params, _ := json.Marshal(map[string]any{"requestId": gwID, "reason": reason})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.p.b.Send(ctx, &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/cancelled", Params: params})
}

func (e *exchange) timeout(d time.Duration) {
	if !e.claim() {
		return
	}
	e.mu.Lock()
	gwID := e.gwID
	e.mu.Unlock()
	s := e.s
	p := e.p
	grace := s.srv.cfg.Timeouts.KillGrace
	if p.daemon {
		// Keep watching for the late answer: a shared process that ignores
		// the cancellation beyond the grace period is recycled (issue 4).
		late := &lateWaiter{}
		if p.b.Swap(gwID, late) {
			time.AfterFunc(grace, func() {
				if !late.done.Load() {
					p.b.Forget(gwID)
					p.recycle(fmt.Sprintf("request %s ignored its cancellation for %s after timing out", e.method, grace))
				}
			})
		}
	} else {
		p.b.Forget(gwID)
	}
	s.srv.m.log.Warn("request timed out", "tool", s.srv.Name, "runtime", s.srv.cfg.Runtime,
		"session_id", s.id, "method", e.method, "timeout_ms", d.Milliseconds(), "error", "request timeout")
	e.finish(jsonrpc.Encode(jsonrpc.NewError(e.clientID, jsonrpc.CodeTimeout,
		fmt.Sprintf("request timed out after %s at the gateway (servers.%s.timeouts.request)", d, s.srv.Name),
		map[string]any{"timeoutSeconds": d.Seconds()})), http.StatusGatewayTimeout)
	// Tell the server to stop working on it (MCP spec, utilities/cancellation).
	e.sendCancel(gwID, "request timed out at the gateway")
}

// lateWaiter watches a timed-out request for a late answer.
type lateWaiter struct{ done atomic.Bool }

func (w *lateWaiter) Respond(*jsonrpc.Message) { w.done.Store(true) }
func (w *lateWaiter) Fail(error)               { w.done.Store(true) }

// finish delivers the outcome (nil = none) and releases the request's
// resources. Callers must have won claim.
func (e *exchange) finish(out []byte, status int) {
	e.mu.Lock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.mu.Unlock()
	s := e.s
	s.mu.Lock()
	if s.inflight[e.key] == e {
		delete(s.inflight, e.key)
	}
	s.lastActive = time.Now()
	s.mu.Unlock()
	e.p.untrack(e)
	e.release()
	e.sink.final(out, status)
}
