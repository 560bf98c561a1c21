package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
)

// subscriptions/listen (spec 2026-07-28, basic/patterns/subscriptions) for
// modern clients: a long-lived response stream of change notifications.
//
// The gateway serves it itself, for servers of both eras:
//   - daemon mode: list-changed notifications of every pooled process reach
//     every listener that asked for them. A legacy process sends them on its
//     own; on a modern process the gateway holds one subscriptions/listen of
//     its own for all three kinds, opened right after the probe.
//   - launcher mode: every request runs in a process of its own that ends
//     with it, so there is nothing whose changes could be reported; the
//     acknowledgment says so by granting no notification type.
//
// Resource subscriptions (resourceSubscriptions) are offered in daemon mode
// for session-era processes, up to maxListenURIs per stream: the gateway
// subscribes every pooled process (and every later one) to each URI some
// stream wants, keeps the subscription while a stream or a session wants
// it, and delivers notifications/resources/updated to the streams that
// asked for that URI. A modern process, or launcher mode, gets none; the
// acknowledgment says what was granted, as the spec prescribes.
//
// A listener ends when the client closes the stream, or gracefully (with a
// completion result) when the gateway shuts down or the stream reaches the
// server's max_lifetime. Open listeners count against limits.max_sessions
// on their own.

// Filter is the notifications filter of subscriptions/listen.
type Filter struct {
	ToolsListChanged      bool     `json:"toolsListChanged,omitempty"`
	PromptsListChanged    bool     `json:"promptsListChanged,omitempty"`
	ResourcesListChanged  bool     `json:"resourcesListChanged,omitempty"`
	ResourceSubscriptions []string `json:"resourceSubscriptions,omitempty"`
}

func (f Filter) wants(method string) bool {
	switch method {
	case "notifications/tools/list_changed":
		return f.ToolsListChanged
	case "notifications/prompts/list_changed":
		return f.PromptsListChanged
	case "notifications/resources/list_changed":
		return f.ResourcesListChanged
	}
	return false
}

// maxListenURIs bounds the resource subscriptions one stream is granted.
const maxListenURIs = 64

// Listener is one open subscriptions/listen stream.
type Listener struct {
	srv     *Server
	id      json.RawMessage // the listen request's id: the subscriptionId
	ack     Filter          // what was granted; ack.ResourceSubscriptions has no duplicates
	sink    *Sink
	started time.Time
	once    sync.Once
	onClose func() // an aggregate's: closes its members' subscriptions (aggregate_modern.go)
}

type listeners struct {
	mu   sync.Mutex
	set  map[*Listener]struct{}
	uris map[string]int // granted resource URIs: how many streams want each
}

// Listen opens a subscription for the listen request id. The first message
// on its sink is notifications/subscriptions/acknowledged.
func (srv *Server) Listen(id json.RawMessage, want Filter) (*Listener, error) {
	m := srv.m
	m.mu.Lock()
	if m.draining {
		m.mu.Unlock()
		return nil, errDraining()
	}
	if open := m.listening; open >= m.conf().Limits.MaxSessions {
		m.mu.Unlock()
		srv.rejected("stream_limit")
		return nil, errTooMany(fmt.Sprintf("the gateway has %d subscription streams open (limits.max_sessions); retry later", open))
	}
	m.listening++
	m.mu.Unlock()
	l := &Listener{srv: srv, id: id, sink: newStreamSink(256), started: time.Now()}
	if srv.pool != nil {
		l.ack = Filter{ToolsListChanged: want.ToolsListChanged, PromptsListChanged: want.PromptsListChanged,
			ResourcesListChanged: want.ResourcesListChanged}
		if !srv.pool.modern() {
			seen := map[string]bool{}
			for _, uri := range want.ResourceSubscriptions {
				if uri != "" && !seen[uri] && len(seen) < maxListenURIs {
					seen[uri] = true
					l.ack.ResourceSubscriptions = append(l.ack.ResourceSubscriptions, uri)
				}
			}
		}
	}
	var startPumps func()
	if srv.agg() != nil {
		var err error
		if startPumps, err = srv.listenMembers(l, want); err != nil {
			m.mu.Lock()
			m.listening--
			m.mu.Unlock()
			return nil, err
		}
	}
	params, _ := json.Marshal(map[string]any{
		"_meta":         map[string]json.RawMessage{modern.MetaSubscriptionID: id},
		"notifications": l.ack,
	})
	l.sink.push(jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/subscriptions/acknowledged", Params: params}))
	ls := &srv.listeners
	ls.mu.Lock()
	if ls.set == nil {
		ls.set = make(map[*Listener]struct{})
		ls.uris = make(map[string]int)
	}
	ls.set[l] = struct{}{}
	var added []string
	for _, uri := range l.ack.ResourceSubscriptions {
		if ls.uris[uri]++; ls.uris[uri] == 1 {
			added = append(added, uri)
		}
	}
	ls.mu.Unlock()
	if startPumps != nil {
		startPumps()
	}
	if len(added) > 0 && srv.pool != nil {
		for _, p := range srv.pool.list() {
			p.subscribeURIs("resources/subscribe", added)
		}
	}
	srv.observe(Event{Kind: StreamOpened, Era: "modern", Reason: "listen"})
	return l, nil
}

// Sink is the stream the front-end writes out.
func (l *Listener) Sink() *Sink { return l.sink }

// Close ends the subscription (the client closed the stream).
func (l *Listener) Close() {
	l.once.Do(func() {
		ls := &l.srv.listeners
		ls.mu.Lock()
		delete(ls.set, l)
		var dropped []string
		for _, uri := range l.ack.ResourceSubscriptions {
			if ls.uris[uri]--; ls.uris[uri] <= 0 {
				delete(ls.uris, uri)
				dropped = append(dropped, uri)
			}
		}
		ls.mu.Unlock()
		if len(dropped) > 0 && l.srv.pool != nil {
			for _, p := range l.srv.pool.list() {
				var gone []string
				for _, uri := range dropped {
					if !p.sessionSubscribed(uri) {
						gone = append(gone, uri)
					}
				}
				p.subscribeURIs("resources/unsubscribe", gone)
			}
		}
		m := l.srv.m
		m.mu.Lock()
		m.listening--
		m.mu.Unlock()
		if l.onClose != nil {
			l.onClose()
		}
		l.sink.close()
	})
}

// finish ends the subscription gracefully: the listen request gets its
// completion result, then the stream closes.
func (l *Listener) finish() {
	result, _ := json.Marshal(map[string]any{"resultType": "complete",
		"_meta": map[string]json.RawMessage{modern.MetaSubscriptionID: l.id}})
	l.sink.push(jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: l.id, Result: result}))
	l.Close()
}

func (ls *listeners) list() []*Listener {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return slices.Collect(maps.Keys(ls.set))
}

// notify delivers a list-changed notification to the listeners that asked
// for its kind, each with its own subscriptionId.
func (ls *listeners) notify(m *jsonrpc.Message) {
	ls.deliver(m, func(f Filter) bool { return f.wants(m.Method) })
}

// notifyResource delivers notifications/resources/updated to the
// listeners that were granted its URI.
func (ls *listeners) notifyResource(m *jsonrpc.Message, uri string) {
	ls.deliver(m, func(f Filter) bool { return slices.Contains(f.ResourceSubscriptions, uri) })
}

// deliver sends m, with each listener's subscriptionId in its _meta, to
// the listeners whose granted filter wants it.
func (ls *listeners) deliver(m *jsonrpc.Message, wants func(Filter) bool) {
	for _, l := range ls.list() {
		if !wants(l.ack) {
			continue
		}
		params, err := jsonrpc.SetMeta(m.Params, modern.MetaSubscriptionID, l.id)
		if err != nil {
			continue
		}
		if !l.sink.push(jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: m.Method, Params: params})) {
			l.srv.m.log.Warn("subscription stream too slow: dropped a notification", "tool", l.srv.Name, "method", m.Method)
		}
	}
}

// wantsURI reports whether some stream was granted uri.
func (ls *listeners) wantsURI(uri string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.uris[uri] > 0
}

// grantedURIs are the URIs some stream was granted (for a new process).
func (ls *listeners) grantedURIs() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return slices.Collect(maps.Keys(ls.uris))
}

// subscribeURIs sends resources/subscribe or resources/unsubscribe for
// each URI to a session-era pooled process, in the background.
func (p *proc) subscribeURIs(method string, uris []string) {
	if p.era != eraLegacy || !p.usable() {
		return
	}
	for _, uri := range uris {
		params, _ := json.Marshal(map[string]string{"uri": uri})
		p.callDetached(&jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: method, Params: params})
	}
}

// sessionSubscribed reports whether a session on the process is subscribed
// to uri.
func (p *proc) sessionSubscribed(uri string) bool {
	for _, s := range p.sessionList() {
		if s.subscribed(uri) {
			return true
		}
	}
	return false
}

// expire ends listeners older than the server's max_lifetime (janitor).
func (ls *listeners) expire(now time.Time, lifetime time.Duration) {
	for _, l := range ls.list() {
		if now.Sub(l.started) >= lifetime {
			l.finish()
		}
	}
}

func (ls *listeners) finishAll() {
	for _, l := range ls.list() {
		l.finish()
	}
}

// subscriptionOf returns params._meta subscriptionId, or nil.
func subscriptionOf(params json.RawMessage) json.RawMessage {
	if !bytes.Contains(params, []byte(modern.MetaSubscriptionID)) {
		return nil
	}
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil {
		return nil
	}
	return p.Meta[modern.MetaSubscriptionID]
}

// listenBackend opens the gateway's own subscription on a modern pooled
// process, for every list-changed kind; it lasts as long as the process.
func (p *proc) listenBackend(ctx context.Context) error {
	params, _ := json.Marshal(map[string]any{
		"_meta": map[string]any{
			modern.MetaProtocolVersion:    modern.Version,
			modern.MetaClientInfo:         gatewayInfo,
			modern.MetaClientCapabilities: map[string]any{},
		},
		"notifications": Filter{ToolsListChanged: true, PromptsListChanged: true, ResourcesListChanged: true},
	})
	_, err := p.b.Call(ctx, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "subscriptions/listen", Params: params}, ignoreWaiter{})
	return err
}

// ignoreWaiter discards the outcome of a gateway request nobody waits for.
type ignoreWaiter struct{}

func (ignoreWaiter) Respond(*jsonrpc.Message) {}
func (ignoreWaiter) Fail(error)               {}
