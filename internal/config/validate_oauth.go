package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
)

// oauth validates auth.oauth and the keys it depends on (public_url,
// state_dir).
func (v *validator) oauth(c *Config) {
	o := c.Auth.OAuth
	if o == nil {
		return
	}
	const p = "auth.oauth"
	switch {
	case c.PublicURL == "":
		v.add("public_url", "is required with auth.oauth: it is the authorization server's issuer and the base of every server's resource URL")
	case !strings.HasPrefix(c.PublicURL, "https://") && !publicURLLoopback(c.PublicURL):
		v.add("public_url", "must be https with auth.oauth (http only for a loopback address): tokens and codes travel in it")
	}
	switch {
	case c.StateDir == "":
		v.add("state_dir", "is required with auth.oauth (no HOME or XDG_STATE_HOME to derive a default from): the directory where clients, grants and signing keys persist")
	case !filepath.IsAbs(c.StateDir):
		v.add("state_dir", "must be an absolute path"+v.got("state_dir", c.StateDir))
	}
	switch l := o.Login; {
	case l.OIDC == nil && l.GitHub == nil:
		v.add(p+".login", "needs oidc: {issuer, client_id, client_secret_env} or github: {client_id, client_secret_env}")
	case l.OIDC != nil && l.GitHub != nil:
		v.add(p+".login", "set oidc or github, not both")
	case l.OIDC != nil:
		lp := p + ".login.oidc"
		if l.OIDC.Issuer == "" {
			v.add(lp+".issuer", "is required, e.g. https://accounts.google.com")
		} else if err := checkKeyURL(l.OIDC.Issuer); err != nil {
			v.add(lp+".issuer", err.Error()+v.got(lp+".issuer", l.OIDC.Issuer))
		}
		v.loginClient(lp, l.OIDC.ClientID, l.OIDC.ClientSecretEnv)
		for i, s := range l.OIDC.Scopes {
			if !validScope(s) {
				sp := fmt.Sprintf("%s.scopes[%d]", lp, i)
				v.add(sp, "must be a scope token (printable ASCII without spaces, quotes or backslashes)"+v.got(sp, s))
			}
		}
	case l.GitHub != nil:
		lp := p + ".login.github"
		v.loginClient(lp, l.GitHub.ClientID, l.GitHub.ClientSecretEnv)
		if err := checkKeyURL(l.GitHub.URL); err != nil {
			v.add(lp+".url", err.Error()+v.got(lp+".url", l.GitHub.URL))
		}
		if err := checkKeyURL(l.GitHub.APIURL); err != nil {
			v.add(lp+".api_url", err.Error()+v.got(lp+".api_url", l.GitHub.APIURL))
		}
	}
	if len(o.Users) == 0 {
		v.add(p+".users", `at least one identity or pattern is required, e.g. ["*@example.com"]: without it anyone with an account at the provider could log in`)
	}
	if len(o.Users) > maxOAuthUsers {
		v.add(p+".users", fmt.Sprintf("at most %d entries", maxOAuthUsers))
	}
	v.allow(p+".users", o.Users)
	v.durationRange(p+".access_token_ttl", o.AccessTokenTTL, minAccessTokenTTL, maxAccessTokenTTL)
	v.durationRange(p+".refresh_token_ttl", o.RefreshTokenTTL, minRefreshTokenTTL, maxRefreshTokenTTL)
	v.durationRange(p+".code_ttl", o.CodeTTL, minCodeTTL, maxCodeTTL)
	v.oneOf(p+".registration", o.Registration, RegistrationOpen, RegistrationOff)
	if r := o.RegistrationRate; r != nil {
		v.rate(p+".registration_rate", r)
		if r.Per == "identity" {
			v.add(p+".registration_rate.per", "must be ip or global: a registering client has no identity yet")
		}
	}
	v.intRange(p+".max_clients", o.MaxClients, minMaxClients, maxMaxClients)
	if len(o.RedirectHosts) == 0 {
		v.add(p+".redirect_hosts", "at least one host is required, e.g. [claude.ai, chatgpt.com, localhost]")
	}
	if len(o.RedirectHosts) > maxRedirectHosts {
		v.add(p+".redirect_hosts", fmt.Sprintf("at most %d hosts", maxRedirectHosts))
	}
	for i, h := range o.RedirectHosts {
		hp := fmt.Sprintf("%s.redirect_hosts[%d]", p, i)
		if _, err := netip.ParseAddr(h); err != nil && !validHostname(h) {
			v.add(hp, "must be a host name or an IP address without scheme or port, e.g. claude.ai"+v.got(hp, h))
		}
	}
	if len(o.Scopes) > maxScopes {
		v.add(p+".scopes", fmt.Sprintf("at most %d scopes", maxScopes))
	}
	for i, s := range o.Scopes {
		if !validScope(s) || s == "offline_access" {
			sp := fmt.Sprintf("%s.scopes[%d]", p, i)
			v.add(sp, "must be a scope token (printable ASCII without spaces, quotes or backslashes; not offline_access)"+v.got(sp, s))
		}
	}
}

func (v *validator) loginClient(path, id, secretEnv string) {
	if id == "" {
		v.add(path+".client_id", "is required: the client id the provider gave mcpgw")
	}
	if secretEnv == "" {
		v.add(path+".client_secret_env", "is required: the environment variable that holds the client secret")
	}
}

// validScope reports a scope-token (RFC 6749, section 3.3).
func validScope(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func publicURLLoopback(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "http" && isLoopbackName(u.Hostname())
}
