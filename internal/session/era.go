package session

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mcpgw/mcpgw/internal/clip"
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
	if srv.silentProbe.Load() || srv.legacyOnly.Load() {
		p.era = eraLegacy
		return nil
	}
	defer func() {
		if p.era == eraLegacy {
			srv.legacyOnly.Store(true)
		}
	}()
	limit := min(maxProbe, srv.cfg.Timeouts.Startup/2)
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	params, _ := json.Marshal(map[string]any{"_meta": map[string]any{
		modern.MetaProtocolVersion:    modern.Version,
		modern.MetaClientInfo:         gatewayInfo,
		modern.MetaClientCapabilities: map[string]any{},
	}})
	resp, err := p.b.Roundtrip(pctx, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "server/discover", Params: params})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return clientGone("during the server's startup")
	case pctx.Err() != nil:
		p.era = eraLegacy
		srv.silentProbe.Store(true)
		srv.m.log.Info("server did not answer server/discover; treating it as a session-era server from now on",
			"tool", srv.Name, "runtime", srv.cfg.Runtime, "process", p.b.ID(), "waited_ms", limit.Milliseconds())
		return nil
	default:
		return backendError(srv.Name, err)
	}
	p.era = eraLegacy
	var dr struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if resp.Error == nil && json.Unmarshal(resp.Result, &dr) == nil && slices.Contains(dr.SupportedVersions, modern.Version) {
		p.era = eraModern
		p.discover = resp.Result
		p.discoverVersions = dr.SupportedVersions
		p.serverInfo = modern.ServerInfo(resp.Result)
	} else if resp.Error != nil && modern.IsModernError(resp.Error) {
		srv.m.log.Warn("server speaks a modern MCP version the gateway does not; serving it as a session-era server",
			"tool", srv.Name, "runtime", srv.cfg.Runtime, "process", p.b.ID(), "error", clip.Bytes(resp.Error, 300))
	}
	return nil
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
		"protocolVersion": sessionVersions[0],
		"capabilities":    modern.ToLegacyCapabilities(meta.ClientCapabilities),
		"clientInfo":      info,
	})
	return p.handshakeWith(ctx, params)
}

// Supported lists every protocol version the gateway serves, newest first:
// the modern one, then the session-era ones.
func Supported() []string { return append([]string{modern.Version}, sessionVersions...) }

// discoverResult answers server/discover for a process. supportedVersions
// lists what a client can use through the gateway with this server: for a
// process that completed initialize, 2026-07-28 and the session-era
// versions; for a modern process in launcher mode, the server's own list as
// far as the gateway serves it (a session-era client gets a process of its
// own, which it initialises itself); for a modern pooled process, which
// refused initialize, 2026-07-28 alone. The capabilities say only what the
// gateway delivers (listen.go): resource subscriptions only in daemon mode
// with a session-era server, list changes only in daemon mode.
func (p *proc) discoverResult() (json.RawMessage, error) {
	versions := []string{modern.Version}
	switch {
	case p.initResult != nil:
		versions = Supported()
	case p.era == eraModern && !p.daemon:
		versions = versions[:0]
		for _, v := range Supported() {
			if slices.Contains(p.discoverVersions, v) {
				versions = append(versions, v)
			}
		}
	}
	var res json.RawMessage
	var err error
	if p.era == eraModern {
		var obj map[string]json.RawMessage
		if err = json.Unmarshal(p.discover, &obj); err != nil {
			return nil, err
		}
		obj["supportedVersions"], _ = json.Marshal(versions)
		res, err = json.Marshal(obj)
	} else if p.initResult == nil {
		return nil, fmt.Errorf("server %q has no initialize result", p.srv.Name)
	} else {
		res, err = modern.DiscoverFromInitialize(p.initResult, versions)
	}
	if err != nil {
		return nil, err
	}
	if res, err = deliverable(res, p.daemon, p.daemon && p.era == eraLegacy); err == nil && p.daemon {
		res = p.srv.declareListChanged(res)
	}
	return res, err
}

// deliverable removes from a DiscoverResult's capabilities what the
// gateway does not deliver to modern clients: resources.subscribe unless
// subscribe (daemon mode, session-era process), and in launcher mode every
// listChanged.
func deliverable(result json.RawMessage, daemon, subscribe bool) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(result, &obj); err != nil {
		return nil, err
	}
	var caps map[string]json.RawMessage
	if err := json.Unmarshal(obj["capabilities"], &caps); err != nil || caps == nil {
		return result, nil
	}
	for _, kind := range []string{"tools", "prompts", "resources"} {
		var c map[string]json.RawMessage
		if json.Unmarshal(caps[kind], &c) != nil || c == nil {
			continue
		}
		if kind == "resources" && !subscribe {
			delete(c, "subscribe")
		}
		if !daemon {
			delete(c, "listChanged")
		}
		caps[kind], _ = json.Marshal(c)
	}
	obj["capabilities"], _ = json.Marshal(caps)
	return json.Marshal(obj)
}

// errModernOnly is what a session-era client gets from a daemon server
// whose processes speak only the modern protocol.
func errModernOnly(name string) *Error {
	e := errBadRequest(fmt.Sprintf("server %q speaks only MCP %s and refused initialize; use a client that supports protocol version %s",
		name, modern.Version, modern.Version))
	e.Err = errInitRefused
	return e
}
