package session

import (
	"encoding/json"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/policy"
)

// Tool pinning under enforce changes which tools a client may use without
// the server changing anything: a changed definition is held, and an
// operator's approval (`mcpgw tools approve`, written to the pin store by
// another process) releases it. The gateway then says so itself, as a
// server would: notifications/tools/list_changed to every session of the
// server (on its GET or legacy SSE stream) and to the subscriptions/listen
// streams that asked for tool changes. Such a server's initialize result
// (and, in daemon mode, its server/discover result) declares
// tools.listChanged, so that clients listen for it.

// watchPins looks at the pins of every server with pin_tools: enforce
// at once (what is held when the gateway starts is what its clients
// find), then once per policy.PinRefresh until the Manager closes (owner:
// the Manager, started by Open).
func (m *Manager) watchPins() {
	t := time.NewTicker(policy.PinRefresh)
	defer t.Stop()
	for {
		for _, srv := range m.current() {
			if srv.guard.EnforcesPins() && srv.guard.PinsChanged() {
				m.log.Info("tools held for approval changed; telling the clients", "tool", srv.Name)
				srv.announce("notifications/tools/list_changed")
			}
		}
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// announce sends a notification of the gateway's own to every session of
// srv and to its listeners that want it.
func (srv *Server) announce(method string) {
	msg := &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: method}
	line := jsonrpc.Encode(msg)
	m := srv.m
	m.mu.Lock()
	var sessions []*Session
	for _, s := range m.sessions {
		if s.srv == srv {
			sessions = append(sessions, s)
		}
	}
	m.mu.Unlock()
	for _, s := range sessions {
		s.deliverToStream(line, nil)
	}
	srv.listeners.notify(msg)
}

// declareListChanged adds tools.listChanged to the capabilities of an
// initialize or server/discover result when the gateway itself announces
// tool changes for srv (pin_tools: enforce). Any other result is returned
// unchanged, as is one it cannot read.
func (srv *Server) declareListChanged(result json.RawMessage) json.RawMessage {
	if !srv.guard.EnforcesPins() {
		return result
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(result, &obj) != nil {
		return result
	}
	var caps map[string]json.RawMessage
	if json.Unmarshal(obj["capabilities"], &caps) != nil {
		return result
	}
	if caps == nil {
		caps = map[string]json.RawMessage{}
	}
	var tools map[string]json.RawMessage
	if json.Unmarshal(caps["tools"], &tools) != nil || tools == nil {
		tools = map[string]json.RawMessage{}
	}
	tools["listChanged"] = json.RawMessage("true")
	caps["tools"], _ = json.Marshal(tools)
	obj["capabilities"], _ = json.Marshal(caps)
	out, err := json.Marshal(obj)
	if err != nil {
		return result
	}
	return out
}
