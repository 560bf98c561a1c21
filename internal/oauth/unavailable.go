package oauth

import (
	"errors"
	"net/http"
	"strconv"
)

// When the store does not answer (ErrUnavailable: the Redis of
// cluster.redis is down or slow), every endpoint that needs it answers 503
// with Retry-After at once, never a hang and never an error that blames
// the client: the JSON endpoints (token, registration, JWKS) with the
// OAuth error temporarily_unavailable (RFC 6749, section 4.1.2.1 names
// it), the pages a browser sees (authorize, callback, consent) with a page
// that says to retry, so that reloading it continues the same login.
// Metadata needs no store and keeps answering.

// retryAfter is the Retry-After of those answers, in seconds.
const retryAfter = 2

func storeDown(err error) bool { return errors.Is(err, ErrUnavailable) }

// unavailable answers a JSON endpoint's request that needed the store.
func (s *Server) unavailable(w http.ResponseWriter, op string, err error) {
	s.log.Warn("OAuth state store unavailable: answered 503", "operation", op, "error", err.Error())
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
		"the authorization server's state store does not answer; retry shortly")
}

// unavailablePage answers a browser's request that needed the store.
func (s *Server) unavailablePage(w http.ResponseWriter, op string, err error) {
	s.log.Warn("OAuth state store unavailable: answered 503", "operation", op, "error", err.Error())
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	s.errorPage(w, http.StatusServiceUnavailable, "The authorization server cannot reach its state store at the moment. Reload this page in a few seconds to continue.")
}

// errStoreDown is the oauthError of a token request that needed the
// store; handleToken answers it with 503.
var errStoreDown = &oauthError{"temporarily_unavailable", "the authorization server's state store does not answer; retry shortly"}

// errUnavailable logs a store failure of a token request and returns
// errStoreDown.
func errUnavailable(s *Server, op string, err error) *oauthError {
	s.log.Warn("OAuth state store unavailable: answered 503", "operation", op, "error", err.Error())
	return errStoreDown
}

// unavailableToken answers a token request that needed the store.
func (s *Server) unavailableToken(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeOAuthError(w, http.StatusServiceUnavailable, errStoreDown.Error, errStoreDown.Description)
}
