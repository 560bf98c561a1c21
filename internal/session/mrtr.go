package session

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// Multi round-trip requests (spec 2026-07-28, basic/patterns/mrtr).
//
// A session-era server asks its client for input with a request of its own
// (sampling/createMessage, elicitation/create, roots/list) while a tool call
// runs. A modern client cannot receive such a request; it expects an
// InputRequiredResult and retries the original request with the answers.
// The gateway bridges the two: it keeps the server's request — and the
// original request, still running in the server — parked, answers the
// client with resultType "input_required" carrying the server's request and
// an opaque requestState, and when the client retries with inputResponses
// and that requestState, it answers the server's request and streams the
// original request's outcome as the retry's response.
//
// requestState is a random handle to state held by this gateway process: it
// is unguessable, single-use, bound to the identity that made the request,
// to the server, and to the method, name and arguments of the request, and
// it expires with the original request's timeout. A retry that reaches
// another gateway instance, or comes too late, gets -32602 and must start
// over without requestState.
//
// A client that did not declare the capability gets -32021
// (MissingRequiredClientCapability) instead, and the server's request an
// error.

const statePrefix = "mcpgw-mrtr."

// parked is a modern request waiting for its client's input.
type parked struct {
	token    string // the current requestState; "" once a retry took it and nothing is pending
	call     *Call
	ex       *exchange
	identity string
	method   string
	params   salient
	clientID json.RawMessage // the id the client last used for this request
	pending  map[string]pendingInput
	order    []string // keys of pending, in arrival order
	timer    *time.Timer
}

type pendingInput struct {
	backendID json.RawMessage
	proc      *proc
	method    string
	params    json.RawMessage
}

// salient are the parts of a request's params a retry must repeat.
type salient struct {
	Name      string `json:"name"`
	URI       string `json:"uri"`
	Arguments any    `json:"arguments"`
}

func salientOf(params json.RawMessage) salient {
	var s salient
	_ = json.Unmarshal(params, &s)
	return s
}

// inputs is a server's set of parked requests by requestState.
type inputs struct {
	mu  sync.Mutex
	set map[string]*parked
	seq int64
}

// IsGatewayState reports whether a requestState is one of the gateway's
// (else it belongs to a modern server and passes through).
func IsGatewayState(state string) bool { return strings.HasPrefix(state, statePrefix) }

// inputRequest handles a server→client request that arrived while this
// modern call's request was in flight. Called from the backend reader: it
// must not block.
func (c *Call) inputRequest(p *proc, m *jsonrpc.Message) {
	need := map[string]string{"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}[m.Method]
	c.mu.Lock()
	var ex *exchange
	for _, e := range c.inflight {
		ex = e
	}
	pk := c.input
	c.mu.Unlock()
	if ex == nil || need == "" {
		p.refuse(m.ID, fmt.Sprintf("the gateway cannot relay %s to a client using MCP %s outside a tool call, prompt or resource read", m.Method, modern.Version))
		return
	}
	if !c.caps.has(m.Method) {
		p.refuse(m.ID, fmt.Sprintf("the client did not declare the %s capability", need))
		if ex.claim() {
			gwID := ex.backendID()
			ex.p.b.Forget(gwID)
			ex.finish(jsonrpc.Encode(jsonrpc.NewError(ex.clientID, modern.CodeMissingCapability,
				fmt.Sprintf("server %q needs the client capability %q to complete %s, and the request did not declare it", c.srv.Name, need, ex.method),
				map[string]any{"requiredCapabilities": map[string]any{need: map[string]any{}}})), problem.BadRequest)
			c.srv.m.wg.Go(func() { // owner: the manager; bounded by the backend's write timeout
				ex.sendCancel(gwID, "the client lacks a capability the request needs")
			})
		}
		return
	}
	switch ex.method {
	case "tools/call", "prompts/get", "resources/read":
	default:
		p.refuse(m.ID, fmt.Sprintf("the gateway cannot relay %s during %s to a client using MCP %s", m.Method, ex.method, modern.Version))
		return
	}
	in := &c.srv.inputs
	in.mu.Lock()
	if pk == nil {
		pk = &parked{call: c, ex: ex, identity: c.caller.Identity, method: ex.method, params: salientOf(c.params),
			clientID: ex.clientID, pending: make(map[string]pendingInput)}
	}
	if pk.token != "" && in.set[pk.token] != pk {
		// Its requestState expired (or the call was forgotten at shutdown)
		// between reading c.input and here: the call is ending.
		in.mu.Unlock()
		p.refuse(m.ID, "the client's request is over")
		return
	}
	in.seq++
	key := "input-" + strconv.FormatInt(in.seq, 10)
	pk.pending[key] = pendingInput{backendID: m.ID, proc: p, method: m.Method, params: m.Params}
	pk.order = append(pk.order, key)
	if pk.token == "" { // else already parked: the client gets this one with the next round
		c.parkLocked(pk)
	}
	in.mu.Unlock()
}

// parkLocked registers pk under a fresh requestState and ends the current
// response with an InputRequiredResult for every pending input. Called
// with c.srv.inputs.mu held.
func (c *Call) parkLocked(pk *parked) {
	in := &c.srv.inputs
	if in.set == nil {
		in.set = make(map[string]*parked)
	}
	pk.token = statePrefix + c.srv.m.newID()
	in.set[pk.token] = pk
	c.mu.Lock()
	c.input = pk
	c.mu.Unlock()
	reqs := make(map[string]any, len(pk.pending))
	for _, k := range pk.order {
		if pi, ok := pk.pending[k]; ok {
			reqs[k] = map[string]any{"method": pi.method, "params": pi.params}
		}
	}
	result, _ := json.Marshal(map[string]any{"resultType": "input_required", "inputRequests": reqs, "requestState": pk.token})
	wait := c.srv.cfg.Timeouts.Request
	token := pk.token
	pk.timer = time.AfterFunc(wait, func() { c.srv.expireInput(token) })
	c.srv.observe(Event{Kind: InputRound, Era: "modern", Method: pk.method})
	pk.ex.sink.interim(jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: pk.clientID, Result: result}))
}

// expireInput drops a parked request whose client never came back.
func (srv *Server) expireInput(token string) {
	in := &srv.inputs
	in.mu.Lock()
	pk := in.set[token]
	delete(in.set, token)
	in.mu.Unlock()
	if pk == nil {
		return
	}
	srv.m.log.Info("client did not retry a request that needed input; cancelling it", "tool", srv.Name,
		"runtime", srv.cfg.Runtime, "method", pk.method)
	pk.call.cancelInput("the client did not provide the input in time")
	pk.call.End()
}

// cancelInput forgets a parked state when its call ends for good, and
// refuses the server requests still waiting, saying why.
func (c *Call) cancelInput(why string) {
	c.mu.Lock()
	pk := c.input
	c.input = nil
	c.mu.Unlock()
	if pk == nil {
		return
	}
	in := &c.srv.inputs
	in.mu.Lock()
	if in.set[pk.token] == pk {
		delete(in.set, pk.token)
	}
	in.mu.Unlock()
	if pk.timer != nil {
		pk.timer.Stop()
	}
	// Refused before the call ends, so that the server hears it before
	// the request's cancellation (and, for its own process, the stop).
	for _, pi := range pk.pending {
		pi.proc.refuseNow(pi.backendID, why)
	}
}

// waitingForRetry reports whether the call is waiting for its client's
// retry (End then leaves it running).
func (c *Call) waitingForRetry() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.input != nil
}

// Resume continues a parked request with a client's retry (a request whose
// params carry the gateway's requestState): the server gets the client's
// answers, and the original request's outcome — or the next
// InputRequiredResult — reaches the returned call's sink with the retry's
// id. Errors are *Error (400 -32602 for a state that is unknown, expired,
// or does not match the retry).
func (srv *Server) Resume(ctx context.Context, caller Caller, req *jsonrpc.Message, state string, responses json.RawMessage) (*Call, *Sink, error) {
	if srv.agg() != nil {
		return srv.resumeAggregate(ctx, caller, req, state, responses)
	}
	in := &srv.inputs
	in.mu.Lock()
	pk := in.set[state]
	if pk == nil {
		in.mu.Unlock()
		return nil, nil, errInvalidParams("requestState is unknown or expired (it is valid once, on this gateway, until the request's timeout); send the request again without requestState")
	}
	got := salientOf(req.Params)
	if pk.identity != caller.Identity || pk.method != req.Method || got.Name != pk.params.Name || got.URI != pk.params.URI ||
		!reflect.DeepEqual(got.Arguments, pk.params.Arguments) {
		in.mu.Unlock()
		return nil, nil, errInvalidParams("requestState does not belong to this request: a retry must repeat the original method, name and arguments, as the same client")
	}
	delete(in.set, state)
	pk.timer.Stop()
	var answers map[string]json.RawMessage
	_ = json.Unmarshal(responses, &answers)
	type reply struct {
		pi  pendingInput
		res json.RawMessage
	}
	var replies []reply
	for k, pi := range pk.pending {
		if res, ok := answers[k]; ok && len(res) > 0 && res[0] == '{' {
			replies = append(replies, reply{pi, res})
			delete(pk.pending, k)
		}
	}
	pk.clientID = req.ID
	sink := pk.ex.sink
	sink.setFinalID(req.ID)
	c := pk.call
	if len(pk.pending) > 0 {
		// Not everything was answered: ask again for what is missing (spec:
		// rather than an error).
		c.parkLocked(pk)
	} else {
		c.mu.Lock()
		c.input = nil
		c.mu.Unlock()
		pk.token = ""
	}
	in.mu.Unlock()
	for _, r := range replies {
		resp := &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: r.pi.backendID, Result: r.res}
		if err := r.pi.proc.b.Send(ctx, resp); err != nil {
			srv.m.log.Warn("could not pass the client's input to the server", "tool", srv.Name, "error", err.Error())
		}
	}
	return pk.call, sink, nil
}

// clear forgets every parked request (shutdown: their processes are being
// stopped, which fails whatever is still in flight).
func (in *inputs) clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for token, pk := range in.set {
		if pk.timer != nil {
			pk.timer.Stop()
		}
		delete(in.set, token)
	}
}

// StateID returns the id inside a gateway requestState (the part
// Options.NewID made), and false for a state that is not the gateway's. An
// aggregate's state has the id of its member's inside (aggregate_modern.go).
func StateID(state string) (string, bool) {
	id, ok := strings.CutPrefix(state, statePrefix)
	return aggStateID(id), ok
}
