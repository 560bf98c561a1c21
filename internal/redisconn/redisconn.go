// Package redisconn opens the connection to the Redis server of
// cluster.redis, the one place where the stores that replicas share (rate
// limits, the OAuth authorization server's state, tool pins) get their
// client: every command bounded by cluster.redis.timeout, connecting
// included, no retries, TLS for rediss:// URLs, and the URL (which may
// hold a password) kept out of every error.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/internal/config"
)

// ErrUnavailable wraps every failure to get an answer from Redis
// (refused, timed out, closed, rejected credentials): the callers answer
// 503 rather than treat it as a missing record.
var ErrUnavailable = errors.New("the shared state store (cluster.redis) does not answer")

// Conn is a client of cluster.redis with its command timeout. Safe for
// concurrent use.
type Conn struct {
	*redis.Client
	// Timeout bounds one command (or one transaction) with Redis.
	Timeout time.Duration
	secret  string // the URL's password, scrubbed from errors
}

// quiet drops go-redis's own log lines (they go to stderr, outside the
// gateway's JSON log): every failure reaches the caller as an error,
// which the gateway logs itself.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

// New returns a client of cfg's Redis. It does no I/O: the first command
// connects. The error, for a URL that cannot be used, never quotes it.
func New(cfg *config.Redis) (*Conn, error) {
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// Not err itself: it may quote the URL, password included.
		return nil, errors.New("cluster.redis: the URL is not a valid redis:// or rediss:// URL")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	opt.DialTimeout = timeout
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.PoolTimeout = timeout
	opt.MaxRetries = -1 // a retry would double the wait; the client retries the request
	opt.ContextTimeoutEnabled = true
	if opt.TLSConfig != nil && opt.TLSConfig.MinVersion < tls.VersionTLS12 {
		opt.TLSConfig.MinVersion = tls.VersionTLS12
	}
	secret := opt.Password
	if u, err := url.Parse(cfg.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			secret = p
		}
	}
	return &Conn{Client: redis.NewClient(opt), Timeout: timeout, secret: secret}, nil
}

// Context bounds ctx by the command timeout.
func (c *Conn) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.Timeout)
}

// Err turns a Redis error into one that wraps ErrUnavailable (and still
// the original, for errors.Is), its text free of the password. nil and
// redis.Nil are returned as they are: they are answers.
func (c *Conn) Err(op string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	return &unavailable{op: op, err: err, secret: c.secret}
}

type unavailable struct {
	op     string
	err    error
	secret string
}

func (e *unavailable) Error() string {
	msg := fmt.Sprintf("%s: %s: %s", e.op, ErrUnavailable.Error(), e.err.Error())
	if e.secret != "" {
		msg = strings.ReplaceAll(msg, e.secret, "REDACTED")
	}
	return msg
}

func (e *unavailable) Unwrap() []error { return []error{ErrUnavailable, e.err} }
