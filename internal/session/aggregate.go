package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/aggregate"
	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/clip"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// An aggregate (servers.NAME.aggregate) is a Server that runs nothing of
// its own: a session of it is an ordinary published *Session whose work is
// done by one session of each member server, created with the client's
// own identity, protocol version and capabilities. Each member session
// is a session like any other (its server's runtime, mode, limits,
// timeouts and policy); the aggregate session only merges, routes and
// rewrites:
//
//   - lists are the members' lists, each read to its end and cached until
//     that member says its list changed (or, in daemon mode, its session
//     moves to another process), merged by package aggregate and paged
//     with the gateway's own cursor; a daemon member's process answers
//     them from its own cache, shared by every aggregate session on it
//     (listcache.go);
//   - a request naming a tool, prompt, resource or completion ref goes to
//     the member that owns it, under the member's own name, with an id of
//     the aggregate session's; its response comes back with the client's;
//   - what a member sends on its own (progress, logs, sampling, elicitation,
//     roots, list changes, resource updates) reaches the client with its
//     server-request ids rewritten once more, so that two members' ids
//     never meet.
//
// A member whose session crashes is left out (the client gets
// list_changed) and started again with a back-off while the aggregate
// session lives; one that ended for an idle or lifetime deadline is
// started again when it is next needed. on_member_error: fail ends the
// aggregate session instead.
//
// Goroutines (owner: the aggSession, wg; Close = cancel → close members →
// wait): one pump per member session reading its stream, one relay per
// request routed to a member, one fan-out per list or setLevel, and one
// restart loop per crashed member. Each ends when its member session or
// request does, or when the aggregate session closes.

// Bounds of reading one member's list: a member that pages forever, or
// lists without end, is cut off and logged.
const (
	maxMemberPages = 1000
	maxMemberItems = 20000
)

// aggSession is the aggregate part of a Session.
type aggSession struct {
	s       *Session
	cfg     *config.Aggregate
	members []*member       // in config order
	init    json.RawMessage // the client's initialize params, for member sessions

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	nextID   int64              // ids of requests sent to members
	inflight map[string]*aggReq // routed client requests, by client id
	outbound map[string]aggOut  // member requests to the client, by the id the client sees
	nextOut  int64              //
	level    json.RawMessage    // the client's logging/setLevel params, for members started later
	uris     *aggregate.URIs    // how the last merged resources list showed shared URIs
	lists    [4]*aggregate.List // merged lists; nil when a member's changed
	logged   map[string]bool    // collisions already logged
}

// aggReq is one client request routed to a member.
type aggReq struct {
	clientID json.RawMessage
	member   *member
	sess     *Session
	id       json.RawMessage // the id the member session sees
}

// aggOut is a member's request to the client.
type aggOut struct {
	member *member
	sess   *Session
	id     json.RawMessage // the member session's id for it
}

// member is one member server within one aggregate session.
type member struct {
	name    string
	startMu sync.Mutex // one start at a time (ensure)

	mu         sync.Mutex
	sess       *Session // nil when not started, ended or failed
	caps       map[string]json.RawMessage
	down       error                // why it is left out (crashed, cannot start); nil when usable
	restarting bool                 // a restart loop runs
	items      [4][]json.RawMessage // cached lists
	have       [4]bool
	from       [4]*proc // the process each cached list came from
	version    [4]int   // bumped by list_changed, so that a fetch in flight is not cached
}

// replaced reports whether mb's cached list of kind k came from a process
// its session is no longer pinned to, or that can take no more work: a
// daemon member's process that ended or is draining, whose replacement may
// list something else. The session is pinned again by the next request;
// until then it has no process, which counts as replaced.
func (mb *member) replaced(k aggregate.Kind) bool {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.have[k] && !mb.fromCurrentLocked(k)
}

// fromCurrentLocked reports whether the cached list of kind k came from
// the process mb's session is on and will stay on. Called with mb.mu held.
func (mb *member) fromCurrentLocked(k aggregate.Kind) bool {
	if mb.sess == nil {
		return true
	}
	p := mb.sess.pinnedProc()
	return p == mb.from[k] && (p == nil || !p.daemon || p.usable())
}

// usable reports whether the member is neither down nor failed.
func (mb *member) state() (*Session, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.sess, mb.down
}

func (mb *member) has(k aggregate.Kind) bool {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	_, ok := mb.caps[k.Capability()]
	return ok
}

// initializeAggregate creates an aggregate session: every member's session
// is started at once, since the client's initialize result is the union of
// theirs.
func (srv *Server) initializeAggregate(ctx context.Context, caller Caller, req *jsonrpc.Message) (*Session, *jsonrpc.Message, error) {
	m := srv.m
	var ip struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
	}
	_ = json.Unmarshal(req.Params, &ip)
	version := sessionVersions[0]
	if slices.Contains(sessionVersions, ip.ProtocolVersion) {
		version = ip.ProtocolVersion
	}
	s := srv.newSession(caller)
	s.protocolVersion = version
	s.caps = capsOf(ip.Capabilities)
	params, err := jsonrpc.ReplaceParamsField(req.Params, "protocolVersion", mustJSON(version))
	if err != nil {
		return nil, nil, errInvalidParams("invalid initialize params: " + err.Error())
	}
	a := &aggSession{s: s, cfg: srv.cfg.Aggregate, init: params,
		inflight: map[string]*aggReq{}, outbound: map[string]aggOut{}, logged: map[string]bool{}}
	a.ctx, a.cancel = context.WithCancel(m.ctx)
	for _, name := range a.cfg.Members {
		a.members = append(a.members, &member{name: name})
	}
	s.agg = a

	var wg sync.WaitGroup
	errs := make([]error, len(a.members))
	for i, mb := range a.members {
		wg.Go(func() { errs[i] = a.ensure(ctx, mb, false) })
	}
	wg.Wait()
	var inits []aggregate.Init
	up := 0
	for i, mb := range a.members {
		if errs[i] != nil {
			if a.cfg.OnMemberError == config.MemberErrorFail {
				a.close(stopped("a member could not start and on_member_error is fail"))
				return nil, nil, memberError(srv, mb.name, errs[i])
			}
			continue
		}
		up++
		mb.mu.Lock()
		caps, _ := json.Marshal(mb.caps)
		inits = append(inits, aggregate.Init{Member: mb.name, Capabilities: caps, Instructions: mb.sess.instructions})
		mb.mu.Unlock()
	}
	if up == 0 {
		a.close(stopped("no member could start"))
		return nil, nil, memberError(srv, a.members[0].name, errs[0])
	}
	result, _ := json.Marshal(map[string]any{
		"protocolVersion": version,
		"capabilities":    aggregate.Capabilities(inits),
		"serverInfo":      map[string]string{"name": "mcpgw-aggregate-" + srv.Name, "version": "1"},
		"instructions":    aggregate.Instructions(inits),
	})
	if err := m.add(s); err != nil {
		a.close(errShutdown)
		return nil, nil, err
	}
	for i, mb := range a.members {
		if errs[i] != nil { // skipped: it comes back when it can
			mb.mu.Lock()
			mb.restarting = true
			mb.mu.Unlock()
			a.wg.Go(func() { a.restart(mb, time.Second) })
		}
	}
	m.log.Info("session started", "tool", srv.Name, "runtime", "aggregate", "session_id", s.id,
		"members", a.cfg.Members, "members_up", up, "protocol_version", version, "client", caller.logName(),
		"client_info", caller.Client, "startup_ms", time.Since(s.created).Milliseconds())
	return s, &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: result}, nil
}

// memberError is the client's error for a member that could not serve: the
// member's own *Error with the aggregate named, or a 503.
func memberError(srv *Server, member string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		out := *e
		out.Message = fmt.Sprintf("aggregate %q: member %q: %s", srv.Name, member, e.Message)
		return &out
	}
	return errUnavailable(fmt.Sprintf("aggregate %q: member %q is unavailable: %v", srv.Name, member, err), 5*time.Second, err)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// start starts mb's session, and the pump that reads its stream.
func (a *aggSession) start(ctx context.Context, mb *member) error {
	srv := a.s.srv.m.Server(mb.name)
	if srv == nil || srv.agg() != nil {
		return errUnavailable(fmt.Sprintf("server %q is no longer configured", mb.name), 30*time.Second, nil)
	}
	req := &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "initialize", Params: a.init}
	sess, resp, err := srv.Initialize(ctx, a.s.caller, req)
	if err == nil && sess == nil {
		var eo jsonrpc.ErrorObject
		_ = json.Unmarshal(resp.Error, &eo)
		err = errBadBackend(errInitRefused, "server %q refused initialize: %s", mb.name, clip.String(eo.Message, 200))
	}
	if err != nil {
		a.s.srv.m.log.Warn("aggregate member cannot start; it is left out", "tool", a.s.srv.Name, "member", mb.name,
			"session_id", a.s.id, "error", err.Error())
		a.s.srv.memberDown(mb.name, err)
		mb.mu.Lock()
		mb.down = err
		mb.mu.Unlock()
		return err
	}
	var ir struct {
		Capabilities map[string]json.RawMessage `json:"capabilities"`
		Instructions string                     `json:"instructions"`
	}
	_ = json.Unmarshal(resp.Result, &ir)
	sess.instructions = ir.Instructions
	sess.member.Store(true)
	_ = sess.Deliver(ctx, &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/initialized"})
	st := NewStreamSink()
	_ = sess.AttachStream(st)
	a.mu.Lock()
	closed, level := a.closed, a.level
	if !closed {
		a.wg.Go(func() { a.pump(mb, sess, st) })
	}
	a.mu.Unlock()
	if closed {
		sess.End()
		return errSessionGone()
	}
	mb.mu.Lock()
	mb.sess, mb.caps, mb.down = sess, ir.Capabilities, nil
	mb.have = [4]bool{}
	mb.mu.Unlock()
	a.s.srv.memberUp(mb.name)
	if level != nil {
		go a.roundtripIgnore(mb, "logging/setLevel", level)
	}
	return nil
}

// roundtripIgnore sends a request whose answer does not matter.
func (a *aggSession) roundtripIgnore(mb *member, method string, params json.RawMessage) {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	_, _ = a.roundtrip(ctx, mb, method, params)
}

// session returns mb's session, starting it when it ended for a deadline
// (or was never started); a member that is down is an error.
func (a *aggSession) session(ctx context.Context, mb *member) (*Session, error) {
	sess, down := mb.state()
	if sess != nil && !sess.isGone() {
		return sess, nil
	}
	if down != nil {
		return nil, memberError(a.s.srv, mb.name, down)
	}
	if err := a.ensure(ctx, mb, false); err != nil {
		return nil, memberError(a.s.srv, mb.name, err)
	}
	sess, _ = mb.state()
	if sess == nil {
		return nil, errSessionGone()
	}
	return sess, nil
}

// ensure starts mb unless it has a live session; a member that is down is
// started only when force (its restart loop) says so.
func (a *aggSession) ensure(ctx context.Context, mb *member, force bool) error {
	mb.startMu.Lock()
	defer mb.startMu.Unlock()
	sess, down := mb.state()
	if sess != nil && !sess.isGone() {
		return nil
	}
	if down != nil && !force {
		return down
	}
	return a.start(ctx, mb)
}

// pump reads a member session's stream until the session ends.
func (a *aggSession) pump(mb *member, sess *Session, st *Sink) {
	for {
		select {
		case <-st.Wake():
		case <-a.ctx.Done():
			return
		}
		msgs, done, _ := st.Take()
		for _, raw := range msgs {
			a.fromMember(mb, sess, raw, nil)
		}
		if done {
			break
		}
	}
	a.memberEnded(mb, sess)
}

// memberEnded handles the end of a member session: after a deadline
// (idle, lifetime, reclaim) the member is started again when next needed;
// after a crash its items are left out, the client is told, and it is
// started again with a back-off (or, with on_member_error: fail, the
// aggregate session ends).
func (a *aggSession) memberEnded(mb *member, sess *Session) {
	sess.closeOnce.Do(func() {})
	why := sess.closeErr
	mb.mu.Lock()
	if mb.sess != sess {
		mb.mu.Unlock()
		return
	}
	mb.sess = nil
	crashed := why != nil && !errors.Is(why, backend.ErrStopped)
	if crashed {
		mb.down = why
		mb.have = [4]bool{}
		mb.items = [4][]json.RawMessage{}
		for k := range mb.version {
			mb.version[k]++
		}
	}
	caps := mb.caps
	mb.mu.Unlock()
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed || !crashed {
		return
	}
	srv := a.s.srv
	srv.m.log.Warn("aggregate member ended; its tools, prompts and resources are left out until it is back", "tool", srv.Name,
		"member", mb.name, "session_id", a.s.id, "error", why.Error())
	srv.memberDown(mb.name, why)
	if a.cfg.OnMemberError == config.MemberErrorFail {
		srv.m.stopAsync(a.s, stopped(fmt.Sprintf("member %q ended and on_member_error is fail", mb.name)))
		return
	}
	a.changed(caps)
	mb.mu.Lock()
	run := !mb.restarting
	mb.restarting = true
	mb.mu.Unlock()
	if run {
		a.wg.Go(func() { a.restart(mb, 0) })
	}
}

// changed invalidates the merged lists and tells the client that the lists
// a member with caps has are different now.
func (a *aggSession) changed(caps map[string]json.RawMessage) {
	a.mu.Lock()
	a.lists = [4]*aggregate.List{}
	a.mu.Unlock()
	for _, k := range []string{"tools", "prompts", "resources"} {
		if _, ok := caps[k]; ok {
			a.s.deliverToStream(jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindNotification,
				Method: "notifications/" + k + "/list_changed"}), nil)
		}
	}
}

// restart starts a crashed member again: at once, then after 1 s, 2 s, 4 s
// … 60 s, while the aggregate session lives.
func (a *aggSession) restart(mb *member, delay time.Duration) {
	defer func() {
		mb.mu.Lock()
		mb.restarting = false
		mb.mu.Unlock()
	}()
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-a.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if a.ensure(a.ctx, mb, true) == nil {
			a.s.srv.m.log.Info("aggregate member is back", "tool", a.s.srv.Name, "member", mb.name, "session_id", a.s.id)
			mb.mu.Lock()
			caps := mb.caps
			mb.mu.Unlock()
			a.changed(caps)
			return
		}
		if a.ctx.Err() != nil {
			return
		}
		delay = min(max(2*delay, time.Second), time.Minute)
	}
}

// busy reports routed requests in flight, for the janitor's idle rule.
func (a *aggSession) busy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inflight) > 0
}

// close ends every member session and waits for the goroutines.
func (a *aggSession) close(why error) {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	var wg sync.WaitGroup
	for _, mb := range a.members {
		mb.mu.Lock()
		sess := mb.sess
		mb.sess = nil
		mb.mu.Unlock()
		if sess != nil {
			sess.srv.m.remove(sess)
			wg.Go(func() {
				if sess.stopping.CompareAndSwap(false, true) {
					sess.close(why)
				}
			})
		}
	}
	wg.Wait()
	a.wg.Wait()
}

func (a *aggSession) newID() json.RawMessage {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextID++
	return jsonrpc.IntID(a.nextID)
}

// roundtrip sends one request of the gateway's own to a member and waits
// for its response; what the member sends meanwhile goes to the client's
// stream.
func (a *aggSession) roundtrip(ctx context.Context, mb *member, method string, params json.RawMessage) (*jsonrpc.Message, error) {
	sess, err := a.session(ctx, mb)
	if err != nil {
		return nil, err
	}
	id := a.newID()
	sink := NewSink(64)
	if err := sess.Begin(ctx, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: id, Method: method, Params: params}, sink); err != nil {
		return nil, err
	}
	var resp *jsonrpc.Message
	for {
		select {
		case <-sink.Wake():
		case <-ctx.Done():
			cancel, _ := json.Marshal(map[string]any{"requestId": id, "reason": "the gateway gave up"})
			_ = sess.Deliver(context.WithoutCancel(ctx), &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/cancelled", Params: cancel})
			return nil, ctx.Err()
		}
		msgs, done, _ := sink.Take()
		for _, raw := range msgs {
			m, err := jsonrpc.Parse(raw)
			if err != nil {
				continue
			}
			if m.Kind == jsonrpc.KindResponse {
				resp = m
				continue
			}
			a.fromMember(mb, sess, raw, nil)
		}
		if done {
			break
		}
	}
	if resp == nil {
		return nil, errUnavailable(fmt.Sprintf("member %q ended the request without an answer", mb.name), time.Second, nil)
	}
	return resp, nil
}

// fromMember delivers what a member sent on its own: to target (the POST
// stream of the client request it belongs to) when there is one, else to
// the client's stream. Server requests get an id of the aggregate
// session's; list changes invalidate the caches; resource URIs are shown
// as the merged list shows them.
func (a *aggSession) fromMember(mb *member, sess *Session, raw []byte, target *Sink) {
	m, err := jsonrpc.Parse(raw)
	if err != nil {
		return
	}
	switch {
	case m.Kind == jsonrpc.KindRequest:
		a.mu.Lock()
		a.nextOut++
		cid := jsonrpc.IntID(a.nextOut)
		a.outbound[string(cid)] = aggOut{member: mb, sess: sess, id: m.ID}
		a.mu.Unlock()
		fwd := *m
		fwd.ID = cid
		raw = jsonrpc.Encode(&fwd)
	case m.Method == "notifications/cancelled":
		f := jsonrpc.ParamsFields(m.Params)
		if f.RequestID == nil {
			return
		}
		a.mu.Lock()
		var cid string
		for k, o := range a.outbound {
			if o.sess == sess && jsonrpc.IDKey(o.id) == jsonrpc.IDKey(f.RequestID) {
				cid = k
				delete(a.outbound, k)
				break
			}
		}
		a.mu.Unlock()
		if cid == "" {
			return
		}
		params, err := jsonrpc.ReplaceParamsField(m.Params, "requestId", json.RawMessage(cid))
		if err != nil {
			return
		}
		raw = jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: m.Method, Params: params})
	case m.Method == "notifications/tools/list_changed", m.Method == "notifications/prompts/list_changed",
		m.Method == "notifications/resources/list_changed":
		kinds := []aggregate.Kind{aggregate.Tools}
		switch m.Method {
		case "notifications/prompts/list_changed":
			kinds = []aggregate.Kind{aggregate.Prompts}
		case "notifications/resources/list_changed":
			kinds = []aggregate.Kind{aggregate.Resources, aggregate.Templates}
		}
		mb.mu.Lock()
		for _, k := range kinds {
			mb.have[k] = false
			mb.items[k] = nil
			mb.version[k]++
		}
		mb.mu.Unlock()
		a.mu.Lock()
		for _, k := range kinds {
			a.lists[k] = nil
		}
		a.mu.Unlock()
		target = nil // about the session, not a request
	case m.Method == "notifications/resources/updated":
		f := jsonrpc.ParamsFields(m.Params)
		if shown := a.showURI(mb.name, f.URI); shown != f.URI {
			params, err := jsonrpc.ReplaceParamsField(m.Params, "uri", mustJSON(shown))
			if err != nil {
				return
			}
			raw = jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: m.Method, Params: params})
		}
		target = nil
	}
	if target != nil && target.push(raw) {
		return
	}
	a.s.deliverToStream(raw, nil)
}

func (a *aggSession) showURI(member, uri string) string {
	a.mu.Lock()
	u := a.uris
	a.mu.Unlock()
	return u.Show(member, uri)
}

// ---------------------------------------------------------------------------
// Client → members

// begin serves one client request of the aggregate session. Exactly one
// outcome reaches sink.
func (a *aggSession) begin(ctx context.Context, req *jsonrpc.Message, sink *Sink) error {
	key := jsonrpc.IDKey(req.ID)
	a.mu.Lock()
	_, dup := a.inflight[key]
	a.mu.Unlock()
	if dup {
		return errDuplicateID(key)
	}
	var adapt func(*jsonrpc.Message)
	if g := a.s.srv.guard; g != nil {
		req, adapt = g.Request(a.s.caller.who(), req)
	}
	if req.Method == "ping" {
		answer(sink, req.ID, "{}")
		return nil
	}
	if k, ok := aggregate.KindOf(req.Method); ok {
		sink.expectOne()
		a.wg.Go(func() { a.list(k, req, sink, adapt) })
		return nil
	}
	switch req.Method {
	case "logging/setLevel":
		a.mu.Lock()
		a.level = req.Params
		a.mu.Unlock()
		sink.expectOne()
		a.wg.Go(func() { a.setLevel(req, sink) })
		return nil
	case "tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe", "completion/complete":
		sink.expectOne()
		a.wg.Go(func() { a.route(req, sink, adapt) })
		return nil
	}
	sink.expectOne()
	a.reply(sink, jsonrpc.NewError(req.ID, jsonrpc.CodeMethodNotFound,
		fmt.Sprintf("method %q is not served by aggregate %q", clip.String(req.Method, 64), a.s.srv.Name), nil), nil)
	return nil
}

// reply finishes a request of sink with a result or an error.
func (a *aggSession) reply(sink *Sink, resp *jsonrpc.Message, adapt func(*jsonrpc.Message)) {
	if adapt != nil {
		adapt(resp)
	}
	a.s.touch()
	sink.final(jsonrpc.Encode(resp), 0)
}

func (a *aggSession) replyErr(sink *Sink, id json.RawMessage, err error, adapt func(*jsonrpc.Message)) {
	code := jsonrpc.CodeInternalError
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		code = e.Code
	}
	var kind = errKind(err)
	resp := jsonrpc.NewError(id, code, err.Error(), nil)
	if adapt != nil {
		adapt(resp)
	}
	a.s.touch()
	sink.final(jsonrpc.Encode(resp), kind)
}

// list answers a list request with a page of the merged list.
func (a *aggSession) list(k aggregate.Kind, req *jsonrpc.Message, sink *Sink, adapt func(*jsonrpc.Message)) {
	l := a.merged(a.ctx, k)
	var p struct {
		Cursor string `json:"cursor"`
	}
	_ = json.Unmarshal(req.Params, &p)
	cursor := p.Cursor
	from, to, next, err := aggregate.Page(cursor, len(l.Items), l.Digest, a.cfg.PageSize)
	if err != nil {
		a.reply(sink, jsonrpc.NewError(req.ID, jsonrpc.CodeInvalidParams,
			"invalid cursor: the list changed since it was given, or it is not one of this gateway's; list again without a cursor", nil), nil)
		return
	}
	res := map[string]any{k.Field(): l.Items[from:to]}
	if l.Items == nil {
		res[k.Field()] = []json.RawMessage{}
	}
	if next != "" {
		res["nextCursor"] = next
	}
	b, _ := json.Marshal(res)
	a.reply(sink, &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: b}, adapt)
}

// merged returns the merged list of kind k, reading the lists of members
// that are not cached.
func (a *aggSession) merged(ctx context.Context, k aggregate.Kind) *aggregate.List {
	a.mu.Lock()
	l := a.lists[k]
	a.mu.Unlock()
	if l != nil && !a.replaced(k) {
		return l
	}
	items := make(map[string][]json.RawMessage, len(a.members))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var names []string
	for _, mb := range a.members {
		if _, down := mb.state(); down != nil || !mb.has(k) {
			continue
		}
		names = append(names, mb.name)
		wg.Go(func() {
			list, ok := a.memberList(ctx, mb, k)
			if ok {
				mu.Lock()
				items[mb.name] = list
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	l = aggregate.Merge(k, aggregate.Options{Prefix: a.cfg.Prefix, Separator: a.cfg.Separator}, names, items)
	a.mu.Lock()
	for _, c := range l.Collisions {
		if !a.logged[c.String()] {
			a.logged[c.String()] = true
			a.s.srv.m.log.Error("aggregate name collision: no member serves this name", "tool", a.s.srv.Name,
				"name", c.Exposed, "members", c.Members, "prefix", a.cfg.Prefix,
				"hint", fmt.Sprintf("set servers.%s.prefix to conflicts or always", a.s.srv.Name))
		}
	}
	if k == aggregate.Resources {
		uris := map[string][]string{}
		for _, e := range l.Exposed {
			r := l.Routes[e]
			uris[r.Member] = append(uris[r.Member], r.Name)
		}
		a.uris = aggregate.NewURIs(uris)
	}
	// The merged list is kept while every member's list it was made of is
	// (memberList may decline to keep one).
	complete := true
	for _, mb := range a.members {
		if _, ok := items[mb.name]; ok {
			mb.mu.Lock()
			complete = complete && mb.have[k]
			mb.mu.Unlock()
		} else if slices.Contains(names, mb.name) {
			complete = false
		}
	}
	if complete {
		a.lists[k] = l
	}
	a.mu.Unlock()
	return l
}

// replaced reports whether a member's cached list of kind k came from a
// process that has been replaced since.
func (a *aggSession) replaced(k aggregate.Kind) bool {
	for _, mb := range a.members {
		if mb.replaced(k) {
			return true
		}
	}
	return false
}

// memberList returns one member's whole list of kind k, from the cache or
// by following its pages. ok is false when it could not be read.
func (a *aggSession) memberList(ctx context.Context, mb *member, k aggregate.Kind) ([]json.RawMessage, bool) {
	mb.mu.Lock()
	if mb.have[k] && mb.fromCurrentLocked(k) {
		list := mb.items[k]
		mb.mu.Unlock()
		return list, true
	}
	version := mb.version[k]
	var from *proc
	if mb.sess != nil {
		from = mb.sess.pinnedProc()
	}
	mb.mu.Unlock()
	var all []json.RawMessage
	cursor := ""
	for page := 0; ; page++ {
		if page == maxMemberPages || len(all) > maxMemberItems {
			a.s.srv.m.log.Warn("aggregate member's list is too long; the rest is left out", "tool", a.s.srv.Name,
				"member", mb.name, "method", k.Method(), "items", len(all), "pages", page)
			break
		}
		var params json.RawMessage = json.RawMessage("{}")
		if cursor != "" {
			params = mustJSON(map[string]string{"cursor": cursor})
		}
		resp, err := a.roundtrip(ctx, mb, k.Method(), params)
		if err != nil {
			a.s.srv.m.log.Warn("aggregate member's list cannot be read; it is left out", "tool", a.s.srv.Name,
				"member", mb.name, "method", k.Method(), "error", err.Error())
			return nil, false
		}
		if resp.Error != nil {
			var eo jsonrpc.ErrorObject
			_ = json.Unmarshal(resp.Error, &eo)
			if eo.Code == jsonrpc.CodeMethodNotFound {
				break // it has none of these
			}
			a.s.srv.m.log.Warn("aggregate member answered its list with an error; it is left out", "tool", a.s.srv.Name,
				"member", mb.name, "method", k.Method(), "error", clip.String(eo.Message, 200))
			return nil, false
		}
		items, next := aggregate.ReadPage(k, resp.Result)
		all = append(all, items...)
		if next == "" || next == cursor {
			break
		}
		cursor = next
	}
	mb.mu.Lock()
	// Kept only when the pages all came from one process: a session that
	// was moved to another while they were read (or was not pinned when
	// the reading began) reads them again next time.
	if mb.version[k] == version && mb.sess != nil && from != nil && mb.sess.pinnedProc() == from {
		mb.items[k], mb.have[k], mb.from[k] = all, true, from
	}
	mb.mu.Unlock()
	return all, true
}

// setLevel sends the client's logging level to every member that is up.
func (a *aggSession) setLevel(req *jsonrpc.Message, sink *Sink) {
	var wg sync.WaitGroup
	for _, mb := range a.members {
		if sess, down := mb.state(); sess == nil || down != nil {
			continue // a member started later gets the level then
		}
		wg.Go(func() { _, _ = a.roundtrip(a.ctx, mb, "logging/setLevel", req.Params) })
	}
	wg.Wait()
	a.reply(sink, &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: json.RawMessage("{}")}, nil)
}

// route sends a request that names one item to its member.
func (a *aggSession) route(req *jsonrpc.Message, sink *Sink, adapt func(*jsonrpc.Message)) {
	if req.Method == "tools/call" || req.Method == "prompts/get" {
		// The common case, without decoding the params (aggregate_route.go).
		if name, start, end, ok := nameSpan(req.Params); ok {
			k := aggregate.Tools
			if req.Method == "prompts/get" {
				k = aggregate.Prompts
			}
			if r, found := a.lookup(k, name); found {
				fwd := *req
				fwd.Params = withName(req.Params, start, end, r.Name)
				a.forward(a.memberNamed(r.Member), &fwd, req.ID, sink, adapt)
				return
			}
		}
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(req.Params, &params) != nil {
		a.replyErr(sink, req.ID, errInvalidParams("invalid params: not an object"), adapt)
		return
	}
	var r aggregate.Route
	var ok bool
	var field string // the params member to rewrite
	var what string
	switch req.Method {
	case "tools/call", "prompts/get":
		var name string
		_ = json.Unmarshal(params["name"], &name)
		k, w := aggregate.Tools, "tool"
		if req.Method == "prompts/get" {
			k, w = aggregate.Prompts, "prompt"
		}
		r, ok = a.lookup(k, name)
		field, what = "name", fmt.Sprintf("unknown %s %q", w, clip.String(name, 128))
	case "completion/complete":
		var ref map[string]json.RawMessage
		_ = json.Unmarshal(params["ref"], &ref)
		var typ, name string
		_ = json.Unmarshal(ref["type"], &typ)
		switch typ {
		case "ref/prompt":
			_ = json.Unmarshal(ref["name"], &name)
			r, ok = a.lookup(aggregate.Prompts, name)
			if ok {
				ref["name"] = mustJSON(r.Name)
			}
		case "ref/resource":
			_ = json.Unmarshal(ref["uri"], &name)
			r, ok = a.lookup(aggregate.Templates, name)
			if !ok {
				r, ok = a.routeURI(name)
			}
			if ok {
				ref["uri"] = mustJSON(r.Name)
			}
		}
		if ok {
			params["ref"] = mustJSON(ref)
		}
		what = fmt.Sprintf("unknown completion reference %q", clip.String(name, 128))
	default: // resources/read, subscribe, unsubscribe
		var uri string
		_ = json.Unmarshal(params["uri"], &uri)
		r, ok = a.routeURI(uri)
		field, what = "uri", fmt.Sprintf("resource not found: %q", clip.String(uri, 256))
	}
	if !ok {
		code := jsonrpc.CodeInvalidParams
		if field == "uri" {
			code = -32002 // MCP spec, server/resources, "Error Handling": resource not found
		}
		a.reply(sink, jsonrpc.NewError(req.ID, code, what, nil), adapt)
		return
	}
	if field != "" {
		params[field] = mustJSON(r.Name)
	}
	fwd := *req
	fwd.Params = mustJSON(params)
	a.forward(a.memberNamed(r.Member), &fwd, req.ID, sink, adapt)
}

// memberNamed returns the member called name.
func (a *aggSession) memberNamed(name string) *member {
	for _, mb := range a.members {
		if mb.name == name {
			return mb
		}
	}
	return nil
}

// lookup finds an exposed name in the merged list of kind k, reading the
// list when it is not cached.
func (a *aggSession) lookup(k aggregate.Kind, name string) (aggregate.Route, bool) {
	r, ok := a.merged(a.ctx, k).Routes[name]
	return r, ok
}

func (a *aggSession) routeURI(uri string) (aggregate.Route, bool) {
	r, ok := aggregate.RouteURI(uri, a.merged(a.ctx, aggregate.Resources), a.merged(a.ctx, aggregate.Templates))
	if ok {
		return r, true
	}
	// A URI no list names, of the only member with resources.
	var only *member
	for _, mb := range a.members {
		if mb.has(aggregate.Resources) {
			if only != nil {
				return aggregate.Route{}, false
			}
			only = mb
		}
	}
	if only == nil {
		return aggregate.Route{}, false
	}
	return aggregate.Route{Member: only.name, Name: uri}, true
}

// forward sends req to mb with an id of the aggregate session's and relays
// the member's messages about it until its outcome, which gets clientID.
func (a *aggSession) forward(mb *member, req *jsonrpc.Message, clientID json.RawMessage, sink *Sink, adapt func(*jsonrpc.Message)) {
	sess, err := a.session(a.ctx, mb)
	if err != nil {
		a.replyErr(sink, clientID, err, adapt)
		return
	}
	r := &aggReq{clientID: clientID, member: mb, sess: sess, id: a.newID()}
	key := jsonrpc.IDKey(clientID)
	a.mu.Lock()
	if a.inflight[key] != nil {
		a.mu.Unlock()
		a.replyErr(sink, clientID, errDuplicateID(key), adapt)
		return
	}
	a.inflight[key] = r
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.inflight, key)
		a.mu.Unlock()
	}()
	msink := NewSink(1024)
	fwd := *req
	fwd.ID = r.id
	if err := sess.Begin(a.ctx, &fwd, msink); err != nil {
		a.replyErr(sink, clientID, err, adapt)
		return
	}
	wrapped := ""
	if req.Method == "resources/read" {
		var p struct {
			URI string `json:"uri"`
		}
		_ = json.Unmarshal(req.Params, &p)
		wrapped = p.URI
	}
	for {
		select {
		case <-msink.Wake():
		case <-a.ctx.Done():
			// The aggregate session closes: its member sessions end, and
			// with them this request; its outcome still comes.
			<-msink.Wake()
		}
		msgs, done, _ := msink.Take()
		for _, raw := range msgs {
			m, err := jsonrpc.Parse(raw)
			if err != nil || m.Kind != jsonrpc.KindResponse {
				a.fromMember(mb, sess, raw, sink)
				continue
			}
			m.ID = clientID
			if wrapped != "" {
				a.showContents(mb.name, m)
			}
			if adapt != nil {
				adapt(m)
			}
			a.s.touch()
			sink.final(jsonrpc.Encode(m), msink.ErrorKind())
			return
		}
		if done {
			a.s.touch()
			sink.final(nil, 0) // cancelled: no response
			return
		}
	}
}

// showContents rewrites a resources/read result's URIs as the merged list
// shows them.
func (a *aggSession) showContents(member string, m *jsonrpc.Message) {
	var res map[string]json.RawMessage
	if json.Unmarshal(m.Result, &res) != nil {
		return
	}
	var contents []map[string]json.RawMessage
	if json.Unmarshal(res["contents"], &contents) != nil {
		return
	}
	for _, c := range contents {
		var uri string
		if json.Unmarshal(c["uri"], &uri) == nil {
			c["uri"] = mustJSON(a.showURI(member, uri))
		}
	}
	res["contents"] = mustJSON(contents)
	m.Result = mustJSON(res)
}

// deliver handles a client notification or response of the aggregate
// session.
func (a *aggSession) deliver(ctx context.Context, m *jsonrpc.Message) error {
	switch {
	case m.Kind == jsonrpc.KindResponse:
		key := jsonrpc.IDKey(m.ID)
		a.mu.Lock()
		out, ok := a.outbound[key]
		delete(a.outbound, key)
		a.mu.Unlock()
		if !ok {
			return nil
		}
		fwd := *m
		fwd.ID = out.id
		return out.sess.Deliver(ctx, &fwd)
	case m.Method == "notifications/cancelled":
		f := jsonrpc.ParamsFields(m.Params)
		if f.RequestID == nil {
			return nil
		}
		a.mu.Lock()
		r := a.inflight[jsonrpc.IDKey(f.RequestID)]
		a.mu.Unlock()
		if r == nil {
			return nil
		}
		params, err := jsonrpc.ReplaceParamsField(m.Params, "requestId", r.id)
		if err != nil {
			return nil
		}
		return r.sess.Deliver(ctx, &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: m.Method, Params: params})
	case m.Method == "notifications/initialized":
		return nil // each member got its own
	default:
		// Roots changes and other client notifications concern every member.
		for _, mb := range a.members {
			if sess, _ := mb.state(); sess != nil {
				_ = sess.Deliver(ctx, m)
			}
		}
		return nil
	}
}

// ---------------------------------------------------------------------------
// Readiness

// memberDown records that a member of the aggregate srv failed, for
// /readyz; memberUp clears it.
func (srv *Server) memberDown(member string, err error) {
	if srv == nil {
		return
	}
	srv.aggMu.Lock()
	defer srv.aggMu.Unlock()
	if srv.aggDown == nil {
		srv.aggDown = map[string]string{}
	}
	srv.aggDown[member] = err.Error()
}

func (srv *Server) memberUp(member string) {
	srv.aggMu.Lock()
	defer srv.aggMu.Unlock()
	delete(srv.aggDown, member)
}

// MembersDown returns the members of an aggregate that failed in any of its
// sessions and have not been back since, with why, sorted; nil for a
// plain server.
func (srv *Server) MembersDown() []string {
	srv.aggMu.Lock()
	defer srv.aggMu.Unlock()
	var out []string
	for _, name := range sortedKeys(srv.aggDown) {
		out = append(out, name+": "+srv.aggDown[name])
	}
	return out
}

// Members returns an aggregate's member names in order; nil for a plain
// server.
func (srv *Server) Members() []string {
	if a := srv.agg(); a != nil {
		return slices.Clone(a.Members)
	}
	return nil
}

func (srv *Server) agg() *config.Aggregate { return srv.cfg.Aggregate }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// errKind is the problem kind of an error for the sink: an *Error's own,
// else Unavailable.
func errKind(err error) problem.Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return problem.Unavailable
}
