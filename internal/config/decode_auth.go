package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoders of auth, trusted_proxies and rate.

// auth decodes the auth: mapping. Writing the key at all leaves the local
// mode: the mode becomes what the mapping says (mode: none) or implies
// (tokens, jwt); validation reports a mapping that says neither.
func (d *decoder) auth(path string, n *yaml.Node, a *Auth) {
	if isNull(d.resolve(n)) {
		return
	}
	mode := ""
	d.mapping(path, n, fields{
		"mode":      d.str(&mode),
		"tokens":    func(p string, n *yaml.Node) { d.tokens(p, n, &a.Tokens) },
		"jwt":       func(p string, n *yaml.Node) { d.jwt(p, n, &a.JWT) },
		"advertise": d.boolean(&a.Advertise),
		"oauth":     func(p string, n *yaml.Node) { d.oauth(p, n, &a.OAuth) },
	}, nil)
	switch {
	case mode != "":
		a.Mode = mode
	case len(a.Tokens) > 0 || a.JWT != nil || a.OAuth != nil:
		a.Mode = AuthRequired
	default:
		a.Mode = "" // validation: "set tokens or jwt, or mode: none"
	}
}

// tokens decodes auth.tokens, a list of {name, sha256} or {name, value_env}.
// The token of value_env is read from the environment here and only its
// digest is kept.
func (d *decoder) tokens(path string, n *yaml.Node, dst *[]Token) {
	n = d.resolve(n)
	if isNull(n) || d.badTag(path, n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.addf(path, n, "must be a list of {name, sha256} or {name, value_env}, not %s", kindName(n))
		return
	}
	var list []Token
	for i, item := range n.Content {
		if !d.spend() {
			return
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		var name, digest, env string
		d.mapping(p, item, fields{
			"name":      d.str(&name),
			"sha256":    d.str(&digest),
			"value_env": d.str(&env),
		}, nil)
		t := Token{Name: name}
		switch {
		case digest != "" && env != "":
			d.addf(p, item, "set either sha256 or value_env, not both")
		case digest != "":
			b, err := hex.DecodeString(strings.ToLower(digest))
			if err != nil || len(b) != sha256.Size {
				d.addf(p+".sha256", item, "must be 64 hexadecimal digits, the SHA-256 of the token (mcpgw token prints it)")
				break
			}
			t.SHA256 = b
		case env != "":
			v, ok := d.lookupEnv(env)
			switch {
			case !envNamePattern.MatchString(env):
				d.addf(p+".value_env", item, "must be an environment variable name: letters, digits and _, not starting with a digit")
			case !ok:
				d.addf(p+".value_env", item, "environment variable %s is not set", env)
			case len(v) < minTokenBytes:
				// The value is a secret: say how long it must be, not what it is.
				d.addf(p+".value_env", item, "the token in %s is shorter than %d characters; generate one with mcpgw token", env, minTokenBytes)
			default:
				sum := sha256.Sum256([]byte(v))
				t.SHA256 = sum[:]
			}
		default:
			d.addf(p, item, "needs sha256 (the token's SHA-256 in hex, printed by mcpgw token) or value_env (a variable holding the token)")
		}
		if t.SHA256 == nil {
			d.failed[p] = true // the problem is reported; validation would repeat it
		}
		list = append(list, t)
	}
	*dst = list
}

// jwt decodes auth.jwt, filling in the defaults of the keys it leaves out.
func (d *decoder) jwt(path string, n *yaml.Node, dst **JWT) {
	if isNull(d.resolve(n)) {
		return
	}
	j := newJWT()
	var skew string
	d.mapping(path, n, fields{
		"issuer":     d.str(&j.Issuer),
		"audiences":  d.strList(&j.Audiences, `; e.g. ["<Access application AUD tag>"]`),
		"jwks_url":   d.str(&j.JWKSURL),
		"headers":    d.strList(&j.Headers, `; e.g. [Cf-Access-Jwt-Assertion, Authorization]`),
		"algorithms": d.strList(&j.Algorithms, `; e.g. [RS256, ES256]`),
		"clock_skew": d.str(&skew),
	}, nil)
	if skew != "" {
		v, err := parseDuration(skew)
		if err != nil {
			d.addf(path+".clock_skew", n, "%v%s", err, d.got(path+".clock_skew", skew))
		} else {
			j.ClockSkew = v
		}
	}
	if j.JWKSURL == "" && j.Issuer != "" {
		j.JWKSURL = strings.TrimSuffix(j.Issuer, "/") + defaultJWKSPath
	}
	*dst = j
}

// prefixes returns a field that decodes a list of CIDR prefixes or bare IP
// addresses (a single host), masked.
func (d *decoder) prefixes(dst *[]netip.Prefix) field {
	return func(path string, n *yaml.Node) {
		var raw []string
		d.strList(&raw, `; e.g. [127.0.0.1/32, "::1/128"]`)(path, n)
		var out []netip.Prefix
		for i, s := range raw {
			p := fmt.Sprintf("%s[%d]", path, i)
			if s == "" {
				continue // reported by strList
			}
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil || a.Zone() != "" {
					d.addf(p, n, "must be an IP address or a CIDR prefix, e.g. 127.0.0.1/32 or 10.0.0.0/8%s", d.got(p, s))
					continue
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, pfx.Masked())
		}
		*dst = out
	}
}

// rate returns a field that decodes {requests_per_second, burst, per}
// into a new Rate; burst defaults to requests_per_second rounded up.
func (d *decoder) rate(dst **Rate) field {
	return func(path string, n *yaml.Node) {
		if isNull(d.resolve(n)) {
			return
		}
		r := &Rate{Per: defaultRatePer, Burst: -1}
		d.mapping(path, n, fields{
			"requests_per_second": d.float(&r.RequestsPerSecond),
			"burst":               d.integer(&r.Burst),
			"per":                 d.str(&r.Per),
		}, nil)
		if r.Burst == -1 {
			r.Burst = max(1, int(math.Min(math.Ceil(r.RequestsPerSecond), maxRateBurst)))
		}
		*dst = r
	}
}

// float returns a field that decodes a finite decimal number.
func (d *decoder) float(dst *float64) field {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xXpP_") {
			d.addf(path, n, "must be a number, e.g. 5 or 0.5%s", d.got(path, s))
			return
		}
		*dst = f
	}
}
