package cluster

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

// The replica directory in Redis (peers: redis). Every replica writes a
// heartbeat, one key per replica holding its id and advertise URL,
// signed with the cluster key, and reads the others'. Each key expires
// dirTTLFactor refresh intervals after it was written, so a replica that
// stops heartbeating (killed, cut off) falls out of the directory; one
// that drains deletes its key first.
//
// An entry only says where to send a hello: the peer is added once it
// answers a hello signed with the key, as with static peers. The MAC on
// the entry keeps whoever can write to Redis (but lacks the key) from
// making the replicas send hellos, or forwarded requests, to an address
// of their choosing; its signed expiry keeps them from replaying an old
// entry past its time.
const (
	// DirectoryPrefix starts every key of the directory; the rest is the
	// replica id.
	DirectoryPrefix = "mcpgw:cluster:replica:"
	// dirTTLFactor is how many refresh intervals an entry lives: a
	// replica that misses a heartbeat or two (a slow Redis, a pause)
	// stays in the directory.
	dirTTLFactor = 3
	// maxEntryBytes bounds an entry read from Redis.
	maxEntryBytes = 1024
	// maxDirEntries bounds how many keys a refresh reads.
	maxDirEntries = 1000
)

var replicaIDRe = regexp.MustCompile(config.ReplicaIDPattern)

// entry is one replica's heartbeat as read from the directory.
type entry struct {
	replica string
	url     string
	expires time.Time // as signed by the replica, not as Redis holds it
	until   time.Time // when the key expires in Redis, on this replica's clock
}

// encodeEntry is "v1.REPLICA.EXPIRES.URL.MAC": EXPIRES in unix
// milliseconds, URL and MAC base64url.
func (k keyring) encodeEntry(e entry) string {
	exp := strconv.FormatInt(e.expires.UnixMilli(), 10)
	mac := k.mac(purposeDirectory, e.replica, exp, e.url)
	return strings.Join([]string{"v1", e.replica, exp, b64([]byte(e.url)), b64(mac)}, ".")
}

// Errors of parseEntry.
var (
	errEntryForm = errors.New("not a directory entry (v1.REPLICA.EXPIRES.URL.MAC)")
	errEntryMAC  = errors.New("not signed with this cluster's key")
	errEntryKey  = errors.New("stored under another replica's key")
	errEntryOld  = errors.New("expired")
)

// parseEntry reads the entry stored under key, which comes from Redis
// and is untrusted: it checks the form, the MAC under the cluster key,
// that the key is the entry's replica's and that it has not expired.
func (k keyring) parseEntry(key, value string, now time.Time) (entry, error) {
	if len(value) > maxEntryBytes {
		return entry{}, errEntryForm
	}
	parts := strings.Split(value, ".")
	if len(parts) != 5 || parts[0] != "v1" {
		return entry{}, errEntryForm
	}
	replica, exp := parts[1], parts[2]
	rawURL, err := b64dec(parts[3])
	if err != nil {
		return entry{}, errEntryForm
	}
	mac, err := b64dec(parts[4])
	if err != nil {
		return entry{}, errEntryForm
	}
	if !hmac.Equal(mac, k.mac(purposeDirectory, replica, exp, string(rawURL))) {
		return entry{}, errEntryMAC
	}
	// Signed by a holder of the key from here on; still checked, so that
	// a bug in one replica cannot make the others misbehave.
	ms, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !replicaIDRe.MatchString(replica) || checkBaseURL(string(rawURL)) != nil {
		return entry{}, errEntryForm
	}
	if key != DirectoryPrefix+replica {
		return entry{}, errEntryKey
	}
	e := entry{replica: replica, url: string(rawURL), expires: time.UnixMilli(ms)}
	// The replicas' clocks may differ by up to maxSkew (see Accept).
	if !now.Before(e.expires.Add(maxSkew)) {
		return entry{}, errEntryOld
	}
	return e, nil
}

// checkBaseURL accepts http(s)://host:port without user, path, query or
// fragment, as config does for advertise_url.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("not a base URL")
	}
	return nil
}

// directory is this replica's side of the directory in Redis. Its
// methods may be called concurrently; the Node calls heartbeat and
// targets from its refresh loop, leave at drain.
type directory struct {
	client  *redisconn.Conn // nil with err set: the URL could not be used
	err     error
	keys    keyring
	self    entry // replica and url; expires is set at each heartbeat
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger

	hb    sync.Mutex // serialises heartbeat and leave; guards left and value
	left  bool       // leave was called: no more heartbeats
	value string     // the last entry this replica wrote

	mu     sync.Mutex          // guards what follows
	known  map[string]entry    // replica → its last valid entry: the last known directory
	warned map[string]struct{} // keys whose bad entry was logged
	down   bool                // the last command failed; logged once per outage
}

func newDirectory(cfg *config.Cluster, keys keyring, log *slog.Logger) *directory {
	d := &directory{
		keys:    keys,
		self:    entry{replica: cfg.ReplicaID, url: cfg.AdvertiseURL},
		ttl:     dirTTLFactor * cfg.Refresh,
		timeout: cfg.Redis.Timeout,
		log:     log,
		known:   map[string]entry{},
		warned:  map[string]struct{}{},
	}
	d.client, d.err = redisconn.New(cfg.Redis)
	if d.err != nil {
		log.Error("cluster: the replica directory cannot be used: peers are not found until cluster.redis is fixed", "error", d.err.Error(), "url_env", cfg.Redis.URLEnv)
	}
	return d
}

// failed records that Redis did not answer; only the first failure of an
// outage is logged.
func (d *directory) failed(op string, err error) {
	d.mu.Lock()
	first := !d.down
	d.down = true
	d.mu.Unlock()
	if first {
		if d.client != nil {
			err = d.client.Err(op, err) // its text free of the password
		}
		d.log.Warn("cluster: the replica directory in Redis does not answer; the last known peers are kept until it does (logged once per outage)", "operation", op, "error", err.Error())
	}
}

// answered records that Redis answered, logging the end of an outage.
func (d *directory) answered() {
	d.mu.Lock()
	back := d.down
	d.down = false
	d.mu.Unlock()
	if back {
		d.log.Info("cluster: the replica directory in Redis answers again")
	}
}

// heartbeat writes this replica's entry, valid for the TTL. It does
// nothing after leave.
func (d *directory) heartbeat(ctx context.Context) {
	if d.client == nil {
		return
	}
	d.hb.Lock()
	defer d.hb.Unlock() // held across the write, so that leave cannot pass it
	if d.left {
		return
	}
	e := d.self
	e.expires = time.Now().Add(d.ttl)
	v := d.keys.encodeEntry(e)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if err := d.client.Set(ctx, DirectoryPrefix+e.replica, v, d.ttl).Err(); err != nil {
		d.failed("writing the heartbeat", err)
		return
	}
	d.answered()
	d.value = v
}

// deleteIfMine deletes KEYS[1] when it still holds ARGV[1]: a replica
// that took over the id meanwhile keeps its entry.
var deleteIfMine = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// leave stops the heartbeats and deletes this replica's entry, so that
// no replica sends it a hello from now on.
func (d *directory) leave(ctx context.Context) {
	if d.client == nil {
		return
	}
	d.hb.Lock()
	d.left = true
	v := d.value
	d.hb.Unlock()
	if v == "" {
		return
	}
	// Also when the drain's deadline has passed: the entry must go.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout)
	defer cancel()
	if err := deleteIfMine.Run(ctx, d.client, []string{DirectoryPrefix + d.self.replica}, v).Err(); err != nil {
		d.log.Warn("cluster: could not remove this replica from the directory in Redis; its entry expires by itself", "ttl", d.ttl.String(), "error", err.Error())
		return
	}
	d.log.Info("cluster: left the replica directory")
}

// targets returns the base URLs of the other replicas in the directory.
// When Redis does not answer, they are the last known ones. An entry that
// disappears from Redis is kept until the key would have expired, so that
// a Redis that restarts empty does not hide the replicas until their next
// heartbeats; a replica that leaves also stops answering hellos, which
// takes it out of the peers at once.
func (d *directory) targets(ctx context.Context) []string {
	if d.client == nil {
		return nil
	}
	read, err := d.read(ctx)
	if err != nil {
		d.failed("reading the directory", err)
	} else {
		d.answered()
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range read {
		d.known[e.replica] = e
	}
	var out []string
	for id, e := range d.known {
		if err == nil && !now.Before(e.until) {
			delete(d.known, id)
			continue
		}
		if id != d.self.replica {
			out = append(out, e.url)
		}
	}
	slices.Sort(out)
	return out
}

// read lists the directory's keys and returns its valid entries. A bad
// entry (another key's, forged, expired) is logged once per key and
// ignored.
func (d *directory) read(ctx context.Context) ([]entry, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var keys []string
	var cursor uint64
	for {
		batch, next, err := d.client.Scan(ctx, cursor, DirectoryPrefix+"*", 100).Result()
		if err != nil {
			return nil, err
		}
		keys = append(keys, batch...)
		if cursor = next; cursor == 0 || len(keys) >= maxDirEntries {
			break
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // SCAN may return a key twice
	if len(keys) > maxDirEntries {
		d.log.Warn("cluster: the replica directory holds too many keys; reading the first ones", "keys", len(keys), "max", maxDirEntries)
		keys = keys[:maxDirEntries]
	}
	if len(keys) == 0 {
		return nil, nil
	}
	// Each value with the time its key has left, in one round trip.
	gets := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			gets[i], ttls[i] = p.Get(ctx, k), p.PTTL(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	now := time.Now()
	var out []entry
	for i, k := range keys {
		v, err := gets[i].Result()
		if err != nil {
			continue // expired between SCAN and GET
		}
		e, err := d.keys.parseEntry(k, v, now)
		// A key without an expiry (not written by a replica, which
		// always sets one) is kept for one TTL after it was last seen.
		left := d.ttl
		if t, terr := ttls[i].Result(); terr == nil && t > 0 {
			left = min(t, d.ttl)
		}
		e.until = now.Add(left)
		if d.bad(k, err) {
			// The key name is printable and bounded (%.100q); the value
			// is not quoted: it is untrusted.
			d.log.Warn("cluster: ignoring an entry of the replica directory", "key", fmt.Sprintf("%.100q", k), "reason", err.Error())
		}
		switch {
		case err != nil:
		case e.replica == d.self.replica && e.url != d.self.url:
			d.log.Error("cluster: another replica writes this replica's id in the directory; give each replica its own cluster.replica_id", "replica", e.replica, "url", e.url)
		default:
			out = append(out, e)
		}
	}
	return out, nil
}

// bad records whether the entry under key is bad (err != nil) and
// reports whether that is news to log: a key is logged once while it
// stays bad.
func (d *directory) bad(key string, err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, warned := d.warned[key]
	if err == nil {
		delete(d.warned, key)
		return false
	}
	if !warned && len(d.warned) < maxDirEntries {
		d.warned[key] = struct{}{}
	}
	return !warned
}

// close releases the connections.
func (d *directory) close() {
	if d.client != nil {
		_ = d.client.Close()
	}
}
