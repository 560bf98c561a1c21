// Package redisrate keeps the gateway's rate limits in Redis, so that a
// limit holds across every replica of a cluster (cluster.redis): the
// generic cell rate algorithm (GCRA), one Redis key per limit and caller
// holding its theoretical arrival time, all checks of a request taken in
// one Lua script, which Redis runs atomically.
//
// GCRA is the token bucket of package ratelimit expressed as one number:
// a bucket of burst b refilled at r per second admits n more requests at
// time now when tat + n/r - b/r <= now, and then tat becomes
// max(tat, now) + n/r. The clock is Redis's own (TIME), so the replicas'
// clocks do not matter.
//
// Every command is bounded by cluster.redis.timeout; a Redis that does not
// answer makes Take fail at once with ErrUnavailable, never wait.
package redisrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

// gcra takes n tokens from each of KEYS, or none. ARGV holds, per key, its
// emission interval (microseconds per token), burst and n. It returns 0
// when all were taken, else the microseconds until they all could be.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local retry = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3*i-2])
  local burst = tonumber(ARGV[3*i-1])
  local n = tonumber(ARGV[3*i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new = tat + n * interval
  if n > burst then
    retry = math.max(retry, burst * interval)
  elseif new - burst * interval > now then
    retry = math.max(retry, new - burst * interval - now)
  end
  tats[i] = new
end
if retry > 0 then
  return math.ceil(retry)
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
return 0
`)

// ErrUnavailable wraps every failure to reach Redis.
var ErrUnavailable = errors.New("the shared rate limit store (cluster.redis) does not answer")

// Check is n requests of one caller against one limit.
type Check struct {
	// Limit names the limit ("rate", "servers.fs.session_rate").
	Limit string
	// Key is the caller (identity, address, or "" for a global limit).
	Key  string
	Rate *config.Rate
	N    int
}

// Limiter takes checks from Redis. Safe for concurrent use.
type Limiter struct {
	conn *redisconn.Conn
}

// New connects lazily to cfg's Redis: it does no I/O.
func New(cfg *config.Redis) (*Limiter, error) {
	conn, err := redisconn.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Limiter{conn: conn}, nil
}

// Close closes the connections.
func (l *Limiter) Close() error { return l.conn.Close() }

// Take takes every check's requests, or none: ok is false with the time
// until all could pass. An error wraps ErrUnavailable.
func (l *Limiter) Take(ctx context.Context, checks ...Check) (ok bool, retry time.Duration, err error) {
	var keys []string
	var args []any
	for _, c := range checks {
		if c.Rate == nil || c.N <= 0 {
			continue
		}
		sum := sha256.Sum256([]byte(c.Key))
		// The caller is hashed: identities are not stored in Redis, and
		// every key has the same short length.
		keys = append(keys, "mcpgw:rate:"+c.Limit+":"+c.Rate.Per+":"+hex.EncodeToString(sum[:16]))
		interval := math.Max(1, 1e6/c.Rate.RequestsPerSecond)
		args = append(args, strconv.FormatFloat(interval, 'f', 3, 64), c.Rate.Burst, c.N)
	}
	if len(keys) == 0 {
		return true, 0, nil
	}
	ctx, cancel := l.conn.Context(ctx)
	defer cancel()
	us, err := gcra.Run(ctx, l.conn, keys, args...).Int64()
	if err != nil {
		return false, 0, fmt.Errorf("%w: %w", ErrUnavailable, l.conn.Err("taking rate limits", err))
	}
	if us == 0 {
		return true, 0, nil
	}
	return false, time.Duration(us) * time.Microsecond, nil
}
