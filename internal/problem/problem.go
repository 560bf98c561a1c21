// Package problem is the one shape of a failure that the gateway reports
// to a client before anything was streamed: a Kind, which the HTTP front
// door alone maps to a status code, and the JSON-RPC error that the
// response body carries. The session layer and the protocol validators
// produce problems without knowing HTTP.
package problem

import (
	"errors"
	"time"
)

// Kind classifies a failure; the front door maps each kind to one HTTP
// status (see the constants).
type Kind uint8

// Kinds. The zero Kind means "no problem" where a Kind is returned alone.
const (
	_ Kind = iota
	// BadRequest: the request is malformed or not allowed here (400).
	BadRequest
	// NotFound: an unknown session or method (404).
	NotFound
	// Busy: a concurrency, process or rate limit is reached; retry later (429).
	Busy
	// Unavailable: the server cannot be started, is backing off after
	// crashes, or the gateway is draining (503).
	Unavailable
	// Timeout: the server did not answer in time (504).
	Timeout
	// BadGateway: the server stopped before answering, or answered with
	// something invalid (502).
	BadGateway
)

var kindNames = [...]string{"", "bad request", "not found", "busy", "unavailable", "timeout", "bad gateway"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Error is a failure with its kind and JSON-RPC error.
type Error struct {
	Kind Kind
	// Code is the JSON-RPC error code.
	Code int
	// Message is for the client and for the operator's log: it says what
	// went wrong and what to change, and never contains a secret.
	Message string
	// Data is the JSON-RPC error's data member; nil means none, or, when
	// RetryAfter is set, {"retryAfterSeconds": N}.
	Data any
	// RetryAfter, for Busy and Unavailable, is sent as Retry-After.
	RetryAfter time.Duration
	// SessionLevel marks errors about the session rather than the request
	// (an unknown or expired session): the front door answers them with a
	// null id, so that SDK clients treat the 404 as a lost session and
	// re-initialise instead of failing one call and keeping a dead session.
	SessionLevel bool
	// Err is the cause, for errors.Is and errors.As.
	Err error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// As returns err's *Error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
