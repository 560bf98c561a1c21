// Package policy decides which of a server's tools, prompts and resources
// each caller may see and use: the server's allow/deny globs, then its
// rules. A Guard sits on the request path of both protocol eras: it
// filters the server's list results and refuses calls to what the caller
// may not use.
//
// A refused call must not reveal that the name exists, so the gateway
// does not make up an answer of its own: it forwards the call with the
// name replaced by a placeholder no server knows, and gives the client
// the server's own answer for an unknown name with the placeholder turned
// back into the name the client sent. The server never sees the hidden
// name.
package policy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// Kind is what a name belongs to.
type Kind int

// Kinds of items.
const (
	KindTool Kind = iota
	KindPrompt
	KindResource
	numKinds
)

// Config is what one server's Guard enforces.
type Config struct {
	// Server is the server's name, for rules and logs.
	Server string
	// Tools, Prompts and Resources are the server's exposure globs
	// (resources by URI, templates by URI template).
	Tools, Prompts, Resources Globs
	// Rules are the server's policy rules, in order (rules.go).
	Rules []Rule
	// PinTools is the tool pinning mode (pin.go): PinOff ("" too),
	// PinWarn or PinEnforce.
	PinTools string
}

// Who is the caller a decision is made for.
type Who struct {
	Name   string         // the identity (token name, JWT email…); "" without authentication
	Email  string         // the identity's email, when its credentials carry one
	Claims map[string]any // the JWT's claims; nil for other credentials
}

// Guard enforces one server's Config. Its methods may be called
// concurrently.
type Guard struct {
	cfg         Config
	globs       [numKinds]Globs
	placeholder string // the name no server knows (package doc)
	rules       []program
	pin         *pinner // nil: pin_tools off
	log         *slog.Logger

	mu    sync.Mutex
	tools map[string]*celTool // the definitions last listed, for the rules of calls
}

// maxTools bounds the remembered tool definitions of a server.
const maxTools = 4096

// New returns the Guard of cfg, or nil when cfg restricts nothing (the
// caller then skips it: the hot path stays free of decoding). Its error
// names the rule that does not compile; a config that passed validation
// has none.
func New(cfg Config, log *slog.Logger) (*Guard, error) {
	rules, err := compileRules(cfg.Rules)
	if err != nil {
		return nil, err
	}
	g := &Guard{cfg: cfg, log: log, rules: rules, tools: map[string]*celTool{}}
	g.globs = [numKinds]Globs{cfg.Tools, cfg.Prompts, cfg.Resources}
	if cfg.PinTools == PinWarn || cfg.PinTools == PinEnforce {
		g.pin = &pinner{mode: cfg.PinTools}
	}
	if !g.restricts() {
		return nil, nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	g.placeholder = "mcpgw-hidden-" + hex.EncodeToString(b[:])
	return g, nil
}

func (g *Guard) restricts() bool {
	if len(g.rules) > 0 || g.pin != nil {
		return true
	}
	for _, gl := range g.globs {
		if !gl.Empty() {
			return true
		}
	}
	return false
}

// lists are the list methods and where their items and keys are.
var lists = map[string]struct {
	field string // the result's array
	kind  Kind
}{
	"tools/list":               {"tools", KindTool},
	"prompts/list":             {"prompts", KindPrompt},
	"resources/list":           {"resources", KindResource},
	"resources/templates/list": {"resourceTemplates", KindResource},
}

// uses are the methods that name one item in their params.
var uses = map[string]struct {
	field string // the params' member naming the item
	kind  Kind
}{
	"tools/call":            {"name", KindTool},
	"prompts/get":           {"name", KindPrompt},
	"resources/read":        {"uri", KindResource},
	"resources/subscribe":   {"uri", KindResource},
	"resources/unsubscribe": {"uri", KindResource},
}

// item is what a decision reads of one list entry.
type item struct {
	Name        string `json:"name"`
	URI         string `json:"uri"`
	URITemplate string `json:"uriTemplate"`
	// A tool's, for rules.
	Title       string `json:"title"`
	Description string `json:"description"`
	Annotations struct {
		Title           string `json:"title"`
		ReadOnlyHint    *bool  `json:"readOnlyHint"`
		DestructiveHint *bool  `json:"destructiveHint"`
		IdempotentHint  *bool  `json:"idempotentHint"`
		OpenWorldHint   *bool  `json:"openWorldHint"`
	} `json:"annotations"`
}

// tool returns a listed tool as rules see it, absent annotations at the
// spec's defaults.
func (it *item) tool() *celTool {
	a := it.Annotations
	or := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	return &celTool{Name: it.Name, Title: it.Title, Description: it.Description, Annotations: celAnnotations{
		Title:           a.Title,
		ReadOnlyHint:    or(a.ReadOnlyHint, defaultAnnotations.ReadOnlyHint),
		DestructiveHint: or(a.DestructiveHint, defaultAnnotations.DestructiveHint),
		IdempotentHint:  or(a.IdempotentHint, defaultAnnotations.IdempotentHint),
		OpenWorldHint:   or(a.OpenWorldHint, defaultAnnotations.OpenWorldHint),
	}}
}

// key is the name globs match: a tool's or prompt's name, a resource's
// URI, a template's URI template.
func (it *item) key(kind Kind) string {
	switch {
	case kind != KindResource:
		return it.Name
	case it.URI != "":
		return it.URI
	default:
		return it.URITemplate
	}
}

// Request inspects a client request before it is forwarded. It returns
// the request to forward (req itself when it is unchanged) and a function
// that adapts the server's response before the client gets it (nil:
// none). respond is called at most once, from the backend's reader; it
// must not block, and does not.
func (g *Guard) Request(who Who, req *jsonrpc.Message) (fwd *jsonrpc.Message, respond func(*jsonrpc.Message)) {
	if g.pin != nil && (req.Method == "tools/list" || req.Method == "tools/call") {
		g.refreshPins()
	}
	if l, ok := lists[req.Method]; ok {
		return req, func(m *jsonrpc.Message) { g.filterList(who, req.Method, l.field, l.kind, m) }
	}
	if req.Method == "completion/complete" {
		return g.complete(who, req)
	}
	u, ok := uses[req.Method]
	if !ok {
		return req, nil
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(req.Params, &params) != nil {
		return req, nil // the server answers malformed params itself
	}
	var name string
	if json.Unmarshal(params[u.field], &name) != nil {
		return req, nil
	}
	it := item{Name: name}
	if u.kind == KindResource {
		it = item{URI: name}
	}
	f := &facts{who: who, server: g.cfg.Server, method: req.Method, kind: u.kind, item: &it, forCall: true}
	if u.kind == KindTool && len(g.rules) > 0 {
		if json.Unmarshal(params["arguments"], &f.args) != nil {
			f.args = nil
		}
		g.mu.Lock()
		f.tool = g.tools[name]
		g.mu.Unlock()
	}
	if g.allows(f) && (u.kind != KindTool || g.pin == nil || g.pin.mode != PinEnforce || g.callable(name)) {
		return req, nil
	}
	return g.hide(req, params, u.field, name, g.placeholderFor(u.kind, name))
}

// complete checks completion/complete, whose params.ref names a prompt
// (ref/prompt) or a resource template (ref/resource).
func (g *Guard) complete(who Who, req *jsonrpc.Message) (*jsonrpc.Message, func(*jsonrpc.Message)) {
	var params map[string]json.RawMessage
	if json.Unmarshal(req.Params, &params) != nil {
		return req, nil
	}
	var ref map[string]json.RawMessage
	if json.Unmarshal(params["ref"], &ref) != nil {
		return req, nil
	}
	var typ, name string
	_ = json.Unmarshal(ref["type"], &typ)
	kind, field, it := KindPrompt, "name", item{}
	switch typ {
	case "ref/prompt":
		_ = json.Unmarshal(ref["name"], &name)
		it.Name = name
	case "ref/resource":
		kind, field = KindResource, "uri"
		_ = json.Unmarshal(ref["uri"], &name)
		it.URITemplate = name
	default:
		return req, nil
	}
	if g.allows(&facts{who: who, server: g.cfg.Server, method: req.Method, kind: kind, item: &it, forCall: true}) {
		return req, nil
	}
	ph := g.placeholderFor(kind, name)
	ref[field], _ = json.Marshal(ph)
	params["ref"], _ = json.Marshal(ref)
	return g.hide(req, params, "", name, ph)
}

// hide returns req with params (whose field, unless "", becomes
// placeholder) and the response fix that turns placeholder back into name.
func (g *Guard) hide(req *jsonrpc.Message, params map[string]json.RawMessage, field, name, placeholder string) (*jsonrpc.Message, func(*jsonrpc.Message)) {
	if field != "" {
		params[field], _ = json.Marshal(placeholder)
	}
	out := *req
	out.Params, _ = json.Marshal(params)
	quoted, _ := json.Marshal(name)
	back := quoted[1 : len(quoted)-1] // name as it appears inside a JSON string
	return &out, func(m *jsonrpc.Message) {
		m.Result = bytes.ReplaceAll(m.Result, []byte(placeholder), back)
		m.Error = bytes.ReplaceAll(m.Error, []byte(placeholder), back)
	}
}

// placeholderFor returns the placeholder of a hidden name: a resource's
// keeps the URI's scheme, so that the server answers as for an unknown
// resource of that scheme rather than for a scheme it does not handle.
func (g *Guard) placeholderFor(kind Kind, name string) string {
	if kind != KindResource {
		return g.placeholder
	}
	if i := strings.Index(name, "://"); i > 0 {
		return name[:i+3] + g.placeholder
	}
	if i := strings.IndexByte(name, ':'); i > 0 {
		return name[:i+1] + g.placeholder
	}
	return g.placeholder
}

// allows decides a request or a listed item: the globs, then the rules.
func (g *Guard) allows(f *facts) bool {
	if !g.globs[f.kind].Exposes(f.item.key(f.kind)) {
		return false
	}
	return len(g.rules) == 0 || g.decide(f)
}

// remember keeps a listed tool's definition for the rules of its calls.
func (g *Guard) remember(t *celTool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.tools[t.Name]; !ok && len(g.tools) >= maxTools {
		clear(g.tools) // a server listing this many names gets its calls decided on defaults
	}
	g.tools[t.Name] = t
}

// filterList removes from a list result the items who may not see. A
// result it cannot read is left as the server sent it (the client then
// sees the server's error); an error response passes unchanged.
func (g *Guard) filterList(who Who, method, field string, kind Kind, m *jsonrpc.Message) {
	if len(m.Result) == 0 {
		return
	}
	var res map[string]json.RawMessage
	if json.Unmarshal(m.Result, &res) != nil {
		return
	}
	var items []json.RawMessage
	if json.Unmarshal(res[field], &items) != nil {
		return
	}
	kept := []json.RawMessage{}
	for _, raw := range items {
		// Each kept item is re-encoded from its decoded members: a
		// duplicate key then means what it meant to the decision (the
		// last one) for every client.
		var members map[string]json.RawMessage
		var it item
		if json.Unmarshal(raw, &members) != nil || json.Unmarshal(raw, &it) != nil {
			continue // not an item any client could use
		}
		if kind == KindTool && g.pin != nil && !g.observe(it.Name, raw) && g.pin.mode == PinEnforce {
			continue
		}
		f := &facts{who: who, server: g.cfg.Server, method: method, kind: kind, item: &it}
		if kind == KindTool && len(g.rules) > 0 {
			f.tool = it.tool()
			g.remember(f.tool)
		}
		if !g.allows(f) {
			continue
		}
		if b, err := json.Marshal(members); err == nil {
			kept = append(kept, b)
		}
	}
	res[field], _ = json.Marshal(kept)
	if out, err := json.Marshal(res); err == nil {
		m.Result = out
	}
}
