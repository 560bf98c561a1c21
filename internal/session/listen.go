package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
// Resource subscriptions (resourceSubscriptions) are not offered: the
// acknowledgment omits them, as the spec prescribes for types a server does
// not support.
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

// Listener is one open subscriptions/listen stream.
type Listener struct {
	srv     *Server
	id      json.RawMessage // the listen request's id: the subscriptionId
	ack     Filter
	sink    *Sink
	started time.Time
	once    sync.Once
}

type listeners struct {
	mu  sync.Mutex
	set map[*Listener]struct{}
}

// Listen opens a subscription for the listen request id. The first message
// on its sink is notifications/subscriptions/acknowledged.
func (srv *Server) Listen(id json.RawMessage, want Filter) (*Listener, error) {
	m := srv.m
	m.mu.Lock()
	if m.draining {
		m.mu.Unlock()
		return nil, errUnavailable("the gateway is shutting down", 5*time.Second, errShutdown)
	}
	if open := m.listening; open >= m.cfg.Limits.MaxSessions {
		m.mu.Unlock()
		return nil, errTooMany(fmt.Sprintf("the gateway has %d subscription streams open (limits.max_sessions); retry later", open))
	}
	m.listening++
	m.mu.Unlock()
	l := &Listener{srv: srv, id: id, sink: newStreamSink(256), started: time.Now()}
	if srv.pool != nil {
		l.ack = Filter{ToolsListChanged: want.ToolsListChanged, PromptsListChanged: want.PromptsListChanged,
			ResourcesListChanged: want.ResourcesListChanged}
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
	}
	ls.set[l] = struct{}{}
	ls.mu.Unlock()
	return l, nil
}

// Sink is the stream the front-end writes out.
func (l *Listener) Sink() *Sink { return l.sink }

// Acknowledged is the filter the gateway agreed to honour.
func (l *Listener) Acknowledged() Filter { return l.ack }

// Close ends the subscription (the client closed the stream).
func (l *Listener) Close() {
	l.once.Do(func() {
		ls := &l.srv.listeners
		ls.mu.Lock()
		delete(ls.set, l)
		ls.mu.Unlock()
		m := l.srv.m
		m.mu.Lock()
		m.listening--
		m.mu.Unlock()
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
	out := make([]*Listener, 0, len(ls.set))
	for l := range ls.set {
		out = append(out, l)
	}
	return out
}

// notify delivers a list-changed notification to the listeners that asked
// for its kind, each with its own subscriptionId.
func (ls *listeners) notify(m *jsonrpc.Message) {
	for _, l := range ls.list() {
		if !l.ack.wants(m.Method) {
			continue
		}
		params, err := setMeta(m.Params, modern.MetaSubscriptionID, l.id)
		if err != nil {
			continue
		}
		if !l.sink.push(jsonrpc.Encode(&jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: m.Method, Params: params})) {
			l.srv.m.log.Warn("subscription stream too slow: dropped a notification", "tool", l.srv.Name, "method", m.Method)
		}
	}
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

// setMeta returns params (an object, or empty) with _meta[key] = value.
func setMeta(params json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(params)) > 0 {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, err
		}
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := obj["_meta"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, err
		}
	}
	meta[key] = value
	var err error
	if obj["_meta"], err = json.Marshal(meta); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
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
