package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/aggregate"
	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// An aggregate's 2026-07-28 ("modern") requests are stateless like every
// modern request (stateless.go): the aggregate holds nothing between
// requests, and each request is served by modern requests of its own to
// the members, made with the client's identity and _meta, so that each
// member serves them as it serves any modern client (its runtime, mode,
// limits, timeouts and policy; launcher mode: the identity's warm process).
//
//   - server/discover asks every member and answers the union of their
//     capabilities, their instructions each under its member's name, and
//     the gateway's supported versions (as initialize does in the session
//     era, aggregate.go);
//   - a list reads every member's list to its end, following the member's
//     cursors, merges them with package aggregate (names prefixed and
//     shortened, shared URIs wrapped, exactly as in the session era) and
//     answers one page of it with the aggregate's own cursor. Nothing is
//     cached: each list request reads the members again;
//   - a request that names an item (tools/call, prompts/get,
//     resources/read, completion/complete) reads the list that names it,
//     and goes to the owning member under the member's own name; the
//     response comes back on the client's stream as the member sends it
//     (progress, logs), its result shown as the aggregate's;
//   - an input round (mrtr.go) of a member is the aggregate's: its
//     requestState is the member's, wrapped with the member's name and the
//     item's, and a MAC over them and the request (aggState), so that a
//     retry reaches the same member and cannot be redirected to another;
//   - subscriptions/listen opens a subscription on every member, each with
//     the URIs routed to it, and merges their notifications, URIs shown as
//     the client asked for them (listenMembers).
//
// A member that cannot start is left out of lists and discover (its items
// are unknown names); with on_member_error: fail the request fails with
// the member's error instead.

// aggInfo is the serverInfo an aggregate shows.
func (srv *Server) aggInfo() json.RawMessage {
	return mustJSON(map[string]string{"name": "mcpgw-aggregate-" + srv.Name, "version": "1"})
}

// memberServer returns the configured member name, or an error when it is
// no longer configured.
func (srv *Server) memberServer(name string) (*Server, error) {
	msrv := srv.m.Server(name)
	if msrv == nil || msrv.agg() != nil {
		return nil, errUnavailable(fmt.Sprintf("aggregate %q: server %q is no longer configured", srv.Name, name), 30*time.Second, nil)
	}
	return msrv, nil
}

// memberFailed records that a member could not serve a modern request,
// logging it when it was not already known to be down.
func (srv *Server) memberFailed(member string, err error) {
	srv.aggMu.Lock()
	_, known := srv.aggDown[member]
	srv.aggMu.Unlock()
	if !known {
		srv.m.log.Warn("aggregate member cannot start; it is left out", "tool", srv.Name, "member", member,
			"era", "modern", "error", err.Error())
	}
	srv.memberDown(member, err)
	if !known {
		srv.announceLists()
	}
}

func (srv *Server) memberServed(member string) {
	srv.aggMu.Lock()
	_, known := srv.aggDown[member]
	srv.aggMu.Unlock()
	if known {
		srv.m.log.Info("aggregate member is back", "tool", srv.Name, "member", member, "era", "modern")
		srv.memberUp(member)
		srv.announceLists()
	}
}

// announceLists tells the aggregate's subscription streams that its lists
// changed: a member left them or came back. Each stream gets the kinds it
// asked for; session-era sessions learn it from their own member sessions.
func (srv *Server) announceLists() {
	for _, method := range []string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"} {
		srv.listeners.notify(&jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: method})
	}
}

// metaOf returns a modern request's _meta, raw, or nil.
func metaOf(params json.RawMessage) json.RawMessage {
	var p struct {
		Meta json.RawMessage `json:"_meta"`
	}
	_ = json.Unmarshal(params, &p)
	return p.Meta
}

// memberRequest sends one modern request of the aggregate's own to a
// member and waits for its outcome. What the member sends meanwhile
// (progress, logs) is dropped: nobody asked for it.
func (srv *Server) memberRequest(ctx context.Context, caller Caller, meta *modern.Meta, msrv *Server, method string, params json.RawMessage) (*jsonrpc.Message, error) {
	sink := NewSink(64)
	c, err := msrv.Stateless(ctx, caller, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("1"), Method: method, Params: params}, meta, sink)
	if err != nil {
		return nil, err
	}
	defer c.End()
	var resp *jsonrpc.Message
	for {
		select {
		case <-sink.Wake():
		case <-ctx.Done():
			return nil, clientGone("while the aggregate waited for a member")
		}
		msgs, done, _, _ := sink.TakeAll()
		for _, raw := range msgs {
			if m, err := jsonrpc.Parse(raw); err == nil && m.Kind == jsonrpc.KindResponse {
				resp = m
			}
		}
		if done {
			break
		}
	}
	if resp == nil {
		return nil, errUnavailable(fmt.Sprintf("member %q ended the request without an answer", msrv.Name), time.Second, nil)
	}
	return resp, nil
}

// modernMemberList reads one member's whole list of kind k. has is false
// when the member has no such list (it answered -32601).
func (srv *Server) modernMemberList(ctx context.Context, caller Caller, meta *modern.Meta, rawMeta json.RawMessage, msrv *Server, k aggregate.Kind) (items []json.RawMessage, has bool, err error) {
	cursor := ""
	for page := 0; ; page++ {
		if page == maxMemberPages || len(items) > maxMemberItems {
			srv.m.log.Warn("aggregate member's list is too long; the rest is left out", "tool", srv.Name,
				"member", msrv.Name, "method", k.Method(), "items", len(items), "pages", page)
			return items, true, nil
		}
		p := map[string]json.RawMessage{}
		if rawMeta != nil {
			p["_meta"] = rawMeta
		}
		if cursor != "" {
			p["cursor"] = mustJSON(cursor)
		}
		resp, err := srv.memberRequest(ctx, caller, meta, msrv, k.Method(), mustJSON(p))
		if err != nil {
			return nil, false, err
		}
		if resp.Error != nil {
			var eo jsonrpc.ErrorObject
			_ = json.Unmarshal(resp.Error, &eo)
			if eo.Code == jsonrpc.CodeMethodNotFound {
				return items, page > 0, nil
			}
			return nil, false, fmt.Errorf("member %q answered %s with an error: %s", msrv.Name, k.Method(), clip.String(eo.Message, 200))
		}
		got, next := aggregate.ReadPage(k, resp.Result)
		items = append(items, got...)
		if next == "" || next == cursor {
			return items, true, nil
		}
		cursor = next
	}
}

// modernLists reads merged lists for one modern request; each kind is
// read once per request.
type modernLists struct {
	srv     *Server
	caller  Caller
	meta    *modern.Meta
	rawMeta json.RawMessage

	mu    sync.Mutex
	lists [4]*aggregate.List
	has   [4]map[string]bool // members that have each list
}

func (srv *Server) newModernLists(caller Caller, meta *modern.Meta, params json.RawMessage) *modernLists {
	return &modernLists{srv: srv, caller: caller, meta: meta, rawMeta: metaOf(params)}
}

// merged returns the merged list of kind k. A member that cannot serve is
// left out, or, with on_member_error: fail, is the error.
func (ml *modernLists) merged(ctx context.Context, k aggregate.Kind) (*aggregate.List, error) {
	ml.mu.Lock()
	l := ml.lists[k]
	ml.mu.Unlock()
	if l != nil {
		return l, nil
	}
	srv := ml.srv
	cfg := srv.agg()
	items := make(map[string][]json.RawMessage, len(cfg.Members))
	has := map[string]bool{}
	errs := make([]error, len(cfg.Members))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, name := range cfg.Members {
		wg.Go(func() {
			msrv, err := srv.memberServer(name)
			if err != nil {
				errs[i] = err
				return
			}
			// As in the session era, only a member that declares the
			// capability is asked.
			var dr []byte
			if dr, err = msrv.DiscoverFor(ctx, ml.caller, ml.meta); err != nil {
				errs[i] = err
				return
			}
			if !declares(dr, k) {
				return
			}
			list, ok, err := srv.modernMemberList(ctx, ml.caller, ml.meta, ml.rawMeta, msrv, k)
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			items[name], has[name] = list, ok
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, clientGone("while the aggregate read its members' lists")
	}
	var names []string
	for i, name := range cfg.Members {
		if errs[i] == nil {
			srv.memberServed(name)
			names = append(names, name)
			continue
		}
		var e *Error
		if errors.As(errs[i], &e) { // could not start or serve: down
			srv.memberFailed(name, errs[i])
		} else {
			srv.m.log.Warn("aggregate member's list cannot be read; it is left out", "tool", srv.Name,
				"member", name, "method", k.Method(), "error", errs[i].Error())
		}
		if cfg.OnMemberError == config.MemberErrorFail {
			return nil, memberError(srv, name, errs[i])
		}
	}
	if len(names) == 0 && len(cfg.Members) > 0 {
		return nil, memberError(srv, cfg.Members[0], errs[0])
	}
	l = aggregate.Merge(k, aggregate.Options{Prefix: cfg.Prefix, Separator: cfg.Separator}, names, items)
	srv.logCollisions(l)
	ml.mu.Lock()
	ml.lists[k], ml.has[k] = l, has
	ml.mu.Unlock()
	return l, nil
}

// declares reports whether a DiscoverResult declares the capability of
// lists of kind k.
func declares(discover json.RawMessage, k aggregate.Kind) bool {
	var dr struct {
		Capabilities map[string]json.RawMessage `json:"capabilities"`
	}
	_ = json.Unmarshal(discover, &dr)
	_, ok := dr.Capabilities[k.Capability()]
	return ok
}

// logCollisions logs each name collision of the aggregate once.
func (srv *Server) logCollisions(l *aggregate.List) {
	cfg := srv.agg()
	for _, c := range l.Collisions {
		srv.aggMu.Lock()
		if srv.aggLogged == nil {
			srv.aggLogged = map[string]bool{}
		}
		seen := srv.aggLogged[c.String()]
		srv.aggLogged[c.String()] = true
		srv.aggMu.Unlock()
		if !seen {
			srv.m.log.Error("aggregate name collision: no member serves this name", "tool", srv.Name,
				"name", c.Exposed, "members", c.Members, "prefix", cfg.Prefix,
				"hint", fmt.Sprintf("set servers.%s.prefix to conflicts or always", srv.Name))
		}
	}
}

// uris is how the merged resources list shows the members' URIs.
func (ml *modernLists) uris(ctx context.Context) (*aggregate.URIs, error) {
	l, err := ml.merged(ctx, aggregate.Resources)
	if err != nil {
		return nil, err
	}
	byMember := map[string][]string{}
	for _, e := range l.Exposed {
		r := l.Routes[e]
		byMember[r.Member] = append(byMember[r.Member], r.Name)
	}
	return aggregate.NewURIs(byMember), nil
}

// routeURI finds the member of a URI as the session era does
// (aggSession.routeURI): a listed or wrapped URI, a template's, or else a
// URI of the only member that has resources.
func (ml *modernLists) routeURI(ctx context.Context, uri string) (aggregate.Route, bool, error) {
	res, err := ml.merged(ctx, aggregate.Resources)
	if err != nil {
		return aggregate.Route{}, false, err
	}
	tmpl, err := ml.merged(ctx, aggregate.Templates)
	if err != nil {
		return aggregate.Route{}, false, err
	}
	if r, ok := aggregate.RouteURI(uri, res, tmpl); ok {
		return r, true, nil
	}
	ml.mu.Lock()
	defer ml.mu.Unlock()
	only := ""
	for _, name := range ml.srv.agg().Members {
		if ml.has[aggregate.Resources][name] || ml.has[aggregate.Templates][name] {
			if only != "" {
				return aggregate.Route{}, false, nil
			}
			only = name
		}
	}
	if only == "" {
		return aggregate.Route{}, false, nil
	}
	return aggregate.Route{Member: only, Name: uri}, true, nil
}

// done is a Call for a modern request the aggregate answered itself: its
// End has nothing to do.
func (srv *Server) doneCall(caller Caller) *Call {
	return &Call{base: newBase(srv, "", caller)}
}

// answerSelf queues the aggregate's own outcome of a modern request.
func answerSelf(sink *Sink, resp *jsonrpc.Message, adapt func(*jsonrpc.Message)) {
	if adapt != nil {
		adapt(resp)
	}
	sink.expectOne()
	sink.final(jsonrpc.Encode(resp), 0)
}

func (srv *Server) discoverAggregate(ctx context.Context, caller Caller, meta *modern.Meta) (json.RawMessage, error) {
	if srv.m.Draining() {
		return nil, errDraining()
	}
	cfg := srv.agg()
	results := make([]json.RawMessage, len(cfg.Members))
	errs := make([]error, len(cfg.Members))
	var wg sync.WaitGroup
	for i, name := range cfg.Members {
		wg.Go(func() {
			msrv, err := srv.memberServer(name)
			if err == nil {
				results[i], err = msrv.DiscoverFor(ctx, caller, meta)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, clientGone("while the aggregate asked its members")
	}
	var inits []aggregate.Init
	var delivered []json.RawMessage // what each member's capabilities say the gateway delivers
	for i, name := range cfg.Members {
		if errs[i] != nil {
			srv.memberFailed(name, errs[i])
			if cfg.OnMemberError == config.MemberErrorFail {
				return nil, memberError(srv, name, errs[i])
			}
			continue
		}
		srv.memberServed(name)
		var dr struct {
			Capabilities json.RawMessage `json:"capabilities"`
			Instructions string          `json:"instructions"`
		}
		_ = json.Unmarshal(results[i], &dr)
		inits = append(inits, aggregate.Init{Member: name, Capabilities: dr.Capabilities, Instructions: dr.Instructions})
		delivered = append(delivered, dr.Capabilities)
	}
	if len(inits) == 0 {
		return nil, memberError(srv, cfg.Members[0], errs[0])
	}
	caps := modernCapabilities(aggregate.Capabilities(inits), delivered)
	res := map[string]any{
		"resultType":        "complete",
		"supportedVersions": Supported(),
		"capabilities":      caps,
		"_meta":             map[string]json.RawMessage{modern.MetaServerInfo: srv.aggInfo()},
		"ttlMs":             0,
		"cacheScope":        "private",
	}
	if ins := aggregate.Instructions(inits); ins != "" {
		res["instructions"] = ins
	}
	return json.Marshal(res)
}

// modernCapabilities corrects the union of the members' capabilities for
// a modern client: listChanged and subscribe are what some member's
// subscriptions/listen delivers (the members' discover results say so,
// discoverResult), not what the session era's aggregate adds for members
// that come and go.
func modernCapabilities(union json.RawMessage, members []json.RawMessage) json.RawMessage {
	var caps map[string]map[string]json.RawMessage
	if json.Unmarshal(union, &caps) != nil {
		return union
	}
	for _, kind := range []string{"tools", "prompts", "resources"} {
		c := caps[kind]
		if c == nil {
			continue
		}
		for _, flag := range []string{"listChanged", "subscribe"} {
			if kind != "resources" && flag == "subscribe" {
				continue
			}
			found := false
			for _, raw := range members {
				var mc map[string]map[string]json.RawMessage
				_ = json.Unmarshal(raw, &mc)
				if string(mc[kind][flag]) == "true" {
					found = true
				}
			}
			if found {
				c[flag] = json.RawMessage("true")
			} else {
				delete(c, flag)
			}
		}
	}
	return mustJSON(caps)
}

func (srv *Server) statelessAggregate(ctx context.Context, caller Caller, req *jsonrpc.Message, meta *modern.Meta, sink *Sink) (*Call, error) {
	var adapt func(*jsonrpc.Message)
	if g := srv.guard; g != nil {
		req, adapt = g.Request(caller.who(), req)
	}
	ml := srv.newModernLists(caller, meta, req.Params)
	if k, ok := aggregate.KindOf(req.Method); ok {
		resp, err := srv.modernPage(ctx, ml, k, req)
		if err != nil {
			return nil, err
		}
		answerSelf(sink, resp, adapt)
		return srv.doneCall(caller), nil
	}
	switch req.Method {
	case "tools/call", "prompts/get", "resources/read", "completion/complete":
		return srv.modernRoute(ctx, ml, caller, req, meta, sink, adapt)
	}
	return nil, &Error{Kind: problem.NotFound, Code: jsonrpc.CodeMethodNotFound,
		Message: fmt.Sprintf("method %q is not served by aggregate %q", clip.String(req.Method, 64), srv.Name)}
}

// modernPage answers a list request with a page of the merged list.
func (srv *Server) modernPage(ctx context.Context, ml *modernLists, k aggregate.Kind, req *jsonrpc.Message) (*jsonrpc.Message, error) {
	var p struct {
		Cursor string `json:"cursor"`
	}
	_ = json.Unmarshal(req.Params, &p)
	l, err := ml.merged(ctx, k)
	if err != nil {
		return nil, err
	}
	from, to, next, err := aggregate.Page(p.Cursor, len(l.Items), l.Digest, srv.agg().PageSize)
	if err != nil {
		return jsonrpc.NewError(req.ID, jsonrpc.CodeInvalidParams,
			"invalid cursor: the list changed since it was given, or it is not one of this gateway's; list again without a cursor", nil), nil
	}
	items := l.Items[from:to]
	if items == nil {
		items = []json.RawMessage{}
	}
	res := map[string]any{k.Field(): items}
	if next != "" {
		res["nextCursor"] = next
	}
	result, err := modern.CompleteResult(mustJSON(res), srv.aggInfo(), true)
	if err != nil {
		return nil, errBadBackend(err, "aggregate %q: cannot shape its list: %v", srv.Name, err)
	}
	return &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: result}, nil
}

// modernRoute sends a request that names one item to the member that owns
// it, with the member's own name, on the client's sink.
func (srv *Server) modernRoute(ctx context.Context, ml *modernLists, caller Caller, req *jsonrpc.Message, meta *modern.Meta, sink *Sink, adapt func(*jsonrpc.Message)) (*Call, error) {
	var params map[string]json.RawMessage
	if json.Unmarshal(req.Params, &params) != nil {
		return nil, errInvalidParams("invalid params: not an object")
	}
	var r aggregate.Route
	var ok bool
	var err error
	field, exposed, what := "", "", ""
	switch req.Method {
	case "tools/call", "prompts/get":
		_ = json.Unmarshal(params["name"], &exposed)
		k, w := aggregate.Tools, "tool"
		if req.Method == "prompts/get" {
			k, w = aggregate.Prompts, "prompt"
		}
		var l *aggregate.List
		if l, err = ml.merged(ctx, k); err == nil {
			r, ok = l.Routes[exposed]
		}
		field, what = "name", fmt.Sprintf("unknown %s %q", w, clip.String(exposed, 128))
	case "completion/complete":
		var ref map[string]json.RawMessage
		_ = json.Unmarshal(params["ref"], &ref)
		var typ string
		_ = json.Unmarshal(ref["type"], &typ)
		switch typ {
		case "ref/prompt":
			_ = json.Unmarshal(ref["name"], &exposed)
			var l *aggregate.List
			if l, err = ml.merged(ctx, aggregate.Prompts); err == nil {
				r, ok = l.Routes[exposed]
			}
			if ok {
				ref["name"] = mustJSON(r.Name)
			}
		case "ref/resource":
			_ = json.Unmarshal(ref["uri"], &exposed)
			var l *aggregate.List
			if l, err = ml.merged(ctx, aggregate.Templates); err == nil {
				if r, ok = l.Routes[exposed]; !ok {
					r, ok, err = ml.routeURI(ctx, exposed)
				}
			}
			if ok {
				ref["uri"] = mustJSON(r.Name)
			}
		}
		if ok {
			params["ref"] = mustJSON(ref)
		}
		what = fmt.Sprintf("unknown completion reference %q", clip.String(exposed, 128))
	default: // resources/read
		_ = json.Unmarshal(params["uri"], &exposed)
		r, ok, err = ml.routeURI(ctx, exposed)
		field, what = "uri", fmt.Sprintf("resource not found: %q", clip.String(exposed, 256))
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		code := jsonrpc.CodeInvalidParams
		if field == "uri" {
			code = -32002 // MCP spec, server/resources, "Error Handling": resource not found
		}
		answerSelf(sink, jsonrpc.NewError(req.ID, code, what, nil), adapt)
		return srv.doneCall(caller), nil
	}
	if field != "" {
		params[field] = mustJSON(r.Name)
	}
	msrv, err := srv.memberServer(r.Member)
	if err != nil {
		return nil, err
	}
	var uris *aggregate.URIs
	if req.Method == "resources/read" {
		if uris, err = ml.uris(ctx); err != nil {
			return nil, err
		}
	}
	fwd := *req
	fwd.Params = mustJSON(params)
	sink.rewrite = srv.memberRewrite(caller, req.Method, r, exposed, uris, adapt)
	c, err := msrv.Stateless(ctx, caller, &fwd, meta, sink)
	if err != nil {
		sink.rewrite = nil
		srv.memberFailed(r.Member, err)
		return nil, memberError(srv, r.Member, err)
	}
	return c, nil
}

// memberRewrite shows a member's response to a routed request as the
// aggregate's: its serverInfo the aggregate's, a resources/read result's
// URIs as the merged list shows them, an input round's requestState
// wrapped (aggState), and the aggregate's policy applied. Other messages
// (progress, logs) pass as they are.
func (srv *Server) memberRewrite(caller Caller, method string, r aggregate.Route, exposed string, uris *aggregate.URIs, adapt func(*jsonrpc.Message)) func([]byte) []byte {
	return func(raw []byte) []byte {
		m, err := jsonrpc.Parse(raw)
		if err != nil || m.Kind != jsonrpc.KindResponse {
			return raw
		}
		var res map[string]json.RawMessage
		if len(m.Result) > 0 && json.Unmarshal(m.Result, &res) == nil && res != nil {
			var meta map[string]json.RawMessage
			if json.Unmarshal(res["_meta"], &meta) == nil && meta[modern.MetaServerInfo] != nil {
				meta[modern.MetaServerInfo] = srv.aggInfo()
				res["_meta"] = mustJSON(meta)
			}
			var state string
			if json.Unmarshal(res["requestState"], &state) == nil && IsGatewayState(state) {
				res["requestState"] = mustJSON(srv.aggState(r.Member, r.Name, exposed, caller.Identity, method, state))
			}
			if uris != nil {
				var contents []map[string]json.RawMessage
				if json.Unmarshal(res["contents"], &contents) == nil {
					for _, c := range contents {
						var uri string
						if json.Unmarshal(c["uri"], &uri) == nil {
							c["uri"] = mustJSON(uris.Show(r.Member, uri))
						}
					}
					res["contents"] = mustJSON(contents)
				}
			}
			m.Result = mustJSON(res)
		}
		if adapt != nil {
			adapt(m)
		}
		return jsonrpc.Encode(m)
	}
}

// An aggregate's requestState is
//
//	"mcpgw-mrtr." "agg~" MEMBER "~" base64url(NAME) "~" base64url(MAC) "~" ID
//
// where "mcpgw-mrtr." ID is the member's own requestState, NAME the
// member's name of the item the request named, and MAC an HMAC-SHA256
// (128 bits) with a key of this gateway process over the aggregate, the
// member, NAME, the name the client used, the caller's identity, the
// method and ID. A client that changes the member, the item, or the
// request gets -32602, as for any requestState that is not valid; the
// member's state, bound to the member's server, identity and request
// (mrtr.go), is only ever resumed at the member the MAC names. The state
// lives in this gateway process like any of the gateway's requestStates
// (its ID tells a cluster which replica, StateID), so a key of the process
// is enough.
const aggStateTag = "agg~"

var aggStateKey = sync.OnceValue(func() []byte {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (Go 1.24+)
	return key
})

func (srv *Server) aggStateMAC(member, name, exposed, identity, method, id string) []byte {
	h := hmac.New(sha256.New, aggStateKey())
	h.Write([]byte("mcpgw aggregate requestState v1\n"))
	for _, p := range []string{srv.Name, member, name, exposed, identity, method, id} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)[:16]
}

// aggState wraps a member's requestState (one of the gateway's).
func (srv *Server) aggState(member, name, exposed, identity, method, state string) string {
	id, _ := strings.CutPrefix(state, statePrefix)
	mac := srv.aggStateMAC(member, name, exposed, identity, method, id)
	return statePrefix + aggStateTag + member + "~" + base64.RawURLEncoding.EncodeToString([]byte(name)) + "~" +
		base64.RawURLEncoding.EncodeToString(mac) + "~" + id
}

// parsedAggState is an aggregate requestState taken apart (its MAC not
// checked).
type parsedAggState struct {
	member, name, id string
	mac              []byte
}

func parseAggState(state string) (parsedAggState, bool) {
	rest, ok := strings.CutPrefix(state, statePrefix+aggStateTag)
	if !ok {
		return parsedAggState{}, false
	}
	parts := strings.SplitN(rest, "~", 4)
	if len(parts) != 4 || parts[0] == "" || parts[3] == "" {
		return parsedAggState{}, false
	}
	enc := base64.RawURLEncoding.Strict()
	name, err1 := enc.DecodeString(parts[1])
	mac, err2 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(mac) != 16 {
		return parsedAggState{}, false
	}
	return parsedAggState{member: parts[0], name: string(name), id: parts[3], mac: mac}, true
}

// aggStateID is the id inside an aggregate's requestState (StateID).
func aggStateID(id string) string {
	if p, ok := parseAggState(statePrefix + id); ok {
		return p.id
	}
	return id
}

var errAggState = errInvalidParams("requestState is not valid for this request of the aggregate (it was changed, or made for another request or client); send the request again without requestState")

// resumeAggregate continues an aggregate's modern request with a client's
// retry: the MAC is checked, and the member it names resumes its own
// parked request (Resume) under the member's name of the item. The
// outcome reaches the original request's sink, which still shows it as
// the aggregate's (memberRewrite).
func (srv *Server) resumeAggregate(ctx context.Context, caller Caller, req *jsonrpc.Message, state string, responses json.RawMessage) (*Call, *Sink, error) {
	ps, ok := parseAggState(state)
	if !ok {
		return nil, nil, errAggState
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(req.Params, &params) != nil {
		return nil, nil, errInvalidParams("invalid params: not an object")
	}
	field := "name"
	if req.Method == "resources/read" {
		field = "uri"
	}
	var exposed string
	_ = json.Unmarshal(params[field], &exposed)
	if !hmac.Equal(ps.mac, srv.aggStateMAC(ps.member, ps.name, exposed, caller.Identity, req.Method, ps.id)) {
		srv.m.log.Warn("a retry's requestState does not match the aggregate's: refused", "tool", srv.Name,
			"method", req.Method, "client", caller.logName())
		return nil, nil, errAggState
	}
	msrv, err := srv.memberServer(ps.member)
	if err != nil {
		return nil, nil, err
	}
	inner := statePrefix + ps.id
	params[field] = mustJSON(ps.name)
	params["requestState"] = mustJSON(inner)
	fwd := *req
	fwd.Params = mustJSON(params)
	return srv.m.Holding(msrv, inner).Resume(ctx, caller, &fwd, inner, responses)
}

// listenMembers makes l, a subscriptions/listen of the aggregate, the
// merge of one subscription on each member: each member's is opened with
// the client's list-changed filter and the resource URIs routed to it (a
// wrapped URI to the member it names, any other URI to every member), and
// l is granted what some member granted. The returned function starts the
// pumps that carry the members' notifications to l, URIs shown as the
// client subscribed them; l's Close closes the members' subscriptions,
// which ends the pumps.
func (srv *Server) listenMembers(l *Listener, want Filter) (func(), error) {
	cfg := srv.agg()
	perMember := map[string]map[string]string{} // member → its URI → the client's
	var uris []string
	seen := map[string]bool{}
	for _, uri := range want.ResourceSubscriptions {
		if uri == "" || seen[uri] || len(seen) == maxListenURIs {
			continue
		}
		seen[uri] = true
		uris = append(uris, uri)
	}
	for _, name := range cfg.Members {
		perMember[name] = map[string]string{}
	}
	for _, uri := range uris {
		if m, orig, ok := aggregate.SplitURI(uri); ok {
			if perMember[m] != nil {
				perMember[m][orig] = uri
			}
			continue
		}
		for _, name := range cfg.Members {
			perMember[name][uri] = uri
		}
	}
	type sub struct {
		member string
		l      *Listener
	}
	var subs []sub
	closeAll := func() {
		for _, s := range subs {
			s.l.Close()
		}
	}
	granted := map[string]bool{}
	for _, name := range cfg.Members {
		msrv, err := srv.memberServer(name)
		if err != nil {
			continue // no longer configured: nothing to listen to
		}
		mw := Filter{ToolsListChanged: want.ToolsListChanged, PromptsListChanged: want.PromptsListChanged,
			ResourcesListChanged: want.ResourcesListChanged}
		for orig := range perMember[name] {
			mw.ResourceSubscriptions = append(mw.ResourceSubscriptions, orig)
		}
		ml, err := msrv.Listen(l.id, mw)
		if err != nil {
			closeAll()
			return nil, memberError(srv, name, err)
		}
		subs = append(subs, sub{name, ml})
		l.ack.ToolsListChanged = l.ack.ToolsListChanged || ml.ack.ToolsListChanged
		l.ack.PromptsListChanged = l.ack.PromptsListChanged || ml.ack.PromptsListChanged
		l.ack.ResourcesListChanged = l.ack.ResourcesListChanged || ml.ack.ResourcesListChanged
		for _, orig := range ml.ack.ResourceSubscriptions {
			granted[perMember[name][orig]] = true
		}
	}
	for _, uri := range uris {
		if granted[uri] {
			l.ack.ResourceSubscriptions = append(l.ack.ResourceSubscriptions, uri)
		}
	}
	l.onClose = closeAll
	return func() {
		for _, s := range subs {
			shown := perMember[s.member]
			srv.m.wg.Go(func() { srv.pumpMember(l, s.l, shown) }) // owner: the manager; ends with s.l
		}
	}, nil
}

// pumpMember carries one member subscription's notifications to the
// aggregate's until the member's subscription ends. The member's
// acknowledgment and its completion result are its own, not the client's.
func (srv *Server) pumpMember(l, ml *Listener, shown map[string]string) {
	for {
		<-ml.sink.Wake()
		msgs, done, _ := ml.sink.Take()
		for _, raw := range msgs {
			m, err := jsonrpc.Parse(raw)
			if err != nil || m.Kind != jsonrpc.KindNotification || m.Method == "notifications/subscriptions/acknowledged" {
				continue
			}
			if m.Method == "notifications/resources/updated" {
				f := jsonrpc.ParamsFields(m.Params)
				uri, ok := shown[f.URI]
				if !ok {
					continue
				}
				if m.Params, err = jsonrpc.ReplaceParamsField(m.Params, "uri", mustJSON(uri)); err != nil {
					continue
				}
				raw = jsonrpc.Encode(m)
			}
			if !l.sink.push(raw) {
				srv.m.log.Warn("subscription stream too slow: dropped a notification", "tool", srv.Name, "method", m.Method)
			}
		}
		if done {
			return
		}
	}
}
