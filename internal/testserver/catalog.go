package testserver

import (
	"context"
	"encoding/json"
	"maps"
	"os"
)

// The server's prompts and resources, for tests of what the gateway lets
// each caller see. They are not declared in the initialize capabilities
// (the tests that use them call the methods directly).

// Prompts are the names prompts/list lists; prompts/get answers each.
var Prompts = []string{"review", "admin_reset"}

// Resources are the URIs resources/list lists; resources/read answers
// each with its URI as text.
var Resources = []string{"test://docs/readme", "test://secret/keys"}

// ResourceTemplates are the URI templates resources/templates/list lists.
var ResourceTemplates = []string{"test://docs/{name}", "test://secret/{name}"}

// catalog answers the prompt and resource methods; it reports false for
// any other method.
func (s *server) catalog(m *message) bool {
	ctx := context.Background()
	var p struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	_ = json.Unmarshal(m.Params, &p)
	switch m.Method {
	case "prompts/list":
		var list []map[string]any
		for _, n := range Prompts {
			list = append(list, map[string]any{"name": n, "description": "The " + n + " prompt."})
		}
		s.reply(ctx, m.ID, map[string]any{"prompts": list})
	case "prompts/get":
		for _, n := range Prompts {
			if n == p.Name {
				s.reply(ctx, m.ID, map[string]any{"messages": []map[string]any{
					{"role": "user", "content": map[string]any{"type": "text", "text": "prompt " + n}},
				}})
				return true
			}
		}
		s.replyError(ctx, m.ID, codeInvalidParams, "Unknown prompt: "+p.Name)
	case "resources/list":
		var list []map[string]any
		for _, u := range Resources {
			list = append(list, map[string]any{"uri": u, "name": u})
		}
		s.reply(ctx, m.ID, map[string]any{"resources": list})
	case "resources/templates/list":
		var list []map[string]any
		for _, u := range ResourceTemplates {
			list = append(list, map[string]any{"uriTemplate": u, "name": u})
		}
		s.reply(ctx, m.ID, map[string]any{"resourceTemplates": list})
	case "resources/read":
		for _, u := range Resources {
			if u == p.URI {
				s.reply(ctx, m.ID, map[string]any{"contents": []map[string]any{{"uri": u, "text": u}}})
				return true
			}
		}
		// server/resources#error-handling: -32002 for a resource not found.
		s.send(ctx, &outMessage{ID: m.ID, Error: &rpcError{-32002, "Resource not found: " + p.URI}})
	default:
		return false
	}
	return true
}

// EnvEchoDescriptionFile names a file whose content, read when the server
// starts, becomes the echo tool's description: a server whose tool
// changes what it says it does between two starts.
const EnvEchoDescriptionFile = "MCPGW_TESTSERVER_ECHO_DESCRIPTION_FILE"

// EnvEchoDescriptionLive set to "1" makes every tools/list read
// [EnvEchoDescriptionFile] again: a server whose tools change while it
// runs (the list_changed tool tells the client).
const EnvEchoDescriptionLive = "MCPGW_TESTSERVER_ECHO_DESCRIPTION_LIVE"

// EnvEchoDescribeClient set to "1" makes the echo tool's description
// "for NAME", NAME being the clientInfo name of initialize: a server whose
// list differs from client to client.
const EnvEchoDescribeClient = "MCPGW_TESTSERVER_ECHO_DESCRIBE_CLIENT"

// tools is the tools/list result, with echo's description as
// EnvEchoDescriptionLive and EnvEchoDescribeClient make it.
func (s *server) tools() []map[string]any {
	desc, ok := "", false
	if os.Getenv(EnvEchoDescriptionLive) == "1" {
		if b, err := os.ReadFile(os.Getenv(EnvEchoDescriptionFile)); err == nil {
			desc, ok = string(b), true
		}
	}
	if os.Getenv(EnvEchoDescribeClient) == "1" {
		s.mu.Lock()
		desc, ok = "for "+s.clientName, true
		s.mu.Unlock()
	}
	if !ok {
		return toolList
	}
	out := make([]map[string]any, len(toolList))
	for i, t := range toolList {
		out[i] = t
		if t["name"] == "echo" {
			c := maps.Clone(t)
			c["description"] = desc
			out[i] = c
		}
	}
	return out
}

// describeEcho sets the echo tool's description from file ("": keep it).
func describeEcho(file string) error {
	if file == "" {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for _, t := range toolList {
		if t["name"] == "echo" {
			t["description"] = string(b)
		}
	}
	return nil
}
