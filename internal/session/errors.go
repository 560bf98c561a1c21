package session

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// Error is a failure the front-end reports before anything was streamed:
// an HTTP status plus a JSON-RPC error (DESIGN.md, "Errors").
type Error struct {
	Status     int           // HTTP status
	Code       int           // JSON-RPC error code
	Message    string        // for the client and the log
	RetryAfter time.Duration // 429/503: sent as Retry-After
	// SessionLevel marks errors about the session rather than the request
	// (unknown or expired session). The front-end answers them with a null
	// id: SDK clients then treat the 404 as a lost session and re-initialise
	// instead of failing one call and keeping a dead session.
	SessionLevel bool
	Err          error // cause, for errors.Is
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// ErrSessionNotFound is the cause of 404s for unknown, expired or ended
// sessions.
var ErrSessionNotFound = errors.New("session not found")

func errSessionGone() *Error {
	return &Error{
		Status: http.StatusNotFound, Code: jsonrpc.CodeInvalidRequest, SessionLevel: true,
		Message: "session not found: it expired, ended or was never created; send initialize to start a new session",
		Err:     ErrSessionNotFound,
	}
}

func errTooMany(what string) *Error {
	return &Error{
		Status: http.StatusTooManyRequests, Code: jsonrpc.CodeTooManyRequests,
		Message: what, RetryAfter: time.Second,
	}
}

func errUnavailable(msg string, retry time.Duration, cause error) *Error {
	return &Error{
		Status: http.StatusServiceUnavailable, Code: jsonrpc.CodeUnavailable,
		Message: msg, RetryAfter: retry, Err: cause,
	}
}

// backendErrorCode maps why a backend ended to the JSON-RPC code and HTTP
// status of the error that each affected request gets.
func backendErrorCode(err error) (code, status int) {
	switch {
	case errors.Is(err, backend.ErrProtocol):
		return jsonrpc.CodeBackendInvalid, http.StatusBadGateway
	default:
		return jsonrpc.CodeBackendStopped, http.StatusBadGateway
	}
}

func backendError(server string, err error) *Error {
	code, status := backendErrorCode(err)
	return &Error{
		Status: status, Code: code, Err: err,
		Message: fmt.Sprintf("server %q: %v", server, err),
	}
}

// stopped makes a reason for the gateway stopping a process on purpose. It
// wraps backend.ErrStopped, so that such ends are logged at info and never
// count as crashes.
func stopped(reason string) error { return fmt.Errorf("%w: %s", backend.ErrStopped, reason) }
