// Package redisstore keeps the OAuth authorization server's state in
// Redis (cluster.redis), so that every replica of a cluster serves the
// same clients, grants, codes, refresh tokens, pending authorizations and
// signing keys: a login started on one replica finishes on another, a
// code redeemed on one is spent on all, a token signed by one verifies on
// all.
//
// Layout, under the prefix "mcpgw:oauth:" (records are the oauth types as
// JSON, as the SQLite store keeps them):
//
//	client:ID             the client                     no TTL
//	clients               set of client ids              (the max_clients count)
//	grant:ID              the grant                      no TTL (kept until deleted, as in SQLite)
//	grants                set of grant ids
//	client-grants:ID      set of a client's grant ids
//	active:H              set of grant ids of one client, user and resource (H hashes the three)
//	code:DIGEST           hash {data, used}              TTL: the code's expiry
//	refresh:DIGEST        hash {data, used}              TTL: the token's expiry
//	grant-refresh:ID      set of a grant's refresh token digests, TTL: its longest token's
//	request:ID            the pending authorization      TTL: its expiry
//	keys                  hash kid → sealed signing key  no TTL (retired keys are deleted by the server)
//
// Using a code or a refresh token is one Lua script (HINCRBY of its use
// count), which Redis runs atomically: of two replicas redeeming one code
// at once exactly one gets it, the other sees ErrUsed, as the reuse
// detection of OAuth 2.1 (sections 4.1.3 and 4.3.1) needs. Updates that
// read a record first (revocation, key retirement) are WATCH/MULTI
// transactions, retried when another writer got in between.
//
// Signing keys are sealed with AES-256-GCM under a key derived from the
// cluster key (HKDF-SHA256), their key id as additional data: Redis never
// holds a private key in clear, and a replica with another cluster key
// cannot read them (its error says so).
//
// Every call is bounded by cluster.redis.timeout; a Redis that does not
// answer makes it fail with an error wrapping oauth.ErrUnavailable, never
// wait. Errors never hold the URL's password.
package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

const prefix = "mcpgw:oauth:"

// Store is an oauth.Store in Redis. Safe for concurrent use, also by
// several processes.
type Store struct {
	conn *redisconn.Conn
	aead cipher.AEAD
}

var _ oauth.Store = (*Store)(nil)

// sealInfo names what the derived key is for, so that the cluster key
// yields other keys for other uses.
const sealInfo = "mcpgw oauth signing keys v1"

// New returns a Store on conn, sealing signing keys with a key derived
// from clusterKey (at least 32 bytes). It does no I/O.
func New(conn *redisconn.Conn, clusterKey string) (*Store, error) {
	if len(clusterKey) < 32 {
		return nil, errors.New("the OAuth state in Redis needs the cluster key (cluster.key_env) of at least 32 bytes")
	}
	k, err := hkdf.Key(sha256.New, []byte(clusterKey), nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the signing key seal: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Store{conn: conn, aead: aead}, nil
}

// Close closes the connections. It may be called more than once.
func (s *Store) Close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return err
	}
	return nil
}

// fail wraps a Redis error so that it is oauth.ErrUnavailable, naming op.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe oauthErr
	if errors.As(err, &oe) {
		return oe.err
	}
	return fmt.Errorf("%w: %w", oauth.ErrUnavailable, s.conn.Err(op, err))
}

// oauthErr carries an oauth error (ErrNotFound…) through a transaction
// function unchanged.
type oauthErr struct{ err error }

func (e oauthErr) Error() string { return e.err.Error() }

func key(parts ...string) string { return prefix + strings.Join(parts, ":") }

func activeKey(clientID, subject, resource string) string {
	sum := sha256.Sum256([]byte(clientID + "\x00" + subject + "\x00" + resource))
	return key("active", hex.EncodeToString(sum[:16]))
}

// ttl is how long a record that expires at t is kept, at least 1ms (a
// record already expired is written and goes at once: a lookup reports
// it not found, as in SQLite).
func ttl(t time.Time) time.Duration {
	return max(time.Until(t), time.Millisecond)
}

func decode[T any](data []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("decoding a stored OAuth record: %w", err)
	}
	return v, nil
}

// createClient adds a client unless KEYS[2] holds ARGV[3] members already
// (returns -1) or the id exists (returns 0).
var createClient = redis.NewScript(`
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return -1 end
if redis.call('SET', KEYS[1], ARGV[2], 'NX') == false then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`)

// CreateClient implements oauth.Store.
func (s *Store) CreateClient(ctx context.Context, c *oauth.Client, max int) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	n, err := createClient.Run(ctx, s.conn, []string{key("client", c.ID), key("clients")}, c.ID, data, max).Int()
	switch {
	case err != nil:
		return s.fail("storing a client", err)
	case n < 0:
		return oauth.ErrLimit
	case n == 0:
		return fmt.Errorf("client id %s exists already", c.ID)
	}
	return nil
}

// Client implements oauth.Store.
func (s *Store) Client(ctx context.Context, id string) (*oauth.Client, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	data, err := s.conn.Get(ctx, key("client", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, oauth.ErrNotFound
	}
	if err != nil {
		return nil, s.fail("reading a client", err)
	}
	return decode[oauth.Client](data)
}

// members returns the records (key(kind, id) for each id of set), those
// that exist.
func members[T any](ctx context.Context, s *Store, op, set, kind string) ([]*T, error) {
	ids, err := s.conn.SMembers(ctx, set).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	return records[T](ctx, s, op, kind, ids)
}

func records[T any](ctx context.Context, s *Store, op, kind string, ids []string) ([]*T, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = key(kind, id)
	}
	vals, err := s.conn.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	var out []*T
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // deleted since the set was read
		}
		r, err := decode[T]([]byte(str))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Clients implements oauth.Store.
func (s *Store) Clients(ctx context.Context) ([]*oauth.Client, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	cs, err := members[oauth.Client](ctx, s, "listing clients", key("clients"), "client")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cs, func(a, b *oauth.Client) int {
		return cmpTimeID(a.Created, b.Created, a.ID, b.ID)
	})
	return cs, nil
}

func cmpTimeID(a, b time.Time, ida, idb string) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	return strings.Compare(ida, idb)
}

// DeleteClient implements oauth.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) error {
	tctx, cancel := s.conn.Context(ctx)
	n, err := s.conn.Del(tctx, key("client", id)).Result()
	if err == nil {
		err = s.conn.SRem(tctx, key("clients"), id).Err()
	}
	var grants []*oauth.Grant
	if err == nil {
		grants, err = members[oauth.Grant](tctx, s, "deleting a client", key("client-grants", id), "grant")
	}
	cancel()
	if err != nil {
		return s.fail("deleting a client", err)
	}
	revoked := 0
	for _, g := range grants {
		if !g.Active() || g.ClientID != id {
			continue
		}
		if err := s.RevokeGrant(ctx, g.ID, "client deleted", at); err != nil {
			return err
		}
		revoked++
	}
	if n == 0 && revoked == 0 {
		return oauth.ErrNotFound
	}
	return nil
}

// saveGrant writes a grant (ARGV[2]) and its index entries; ARGV[3] is 1
// for an active grant, which KEYS[4] (its active set) then holds.
var saveGrant = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[4], ARGV[1])
else
  redis.call('SREM', KEYS[4], ARGV[1])
end
return 1
`)

// SaveGrant implements oauth.Store.
func (s *Store) SaveGrant(ctx context.Context, g *oauth.Grant) error {
	data, err := json.Marshal(g)
	if err != nil {
		return err
	}
	active := "0"
	if g.Active() {
		active = "1"
	}
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	keys := []string{key("grant", g.ID), key("grants"), key("client-grants", g.ClientID), activeKey(g.ClientID, g.Subject, g.Resource)}
	return s.fail("storing a grant", saveGrant.Run(ctx, s.conn, keys, g.ID, data, active).Err())
}

// Grant implements oauth.Store.
func (s *Store) Grant(ctx context.Context, id string) (*oauth.Grant, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	data, err := s.conn.Get(ctx, key("grant", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, oauth.ErrNotFound
	}
	if err != nil {
		return nil, s.fail("reading a grant", err)
	}
	return decode[oauth.Grant](data)
}

// ActiveGrant implements oauth.Store.
func (s *Store) ActiveGrant(ctx context.Context, clientID, subject, resource string) (*oauth.Grant, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	gs, err := members[oauth.Grant](ctx, s, "reading a grant", activeKey(clientID, subject, resource), "grant")
	if err != nil {
		return nil, err
	}
	var best *oauth.Grant
	for _, g := range gs {
		// The set is an index: the record decides.
		if !g.Active() || g.ClientID != clientID || g.Subject != subject || g.Resource != resource {
			continue
		}
		if best == nil || g.Created.After(best.Created) {
			best = g
		}
	}
	if best == nil {
		return nil, oauth.ErrNotFound
	}
	return best, nil
}

// Grants implements oauth.Store.
func (s *Store) Grants(ctx context.Context) ([]*oauth.Grant, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	gs, err := members[oauth.Grant](ctx, s, "listing grants", key("grants"), "grant")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(gs, func(a, b *oauth.Grant) int { return cmpTimeID(a.Created, b.Created, a.ID, b.ID) })
	return gs, nil
}

// maxTxRetries bounds the retries of a transaction that other writers
// keep interrupting.
const maxTxRetries = 20

// watch runs f in a WATCH transaction on keys, again while another writer
// changes them first, all within the command timeout.
func (s *Store) watch(ctx context.Context, op string, f func(context.Context, *redis.Tx) error, keys ...string) error {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	for range maxTxRetries {
		err := s.conn.Watch(ctx, func(tx *redis.Tx) error { return f(ctx, tx) }, keys...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return s.fail(op, err)
	}
	return fmt.Errorf("%s: too many concurrent changes, try again", op)
}

// RevokeGrant implements oauth.Store.
func (s *Store) RevokeGrant(ctx context.Context, id, reason string, at time.Time) error {
	gk, rk := key("grant", id), key("grant-refresh", id)
	return s.watch(ctx, "revoking a grant", func(ctx context.Context, tx *redis.Tx) error {
		data, err := tx.Get(ctx, gk).Bytes()
		if errors.Is(err, redis.Nil) {
			return oauthErr{oauth.ErrNotFound}
		}
		if err != nil {
			return err
		}
		g, err := decode[oauth.Grant](data)
		if err != nil {
			return oauthErr{err}
		}
		if !g.Active() {
			return nil // it keeps its first reason
		}
		g.Revoked, g.RevokeReason = at, reason
		data, err = json.Marshal(g)
		if err != nil {
			return oauthErr{err}
		}
		digests, err := tx.SMembers(ctx, rk).Result()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, gk, data, 0)
			p.SRem(ctx, activeKey(g.ClientID, g.Subject, g.Resource), g.ID)
			for _, d := range digests {
				p.Del(ctx, key("refresh", d))
			}
			p.Del(ctx, rk)
			return nil
		})
		return err
	}, gk, rk)
}

// use marks a code or refresh token (KEYS[1]) used and returns its data
// and how many times it was used, this time included; nil when it does
// not exist (or expired).
var use = redis.NewScript(`
local d = redis.call('HGET', KEYS[1], 'data')
if not d then return false end
return {d, redis.call('HINCRBY', KEYS[1], 'used', 1)}
`)

func useOnce[T any](ctx context.Context, s *Store, op, k string) (*T, bool, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	res, err := use.Run(ctx, s.conn, []string{k}).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, false, oauth.ErrNotFound
	}
	if err != nil {
		return nil, false, s.fail(op, err)
	}
	if len(res) != 2 {
		return nil, false, fmt.Errorf("%s: unexpected answer from Redis", op)
	}
	data, _ := res[0].(string)
	n, _ := res[1].(int64)
	v, err := decode[T]([]byte(data))
	if err != nil {
		return nil, false, err
	}
	return v, n > 1, nil
}

// SaveCode implements oauth.Store.
func (s *Store) SaveCode(ctx context.Context, c *oauth.Code) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	k := key("code", c.Digest)
	_, err = s.conn.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "data", data, "used", 0)
		p.PExpire(ctx, k, ttl(c.Expires))
		return nil
	})
	return s.fail("storing an authorization code", err)
}

// UseCode implements oauth.Store.
func (s *Store) UseCode(ctx context.Context, digest string, now time.Time) (*oauth.Code, error) {
	c, used, err := useOnce[oauth.Code](ctx, s, "using an authorization code", key("code", digest))
	if err != nil {
		return nil, err
	}
	if !now.Before(c.Expires) {
		return nil, oauth.ErrNotFound
	}
	c.Digest = digest
	if used {
		return c, oauth.ErrUsed
	}
	return c, nil
}

// saveRefresh stores a refresh token (KEYS[1]) for ARGV[2] ms and lists
// it under its grant (KEYS[2]), whose list lives as long as its longest
// token.
var saveRefresh = redis.NewScript(`
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'used', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
`)

// SaveRefresh implements oauth.Store.
func (s *Store) SaveRefresh(ctx context.Context, r *oauth.Refresh) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	ms := ttl(r.Expires).Milliseconds() + 1
	err = saveRefresh.Run(ctx, s.conn, []string{key("refresh", r.Digest), key("grant-refresh", r.GrantID)}, data, ms, r.Digest).Err()
	return s.fail("storing a refresh token", err)
}

// UseRefresh implements oauth.Store.
func (s *Store) UseRefresh(ctx context.Context, digest string, now time.Time) (*oauth.Refresh, error) {
	r, used, err := useOnce[oauth.Refresh](ctx, s, "using a refresh token", key("refresh", digest))
	if err != nil {
		return nil, err
	}
	if !now.Before(r.Expires) {
		return nil, oauth.ErrNotFound
	}
	r.Digest = digest
	if used {
		return r, oauth.ErrUsed
	}
	return r, nil
}

// SaveRequest implements oauth.Store.
func (s *Store) SaveRequest(ctx context.Context, r *oauth.Request) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	return s.fail("storing an authorization request", s.conn.Set(ctx, key("request", r.ID), data, ttl(r.Expires)).Err())
}

// Request implements oauth.Store.
func (s *Store) Request(ctx context.Context, id string, now time.Time) (*oauth.Request, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	data, err := s.conn.Get(ctx, key("request", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, oauth.ErrNotFound
	}
	if err != nil {
		return nil, s.fail("reading an authorization request", err)
	}
	r, err := decode[oauth.Request](data)
	if err != nil {
		return nil, err
	}
	if !now.Before(r.Expires) {
		return nil, oauth.ErrNotFound
	}
	return r, nil
}

// DeleteRequest implements oauth.Store.
func (s *Store) DeleteRequest(ctx context.Context, id string) error {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	return s.fail("deleting an authorization request", s.conn.Del(ctx, key("request", id)).Err())
}

// seal encrypts a key record; its kid is the additional data, so that a
// sealed record cannot be passed off under another kid.
func (s *Store) seal(k *oauth.Key) ([]byte, error) {
	plain, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(k.ID)), nil
}

// open decrypts a sealed key record.
func (s *Store) open(kid string, sealed []byte) (*oauth.Key, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("signing key %s in Redis is damaged", kid)
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signing key %s in Redis cannot be decrypted: it was sealed with another cluster key (cluster.key_env), or damaged", kid)
	}
	k, err := decode[oauth.Key](plain)
	if err != nil {
		return nil, err
	}
	if k.ID != kid {
		return nil, fmt.Errorf("signing key %s in Redis is damaged", kid)
	}
	return k, nil
}

// Keys implements oauth.Store.
func (s *Store) Keys(ctx context.Context) ([]*oauth.Key, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	m, err := s.conn.HGetAll(ctx, key("keys")).Result()
	if err != nil {
		return nil, s.fail("reading signing keys", err)
	}
	keys := make([]*oauth.Key, 0, len(m))
	for kid, sealed := range m {
		k, err := s.open(kid, []byte(sealed))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b *oauth.Key) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return keys, nil
}

// AddKey implements oauth.Store.
func (s *Store) AddKey(ctx context.Context, k *oauth.Key) error {
	sealed, err := s.seal(k)
	if err != nil {
		return fmt.Errorf("sealing signing key %s: %w", k.ID, err)
	}
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	ok, err := s.conn.HSetNX(ctx, key("keys"), k.ID, sealed).Result()
	if err != nil {
		return s.fail("storing a signing key", err)
	}
	if !ok {
		return fmt.Errorf("signing key %s exists already", k.ID)
	}
	return nil
}

// RetireKey implements oauth.Store.
func (s *Store) RetireKey(ctx context.Context, kid string, at time.Time) error {
	kk := key("keys")
	return s.watch(ctx, "retiring a signing key", func(ctx context.Context, tx *redis.Tx) error {
		sealed, err := tx.HGet(ctx, kk, kid).Bytes()
		if errors.Is(err, redis.Nil) {
			return oauthErr{oauth.ErrNotFound}
		}
		if err != nil {
			return err
		}
		k, err := s.open(kid, sealed)
		if err != nil {
			return oauthErr{err}
		}
		if !k.Retired.IsZero() {
			return nil
		}
		k.Retired = at
		if sealed, err = s.seal(k); err != nil {
			return oauthErr{err}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, kk, kid, sealed)
			return nil
		})
		return err
	}, kk)
}

// DeleteKey implements oauth.Store.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	return s.fail("deleting a signing key", s.conn.HDel(ctx, key("keys"), kid).Err())
}

// trimRefresh drops from a grant's list of refresh token digests
// (KEYS[1]) those whose token is gone; ARGV[1] is the key prefix of
// refresh tokens.
var trimRefresh = redis.NewScript(`
for _, d in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. d) == 0 then redis.call('SREM', KEYS[1], d) end
end
return 1
`)

// Purge implements oauth.Store. Codes, refresh tokens and requests carry
// TTLs, so Redis drops them itself; Purge trims the per-grant lists of
// refresh token digests of the tokens gone, one grant per command.
func (s *Store) Purge(ctx context.Context, _ time.Time) error {
	lctx, cancel := s.conn.Context(ctx)
	ids, err := s.conn.SMembers(lctx, key("grants")).Result()
	cancel()
	if err != nil {
		return s.fail("purging expired OAuth state", err)
	}
	for _, id := range ids {
		gctx, cancel := s.conn.Context(ctx)
		err := trimRefresh.Run(gctx, s.conn, []string{key("grant-refresh", id)}, key("refresh", "")).Err()
		cancel()
		if err != nil {
			return s.fail("purging expired OAuth state", err)
		}
	}
	return nil
}
