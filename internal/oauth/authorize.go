package oauth

import (
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgw/mcpgw/internal/clip"

	"github.com/mcpgw/mcpgw/internal/config"
)

// authorizeParams are the parameters of an authorization request (OAuth
// 2.1, section 4.1.1; RFC 8707, section 2).
type authorizeParams struct {
	ResponseType, ClientID, RedirectURI, State, Scope string
	CodeChallenge, CodeChallengeMethod, Resource      string
}

// maxParamBytes bounds each authorization request parameter.
const maxParamBytes = 2048

// parseAuthorize reads the query of an authorization request. A
// parameter given twice is an error (OAuth 2.1, section 3.1).
func parseAuthorize(q url.Values) (authorizeParams, error) {
	var p authorizeParams
	for k, v := range q {
		if len(v) > 1 {
			return p, errors.New("parameter " + clip.String(k, 40) + " is repeated")
		}
		if len(v[0]) > maxParamBytes {
			return p, errors.New("parameter " + clip.String(k, 40) + " is too long")
		}
	}
	p.ResponseType = q.Get("response_type")
	p.ClientID = q.Get("client_id")
	p.RedirectURI = q.Get("redirect_uri")
	p.State = q.Get("state")
	p.Scope = q.Get("scope")
	p.CodeChallenge = q.Get("code_challenge")
	p.CodeChallengeMethod = q.Get("code_challenge_method")
	p.Resource = q.Get("resource")
	return p, nil
}

// validChallenge reports a PKCE S256 code challenge: the base64url
// SHA-256 of a verifier, 43 characters (RFC 7636, section 4.2).
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// handleAuthorize starts an authorization: it checks the client and its
// redirect URI (errors shown to the user, never redirected: OAuth 2.1,
// section 4.1.2.1), then the rest of the request (errors redirected to the
// client), and sends the browser to the identity provider.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.errorPage(w, http.StatusMethodNotAllowed, "The authorization endpoint takes GET requests.")
		return
	}
	p, err := parseAuthorize(r.URL.Query())
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "Invalid authorization request: "+err.Error()+".")
		return
	}
	c, err := s.client(r.Context(), p.ClientID)
	if storeDown(err) {
		s.unavailablePage(w, "reading a client", err)
		return
	}
	if err != nil {
		s.log.Warn("authorization refused: unknown client", "client_id", clip.String(p.ClientID, 200), "error", err.Error())
		s.errorPage(w, http.StatusBadRequest, "Unknown client. The application must register with this server again.")
		return
	}
	if p.RedirectURI == "" || !slices.ContainsFunc(c.RedirectURIs, func(u string) bool { return redirectMatches(u, p.RedirectURI) }) {
		s.log.Warn("authorization refused: redirect URI not registered", "client_id", c.ID, "redirect_uri", clip.String(p.RedirectURI, 200))
		s.errorPage(w, http.StatusBadRequest, "The redirect URI is not one the client registered.")
		return
	}
	if err := s.checkRedirectURI(p.RedirectURI); err != nil {
		// Registered before redirect_hosts changed.
		s.errorPage(w, http.StatusBadRequest, "The redirect URI is not allowed: "+err.Error()+".")
		return
	}
	fail := func(code, desc string) {
		s.log.Warn("authorization refused", "client_id", c.ID, "error", code, "detail", desc)
		s.redirectError(w, r, p.RedirectURI, p.State, code, desc)
	}
	switch {
	case p.ResponseType != "code":
		fail("unsupported_response_type", "response_type must be code")
		return
	case p.CodeChallenge == "":
		fail("invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256")
		return
	case p.CodeChallengeMethod != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case !validChallenge(p.CodeChallenge):
		fail("invalid_request", "code_challenge must be 43 base64url characters")
		return
	case p.Resource == "":
		fail("invalid_target", "resource is required: the MCP server's URL (RFC 8707)")
		return
	}
	srv, ok := s.serverOf(p.Resource)
	if !ok {
		fail("invalid_target", "resource is not a server of this gateway")
		return
	}
	scopes, ok := s.requestedScopes(p.Scope)
	if !ok {
		fail("invalid_scope", "unknown scope requested")
		return
	}
	bind := randomToken()
	req := &Request{
		ID: randomID(), ClientID: c.ID, ClientName: c.Name, RedirectURI: p.RedirectURI, State: p.State,
		CodeChallenge: p.CodeChallenge, Resource: s.Resource(srv.Name), Server: srv.Name, Scopes: scopes,
		BrowserDigest: digest(bind), Verifier: randomToken(), Nonce: randomToken(),
		Expires: s.now().Add(requestTTL),
	}
	loginURL, err := s.login.authCodeURL(r.Context(), req.ID, req.Nonce, req.Verifier)
	if err != nil {
		s.log.Error("starting the upstream login", "error", err.Error())
		fail("temporarily_unavailable", "the identity provider is unreachable")
		return
	}
	if err := s.store.SaveRequest(r.Context(), req); storeDown(err) {
		s.unavailablePage(w, "storing an authorization request", err)
		return
	} else if err != nil {
		s.log.Error("storing an authorization request", "error", err.Error())
		fail("server_error", "could not store the request")
		return
	}
	http.SetCookie(w, s.cookie(req.ID, bind, int(requestTTL.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, loginURL, http.StatusFound)
}

// requestedScopes returns the scopes of a scope parameter, all configured
// scopes when it is empty; ok is false for a scope not configured.
// offline_access is accepted and dropped: refresh tokens are always
// issued.
func (s *Server) requestedScopes(param string) ([]string, bool) {
	fields := strings.Fields(param)
	if len(fields) == 0 {
		return slices.Clone(s.cfg.Scopes), true
	}
	var out []string
	for _, f := range fields {
		switch {
		case f == "offline_access":
		case !slices.Contains(s.cfg.Scopes, f):
			return nil, false
		case !slices.Contains(out, f):
			out = append(out, f)
		}
	}
	return out, true
}

// cookieName binds one authorization request to the browser; one cookie
// per request, so that parallel authorizations do not clash.
func cookieName(reqID string) string { return "mcpgw_oauth_" + reqID }

func (s *Server) cookie(reqID, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: cookieName(reqID), Value: value, Path: PathPrefix, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	}
}

// pending returns the request id names if the browser holds its cookie;
// err is set (and ok false) when the store does not answer.
func (s *Server) pending(r *http.Request, id string) (req *Request, ok bool, err error) {
	if id == "" || len(id) > 64 {
		return nil, false, nil
	}
	req, err = s.store.Request(r.Context(), id, s.now())
	if storeDown(err) {
		return nil, false, err
	}
	if err != nil {
		return nil, false, nil
	}
	ck, err := r.Cookie(cookieName(id))
	if err != nil || subtle.ConstantTimeCompare([]byte(digest(ck.Value)), []byte(req.BrowserDigest)) != 1 {
		return nil, false, nil
	}
	return req, true, nil
}

// handleCallback is where the identity provider sends the browser back.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.errorPage(w, http.StatusMethodNotAllowed, "The login callback takes GET requests.")
		return
	}
	q := r.URL.Query()
	req, ok, err := s.pending(r, q.Get("state"))
	if err != nil {
		s.unavailablePage(w, "reading an authorization request", err)
		return
	}
	if !ok {
		s.errorPage(w, http.StatusBadRequest, "This login is unknown, has expired, or was started in another browser. Start again from the application.")
		return
	}
	finish := func(code, desc string) {
		_ = s.store.DeleteRequest(r.Context(), req.ID)
		http.SetCookie(w, s.cookie(req.ID, "", -1))
		s.redirectError(w, r, req.RedirectURI, req.State, code, desc)
	}
	if e := q.Get("error"); e != "" {
		s.log.Warn("upstream login failed", "client_id", req.ClientID, "error", clip.String(e, 100))
		finish("access_denied", "the login at the identity provider failed")
		return
	}
	email, display, err := s.login.identity(r.Context(), q.Get("code"), req.Nonce, req.Verifier)
	if err != nil {
		s.log.Warn("upstream login failed", "client_id", req.ClientID, "error", err.Error())
		finish("access_denied", "the login at the identity provider failed")
		return
	}
	if !config.AllowsIdentity(s.cfg.Users, email) {
		s.log.Warn("login refused: user not in auth.oauth.users", "user", clip.String(email, 200), "client_id", req.ClientID)
		finish("access_denied", "this user may not use the gateway")
		return
	}
	if srv := s.servers[req.Server]; srv == nil || !config.AllowsIdentity(srv.Allow, email) {
		s.log.Warn("login refused: user not in the server's allow list", "user", clip.String(email, 200), "server", req.Server)
		finish("access_denied", "this user may not use server "+req.Server)
		return
	}
	s.log.Info("user logged in", "user", clip.String(email, 200), "name", clip.String(display, 100), "client_id", req.ClientID, "server", req.Server)
	g, err := s.store.ActiveGrant(r.Context(), req.ClientID, email, req.Resource)
	if storeDown(err) {
		s.unavailablePage(w, "reading a grant", err)
		return
	}
	if err == nil && subset(req.Scopes, g.Scopes) {
		// Consent given before and not revoked: not asked again.
		req.Subject = email
		s.approve(w, r, req, g)
		return
	}
	req.Subject, req.CSRF = email, randomToken()
	if err := s.store.SaveRequest(r.Context(), req); storeDown(err) {
		s.unavailablePage(w, "storing an authorization request", err)
		return
	} else if err != nil {
		s.log.Error("storing an authorization request", "error", err.Error())
		finish("server_error", "could not store the request")
		return
	}
	s.consentPage(w, req)
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// handleConsent receives the consent form.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.errorPage(w, http.StatusMethodNotAllowed, "The consent form is submitted with POST.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "The consent form could not be read.")
		return
	}
	req, ok, err := s.pending(r, r.PostForm.Get("request"))
	if err != nil {
		s.unavailablePage(w, "reading an authorization request", err)
		return
	}
	if !ok || req.Subject == "" || req.CSRF == "" ||
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(req.CSRF)) != 1 {
		s.errorPage(w, http.StatusForbidden, "This consent form is unknown, has expired, or was not sent by this browser. Start again from the application.")
		return
	}
	if r.PostForm.Get("decision") != "approve" {
		_ = s.store.DeleteRequest(r.Context(), req.ID)
		http.SetCookie(w, s.cookie(req.ID, "", -1))
		s.log.Info("consent denied", "user", req.Subject, "client_id", req.ClientID, "server", req.Server)
		s.redirectError(w, r, req.RedirectURI, req.State, "access_denied", "the user denied access")
		return
	}
	g, err := s.store.ActiveGrant(r.Context(), req.ClientID, req.Subject, req.Resource)
	if storeDown(err) {
		s.unavailablePage(w, "reading a grant", err)
		return
	}
	if err != nil {
		g = &Grant{ID: randomID(), ClientID: req.ClientID, Subject: req.Subject, Resource: req.Resource, Created: s.now()}
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(g.Scopes, sc) {
			g.Scopes = append(g.Scopes, sc)
		}
	}
	if err := s.store.SaveGrant(r.Context(), g); storeDown(err) {
		s.unavailablePage(w, "storing a grant", err)
		return
	} else if err != nil {
		s.log.Error("storing a grant", "error", err.Error())
		s.redirectError(w, r, req.RedirectURI, req.State, "server_error", "could not store the grant")
		return
	}
	s.log.Info("consent given", "user", req.Subject, "client_id", req.ClientID, "server", req.Server, "grant", g.ID)
	s.approve(w, r, req, g)
}

// approve issues the authorization code and sends the browser back to the
// client with code, state and iss (RFC 9207).
func (s *Server) approve(w http.ResponseWriter, r *http.Request, req *Request, g *Grant) {
	code := randomToken()
	err := s.store.SaveCode(r.Context(), &Code{
		Digest: digest(code), GrantID: g.ID, ClientID: req.ClientID, RedirectURI: req.RedirectURI,
		CodeChallenge: req.CodeChallenge, Resource: req.Resource, Subject: req.Subject, Scopes: req.Scopes,
		Expires: s.now().Add(s.cfg.CodeTTL),
	})
	if storeDown(err) {
		// The request stays: the browser may send the form again.
		s.unavailablePage(w, "storing an authorization code", err)
		return
	}
	_ = s.store.DeleteRequest(r.Context(), req.ID)
	http.SetCookie(w, s.cookie(req.ID, "", -1))
	if err != nil {
		s.log.Error("storing an authorization code", "error", err.Error())
		s.redirectError(w, r, req.RedirectURI, req.State, "server_error", "could not store the code")
		return
	}
	s.redirectBack(w, r, req.RedirectURI, url.Values{"code": {code}, "state": {req.State}})
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirect, state, code, desc string) {
	s.redirectBack(w, r, redirect, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
}

func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, redirect string, v url.Values) {
	if v.Get("state") == "" {
		v.Del("state")
	}
	v.Set("iss", s.issuer)
	u, _ := url.Parse(redirect) // checked when registered
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var pages = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Allow access to {{.Server}}?</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
dt{font-weight:600}dd{margin:0 0 .75rem 0;word-break:break-all}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}</style>
</head><body>
<h1>Allow access?</h1>
<p><strong id="client">{{.Client}}</strong> asks to use the MCP server <strong id="server">{{.Server}}</strong> as <strong id="user">{{.User}}</strong>.</p>
<dl>
<dt>Client</dt><dd>{{.Client}} <small>({{.ClientID}})</small></dd>
<dt>Returns to</dt><dd id="redirect-host">{{.RedirectHost}}</dd>
<dt>Server</dt><dd>{{.Server}} <small>({{.Resource}})</small></dd>
{{if .Scopes}}<dt>Scopes</dt><dd>{{.Scopes}}</dd>{{end}}
</dl>
<p>The client's name is its own claim; where it returns to is what identifies it. Only approve if you started this from that application just now. Access can be revoked later (mcpgw oauth revoke).</p>
<form method="post" action="consent">
<input type="hidden" name="request" value="{{.Request}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>
{{define "error"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Authorization failed</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">
<h1>Authorization failed</h1><p id="error">{{.}}</p></body></html>{{end}}`))

type consentData struct {
	Client, ClientID, RedirectHost, Server, Resource, User, Scopes, Request, CSRF string
}

func (s *Server) consentPage(w http.ResponseWriter, req *Request) {
	u, _ := url.Parse(req.RedirectURI)
	name := req.ClientName
	if name == "" {
		name = "An unnamed application"
	}
	d := consentData{
		Client: name, ClientID: req.ClientID, RedirectHost: u.Host, Server: req.Server, Resource: req.Resource,
		User: req.Subject, Scopes: strings.Join(req.Scopes, " "), Request: req.ID, CSRF: req.CSRF,
	}
	h := w.Header()
	// The form posts to us and we redirect to the client: form-action
	// must allow both (browsers apply it to the redirect too).
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+u.Scheme+"://"+u.Host+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.Execute(w, d)
}

func (s *Server) errorPage(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "error", msg)
}
