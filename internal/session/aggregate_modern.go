package session

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
)

// errAggregateSessionOnly refuses a 2026-07-28 request to an aggregate the
// way a session-era server refuses server/discover, so that a dual-era
// client falls back to initialize.
func errAggregateSessionOnly(srv *Server) error {
	return errBadRequest(fmt.Sprintf("aggregate %q serves session-based MCP: send initialize (protocol versions %v)", srv.Name, sessionVersions[:3]))
}

func (srv *Server) discoverAggregate(ctx context.Context, caller Caller, meta *modern.Meta) (json.RawMessage, error) {
	return nil, errAggregateSessionOnly(srv)
}

func (srv *Server) statelessAggregate(ctx context.Context, caller Caller, req *jsonrpc.Message, meta *modern.Meta, sink *Sink) (*Call, error) {
	return nil, errAggregateSessionOnly(srv)
}
