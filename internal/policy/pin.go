package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/internal/pins"
)

// Tool pinning modes (Config.PinTools).
const (
	PinOff     = "off"
	PinWarn    = "warn"
	PinEnforce = "enforce"
)

// PinStore is where pins persist (a *pins.Store). Record must not block:
// it is called from the backend's reader.
type PinStore interface {
	Load(ctx context.Context, server string) (map[string]*pins.Pin, error)
	Record(p pins.Pin)
}

// PinRefresh is how often the pins are read back from the store, so that
// an approval by `mcpgw tools approve` takes effect.
const PinRefresh = time.Second

// pinner is a Guard's view of its server's pins: the store's, plus what
// was seen since the last refresh.
type pinner struct {
	mode string // PinWarn or PinEnforce

	mu     sync.Mutex
	store  PinStore
	pins   map[string]*pins.Pin // by tool name; entries are replaced, never changed
	loaded time.Time            // of the last refresh; zero: never
	// synced is set once the store could be read: until then, with a
	// store that does not answer (a shared one down since the gateway
	// started), enforce trusts no definition, since it cannot tell a
	// first sight from a change another replica is holding.
	synced bool

	// held and watched are PinsChanged's memory: the tools it last saw
	// waiting for approval, and whether it was called before.
	held    string
	watched bool
}

// UsePins makes the Guard's pins persist in store (nil: in memory only,
// until the gateway stops). Called once, before requests are served.
func (g *Guard) UsePins(store PinStore) {
	if g == nil || g.pin == nil {
		return
	}
	g.pin.mu.Lock()
	g.pin.store = store
	g.pin.loaded = time.Time{}
	g.pin.synced = false
	g.pin.mu.Unlock()
}

// refresh reads the pins back from the store when they are older than
// PinRefresh. It runs on the request path (not the backend's reader), and
// keeps the pins it has when the store cannot be read.
func (g *Guard) refreshPins() {
	pn := g.pin
	pn.mu.Lock()
	store, due := pn.store, time.Since(pn.loaded) >= PinRefresh
	if due {
		pn.loaded = time.Now() // one refresh at a time
	}
	pn.mu.Unlock()
	if store == nil || !due {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	loaded, err := store.Load(ctx, g.cfg.Server)
	if err != nil {
		if g.log != nil {
			g.log.Warn("tool pins: could not read the pins; keeping the ones in memory", "tool", g.cfg.Server, "error", err.Error())
		}
		return
	}
	pn.mu.Lock()
	// What was seen in the last moments may still wait in the store's
	// queue: keep it, or it would be seen (and logged) as new again.
	for name, p := range pn.pins {
		if db := loaded[name]; time.Since(p.Changed) < pinUnwritten && (db == nil || db.Seen != p.Seen) {
			loaded[name] = p
		}
	}
	pn.pins = loaded
	pn.synced = true
	pn.mu.Unlock()
}

// EnforcesPins reports whether the Guard hides a changed tool until an
// operator approves it (pin_tools: enforce).
func (g *Guard) EnforcesPins() bool { return g != nil && g.pin != nil && g.pin.mode == PinEnforce }

// PinsChanged reads the pins back from the store when they are due (at
// most once per PinRefresh) and reports whether the set of tools waiting
// for approval changed since its previous call: an operator approved one,
// or some client's list showed a changed definition. Its first call only
// takes note. The gateway calls it periodically, from one goroutine, to
// tell clients that the tools they may use changed.
func (g *Guard) PinsChanged() bool {
	if g == nil || g.pin == nil {
		return false
	}
	g.refreshPins()
	pn := g.pin
	pn.mu.Lock()
	defer pn.mu.Unlock()
	var held []string
	for name, p := range pn.pins {
		if p.Pending() {
			held = append(held, name)
		}
	}
	slices.Sort(held)
	key := strings.Join(held, "\x00")
	changed := pn.watched && key != pn.held
	pn.held, pn.watched = key, true
	return changed
}

// pinUnwritten is how long an observation may wait to be written.
const pinUnwritten = 10 * time.Second

// definition is what a tool's pin covers.
type definition struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
}

// digestOf returns a listed tool's canonical definition (name,
// description, input and output schema, annotations: object keys sorted,
// no insignificant space) and its SHA-256.
func digestOf(raw json.RawMessage) (def []byte, digest string, ok bool) {
	var d definition
	if json.Unmarshal(raw, &d) != nil {
		return nil, "", false
	}
	for _, f := range []*json.RawMessage{&d.InputSchema, &d.OutputSchema, &d.Annotations} {
		if len(*f) == 0 || bytes.Equal(*f, []byte("null")) {
			*f = nil
			continue
		}
		var v any
		if json.Unmarshal(*f, &v) != nil {
			return nil, "", false
		}
		*f, _ = json.Marshal(v) // maps marshal with sorted keys
	}
	def, err := json.Marshal(d)
	if err != nil {
		return nil, "", false
	}
	sum := sha256.Sum256(def)
	return def, hex.EncodeToString(sum[:]), true
}

// observe records a listed tool's definition and reports whether it is
// the approved one. A new tool is pinned (trust on first use); a changed
// one is logged at warn once per change.
func (g *Guard) observe(name string, raw json.RawMessage) bool {
	def, digest, ok := digestOf(raw)
	if !ok {
		return false
	}
	pn := g.pin
	pn.mu.Lock()
	if pn.store != nil && !pn.synced && pn.mode == PinEnforce {
		pn.mu.Unlock()
		if g.log != nil {
			g.log.Warn("tool pins could not be read yet: the tool is hidden until they can (pin_tools: enforce)", "tool", g.cfg.Server, "name", name)
		}
		return false
	}
	old := pn.pins[name]
	var rec *pins.Pin
	switch {
	case old == nil:
		rec = &pins.Pin{Server: g.cfg.Server, Tool: name, Approved: digest, ApprovedDef: def, Seen: digest, SeenDef: def,
			FirstSeen: time.Now(), Changed: time.Now()}
	case old.Seen != digest:
		c := *old
		c.Seen, c.SeenDef, c.Changed = digest, def, time.Now()
		rec = &c
	}
	if rec != nil {
		if pn.pins == nil {
			pn.pins = map[string]*pins.Pin{}
		}
		pn.pins[name] = rec
	}
	approved := pn.pins[name].Approved == digest
	store := pn.store
	pn.mu.Unlock()
	if rec == nil {
		return approved
	}
	if store != nil {
		store.Record(*rec)
	}
	if g.log == nil {
		return approved
	}
	switch {
	case old == nil:
		g.log.Info("tool pinned", "tool", g.cfg.Server, "name", name, "digest", digest[:16])
	case !approved:
		msg := "tool definition changed since it was pinned; it is still served (pin_tools: warn)"
		if pn.mode == PinEnforce {
			msg = "tool definition changed since it was pinned; it is hidden until approved (pin_tools: enforce)"
		}
		g.log.Warn(msg, "tool", g.cfg.Server, "name", name, "approved", old.Approved[:min(16, len(old.Approved))], "digest", digest[:16],
			"approve", "mcpgw tools approve "+g.cfg.Server+" "+name)
	default:
		g.log.Info("tool definition is the approved one again", "tool", g.cfg.Server, "name", name)
	}
	return approved
}

// callable reports whether a tool's last seen definition is approved.
// A tool the gateway has never seen listed is not.
func (g *Guard) callable(name string) bool {
	pn := g.pin
	pn.mu.Lock()
	defer pn.mu.Unlock()
	p := pn.pins[name]
	return p != nil && !p.Pending()
}
