package session

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// exchange is one client request in flight. Exactly one outcome reaches
// its sink: whoever wins claim delivers it (response, failure, timeout, or
// nothing for a client cancellation) and releases its resources.
type exchange struct {
	o        owner
	p        *proc
	clientID json.RawMessage
	key      string
	method   string
	sink     *Sink
	release  func()                 // in-flight slots
	adapt    func(*jsonrpc.Message) // the policy's change to the response (policy.go); nil: none

	// listKey is set when the server's answer goes into its process's list
	// cache (listcache.go), fetched at listGen.
	listKey string
	listGen uint64

	clientToken json.RawMessage // the client's progress token, if any
	gwToken     string          // the token the backend sees

	mu    sync.Mutex // guards gwID and timer, set once the backend id is known
	gwID  int64
	timer *time.Timer

	claimed atomic.Bool

	obs // metrics and tracing (observe_exchange.go)
}

// admit takes the in-flight slots of a request to srv: the server's
// (max_concurrent), then the process's (max_inflight_per_process) of the
// process that pin returns. release gives both back.
func (srv *Server) admit(ctx context.Context, pin func(context.Context) (*proc, error)) (p *proc, release func(), err error) {
	qt := srv.cfg.QueueTimeout
	var start time.Time
	if srv.observing() {
		start = time.Now()
	}
	ctx, endSpan := srv.span(ctx, "queue")
	defer func() { endSpan(err) }()
	if err := srv.sem.acquire(ctx, qt); err != nil {
		srv.rejected("concurrency")
		return nil, nil, err
	}
	if p, err = pin(ctx); err != nil {
		srv.sem.release()
		return nil, nil, err
	}
	if err := p.slots.acquire(ctx, qt); err != nil {
		srv.sem.release()
		srv.rejected("concurrency")
		return nil, nil, err
	}
	if srv.observing() {
		srv.observe(Event{Kind: QueueWaited, Duration: time.Since(start)})
	}
	return p, func() { p.slots.release(); srv.sem.release() }, nil
}

// forward sends client request req to p on behalf of o, whose admitted
// slots release gives back, and arranges for exactly one outcome to reach
// sink: the backend's response, a timeout error, a backend-failure error,
// or nothing if the client cancels it. An error means nothing was
// forwarded (and the slots are released).
func forward(ctx context.Context, o owner, p *proc, req *jsonrpc.Message, sink *Sink, release func()) error {
	b := o.common()
	key := jsonrpc.IDKey(req.ID)
	ex := &exchange{o: o, p: p, clientID: req.ID, key: key, sink: sink, method: req.Method, release: release}
	if g := b.srv.guard; g != nil {
		req, ex.adapt = g.Request(b.caller.who(), req)
	}
	ctx, req = ex.begin(ctx, req)
	b.mu.Lock()
	if b.ended || b.inflight[key] != nil {
		ended := b.ended
		b.mu.Unlock()
		release()
		if ended {
			return errSessionGone()
		}
		return errDuplicateID(key)
	}
	b.inflight[key] = ex
	b.lastActive = time.Now()
	b.mu.Unlock()
	params, err := p.track(ex, req.Params, jsonrpc.MetaProgressToken(req.Params))
	if err != nil {
		b.mu.Lock()
		delete(b.inflight, key)
		b.mu.Unlock()
		release()
		return backendError(b.srv.Name, err)
	}
	sink.expectOne()
	if cachesLists(o, p) {
		if key := listKey(req); key != "" {
			result, gen, ok := p.lists.get(key, req.Method)
			if ok {
				ex.Respond(&jsonrpc.Message{Kind: jsonrpc.KindResponse, Result: result})
				return nil
			}
			ex.listKey, ex.listGen = key, gen
		}
	}
	gwID, err := p.b.Register(ex)
	if err == nil {
		ex.armed(gwID)
		out := *req
		out.Params = params
		err = p.b.Write(ctx, gwID, &out)
	}
	if err != nil && ex.claim() {
		ex.class = ClassBackendError
		ex.finish(nil, 0)
		return backendError(b.srv.Name, err)
	}
	return nil
}

func errDuplicateID(key string) *Error {
	return errBadRequest(fmt.Sprintf("request id %s is already in flight in this session", key))
}

// armed records the backend id and starts the request timeout, unless the
// exchange is already over.
func (e *exchange) armed(gwID int64) {
	timeout := e.o.common().srv.cfg.Timeouts.Request
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gwID = gwID
	if !e.claimed.Load() {
		e.timer = time.AfterFunc(timeout, func() { e.timeout(timeout) })
	}
}

func (e *exchange) backendID() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gwID
}

// claim reserves the right to deliver the outcome; only one path wins.
func (e *exchange) claim() bool { return e.claimed.CompareAndSwap(false, true) }

// Respond implements backend.Waiter.
func (e *exchange) Respond(m *jsonrpc.Message) {
	if !e.claim() {
		return
	}
	if e.listKey != "" && m.Error == nil && m.Result != nil {
		e.p.lists.put(e.listKey, e.method, e.listGen, slices.Clone(m.Result))
	}
	out := *m
	out.ID = e.clientID
	if e.adapt != nil {
		e.adapt(&out)
	}
	e.responded(&out)
	kind := e.o.shape(&out)
	e.finish(jsonrpc.Encode(&out), kind)
}

// Fail implements backend.Waiter.
func (e *exchange) Fail(err error) {
	if !e.claim() {
		return
	}
	code, kind := backendErrorCode(err)
	e.class = ClassBackendError
	e.finish(jsonrpc.Encode(jsonrpc.NewError(e.clientID, code,
		fmt.Sprintf("server %q failed before answering: %v", e.o.common().srv.Name, err), nil)), kind)
}

// cancel ends the request without a response (session ended, client gave
// up) and tells the server.
func (e *exchange) cancel(reason string) {
	if !e.claim() {
		return
	}
	gwID := e.backendID()
	e.p.b.Forget(gwID)
	e.finish(nil, 0)
	e.sendCancel(gwID, reason)
}

// sendCancel tells the server to stop working on a request (MCP spec,
// basic/utilities/cancellation).
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
	gwID := e.backendID()
	b := e.o.common()
	srv := b.srv
	p := e.p
	grace := srv.cfg.Timeouts.KillGrace
	if p.daemon {
		// Keep watching for the late answer. A well-behaved server sends
		// none for a cancelled request (basic/utilities/cancellation), so
		// silence alone proves nothing: kill_grace later the process is
		// pinged, and recycled only if it answers that neither (liveness.go).
		late := &lateWaiter{}
		if p.b.Swap(gwID, late) {
			time.AfterFunc(grace, func() {
				if !late.done.Load() {
					p.b.Forget(gwID)
					p.checkResponsive(e.method, grace)
				}
			})
		}
	} else {
		p.b.Forget(gwID)
		srv.taint(p) // a warm process may still be busy with it: not reused (warm.go)
	}
	e.class = ClassTimeout
	srv.m.log.Warn("request timed out", "tool", srv.Name, "runtime", srv.cfg.Runtime,
		"session_id", b.id, "method", e.method, "timeout_ms", d.Milliseconds(), "error", "request timeout")
	e.finish(jsonrpc.Encode(jsonrpc.NewError(e.clientID, jsonrpc.CodeTimeout,
		fmt.Sprintf("request timed out after %s at the gateway (servers.%s.timeouts.request)", d, srv.Name),
		map[string]any{"timeoutSeconds": d.Seconds()})), problem.Timeout)
	e.sendCancel(gwID, "request timed out at the gateway")
}

// lateWaiter watches a timed-out request for a late answer.
type lateWaiter struct{ done atomic.Bool }

func (w *lateWaiter) Respond(*jsonrpc.Message) { w.done.Store(true) }
func (w *lateWaiter) Fail(error)               { w.done.Store(true) }

// finish delivers the outcome (nil = none) and releases the request's
// resources. Callers must have won claim. kind is the problem kind a
// gateway-made error would have had before streaming (or that a shaped
// server error maps to), 0 for a plain response.
func (e *exchange) finish(out []byte, kind problem.Kind) {
	e.mu.Lock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.mu.Unlock()
	b := e.o.common()
	b.mu.Lock()
	if b.inflight[e.key] == e {
		delete(b.inflight, e.key)
	}
	b.lastActive = time.Now()
	b.mu.Unlock()
	e.p.untrack(e)
	e.release()
	e.sink.final(out, kind)
	e.done(out)
}
