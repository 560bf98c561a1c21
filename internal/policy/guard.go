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
	log         *slog.Logger
}

// New returns the Guard of cfg, or nil when cfg restricts nothing (the
// caller then skips it: the hot path stays free of decoding).
func New(cfg Config, log *slog.Logger) *Guard {
	g := &Guard{cfg: cfg, log: log}
	g.globs = [numKinds]Globs{cfg.Tools, cfg.Prompts, cfg.Resources}
	if !g.restricts() {
		return nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	g.placeholder = "mcpgw-hidden-" + hex.EncodeToString(b[:])
	return g
}

func (g *Guard) restricts() bool {
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
	if g.allows(who, req.Method, u.kind, &it) {
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
	if g.allows(who, req.Method, kind, &it) {
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

// allows decides whether who may see and use it (of kind) through method.
func (g *Guard) allows(who Who, method string, kind Kind, it *item) bool {
	return g.globs[kind].Exposes(it.key(kind))
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
		if !g.allows(who, method, kind, &it) {
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
