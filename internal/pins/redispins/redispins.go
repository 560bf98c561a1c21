// Package redispins keeps the tool pins in Redis (cluster.redis), so that
// every replica of a cluster pins the same definitions and an approval
// (`mcpgw tools approve --config …` on any host) holds on all of them at
// their next refresh. It has the methods of pins.Store.
//
// Layout, under the prefix "mcpgw:pins:":
//
//	servers           set of the server names that have pins
//	tools:SERVER      set of the server's pinned tool names
//	pin:SERVER:TOOL   hash {approved, approved_def, seen, seen_def, first_seen, changed}
//	modes             hash server → pin_tools mode, as the gateways declared it
//
// Recording and approving are Lua scripts, which Redis runs atomically:
// two replicas that see a new tool at once pin it once (the first
// definition wins), and an approval makes the definition seen last the
// approved one in one step. Pins have no TTL: they are kept as the SQLite
// file keeps them.
//
// Every call is bounded by cluster.redis.timeout. When Redis does not
// answer, Load fails (the gateway keeps the pins it has in memory, see
// package policy), Record's writer logs and drops the observation (the
// gateway records it again when it sees it again), and the commands fail
// with an error that says so.
package redispins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/internal/pins"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

const prefix = "mcpgw:pins:"

// queueSize bounds the observations waiting to be written, as in
// package pins.
const queueSize = 1024

// Store is the tool pins in Redis. Safe for concurrent use.
type Store struct {
	conn *redisconn.Conn
	log  *slog.Logger

	queue chan pins.Pin
	wg    sync.WaitGroup // owner: Store, the writer goroutine
	once  sync.Once
}

// New returns a Store on conn and starts its writer. It does no I/O. log
// receives write failures; nil means slog.Default().
func New(conn *redisconn.Conn, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{conn: conn, log: log, queue: make(chan pins.Pin, queueSize)}
	s.wg.Add(1)
	go s.writer()
	return s
}

// Close writes what is queued (each write bounded by the timeout) and
// closes the connections. It may be called more than once; Record must
// not be called after it.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.queue)
		s.wg.Wait()
		if cerr := s.conn.Close(); cerr != nil && !errors.Is(cerr, redis.ErrClosed) {
			err = cerr
		}
	})
	return err
}

func pinKey(server, tool string) string { return prefix + "pin:" + server + ":" + tool }
func toolsKey(server string) string     { return prefix + "tools:" + server }

// Record queues an observation without blocking, as pins.Store.Record.
func (s *Store) Record(p pins.Pin) {
	select {
	case s.queue <- p:
	default:
		s.log.Warn("tool pins: too many definitions waiting to be written; one is dropped and will be recorded when seen again",
			"tool", p.Server, "name", p.Tool)
	}
}

func (s *Store) writer() {
	defer s.wg.Done()
	for p := range s.queue {
		if err := s.write(context.Background(), p); err != nil {
			s.log.Warn("tool pins: could not record a tool definition; it is recorded when seen again", "tool", p.Server, "name", p.Tool, "error", err.Error())
		}
	}
}

// record pins a tool (KEYS[1]) to ARGV's definition when it has no pin,
// else makes it the one seen last when it differs.
var record = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'approved', ARGV[1], 'approved_def', ARGV[2], 'seen', ARGV[3], 'seen_def', ARGV[4],
    'first_seen', ARGV[5], 'changed', ARGV[5])
  redis.call('SADD', KEYS[2], ARGV[6])
  redis.call('SADD', KEYS[3], ARGV[7])
  return 1
end
if redis.call('HGET', KEYS[1], 'seen') ~= ARGV[3] then
  redis.call('HSET', KEYS[1], 'seen', ARGV[3], 'seen_def', ARGV[4], 'changed', ARGV[5])
  return 2
end
return 0
`)

func (s *Store) write(ctx context.Context, p pins.Pin) error {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	keys := []string{pinKey(p.Server, p.Tool), toolsKey(p.Server), prefix + "servers"}
	err := record.Run(ctx, s.conn, keys, p.Approved, p.ApprovedDef, p.Seen, p.SeenDef, now, p.Tool, p.Server).Err()
	return s.conn.Err("recording a tool pin", err)
}

// SetModes records the pin_tools mode of each server, replacing what was
// recorded before, as pins.Store.SetModes.
func (s *Store) SetModes(ctx context.Context, modes map[string]string) error {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	_, err := s.conn.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, prefix+"modes")
		if len(modes) > 0 {
			p.HSet(ctx, prefix+"modes", modes)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the pinned servers: %w", s.conn.Err("writing", err))
	}
	return nil
}

// Load returns the pins of server by tool name.
func (s *Store) Load(ctx context.Context, server string) (map[string]*pins.Pin, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	list, err := s.load(ctx, server)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*pins.Pin, len(list))
	for _, p := range list {
		out[p.Tool] = p
	}
	return out, nil
}

func (s *Store) load(ctx context.Context, server string) ([]*pins.Pin, error) {
	tools, err := s.conn.SMembers(ctx, toolsKey(server)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", s.conn.Err("reading", err))
	}
	cmds := make([]*redis.MapStringStringCmd, len(tools))
	_, err = s.conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range tools {
			cmds[i] = p.HGetAll(ctx, pinKey(server, t))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", s.conn.Err("reading", err))
	}
	var out []*pins.Pin
	for i, c := range cmds {
		h := c.Val()
		if len(h) == 0 {
			continue
		}
		first, _ := strconv.ParseInt(h["first_seen"], 10, 64)
		changed, _ := strconv.ParseInt(h["changed"], 10, 64)
		out = append(out, &pins.Pin{Server: server, Tool: tools[i], Approved: h["approved"], Seen: h["seen"],
			ApprovedDef: []byte(h["approved_def"]), SeenDef: []byte(h["seen_def"]),
			FirstSeen: time.Unix(0, first), Changed: time.Unix(0, changed)})
	}
	return out, nil
}

// List returns every pin, by server and tool, with its server's mode.
func (s *Store) List(ctx context.Context) ([]*pins.Pin, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	servers, err := s.conn.SMembers(ctx, prefix+"servers").Result()
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", s.conn.Err("reading", err))
	}
	modes, err := s.conn.HGetAll(ctx, prefix+"modes").Result()
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", s.conn.Err("reading", err))
	}
	var out []*pins.Pin
	for _, srv := range servers {
		list, err := s.load(ctx, srv)
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			p.Mode = modes[srv]
		}
		out = append(out, list...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Server != out[j].Server {
			return out[i].Server < out[j].Server
		}
		return out[i].Tool < out[j].Tool
	})
	return out, nil
}

// approve makes the seen definition of KEYS[1] the approved one: 1 when
// it was pending, 0 when not, -1 when the tool has no pin.
var approve = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seen = redis.call('HGET', KEYS[1], 'seen')
if redis.call('HGET', KEYS[1], 'approved') == seen then return 0 end
redis.call('HSET', KEYS[1], 'approved', seen, 'approved_def', redis.call('HGET', KEYS[1], 'seen_def'))
return 1
`)

// Approve makes the definition last seen of server's tool the approved
// one, and reports whether it was pending; pins.ErrUnknown for a tool
// without a pin.
func (s *Store) Approve(ctx context.Context, server, tool string) (bool, error) {
	ctx, cancel := s.conn.Context(ctx)
	defer cancel()
	n, err := approve.Run(ctx, s.conn, []string{pinKey(server, tool)}).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("approving %s of server %s: %w", tool, server, s.conn.Err("writing", err))
	case n < 0:
		return false, pins.ErrUnknown
	}
	return n == 1, nil
}
