package gateway

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/pins"
)

// openPins opens the tool pin database under state_dir when a server of
// cfg has pin_tools and it is not open yet, gives it to the session
// layer, and records there which servers are pinned how (for `mcpgw
// tools list`). Open calls it, and Reload before the new servers exist.
func (g *Gateway) openPins(ctx context.Context, cfg *config.Config) error {
	g.pinsMu.Lock()
	defer g.pinsMu.Unlock()
	modes := map[string]string{}
	for name, s := range cfg.Servers {
		if s.PinTools == config.PinWarn || s.PinTools == config.PinEnforce {
			modes[name] = s.PinTools
		}
	}
	if g.pins == nil {
		if len(modes) == 0 {
			return nil
		}
		st, err := pins.Open(ctx, cfg.StateDir, g.log)
		if err != nil {
			return fmt.Errorf("tool pinning (pin_tools of %v): %w", slices.Sorted(maps.Keys(modes)), err)
		}
		g.pins = st
		g.mgr.UsePins(st)
	}
	if err := g.pins.SetModes(ctx, modes); err != nil {
		// Only `mcpgw tools list` reads the modes: pinning itself works.
		g.log.Warn("tool pins: could not record which servers are pinned; mcpgw tools list may show a held change as changed", "error", err.Error())
	}
	return nil
}

// closePins writes the pins still queued and closes the database.
func (g *Gateway) closePins() {
	g.pinsMu.Lock()
	defer g.pinsMu.Unlock()
	if g.pins == nil {
		return
	}
	if err := g.pins.Close(); err != nil {
		g.log.Warn("closing the tool pins", "error", err.Error())
	}
}
