// Package modern implements the 2026-07-28 ("modern", stateless) era of
// MCP as the gateway needs it: the per-request protocol metadata carried in
// params._meta, validation of the Streamable HTTP request headers against
// the body, the Base64 sentinel encoding of header values, and the shaping
// of session-era ("legacy") results and capabilities for modern peers.
//
// The authority is the MCP specification, revision 2026-07-28:
// basic/index.mdx ("_meta", "Error Codes"), basic/versioning.mdx,
// basic/transports/streamable-http.mdx ("Request Metadata", "Value
// Encoding", "Server Validation") and server/discover.mdx.
//
// JSON objects are read member by member with exact (case-sensitive) key
// matching, unlike encoding/json's struct decoding, and an object with a
// duplicate member name is rejected: the gateway validates the body and a
// backend executes it, so both must agree on which member a key names.
package modern

// Version is the first protocol version of the modern era.
const Version = "2026-07-28"

// Reserved _meta keys of the modern era (basic/index.mdx, "_meta").
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaLogLevel           = "io.modelcontextprotocol/logLevel"
	MetaSubscriptionID     = "io.modelcontextprotocol/subscriptionId"
	MetaServerInfo         = "io.modelcontextprotocol/serverInfo"
)

// JSON-RPC error codes the specification defines in its reserved sub-range
// -32020..-32099 (basic/index.mdx, "Error Codes").
const (
	CodeHeaderMismatch     = -32020 // HeaderMismatch
	CodeMissingCapability  = -32021 // MissingRequiredClientCapability
	CodeUnsupportedVersion = -32022 // UnsupportedProtocolVersion
)

// IsModern reports whether a protocol version string belongs to the modern
// era, i.e. is a YYYY-MM-DD date string >= Version. The spec's versions are
// such dates, which compare correctly as strings; anything not of that form
// (including "" and draft names) is not modern.
func IsModern(v string) bool {
	return isDate(v) && v >= Version
}

func isDate(v string) bool {
	if len(v) != len("2006-01-02") {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if i == 4 || i == 7 {
			if c != '-' {
				return false
			}
		} else if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
