package modern

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// metaPrefix is the prefix of every key StripMeta removes: the keys the
// specification reserves under io.modelcontextprotocol/, which a
// session-era server does not know.
const metaPrefix = "io.modelcontextprotocol/"

// StripMeta returns params with the io.modelcontextprotocol/* keys removed
// from params._meta (every key with that prefix), removing _meta entirely
// if it becomes empty; all other members (progressToken, other vendors'
// keys, arguments) are preserved byte-for-byte as JSON values, in their
// order. params nil or without _meta is returned unchanged (same slice),
// as is params whose _meta has no such key. Used before forwarding a modern
// request to a session-era ("legacy") stdio server.
//
// It is an error if params is not a JSON object, names a member twice, or
// has a _meta that is not an object or names a member twice.
func StripMeta(params json.RawMessage) (json.RawMessage, error) {
	if params == nil {
		return nil, nil
	}
	o, err := parseObject(params)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	i := o.index("_meta")
	if i < 0 {
		return params, nil
	}
	meta, err := parseValidObject(o[i].value) // a member of the validated params
	if err != nil {
		return nil, fmt.Errorf("params._meta: %w", err)
	}
	return stripParsed(params, o, i, meta), nil
}

// StripMeta is StripMeta(params) for the params of the request m was
// validated from: it reuses what Validate parsed (the hot path parses a
// modern request's params once). Other params go to StripMeta.
func (m *Meta) StripMeta(params json.RawMessage) (json.RawMessage, error) {
	if m == nil || m.params == nil || len(params) != len(m.params) || len(params) == 0 || &params[0] != &m.params[0] {
		return StripMeta(params)
	}
	return stripParsed(params, m.paramsObj, m.paramsObj.index("_meta"), m.metaObj), nil
}

// stripParsed is StripMeta's result for params, parsed as o, whose member i
// is _meta, parsed as meta. It does not modify o or meta.
func stripParsed(params json.RawMessage, o object, i int, meta object) json.RawMessage {
	kept := meta[:0:0]
	for _, m := range meta {
		if !strings.HasPrefix(m.key, metaPrefix) {
			kept = append(kept, m)
		}
	}
	switch {
	case len(kept) == len(meta):
		return params
	case len(kept) == 0:
		o = append(o[:i:i], o[i+1:]...)
	default:
		o = slices.Clone(o)
		o[i].value = kept.encode()
	}
	return o.encode()
}

// CompleteResult shapes a session-era server's result for a modern client:
// it adds "resultType":"complete" when resultType is absent (an existing
// resultType of any value is kept), and _meta[MetaServerInfo] = serverInfo
// when serverInfo != nil and the result's _meta lacks it (a _meta of null
// is replaced by an object). Every other member is preserved byte-for-byte.
// A result that is not a JSON object, names a member twice, or has a _meta
// that is neither an object nor null is an error.
//
// With cacheable (the caller knows the method: the list methods and
// resources/read, server/utilities/caching.mdx), it also adds the caching
// hints such results must carry, where absent, with the most cautious
// values: ttlMs 0 (stale at once) and cacheScope "private".
func CompleteResult(result, serverInfo json.RawMessage, cacheable bool) (json.RawMessage, error) {
	o, err := parseObject(result)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	if o.index("resultType") < 0 {
		o = o.set("resultType", json.RawMessage(`"complete"`))
	}
	if cacheable {
		if o.index("ttlMs") < 0 {
			o = o.set("ttlMs", json.RawMessage(`0`))
		}
		if o.index("cacheScope") < 0 {
			o = o.set("cacheScope", json.RawMessage(`"private"`))
		}
	}
	if serverInfo != nil {
		var meta object
		if raw := o.get("_meta"); raw != nil && kind(raw) != 'n' {
			if meta, err = parseValidObject(raw); err != nil { // a member of the validated result
				return nil, fmt.Errorf("result._meta: %w", err)
			}
		}
		if meta.index(MetaServerInfo) < 0 {
			meta = meta.set(MetaServerInfo, serverInfo)
			o = o.set("_meta", meta.encode())
		}
	}
	return o.encode(), nil
}

// DiscoverFromInitialize builds a DiscoverResult (server/discover.mdx) from
// a session-era server's initialize result: resultType "complete",
// supportedVersions = supported ([] if nil), capabilities, instructions (if
// present and a string), _meta[MetaServerInfo] = initialize's serverInfo
// (omitted if absent), and the caching hints a DiscoverResult must carry
// (schema CacheableResult; server/utilities/caching.mdx): ttlMs 0 and
// cacheScope "private". Those are the conservative values: the result may
// change whenever the backend restarts, and the gateway cannot vouch that it
// is the same for every caller.
//
// It is an error if the initialize result is not a JSON object or names a
// member twice, or if its capabilities member is present but not an
// object. Missing (or null) capabilities are treated as {}: the server
// advertised nothing, and the session it belongs to is already established,
// so refusing discovery would help no one. Capabilities are copied as they
// are, including session-era members the modern schema lacks (tasks).
func DiscoverFromInitialize(initResult json.RawMessage, supported []string) (json.RawMessage, error) {
	in, err := parseObject(initResult)
	if err != nil {
		return nil, fmt.Errorf("initialize result: %w", err)
	}
	caps := in.get("capabilities")
	switch kind(caps) {
	case 0, 'n':
		caps = json.RawMessage(`{}`)
	case '{':
	default:
		return nil, fmt.Errorf("initialize result: capabilities is not an object")
	}
	if supported == nil {
		supported = []string{}
	}
	out := object{
		{"resultType", json.RawMessage(`"complete"`)},
		{"supportedVersions", mustMarshal(supported)},
		{"capabilities", caps},
	}
	if ins := in.get("instructions"); kind(ins) == '"' {
		out = append(out, member{"instructions", ins})
	}
	if si := in.get("serverInfo"); si != nil && kind(si) != 'n' {
		out = append(out, member{"_meta", object{{MetaServerInfo, si}}.encode()})
	}
	out = append(out,
		member{"ttlMs", json.RawMessage(`0`)},
		member{"cacheScope", json.RawMessage(`"private"`)},
	)
	return out.encode(), nil
}

// ServerInfo extracts serverInfo from an initialize result, or
// _meta[MetaServerInfo] from a DiscoverResult (or any modern result); nil
// if absent, null, or result is not a JSON object. The top-level member
// wins if both are present.
func ServerInfo(result json.RawMessage) json.RawMessage {
	o, err := parseObject(result)
	if err != nil {
		return nil
	}
	si := o.get("serverInfo")
	if si == nil || kind(si) == 'n' {
		si = nil
		if meta, err := parseObject(o.get("_meta")); err == nil {
			si = meta.get(MetaServerInfo)
		}
	}
	if kind(si) == 'n' {
		return nil
	}
	return si
}

// IsModernError reports whether a JSON-RPC error object (raw "error"
// member) carries one of the codes -32020..-32022, the recognised modern
// errors that tell a dual-era client the peer is modern (spec
// basic/transports/stdio.mdx "Backward Compatibility"). The code must be an
// integer JSON number (written without fraction or exponent) in a JSON
// object; anything else is not a modern error.
func IsModernError(errObj json.RawMessage) bool {
	o, err := parseObject(errObj)
	if err != nil {
		return false
	}
	code := o.get("code")
	if c := kind(code); c != '-' && (c < '0' || c > '9') {
		return false
	}
	n, err := strconv.Atoi(string(code))
	return err == nil && n >= CodeUnsupportedVersion && n <= CodeHeaderMismatch
}

// ToLegacyCapabilities converts modern clientCapabilities (the _meta
// object) into the session-era initialize "capabilities" object. The
// members both eras define (experimental, roots, sampling, elicitation) have
// compatible shapes and are copied byte-for-byte, as is any member this
// package does not know. "extensions" is dropped: the 2025-11-25 schema's
// ClientCapabilities has no such member, and extension negotiation does not
// exist in the session era. caps that is nil, not a JSON object, or names
// a member twice yields {} (Validate rejects such requests before this is
// reached).
func ToLegacyCapabilities(caps json.RawMessage) json.RawMessage {
	o, err := parseObject(caps)
	if err != nil {
		return json.RawMessage(`{}`)
	}
	i := o.index("extensions")
	if i < 0 {
		return caps
	}
	return append(o[:i:i], o[i+1:]...).encode()
}
