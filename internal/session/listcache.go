package session

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// listCache holds a daemon process's answers to list requests
// (tools/list, prompts/list, resources/list, resources/templates/list),
// page by page, for the member sessions of aggregates.
//
// Why on the process: an aggregate session reads each member's whole list
// when it first needs it. A launcher member's process is the aggregate
// session's own and was initialized with that client's capabilities, so
// what it lists may differ from client to client (server-everything lists
// some tools only to clients that can sample); its lists are cached by the
// aggregate session alone (aggregate.go). A daemon process was initialized
// once by the gateway and serves every session alike, so its answers can
// be shared by every aggregate session pinned to it, and a new aggregate
// session's first list costs no round trip to it.
//
// What is cached is the server's own result, before any policy: forward
// applies the member's tool policy and pins to every answer, from the
// cache or not, for the caller of that request; the aggregate applies its
// own after merging.
//
// An entry lives until the process sends notifications/*/list_changed for
// its kind (resources covers templates) or ends: a replacement process is
// a new proc with an empty cache. A page fetched while a list_changed
// arrived is not stored (the generation moved on).
type listCache struct {
	mu    sync.Mutex
	gen   [3]uint64                  // per family, bumped by list_changed
	pages map[string]json.RawMessage // listKey → the server's result
}

// maxCachedPages bounds one process's cache (every family together); a
// server that pages further is asked each time for the rest.
const maxCachedPages = 4096

// listFamily is the list_changed family of a list method, or -1.
func listFamily(method string) int {
	switch method {
	case "tools/list", "notifications/tools/list_changed":
		return 0
	case "prompts/list", "notifications/prompts/list_changed":
		return 1
	case "resources/list", "resources/templates/list", "notifications/resources/list_changed":
		return 2
	}
	return -1
}

// listKey is the cache key of a list request, or "" when the request is
// not one the cache answers: another method, or params with anything but a
// cursor (a _meta with a progress token, say).
func listKey(req *jsonrpc.Message) string {
	if listFamily(req.Method) < 0 {
		return ""
	}
	if len(req.Params) == 0 || string(req.Params) == "{}" {
		return req.Method
	}
	var p map[string]json.RawMessage
	if json.Unmarshal(req.Params, &p) != nil {
		return ""
	}
	var cursor string
	for k, v := range p {
		if k != "cursor" || json.Unmarshal(v, &cursor) != nil {
			return ""
		}
	}
	return req.Method + "\x00" + cursor
}

// get returns the cached result for key and, on a miss, the generation to
// hand back to put.
func (c *listCache) get(key string, method string) (json.RawMessage, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.pages[key]; ok {
		return r, 0, true
	}
	return nil, c.gen[listFamily(method)], false
}

// put stores a result fetched at generation gen, unless the family's list
// changed since.
func (c *listCache) put(key, method string, gen uint64, result json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[listFamily(method)] != gen || len(c.pages) >= maxCachedPages {
		return
	}
	if c.pages == nil {
		c.pages = make(map[string]json.RawMessage)
	}
	c.pages[key] = result
}

// invalidate forgets the family of a list_changed notification.
func (c *listCache) invalidate(notification string) {
	f := listFamily(notification)
	if f < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[f]++
	for k := range c.pages {
		if method, _, _ := strings.Cut(k, "\x00"); listFamily(method) == f {
			delete(c.pages, k)
		}
	}
}

// cachesLists reports whether o's list requests to p may be answered from
// p's cache: a member session of an aggregate on a daemon process.
func cachesLists(o owner, p *proc) bool {
	s, ok := o.(*Session)
	return ok && p.daemon && s.member.Load()
}
