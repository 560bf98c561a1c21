package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Access tokens are signed with ES256 (P-256) keys kept in the Store. The
// newest unretired key signs; every key verifies until the tokens it
// signed have expired (retired + access token lifetime), then it is
// deleted. Rotation (RotateKey, `mcpgw oauth rotate-key`) adds a key and
// retires the others; a gateway picks it up within KeyCacheTTL.

const signingAlg = jose.ES256

// keyring caches the store's keys.
type keyring struct {
	store     Store
	now       func() time.Time
	ttl       time.Duration
	tokenLife time.Duration

	mu      sync.Mutex
	keys    []*loadedKey // newest first
	loaded  time.Time
	signers map[string]jose.Signer
}

type loadedKey struct {
	*Key
	priv *ecdsa.PrivateKey
}

func newKeyring(store Store, now func() time.Time, ttl, tokenLife time.Duration) *keyring {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &keyring{store: store, now: now, ttl: ttl, tokenLife: tokenLife, signers: map[string]jose.Signer{}}
}

// NewKey generates a signing key.
func NewKey(now time.Time) (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding a signing key: %w", err)
	}
	return &Key{ID: randomID(), PrivatePKCS8: der, Created: now}, nil
}

// RotateKey adds a new signing key to store and retires the others.
func RotateKey(ctx context.Context, store Store, now time.Time) (*Key, error) {
	old, err := store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	k, err := NewKey(now)
	if err != nil {
		return nil, err
	}
	if err := store.AddKey(ctx, k); err != nil {
		return nil, fmt.Errorf("storing a signing key: %w", err)
	}
	for _, o := range old {
		if o.Retired.IsZero() {
			if err := store.RetireKey(ctx, o.ID, now); err != nil {
				return nil, fmt.Errorf("retiring signing key %s: %w", o.ID, err)
			}
		}
	}
	return k, nil
}

// ensure creates the first key when the store has none that signs.
func (k *keyring) ensure(ctx context.Context) error {
	keys, err := k.load(ctx, true)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if key.Retired.IsZero() {
			return nil
		}
	}
	nk, err := NewKey(k.now())
	if err != nil {
		return err
	}
	if err := k.store.AddKey(ctx, nk); err != nil {
		return fmt.Errorf("storing a signing key: %w", err)
	}
	_, err = k.load(ctx, true)
	return err
}

// load returns the cached keys, reading them again when older than ttl
// or when force is set.
func (k *keyring) load(ctx context.Context, force bool) ([]*loadedKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !force && k.keys != nil && now.Sub(k.loaded) < k.ttl {
		return k.keys, nil
	}
	stored, err := k.store.Keys(ctx)
	if err != nil {
		if k.keys != nil {
			return k.keys, nil // a store hiccup keeps the known keys
		}
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	var keys []*loadedKey
	for _, s := range stored {
		if k.expired(s, now) {
			continue
		}
		p, err := x509.ParsePKCS8PrivateKey(s.PrivatePKCS8)
		if err != nil {
			return nil, fmt.Errorf("decoding signing key %s: %w", s.ID, err)
		}
		priv, ok := p.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key %s is not an ECDSA key", s.ID)
		}
		keys = append(keys, &loadedKey{Key: s, priv: priv})
	}
	k.keys, k.loaded = keys, now
	return keys, nil
}

// expired reports a retired key whose tokens have all expired.
func (k *keyring) expired(key *Key, now time.Time) bool {
	return !key.Retired.IsZero() && now.Sub(key.Retired) > k.tokenLife+time.Minute
}

func (k *keyring) purge(ctx context.Context) error {
	stored, err := k.store.Keys(ctx)
	if err != nil {
		return err
	}
	now := k.now()
	for _, s := range stored {
		if k.expired(s, now) {
			if err := k.store.DeleteKey(ctx, s.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// sign signs claims with the newest unretired key.
func (k *keyring) sign(ctx context.Context, claims any) (string, error) {
	keys, err := k.load(ctx, false)
	if err != nil {
		return "", err
	}
	var key *loadedKey
	for _, c := range keys {
		if c.Retired.IsZero() {
			key = c
			break
		}
	}
	if key == nil && len(keys) > 0 {
		key = keys[0] // all retired by another process: the newest still verifies
	}
	if key == nil {
		// The store lost its keys (a shared store emptied): make one.
		if err := k.ensure(ctx); err != nil {
			return "", err
		}
		if keys, err = k.load(ctx, false); err != nil || len(keys) == 0 {
			return "", errors.New("no signing key")
		}
		key = keys[0]
	}
	k.mu.Lock()
	signer, ok := k.signers[key.ID]
	if !ok {
		signer, err = jose.NewSigner(jose.SigningKey{Algorithm: signingAlg, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.ID, Algorithm: string(signingAlg)}},
			(&jose.SignerOptions{}).WithType("at+jwt"))
		if err == nil {
			k.signers[key.ID] = signer
		}
	}
	k.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("preparing signing key: %w", err)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// public returns the public keys that verify current tokens.
func (k *keyring) public(ctx context.Context, force bool) ([]jose.JSONWebKey, error) {
	keys, err := k.load(ctx, force)
	if err != nil {
		return nil, err
	}
	out := make([]jose.JSONWebKey, 0, len(keys))
	for _, key := range keys {
		out = append(out, jose.JSONWebKey{Key: &key.priv.PublicKey, KeyID: key.ID, Algorithm: string(signingAlg), Use: "sig"})
	}
	return out, nil
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	keys, err := s.keys.public(r.Context(), false)
	if storeDown(err) {
		s.unavailable(w, "reading signing keys", err)
		return
	}
	if err != nil {
		s.log.Error("serving JWKS", "error", err.Error())
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "signing keys unavailable")
		return
	}
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "max-age=60")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
