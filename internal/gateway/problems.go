package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// statusOf is the one map from a problem kind to its HTTP status (the
// errors "before the first byte").
func statusOf(k problem.Kind) int {
	switch k {
	case problem.BadRequest:
		return http.StatusBadRequest
	case problem.NotFound:
		return http.StatusNotFound
	case problem.Busy:
		return http.StatusTooManyRequests
	case problem.Unavailable:
		return http.StatusServiceUnavailable
	case problem.Timeout:
		return http.StatusGatewayTimeout
	case problem.BadGateway:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// writeProblem answers err before anything was streamed: its kind's status
// and its JSON-RPC error, with id unless the error is about the session
// (SDK clients then re-initialise). A client that went away
// (context.Canceled) reads nothing; the access log records a 504.
func writeProblem(w http.ResponseWriter, r *http.Request, id json.RawMessage, err error) {
	if errors.Is(err, context.Canceled) {
		writeError(w, r, http.StatusGatewayTimeout, id, jsonrpc.CodeTimeout, err.Error(), 0)
		return
	}
	p, ok := problem.As(err)
	if !ok {
		writeError(w, r, http.StatusInternalServerError, id, jsonrpc.CodeInternalError, err.Error(), 0)
		return
	}
	if p.SessionLevel {
		id = nil
	}
	data := p.Data
	if p.RetryAfter > 0 {
		secs := retrySeconds(p.RetryAfter)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		if data == nil {
			data = map[string]any{"retryAfterSeconds": secs}
		}
	}
	writeErrorData(w, r, statusOf(p.Kind), id, p.Code, p.Message, data)
}

// retrySeconds rounds a Retry-After up to whole seconds.
func retrySeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// errCode is the JSON-RPC code of err (a batch element's refusal).
func errCode(err error) int {
	if p, ok := problem.As(err); ok {
		return p.Code
	}
	return jsonrpc.CodeInternalError
}
