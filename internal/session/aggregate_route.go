package session

import (
	"encoding/json"
	"slices"

	"github.com/mcpgw/mcpgw/internal/jsonscan"
)

// nameSpan finds the value of params' top-level "name" member without
// decoding the params, for routing a tools/call or prompts/get of an
// aggregate: it returns the name and the value's byte span. ok is false,
// and the caller decodes the params instead, unless params is an object
// with exactly one member spelled "name" (no escapes in any key, so that
// no other member decodes to "name" too: a duplicate would be read by the
// member server as the last one, not the one routed) whose value is a
// string. params has passed the front door's JSON validation.
func nameSpan(params json.RawMessage) (name string, start, end int, ok bool) {
	i := jsonscan.SkipSpace(params, 0)
	if i >= len(params) || params[i] != '{' {
		return "", 0, 0, false
	}
	i++
	found := false
	for {
		i = jsonscan.SkipSpace(params, i)
		if i < len(params) && params[i] == '}' && !found {
			return "", 0, 0, false
		}
		if i >= len(params) || params[i] != '"' {
			return "", 0, 0, false
		}
		kEnd, plain := jsonscan.StringEnd(params, i)
		if !plain {
			return "", 0, 0, false
		}
		isName := string(params[i:kEnd]) == `"name"`
		i = jsonscan.SkipSpace(params, kEnd)
		if i >= len(params) || params[i] != ':' {
			return "", 0, 0, false
		}
		if i = jsonscan.SkipSpace(params, i+1); i >= len(params) {
			return "", 0, 0, false
		}
		vEnd := jsonscan.ValueEnd(params, i)
		if vEnd <= i || vEnd > len(params) {
			return "", 0, 0, false
		}
		if isName {
			if found || params[i] != '"' || json.Unmarshal(params[i:vEnd], &name) != nil {
				return "", 0, 0, false
			}
			found, start, end = true, i, vEnd
		}
		i = jsonscan.SkipSpace(params, vEnd)
		switch {
		case i < len(params) && params[i] == ',':
			i++
		case i < len(params) && params[i] == '}' && found:
			return name, start, end, true
		default:
			return "", 0, 0, false
		}
	}
}

// withName returns params with the value at [start, end) replaced by the
// JSON string name.
func withName(params json.RawMessage, start, end int, name string) json.RawMessage {
	return slices.Concat(params[:start], mustJSON(name), params[end:])
}
