package session

import (
	"fmt"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/policy"
)

// guardOf returns the policy Guard of a configured server, or nil when the
// server restricts nothing. forward consults it for every client request
// of either era, so that lists and calls see the same decisions.
//
// The config's validation compiled every rule, so New does not fail; if
// it did, the server would refuse everything rather than run unguarded.
func (m *Manager) guardOf(name string, cfg *config.Server) *policy.Guard {
	pc := policy.Config{
		Server:    name,
		Tools:     policy.NewGlobs(cfg.Tools.Allow, cfg.Tools.Deny),
		Prompts:   policy.NewGlobs(cfg.Prompts.Allow, cfg.Prompts.Deny),
		Resources: policy.NewGlobs(cfg.Resources.Allow, cfg.Resources.Deny),
		PinTools:  cfg.PinTools,
	}
	for i, r := range cfg.Policy {
		key := "deny"
		if r.Allow {
			key = "allow"
		}
		pc.Rules = append(pc.Rules, policy.Rule{Allow: r.Allow, Expr: r.Expr, Path: fmt.Sprintf("servers.%s.policy[%d].%s", name, i, key)})
	}
	g, err := policy.New(pc, m.log)
	if err != nil {
		m.log.Error("server policy does not compile: the server exposes nothing", "tool", name, "error", err.Error())
		g, _ = policy.New(policy.Config{Server: name, Tools: policy.NewGlobs(nil, []string{"*"}),
			Prompts: policy.NewGlobs(nil, []string{"*"}), Resources: policy.NewGlobs(nil, []string{"*"})}, m.log)
	}
	if ps := m.pins.Load(); ps != nil {
		g.UsePins(ps.PinStore)
	}
	return g
}

// who is the caller as policy rules see it.
func (c Caller) who() policy.Who {
	return policy.Who{Name: c.Identity, Email: c.Email, Claims: c.Claims}
}

// pinStore holds a policy.PinStore for an atomic pointer.
type pinStore struct{ policy.PinStore }

// UsePins makes the tool pins of every server with pin_tools persist in
// store, including servers a reload adds later. Call it before serving;
// without it pins live in memory.
func (m *Manager) UsePins(store policy.PinStore) {
	m.pins.Store(&pinStore{store})
	for _, srv := range m.current() {
		srv.guard.UsePins(store)
	}
}
