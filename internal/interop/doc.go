// Package interop holds the interoperability tests of mcpgw with real MCP
// clients and servers ("Interop — real clients and servers, in
// CI"): the official Go SDK client and the TypeScript SDK client (run with
// Node) talk through a gateway to stdio servers published on npm
// (@modelcontextprotocol/server-everything and server-filesystem), over
// Streamable HTTP and over the legacy HTTP+SSE transport, in launcher and
// daemon mode.
//
// The Node side lives in the repository's interop/ directory (package.json,
// package-lock.json, client.mjs); `npm ci` there installs it. Without Node or
// those packages the tests skip, unless MCPGW_REQUIRE_NODE=1 (set by CI),
// which turns the skip into a failure.
package interop
