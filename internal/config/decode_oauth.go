package config

import (
	"go.yaml.in/yaml/v3"
)

// oauth decodes auth.oauth, filling in the defaults of the keys it leaves
// out. The upstream client secrets are read from the environment here.
func (d *decoder) oauth(path string, n *yaml.Node, dst **OAuth) {
	if isNull(d.resolve(n)) {
		return
	}
	o := newOAuth()
	d.mapping(path, n, fields{
		"login": d.sub(fields{
			"oidc":   func(p string, n *yaml.Node) { d.oidcLogin(p, n, &o.Login.OIDC) },
			"github": func(p string, n *yaml.Node) { d.githubLogin(p, n, &o.Login.GitHub) },
		}, nil),
		"users":             d.strList(&o.Users, `; e.g. ["*@example.com", alice@example.org]`),
		"access_token_ttl":  d.duration(&o.AccessTokenTTL),
		"refresh_token_ttl": d.duration(&o.RefreshTokenTTL),
		"code_ttl":          d.duration(&o.CodeTTL),
		"registration":      d.str(&o.Registration),
		"registration_rate": func(p string, n *yaml.Node) {
			d.rate(&o.RegistrationRate)(p, n)
			if o.RegistrationRate != nil && !hasKey(d.resolve(n), "per") {
				// rate's default is per identity; a registering client has none.
				o.RegistrationRate.Per = defaultRegistrationPer
			}
		},
		"max_clients":                       d.integer(&o.MaxClients),
		"redirect_hosts":                    d.strList(&o.RedirectHosts, `; e.g. [claude.ai, chatgpt.com, localhost]`),
		"scopes":                            d.strList(&o.Scopes, `; e.g. [mcp]`),
		"client_metadata_documents":         d.boolean(&o.ClientMetadataDocuments),
		"unsafe_metadata_private_addresses": d.boolean(&o.UnsafeMetadataPrivateAddresses),
	}, nil)
	*dst = o
}

func (d *decoder) oidcLogin(path string, n *yaml.Node, dst **OIDCLogin) {
	if isNull(d.resolve(n)) {
		return
	}
	l := &OIDCLogin{Scopes: defaultOIDCScopes()}
	d.mapping(path, n, fields{
		"issuer":            d.str(&l.Issuer),
		"client_id":         d.str(&l.ClientID),
		"client_secret_env": d.str(&l.ClientSecretEnv),
		"scopes":            d.strList(&l.Scopes, `; e.g. [email, profile]`),
	}, nil)
	l.ClientSecret = d.secretEnv(path+".client_secret_env", n, l.ClientSecretEnv)
	*dst = l
}

func (d *decoder) githubLogin(path string, n *yaml.Node, dst **GitHubLogin) {
	if isNull(d.resolve(n)) {
		return
	}
	l := &GitHubLogin{URL: defaultGitHubURL, APIURL: defaultGitHubAPIURL}
	d.mapping(path, n, fields{
		"client_id":         d.str(&l.ClientID),
		"client_secret_env": d.str(&l.ClientSecretEnv),
		"url":               d.str(&l.URL),
		"api_url":           d.str(&l.APIURL),
	}, nil)
	l.ClientSecret = d.secretEnv(path+".client_secret_env", n, l.ClientSecretEnv)
	*dst = l
}

// secretEnv reads the secret in the environment variable env ("" when env
// is empty: validation says it is required). The value is never quoted.
func (d *decoder) secretEnv(path string, n *yaml.Node, env string) string {
	if env == "" {
		return ""
	}
	v, ok := d.lookupEnv(env)
	switch {
	case !envNamePattern.MatchString(env):
		d.addf(path, n, "must be an environment variable name: letters, digits and _, not starting with a digit")
	case !ok || v == "":
		d.addf(path, n, "environment variable %s is not set", env)
	default:
		return v
	}
	d.failed[path] = true
	return ""
}

// hasKey reports whether the mapping node n has key.
func hasKey(n *yaml.Node, key string) bool {
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}
