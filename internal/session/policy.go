package session

import (
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/policy"
)

// guardOf returns the policy Guard of a configured server, or nil when the
// server restricts nothing. forward consults it for every client request
// of either era, so that lists and calls see the same decisions.
func (m *Manager) guardOf(name string, cfg *config.Server) *policy.Guard {
	return policy.New(policy.Config{
		Server:    name,
		Tools:     policy.NewGlobs(cfg.Tools.Allow, cfg.Tools.Deny),
		Prompts:   policy.NewGlobs(cfg.Prompts.Allow, cfg.Prompts.Deny),
		Resources: policy.NewGlobs(cfg.Resources.Allow, cfg.Resources.Deny),
	}, m.log)
}

// who is the caller as policy rules see it.
func (c Caller) who() policy.Who {
	return policy.Who{Name: c.Identity}
}
