package config

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// Validation of auth, allow and rate.

// TokenNamePattern is what a bearer token's name must match. It has no "@",
// so that a token name can never be mistaken for an e-mail identity in an
// allow list.
var TokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// headerNamePattern is an HTTP header field name (RFC 9110, token).
var headerNamePattern = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")

func (v *validator) auth(c *Config) {
	a := &c.Auth
	switch a.Mode {
	case AuthLocal:
		// No credentials are checked, so the gateway must not be
		// reachable from elsewhere.
		// Invalid values have their own problem; only valid ones are
		// judged here.
		if checkListen(c.Listen) == nil && !loopbackListen(c.Listen) {
			v.add("listen", "is not a loopback address, but no auth is configured: add auth.tokens or auth.jwt, or write auth: {mode: none} to serve everyone without authentication")
		}
		for i, h := range c.AllowedHosts {
			if _, err := normalizeHost(h); err == nil && !loopbackHostEntry(h) {
				v.add(fmt.Sprintf("allowed_hosts[%d]", i), "names a host other than this machine but no auth is configured: add auth.tokens or auth.jwt, or write auth: {mode: none} to serve everyone without authentication")
				break
			}
		}
		if len(a.Tokens) > 0 || a.JWT != nil || a.OAuth != nil {
			v.add("auth.mode", "local mode checks no credentials; drop tokens, jwt and oauth")
		}
	case AuthNone:
		if len(a.Tokens) > 0 || a.JWT != nil || a.OAuth != nil {
			v.add("auth.mode", "none turns authentication off, but tokens, jwt or oauth are set: remove mode: none to require them")
		}
	case AuthRequired:
		if len(a.Tokens) == 0 && a.JWT == nil && a.OAuth == nil {
			v.add("auth", "required needs tokens, jwt or oauth")
		}
	case "":
		v.add("auth", "set tokens or jwt, or write mode: none to turn authentication off explicitly")
	default:
		v.add("auth.mode", "must be none or required"+v.got("auth.mode", a.Mode))
	}
	if len(a.Tokens) > maxTokens {
		v.add("auth.tokens", fmt.Sprintf("at most %d tokens", maxTokens))
	}
	seen := map[string]bool{}
	for i, t := range a.Tokens {
		p := fmt.Sprintf("auth.tokens[%d]", i)
		switch {
		case t.Name == "":
			v.add(p+".name", "is required: the identity that logs, allow lists and rate limits use for this token")
		case !TokenNamePattern.MatchString(t.Name):
			v.add(p+".name", "must be 1 to 64 characters A-Z, a-z, 0-9, _, . and -, starting with a letter or digit"+v.got(p+".name", t.Name))
		case seen[t.Name]:
			v.add(p+".name", "duplicate token name"+v.got(p+".name", t.Name))
		}
		seen[t.Name] = true
		if len(t.SHA256) != sha256.Size {
			v.add(p, "needs sha256 (the token's SHA-256 in hex, printed by mcpgw token) or value_env (a variable holding the token)")
		}
	}
	if j := a.JWT; j != nil {
		v.jwt("auth.jwt", j)
	}
	v.oauth(c)
}

func (v *validator) jwt(path string, j *JWT) {
	if j.Issuer == "" {
		v.add(path+".issuer", "is required, e.g. https://TEAM.cloudflareaccess.com")
	} else if err := checkKeyURL(j.Issuer); err != nil {
		v.add(path+".issuer", err.Error()+v.got(path+".issuer", j.Issuer))
	}
	if j.JWKSURL != "" {
		if err := checkKeyURL(j.JWKSURL); err != nil {
			v.add(path+".jwks_url", err.Error()+v.got(path+".jwks_url", j.JWKSURL))
		}
	}
	if len(j.Audiences) == 0 {
		v.add(path+".audiences", "at least one audience is required (for Cloudflare Access: the application's AUD tag); without it any token of the issuer would do")
	}
	if len(j.Audiences) > maxAudiences {
		v.add(path+".audiences", fmt.Sprintf("at most %d audiences", maxAudiences))
	}
	for i, a := range j.Audiences {
		if a == "" {
			v.add(fmt.Sprintf("%s.audiences[%d]", path, i), "must not be empty")
		}
	}
	if len(j.Headers) == 0 {
		v.add(path+".headers", "at least one header is required: Cf-Access-Jwt-Assertion and/or Authorization")
	}
	for i, h := range j.Headers {
		if !headerNamePattern.MatchString(h) {
			p := fmt.Sprintf("%s.headers[%d]", path, i)
			v.add(p, "must be an HTTP header name, e.g. Cf-Access-Jwt-Assertion"+v.got(p, h))
		}
	}
	if len(j.Algorithms) == 0 {
		v.add(path+".algorithms", "at least one of RS256, ES256 is required")
	}
	for i, alg := range j.Algorithms {
		if alg != "RS256" && alg != "ES256" {
			p := fmt.Sprintf("%s.algorithms[%d]", path, i)
			v.add(p, "must be RS256 or ES256 (none and HMAC algorithms are never accepted)"+v.got(p, alg))
		}
	}
	v.durationRange(path+".clock_skew", j.ClockSkew, minClockSkew, maxClockSkew)
}

// checkKeyURL checks an issuer or JWKS URL: https, or http to a loopback
// address (tests, a local identity provider), since keys fetched over
// plain HTTP could be replaced by anyone on the path.
func checkKeyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("must be an absolute https URL, e.g. https://team.cloudflareaccess.com")
	}
	switch {
	case u.User != nil:
		return fmt.Errorf("must not contain a user name or password")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackName(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("must be https (http is accepted only for loopback addresses)")
	}
	return fmt.Errorf("must be an absolute https URL, e.g. https://team.cloudflareaccess.com")
}

func (v *validator) allow(path string, allow []string) {
	for i, a := range allow {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case a == "":
			v.add(p, "must not be empty")
		case a == "*":
			v.add(p, `"*" is not a pattern: leave allow out to let every authenticated identity in`)
		case strings.HasPrefix(a, "*@"):
			if d := a[2:]; !validHostname(d) || !strings.Contains(d, ".") {
				v.add(p, "must be *@ followed by a domain, e.g. *@example.com"+v.got(p, a))
			}
		case strings.Contains(a, "*"):
			v.add(p, "the only pattern is *@domain; list other identities exactly"+v.got(p, a))
		case strings.ContainsAny(a, " \t\r\n"):
			v.add(p, "must not contain spaces"+v.got(p, a))
		}
	}
}

func (v *validator) rate(path string, r *Rate) {
	if r == nil {
		return
	}
	if r.RequestsPerSecond < minRateRPS || r.RequestsPerSecond > maxRateRPS {
		v.add(path+".requests_per_second", fmt.Sprintf("must be between %g and %g", minRateRPS, float64(maxRateRPS)))
	}
	v.intRange(path+".burst", r.Burst, minRateBurst, maxRateBurst)
	v.oneOf(path+".per", r.Per, "global", "identity", "ip")
}

// AllowsIdentity reports whether the allow list admits identity: an empty
// list admits everyone, "*@domain" an e-mail address at domain (not its
// subdomains), other entries the identity exactly (e-mail addresses
// case-insensitively).
func AllowsIdentity(allow []string, identity string) bool {
	if len(allow) == 0 {
		return true
	}
	lower := strings.ToLower(identity)
	for _, a := range allow {
		if domain, ok := strings.CutPrefix(a, "*@"); ok {
			local, d, found := strings.Cut(lower, "@")
			if found && local != "" && d == domain {
				return true
			}
			continue
		}
		if a == identity || (strings.Contains(a, "@") && a == lower) {
			return true
		}
	}
	return false
}

// loopbackListen reports whether a listen address binds loopback only.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	return err == nil && host != "" && isLoopbackName(host)
}

// loopbackHostEntry reports whether an allowed_hosts entry names this
// machine.
func loopbackHostEntry(h string) bool {
	host := h
	if hh, _, err := net.SplitHostPort(h); err == nil {
		host = hh
	}
	return isLoopbackName(strings.Trim(host, "[]"))
}

// isLoopbackName reports localhost or a loopback IP address.
func isLoopbackName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
