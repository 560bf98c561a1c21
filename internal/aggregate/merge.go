package aggregate

import (
	"encoding/json"
	"strings"
)

// Init is what one member answered to initialize.
type Init struct {
	Member       string
	Capabilities json.RawMessage
	Instructions string
}

// Capabilities is the union of the members' server capabilities (MCP
// spec, basic/lifecycle): a capability any member has, the aggregate has.
// tools, prompts and resources always say listChanged, because the
// aggregate's lists change when a member comes or goes; resources say
// subscribe when any member does. Other keys (experimental, extensions)
// are merged key by key, the first member's value winning.
func Capabilities(inits []Init) json.RawMessage {
	out := map[string]map[string]json.RawMessage{}
	for _, in := range inits {
		var caps map[string]json.RawMessage
		if json.Unmarshal(in.Capabilities, &caps) != nil {
			continue
		}
		for k, v := range caps {
			var sub map[string]json.RawMessage
			if json.Unmarshal(v, &sub) != nil {
				continue // not an object: nothing a client can use
			}
			dst := out[k]
			if dst == nil {
				dst = map[string]json.RawMessage{}
				out[k] = dst
			}
			for sk, sv := range sub {
				if _, ok := dst[sk]; !ok || string(sv) == "true" {
					dst[sk] = sv
				}
			}
		}
	}
	for _, k := range []string{"tools", "prompts", "resources"} {
		if out[k] != nil {
			out[k]["listChanged"] = json.RawMessage("true")
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// Instructions combines the members' instructions, each under a heading
// with its member's name, in member order; members without instructions
// are left out, and none at all is "".
func Instructions(inits []Init) string {
	var b strings.Builder
	for _, in := range inits {
		text := strings.TrimSpace(in.Instructions)
		if text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString("## ")
		b.WriteString(in.Member)
		b.WriteString("\n\n")
		b.WriteString(text)
	}
	return b.String()
}
