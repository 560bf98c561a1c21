package gateway

import (
	"context"
	"fmt"
	"slices"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/pins"
)

// openPins opens the tool pin database under state_dir when a server of
// cfg has pin_tools and it is not open yet, and gives it to the session
// layer. Open calls it, and Reload before the new servers exist.
func (g *Gateway) openPins(ctx context.Context, cfg *config.Config) error {
	g.pinsMu.Lock()
	defer g.pinsMu.Unlock()
	if g.pins != nil {
		return nil
	}
	var pinning []string
	for name, s := range cfg.Servers {
		if s.PinTools == config.PinWarn || s.PinTools == config.PinEnforce {
			pinning = append(pinning, name)
		}
	}
	if len(pinning) == 0 {
		return nil
	}
	st, err := pins.Open(ctx, cfg.StateDir, g.log)
	if err != nil {
		return fmt.Errorf("tool pinning (pin_tools of %v): %w", slices.Sorted(slices.Values(pinning)), err)
	}
	g.pins = st
	g.mgr.UsePins(st)
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
