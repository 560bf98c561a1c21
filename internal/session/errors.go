package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// Error is a failure the front-end reports before anything was streamed:
// a problem kind (which the front-end maps to an HTTP status) and a
// JSON-RPC error. Every error this package returns to the front-end is an
// *Error, except context.Canceled when the client went away (nobody reads
// the answer then).
type Error = problem.Error

// ErrSessionNotFound is the cause of 404s for unknown, expired or ended
// sessions.
var ErrSessionNotFound = errors.New("session not found")

func errSessionGone() *Error {
	return &Error{
		Kind: problem.NotFound, Code: jsonrpc.CodeInvalidRequest, SessionLevel: true,
		Message: "session not found: it expired, ended or was never created; send initialize to start a new session",
		Err:     ErrSessionNotFound,
	}
}

func errTooMany(what string) *Error {
	return &Error{Kind: problem.Busy, Code: jsonrpc.CodeTooManyRequests, Message: what, RetryAfter: time.Second}
}

func errUnavailable(msg string, retry time.Duration, cause error) *Error {
	return &Error{Kind: problem.Unavailable, Code: jsonrpc.CodeUnavailable, Message: msg, RetryAfter: retry, Err: cause}
}

// drainingRetry is the Retry-After of requests refused while the gateway
// shuts down: by then another instance (or this one, restarted) answers.
const drainingRetry = 5 * time.Second

// errDraining is the 503 of every request refused because the gateway is
// shutting down.
func errDraining() *Error {
	return errUnavailable("the gateway is shutting down", drainingRetry, errShutdown)
}

// DrainingError is the error of a request refused because the gateway is
// shutting down, for the front-end's own refusals.
func DrainingError() *Error { return errDraining() }

func errBadRequest(msg string) *Error {
	return &Error{Kind: problem.BadRequest, Code: jsonrpc.CodeInvalidRequest, Message: msg}
}

func errInvalidParams(msg string) *Error {
	return &Error{Kind: problem.BadRequest, Code: jsonrpc.CodeInvalidParams, Message: msg}
}

// errBadBackend is a 502 for a server that answered with something the
// gateway cannot use.
func errBadBackend(cause error, format string, args ...any) *Error {
	return &Error{Kind: problem.BadGateway, Code: jsonrpc.CodeBackendInvalid, Err: cause, Message: fmt.Sprintf(format, args...)}
}

// errStartup is the 504 of a server that did not answer initialize within
// its startup timeout.
func errStartup(srv *Server) *Error {
	startup := srv.cfg.Timeouts.Startup
	return &Error{Kind: problem.Timeout, Code: jsonrpc.CodeTimeout, Err: errStartupTimeout,
		Message: fmt.Sprintf("server %q did not answer initialize within %s (servers.%s.timeouts.startup)", srv.Name, startup, srv.Name)}
}

// backendErrorCode maps why a backend ended to the JSON-RPC code and the
// problem kind of the error that each affected request gets.
func backendErrorCode(err error) (int, problem.Kind) {
	if errors.Is(err, backend.ErrProtocol) {
		return jsonrpc.CodeBackendInvalid, problem.BadGateway
	}
	return jsonrpc.CodeBackendStopped, problem.BadGateway
}

func backendError(server string, err error) *Error {
	code, kind := backendErrorCode(err)
	return &Error{Kind: kind, Code: code, Err: err, Message: fmt.Sprintf("server %q: %v", server, err)}
}

// clientGone is what a call returns when its client went away while it
// waited: context.Canceled (the front-end answers nobody), saying during
// what.
func clientGone(during string) error {
	return fmt.Errorf("client went away %s: %w", during, context.Canceled)
}

// stopped makes a reason for the gateway stopping a process on purpose. It
// wraps backend.ErrStopped, so that such ends are logged at info and never
// count as crashes.
func stopped(reason string) error { return fmt.Errorf("%w: %s", backend.ErrStopped, reason) }
