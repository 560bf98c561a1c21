package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is the issuer's signing keys, fetched from the JWKS URL and
// cached. It implements oidc.KeySet.
//
// Invariants: keys only ever holds public RSA or ECDSA keys; it is
// replaced only by a successful fetch, so a JWKS outage leaves the cached
// keys in use; fetches triggered by unknown key ids happen at most once
// per minRefresh, however many requests present unknown ids (an attacker
// cannot turn the gateway into a JWKS flooder); one fetch runs at a time.
// Keys older than maxKeyAge are refetched by the next request (retried at
// most every staleRetry while the JWKS is unreachable), so that a key the
// issuer withdrew stops being trusted.
type keySet struct {
	url        string
	algs       []jose.SignatureAlgorithm
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration

	fetchMu sync.Mutex // held while fetching

	mu          sync.Mutex // guards the fields below
	keys        []jose.JSONWebKey
	fetched     time.Time // of keys
	lastAttempt time.Time
	lastErr     error
}

const (
	defaultMinRefresh = 30 * time.Second
	maxKeyAge         = time.Hour
	staleRetry        = 5 * time.Minute
	fetchTimeout      = 10 * time.Second
	maxJWKSBytes      = 1 << 20
)

func newKeySet(url string, algs []string, client *http.Client, now func() time.Time, minRefresh time.Duration) *keySet {
	if client == nil {
		// Its own transport, so that Close can drop its connections.
		client = &http.Client{Timeout: fetchTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if minRefresh <= 0 {
		minRefresh = defaultMinRefresh
	}
	ja := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		ja[i] = jose.SignatureAlgorithm(a)
	}
	return &keySet{url: url, algs: ja, client: client, now: now, minRefresh: minRefresh}
}

var (
	errUnknownKey = errors.New("no key with this key id")
	errSignature  = errors.New("signature does not verify")
)

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil || len(jws.Signatures) != 1 {
		setReason(ctx, ReasonMalformed)
		return nil, errors.New("malformed JWS")
	}
	kid := jws.Signatures[0].Header.KeyID
	if k.stale() {
		_ = k.refresh(ctx, staleRetry) // a failure leaves the cache as it was
	}
	cands := k.candidates(kid)
	if len(cands) == 0 && kid != "" {
		_ = k.refresh(ctx, k.minRefresh)
		cands = k.candidates(kid)
	}
	if len(cands) == 0 {
		setReason(ctx, ReasonUnknownKey)
		return nil, errUnknownKey
	}
	for _, key := range cands {
		if payload, err := jws.Verify(key.Key); err == nil {
			return payload, nil
		}
	}
	setReason(ctx, ReasonSignature)
	return nil, errSignature
}

// candidates returns the cached keys with key id kid, or all keys when
// the token names none. A cache that was never filled is filled first.
func (k *keySet) candidates(kid string) []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []jose.JSONWebKey
	for _, key := range k.keys {
		if kid == "" || key.KeyID == kid {
			out = append(out, key)
		}
	}
	return out
}

// stale reports cached keys older than maxKeyAge.
func (k *keySet) stale() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.fetched.IsZero() && k.now().Sub(k.fetched) >= maxKeyAge
}

// close drops idle connections to the JWKS server.
func (k *keySet) close() { k.client.CloseIdleConnections() }

// refresh fetches the JWKS unless a fetch started less than interval ago.
func (k *keySet) refresh(ctx context.Context, interval time.Duration) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	k.mu.Lock()
	now := k.now()
	if !k.lastAttempt.IsZero() && now.Sub(k.lastAttempt) < interval {
		err := k.lastErr
		k.mu.Unlock()
		return err
	}
	k.lastAttempt = now
	k.mu.Unlock()

	keys, err := k.fetch(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastErr = err
	if err == nil {
		k.keys, k.fetched = keys, now
	}
	return err
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS: HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("reading JWKS: larger than %d bytes", maxJWKSBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		switch key.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no RSA or ECDSA signing key")
	}
	return keys, nil
}
