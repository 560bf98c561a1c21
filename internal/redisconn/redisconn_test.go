package redisconn

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
)

// TestNoSecretInErrors: neither a URL that cannot be used nor an error of
// a command quotes the password; Err keeps the original for errors.Is and
// leaves answers (nil, redis.Nil) alone.
func TestNoSecretInErrors(t *testing.T) {
	if _, err := New(&config.Redis{URL: "redis://:hunter2@[bad", Timeout: time.Second}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL: %v, want an error without the password", err)
	}
	c, err := New(&config.Redis{URL: "redis://user:s3cret-pass@127.0.0.1:1/0", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	orig := errors.New("dial redis://user:s3cret-pass@127.0.0.1:1: refused")
	err = c.Err("reading", orig)
	if strings.Contains(err.Error(), "s3cret-pass") || !errors.Is(err, ErrUnavailable) || !errors.Is(err, orig) {
		t.Errorf("Err = %q; want it redacted, wrapping ErrUnavailable and the original", err)
	}
	if c.Err("x", nil) != nil || c.Err("x", redis.Nil) != redis.Nil {
		t.Error("Err changed an answer")
	}
}

// TestBounded: a Redis that does not listen fails a command within about
// the timeout.
func TestBounded(t *testing.T) {
	c, err := New(&config.Redis{URL: "redis://127.0.0.1:" + strconv.Itoa(clustertest.FreePort(t)) + "/0", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := c.Context(t.Context())
	defer cancel()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING of nothing succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("PING took %s, want about the 200ms timeout", d)
	}
}
