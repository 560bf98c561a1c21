package session

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
)

// Protocol eras of a backend process (spec 2026-07-28, basic/versioning):
// a modern process answers server/discover and takes 2026-07-28 requests
// with their _meta as they are; a legacy (session-era) process needs the
// initialize handshake, and the gateway translates modern requests for it.
type era uint8

const (
	eraLegacy era = iota
	eraModern
)

func (e era) String() string {
	if e == eraModern {
		return "modern"
	}
	return "legacy"
}

// maxProbe bounds the server/discover probe of a new process. A legacy
// server may stay silent on an unknown method before initialize (spec
// 2026-07-28, basic/transports/stdio, "Backward Compatibility"); the probe
// then counts it as legacy after this long, or after half the startup
// timeout when that is shorter.
const maxProbe = 5 * time.Second

// gatewayInfo is the clientInfo the gateway declares to servers.
var gatewayInfo = json.RawMessage(`{"name":"mcpgw","version":"1"}`)

// probe sends server/discover to a new process and records its era (spec
// 2026-07-28, basic/transports/stdio, "Backward Compatibility"): a
// DiscoverResult that lists 2026-07-28 means modern; any other outcome — an
// error that is not one of the modern codes, a result without the version,
// or silence — means legacy. A server that stayed silent once is assumed
// legacy for its later processes without waiting again (the spec allows
// caching the era per server configuration). Errors are only a dead process
// or a client that went away.
func (p *proc) probe(ctx context.Context) error {
	srv := p.srv
	if srv.silentProbe.Load() {
		p.era = eraLegacy
		return nil
	}
	limit := min(maxProbe, srv.cfg.Timeouts.Startup/2)
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	params, _ := json.Marshal(map[string]any{"_meta": map[string]any{
		modern.MetaProtocolVersion:    modern.Version,
		modern.MetaClientInfo:         gatewayInfo,
		modern.MetaClientCapabilities: map[string]any{},
	}})
	w := newChanWaiter()
	id, err := p.b.Call(pctx, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "server/discover", Params: params}, w)
	if err != nil {
		return backendError(srv.Name, err)
	}
	select {
	case resp := <-w.resp:
		p.era = eraLegacy
		if resp.Error == nil && discoverLists(resp.Result, modern.Version) {
			p.era = eraModern
			p.discover = resp.Result
			p.serverInfo = modern.ServerInfo(resp.Result)
		} else if resp.Error != nil && modern.IsModernError(resp.Error) {
			srv.m.log.Warn("server speaks a modern MCP version the gateway does not; serving it as a session-era server",
				"tool", srv.Name, "runtime", srv.cfg.Runtime, "process", p.b.ID(), "error", truncateBytes(resp.Error, 300))
		}
		return nil
	case err := <-w.err:
		return backendError(srv.Name, err)
	case <-pctx.Done():
		p.b.Forget(id)
		if ctx.Err() != nil {
			return &Error{Status: 499, Code: jsonrpc.CodeTimeout, Message: "client went away during the server's startup", Err: ctx.Err()}
		}
		p.era = eraLegacy
		srv.silentProbe.Store(true)
		srv.m.log.Info("server did not answer server/discover; treating it as a session-era server from now on",
			"tool", srv.Name, "runtime", srv.cfg.Runtime, "process", p.b.ID(), "waited_ms", limit.Milliseconds())
		return nil
	}
}

// discoverLists reports whether a DiscoverResult lists version.
func discoverLists(result json.RawMessage, version string) bool {
	var dr struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if json.Unmarshal(result, &dr) != nil {
		return false
	}
	return contains(dr.SupportedVersions, version)
}

// initializeFor performs the initialize handshake with a legacy process
// started for one modern request (launcher mode), declaring that client's
// identity and capabilities, so the server sees what it would have seen had
// the client connected directly.
func (p *proc) initializeFor(ctx context.Context, meta *modern.Meta) error {
	info := meta.ClientInfo
	if len(info) == 0 {
		info = gatewayInfo
	}
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": SessionVersions[0],
		"capabilities":    modern.ToLegacyCapabilities(meta.ClientCapabilities),
		"clientInfo":      info,
	})
	return p.handshakeWith(ctx, params)
}

// Supported lists every protocol version the gateway serves, newest first:
// the modern one, then the session-era ones.
func Supported() []string { return append([]string{modern.Version}, SessionVersions...) }

// discoverResult answers server/discover for a process: the server's own
// DiscoverResult when it is modern, else one built from its initialize
// result. supportedVersions lists what a client can use through the
// gateway with this server: 2026-07-28, and the session-era versions when
// the process also completed the initialize handshake.
func (p *proc) discoverResult() (json.RawMessage, error) {
	versions := []string{modern.Version}
	if p.initResult != nil {
		versions = Supported()
	}
	if p.era == eraModern {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(p.discover, &obj); err != nil {
			return nil, err
		}
		obj["supportedVersions"], _ = json.Marshal(versions)
		return json.Marshal(obj)
	}
	if p.initResult == nil {
		return nil, fmt.Errorf("server %q has no initialize result", p.srv.Name)
	}
	return modern.DiscoverFromInitialize(p.initResult, versions)
}

// errModernOnly is what a session-era client gets from a daemon server
// whose processes speak only the modern protocol.
func errModernOnly(name string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: jsonrpc.CodeInvalidRequest, Err: errInitRefused,
		Message: fmt.Sprintf("server %q speaks only MCP %s and refused initialize; use a client that supports protocol version %s",
			name, modern.Version, modern.Version)}
}
