package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/mcpgw/mcpgw/internal/cluster"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/session"
)

// Replicas (cluster:, package cluster). A request for a session that
// another replica owns is authenticated here, as any request is (Host and
// Origin, credentials, the server's allow list), then forwarded to the
// owner with the identity this replica established; the owner takes the
// identity from the signed header instead of credentials and applies
// everything else again (allow list, rate limits, the session's identity),
// so that a forwarded request is refused exactly where a direct one would
// be. Rate limits count on the owner only.

// clusterPath serves the cluster's own paths; false for any other path.
func (g *Gateway) clusterPath(w http.ResponseWriter, r *http.Request, raw string) bool {
	if g.cluster == nil || raw != cluster.HelloPath {
		return false
	}
	g.cluster.ServeHello(w, r)
	return true
}

// fromPeer checks a request that says a peer forwarded it. forwarded is
// true when it did and the signature holds: the identity and client
// address are the ones the peer vouches for, and Host, Origin and
// credentials were checked there. ok is false when the request was
// refused (403): a claim of forwarding without a valid signature.
func (g *Gateway) fromPeer(w http.ResponseWriter, r *http.Request) (forwarded, ok bool) {
	if g.cluster == nil || !cluster.Forwarded(r) {
		return false, true
	}
	who, err := g.cluster.Accept(r)
	ri := info(r.Context())
	if err != nil {
		ri.errMsg = "forwarded request refused: " + err.Error()
		writeError(w, r, http.StatusForbidden, nil, jsonrpc.CodeInvalidRequest, "forwarded request refused: "+err.Error(), 0)
		return false, false
	}
	ri.identity, ri.clientIP = who.Name, who.ClientIP
	return true, true
}

// toOwner forwards r when the session (or MRTR requestState, or legacy
// HTTP+SSE stream, whose POSTs to sub "message" name it) belongs to
// another replica, and reports whether it did. An id that is not validly
// signed stays here, where it is unknown (404).
func (g *Gateway) toOwner(w http.ResponseWriter, r *http.Request, sub string) bool {
	if g.cluster == nil {
		return false
	}
	owner, mrtr := "", false
	var body []byte
	sid := r.Header.Get(hdrSessionID)
	if sub == "message" { // legacy HTTP+SSE: the stream's id is in the query
		sid = r.URL.Query().Get("sessionId")
		owner, _ = g.cluster.Owner(sid)
	} else if sub != "" {
		return false
	} else if sid != "" {
		owner, _ = g.cluster.Owner(sid)
	} else if r.Method == http.MethodPost && modern.IsModern(r.Header.Get(hdrProtocolVersion)) {
		var ok bool
		if body, ok = g.readBody(w, r); !ok {
			return true
		}
		r.Body = io.NopCloser(bytes.NewReader(body)) // for whoever serves it here
		owner, mrtr = g.stateOwner(body), true
	}
	if owner == "" || owner == g.cluster.Self() {
		return false
	}
	if body == nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// The hop sends the body with its length, read here within the
		// same limits as a request served here.
		var ok bool
		if body, ok = g.readBody(w, r); !ok {
			return true
		}
	}
	ri := info(r.Context())
	ri.sessionID = sid // the access line of the hop names the session, as the owner's does
	var done <-chan struct{}
	if r.Method == http.MethodGet {
		done = g.drainCh() // a GET stream ends at drain, as a local one does
	}
	var drop []string
	if g.conf().Auth.JWT != nil {
		drop = g.conf().Auth.JWT.Headers
	}
	r.Header.Set("X-Request-Id", ri.id)
	g.cluster.Forward(w, r, body, owner, cluster.Identity{Name: ri.identity, ClientIP: ri.clientIP}, drop, done,
		func(w http.ResponseWriter, r *http.Request, err error) {
			ri.errMsg = err.Error()
			if !errors.Is(err, cluster.ErrUnknownOwner) {
				g.log.Warn("cluster: forwarding failed", "request_id", ri.id, "peer", owner, "error", err.Error())
			}
			if mrtr {
				writeError(w, r, http.StatusBadRequest, nil, jsonrpc.CodeInvalidParams,
					"requestState is unknown or expired: the replica that held it is gone; send the request again without requestState", 0)
				return
			}
			writeError(w, r, http.StatusNotFound, nil, jsonrpc.CodeInvalidRequest,
				"session not found: the replica that held it is gone; send initialize to start a new session", 0)
		})
	return true
}

// stateOwner returns the replica that a modern retry's requestState (in
// body) names, or "".
func (g *Gateway) stateOwner(body []byte) string {
	if !bytes.Contains(body, []byte(`"requestState"`)) {
		return ""
	}
	var m struct {
		Params struct {
			RequestState string `json:"requestState"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	id, ok := session.StateID(m.Params.RequestState)
	if !ok {
		return ""
	}
	owner, _ := g.cluster.Owner(id)
	return owner
}

// legacyID is the id of a new legacy HTTP+SSE stream: in a cluster one
// that names this replica, so that its POSTs can land on any replica.
func (g *Gateway) legacyID() string {
	if g.cluster != nil {
		return g.cluster.NewID()
	}
	return newRequestID() + newRequestID()
}
