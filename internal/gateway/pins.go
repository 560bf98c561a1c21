package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/pins"
	"github.com/mcpgw/mcpgw/internal/pins/redispins"
	"github.com/mcpgw/mcpgw/internal/policy"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

// pinDB is where the tool pins persist: a *pins.Store (SQLite under
// state_dir), or a *redispins.Store when cluster.redis is set, so that
// every replica pins the same definitions and an approval holds on all.
type pinDB interface {
	policy.PinStore
	SetModes(ctx context.Context, modes map[string]string) error
	Close() error
}

// openPinDB opens the pins of cfg: in Redis with cluster.redis, else
// under state_dir.
func openPinDB(ctx context.Context, cfg *config.Config, log *slog.Logger) (pinDB, error) {
	if cfg.Cluster != nil && cfg.Cluster.Redis != nil {
		conn, err := redisconn.New(cfg.Cluster.Redis)
		if err != nil {
			return nil, err
		}
		log.Info("tool pins are shared by the replicas through Redis", "url_env", cfg.Cluster.Redis.URLEnv)
		return redispins.New(conn, log), nil
	}
	return pins.Open(ctx, cfg.StateDir, log)
}

// openPins opens the tool pin database (openPinDB) when a server of
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
		st, err := openPinDB(ctx, cfg, g.log)
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
