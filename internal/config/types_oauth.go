package config

import "time"

// OAuth configures mcpgw as its own OAuth 2.1 authorization server
// (auth.oauth): it registers clients, delegates the user's login to an
// upstream identity provider, asks for consent and issues access tokens
// whose audience is one server's resource URL.
type OAuth struct {
	// Login is the upstream identity provider; exactly one of its
	// members is set.
	Login Login
	// Users are the identities (e-mail addresses, "*@domain" patterns)
	// that may log in; the same patterns as a server's allow list.
	Users []string
	// AccessTokenTTL is the lifetime of an access token.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of a refresh token; every use
	// rotates it and starts a new lifetime, up to the grant's.
	RefreshTokenTTL time.Duration
	// CodeTTL is the lifetime of an authorization code.
	CodeTTL time.Duration
	// Registration is RegistrationOpen (RFC 7591 dynamic client
	// registration for anyone) or RegistrationOff.
	Registration string
	// RegistrationRate limits registrations; Per is "ip" or "global".
	RegistrationRate *Rate
	// MaxClients bounds the registered clients; registration answers
	// an error once it is reached.
	MaxClients int
	// RedirectHosts are the hosts a client's redirect URI may name
	// (lower-case host names or IP addresses, no port).
	RedirectHosts []string
	// Scopes are the OAuth scopes the server issues and that every
	// access token it issued must carry; empty: none.
	Scopes []string
	// ClientMetadataDocuments accepts https client_id URLs (OAuth
	// Client ID Metadata Documents).
	ClientMetadataDocuments bool
	// UnsafeMetadataPrivateAddresses lets client metadata documents be
	// fetched from loopback, private and link-local addresses. For tests
	// only: in production it opens a server-side request forgery hole.
	UnsafeMetadataPrivateAddresses bool
}

// Registration modes (OAuth.Registration).
const (
	RegistrationOpen = "open"
	RegistrationOff  = "off"
)

// Login is the upstream identity provider of auth.oauth: exactly one of
// OIDC and GitHub is set.
type Login struct {
	OIDC   *OIDCLogin
	GitHub *GitHubLogin
}

// OIDCLogin logs users in with an OpenID Connect provider.
type OIDCLogin struct {
	Issuer   string // exact issuer; its discovery document is fetched at start
	ClientID string
	// ClientSecret is the value of client_secret_env, read at load time.
	// A secret: never log it.
	ClientSecret    string
	ClientSecretEnv string
	// Scopes are requested besides openid (default email, profile).
	Scopes []string
}

// GitHubLogin logs users in with GitHub's OAuth apps (not OpenID
// Connect): the identity is the user's verified primary e-mail.
type GitHubLogin struct {
	ClientID string
	// ClientSecret is the value of client_secret_env, read at load time.
	// A secret: never log it.
	ClientSecret    string
	ClientSecretEnv string
	// URL is GitHub's web URL (https://github.com, or a GitHub
	// Enterprise Server); APIURL its REST API.
	URL    string
	APIURL string
}
