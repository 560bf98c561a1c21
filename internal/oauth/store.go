package oauth

import (
	"context"
	"errors"
	"time"
)

// Store is the authorization server's persistent state. Every method is
// atomic and safe for concurrent use, also by other processes sharing the
// same state (the gateway and `mcpgw oauth` commands; later, several
// replicas behind one shared store). Secrets are stored only as digests,
// except the signing keys, which a store must keep readable by the
// gateway's user alone.
//
// Lookups return ErrNotFound for a record that does not exist or has
// expired.
type Store interface {
	// CreateClient stores a new client unless max clients exist already
	// (ErrLimit).
	CreateClient(ctx context.Context, c *Client, max int) error
	Client(ctx context.Context, id string) (*Client, error)
	Clients(ctx context.Context) ([]*Client, error)
	// DeleteClient removes a client and revokes its grants.
	DeleteClient(ctx context.Context, id string, at time.Time) error

	// SaveGrant inserts or replaces a grant.
	SaveGrant(ctx context.Context, g *Grant) error
	Grant(ctx context.Context, id string) (*Grant, error)
	// ActiveGrant returns the unrevoked grant of a client, user and
	// resource (a remembered consent), or ErrNotFound.
	ActiveGrant(ctx context.Context, clientID, subject, resource string) (*Grant, error)
	Grants(ctx context.Context) ([]*Grant, error)
	// RevokeGrant marks a grant revoked (a revoked one stays revoked,
	// with its first reason); its refresh tokens stop working at once.
	RevokeGrant(ctx context.Context, id, reason string, at time.Time) error

	// SaveCode stores an authorization code (by digest).
	SaveCode(ctx context.Context, c *Code) error
	// UseCode marks a code used and returns it. A code used before is
	// returned with ErrUsed; an unknown or expired one is ErrNotFound.
	UseCode(ctx context.Context, digest string, now time.Time) (*Code, error)

	// SaveRefresh stores a refresh token (by digest).
	SaveRefresh(ctx context.Context, r *Refresh) error
	// UseRefresh marks a refresh token used and returns it; a token used
	// before is returned with ErrUsed.
	UseRefresh(ctx context.Context, digest string, now time.Time) (*Refresh, error)

	// SaveRequest inserts or replaces a pending authorization request.
	SaveRequest(ctx context.Context, r *Request) error
	Request(ctx context.Context, id string, now time.Time) (*Request, error)
	DeleteRequest(ctx context.Context, id string) error

	// Keys returns every signing key, newest first.
	Keys(ctx context.Context) ([]*Key, error)
	AddKey(ctx context.Context, k *Key) error
	// RetireKey stops a key from signing; it still verifies until
	// tokens signed with it have expired.
	RetireKey(ctx context.Context, kid string, at time.Time) error
	DeleteKey(ctx context.Context, kid string) error

	// Purge deletes expired codes, refresh tokens and requests.
	Purge(ctx context.Context, now time.Time) error
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("not found")
	ErrUsed     = errors.New("already used")
	ErrLimit    = errors.New("limit reached")
	// ErrUnavailable wraps the failure of a store that cannot be reached
	// (a shared one over the network): the server answers 503
	// temporarily_unavailable with Retry-After, never "not found".
	ErrUnavailable = errors.New("the OAuth state store does not answer")
)

// Client is a registered OAuth client (RFC 7591), or one described by a
// Client ID Metadata Document (then it is never stored).
type Client struct {
	ID string `json:"client_id"`
	// SecretDigest is the hex SHA-256 of the client secret; "" for a
	// public client.
	SecretDigest string    `json:"secret_sha256,omitempty"`
	Name         string    `json:"client_name,omitempty"`
	RedirectURIs []string  `json:"redirect_uris"`
	AuthMethod   string    `json:"token_endpoint_auth_method"`
	GrantTypes   []string  `json:"grant_types"`
	Scope        string    `json:"scope,omitempty"`
	Created      time.Time `json:"created"`
	// Document is true for a client whose id is its metadata URL.
	Document bool `json:"-"`
}

// Grant is a user's consent that a client may use one resource (a
// server) with some scopes. It is remembered until revoked: a client
// asking again for no more is not asked again.
type Grant struct {
	ID       string    `json:"id"`
	ClientID string    `json:"client_id"`
	Subject  string    `json:"subject"` // the user's identity (e-mail)
	Resource string    `json:"resource"`
	Scopes   []string  `json:"scopes,omitempty"`
	Created  time.Time `json:"created"`
	// Revoked is when the grant was revoked, zero while it is active.
	Revoked      time.Time `json:"revoked,omitzero"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

// Active reports an unrevoked grant.
func (g *Grant) Active() bool { return g.Revoked.IsZero() }

// Code is an authorization code, stored by digest, single use.
type Code struct {
	Digest        string    `json:"-"`
	GrantID       string    `json:"grant_id"`
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	CodeChallenge string    `json:"code_challenge"`
	Resource      string    `json:"resource"`
	Subject       string    `json:"subject"`
	Scopes        []string  `json:"scopes,omitempty"`
	Expires       time.Time `json:"expires"`
}

// Refresh is a refresh token, stored by digest, rotated on every use.
type Refresh struct {
	Digest   string    `json:"-"`
	GrantID  string    `json:"grant_id"`
	ClientID string    `json:"client_id"`
	Resource string    `json:"resource"`
	Subject  string    `json:"subject"`
	Scopes   []string  `json:"scopes,omitempty"`
	Expires  time.Time `json:"expires"`
}

// Request is an authorization request between /oauth/authorize and the
// user's consent.
type Request struct {
	ID            string   `json:"id"`
	ClientID      string   `json:"client_id"`
	ClientName    string   `json:"client_name,omitempty"`
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state,omitempty"`
	CodeChallenge string   `json:"code_challenge"`
	Resource      string   `json:"resource"`
	Server        string   `json:"server"`
	Scopes        []string `json:"scopes,omitempty"`
	// BrowserDigest is the digest of the cookie that binds the request
	// to the browser that started it.
	BrowserDigest string `json:"browser_sha256"`
	// Upstream login: the PKCE verifier and nonce of the request to the
	// identity provider.
	Verifier string `json:"verifier"`
	Nonce    string `json:"nonce"`
	// After the login: who logged in, and the consent form's CSRF token.
	Subject string    `json:"subject,omitempty"`
	CSRF    string    `json:"csrf,omitempty"`
	Expires time.Time `json:"expires"`
}

// Key is a signing key of access tokens.
type Key struct {
	ID string `json:"kid"`
	// PrivatePKCS8 is the private key (PKCS #8 DER). A secret.
	PrivatePKCS8 []byte    `json:"private_pkcs8"`
	Created      time.Time `json:"created"`
	// Retired is when the key stopped signing; zero while it signs.
	Retired time.Time `json:"retired,omitzero"`
}
