package cluster

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// TestMain: every Node a test starts has stopped (refresh loop and
// heartbeats) when the test ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEntry(t *testing.T) {
	k := keyring{key: []byte(key)}
	now := time.Now()
	good := entry{replica: "r2", url: "http://10.0.0.2:8080", expires: now.Add(time.Second)}
	v := k.encodeEntry(good)
	got, err := k.parseEntry(DirectoryPrefix+"r2", v, now)
	if err != nil || got.replica != good.replica || got.url != good.url || !got.expires.Equal(good.expires.Truncate(time.Millisecond)) {
		t.Fatalf("parseEntry(encodeEntry(e)) = %+v, %v; want %+v", got, err, good)
	}
	parts := strings.Split(v, ".")
	swap := func(i int, s string) string {
		p := append([]string(nil), parts...)
		p[i] = s
		return strings.Join(p, ".")
	}
	other := keyring{key: []byte(strings.Repeat("z", 32))}
	for name, c := range map[string]struct {
		key, value string
		want       error
	}{
		"another cluster's key": {DirectoryPrefix + "r2", other.encodeEntry(good), errEntryMAC},
		"another address":       {DirectoryPrefix + "r2", swap(3, b64([]byte("http://203.0.113.9:80"))), errEntryMAC},
		"another replica":       {DirectoryPrefix + "r3", swap(1, "r3"), errEntryMAC},
		"a later expiry":        {DirectoryPrefix + "r2", swap(2, "99999999999999"), errEntryMAC},
		"under another key":     {DirectoryPrefix + "r3", v, errEntryKey},
		"expired":               {DirectoryPrefix + "r2", k.encodeEntry(entry{replica: "r2", url: good.url, expires: now.Add(-maxSkew - time.Second)}), errEntryOld},
		"signed, bad address":   {DirectoryPrefix + "r2", k.encodeEntry(entry{replica: "r2", url: "http://a/path", expires: good.expires}), errEntryForm},
		"signed, bad replica":   {DirectoryPrefix + "R_2", k.encodeEntry(entry{replica: "R_2", url: good.url, expires: good.expires}), errEntryForm},
		"too long":              {DirectoryPrefix + "r2", v + strings.Repeat("A", maxEntryBytes), errEntryForm},
		"v2":                    {DirectoryPrefix + "r2", swap(0, "v2"), errEntryForm},
		"garbage":               {DirectoryPrefix + "r2", "x", errEntryForm},
		"empty":                 {DirectoryPrefix + "r2", "", errEntryForm},
		"bad base64":            {DirectoryPrefix + "r2", swap(3, "!!"), errEntryForm},
	} {
		if _, err := k.parseEntry(c.key, c.value, now); err != c.want {
			t.Errorf("%s: parseEntry = %v, want %v", name, err, c.want)
		}
	}
}

// FuzzParseEntry: an entry read from Redis is untrusted; no value makes
// the parser panic, and only a value made with the key is accepted.
func FuzzParseEntry(f *testing.F) {
	k := keyring{key: []byte(key)}
	now := time.Unix(1_800_000_000, 0)
	f.Add("r2", k.encodeEntry(entry{replica: "r2", url: "http://10.0.0.2:8080", expires: now.Add(time.Second)}))
	f.Add("r2", "v1.r2.1800000001000.aHR0cDovL2E6MQ.AAAA")
	f.Add("x", "v1....")
	f.Fuzz(func(t *testing.T, replica, value string) {
		e, err := k.parseEntry(DirectoryPrefix+replica, value, now)
		if err != nil {
			return
		}
		e.until = time.Time{}
		if again := k.encodeEntry(e); again != value {
			t.Fatalf("parseEntry accepted %q, which is not what the key makes of it (%q)", value, again)
		}
	})
}

// dirNode is a Node with peers: redis and a hello server at its advertise
// URL, which counts the hellos it answers.
type dirNode struct {
	*Node
	srv    *httptest.Server
	hellos atomic.Int64
	logs   *testutil.Buffer
}

const testRefresh = 300 * time.Millisecond

func startDirNode(t *testing.T, replica, redisURL string) *dirNode {
	t.Helper()
	d := &dirNode{logs: &testutil.Buffer{}}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hellos.Add(1)
		d.ServeHello(w, r)
	}))
	cfg := &config.Cluster{ReplicaID: replica, Key: key, AdvertiseURL: d.srv.URL, Peers: []string{config.PeersRedis},
		Refresh: testRefresh, ForwardTimeout: time.Second,
		Redis: &config.Redis{URLEnv: "REDIS_URL", URL: redisURL, Timeout: 200 * time.Millisecond}}
	d.Node = New(cfg, &Options{Logger: slog.New(slog.NewJSONHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	d.Start()
	t.Cleanup(func() {
		d.Close()
		d.srv.Close()
		if t.Failed() {
			t.Logf("%s log:\n%s", replica, d.logs.String())
		}
	})
	return d
}

// count is how many log lines of d have a message containing msg and the
// given attributes.
func (d *dirNode) count(msg string, attrs map[string]string) int {
	n := 0
next:
	for _, l := range d.logs.JSONLines() {
		if m, _ := l["msg"].(string); !strings.Contains(m, msg) {
			continue
		}
		for k, v := range attrs {
			if l[k] != v {
				continue next
			}
		}
		n++
	}
	return n
}

// ticks waits until d has answered n more hellos: n refreshes of a peer.
func (d *dirNode) ticks(t *testing.T, n int64) {
	t.Helper()
	want := d.hellos.Load() + n
	testutil.Eventually(t, time.Duration(n+5)*testRefresh*2, "peers to refresh", func() bool { return d.hellos.Load() >= want })
}

func peerURL(n *Node, replica string) string {
	u, ok := n.Peer(context.Background(), replica)
	if !ok {
		return ""
	}
	return u.String()
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestDirectory: replicas find each other through their heartbeats in a
// real redis-server; a forged entry is ignored and no request goes to its
// address; a replica that stops heartbeating falls out after the TTL, one
// that leaves deletes its entry at once.
func TestDirectory(t *testing.T) {
	rds := clustertest.StartRedis(t)
	rc := redisClient(t, rds.URL())
	r1 := startDirNode(t, "r1", rds.URL())
	r2 := startDirNode(t, "r2", rds.URL())
	testutil.Eventually(t, 5*time.Second, "r1 and r2 to find each other", func() bool {
		return peerURL(r1.Node, "r2") == r2.srv.URL && peerURL(r2.Node, "r1") == r1.srv.URL
	})
	if ttl := rc.PTTL(t.Context(), DirectoryPrefix+"r1").Val(); ttl <= 0 || ttl > dirTTLFactor*testRefresh {
		t.Errorf("r1's entry expires in %s, want at most %s", ttl, dirTTLFactor*testRefresh)
	}

	// Whoever can write to Redis, without the key.
	var attacked atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { attacked.Add(1) }))
	defer evil.Close()
	k := keyring{key: []byte(key)}
	real := rc.Get(t.Context(), DirectoryPrefix+"r2").Val()
	parts := strings.Split(real, ".")
	parts[3] = b64([]byte(evil.URL))
	forged := map[string]string{
		DirectoryPrefix + "evil":  keyring{key: []byte(strings.Repeat("z", 32))}.encodeEntry(entry{replica: "evil", url: evil.URL, expires: time.Now().Add(time.Hour)}),
		DirectoryPrefix + "r9":    strings.Join(parts, "."), // r2's entry with the address swapped
		DirectoryPrefix + "r8":    real,                     // replayed under another key
		DirectoryPrefix + "stale": k.encodeEntry(entry{replica: "stale", url: evil.URL, expires: time.Now().Add(-2 * maxSkew)}),
		DirectoryPrefix + "junk":  "\x00\xff not an entry",
	}
	for key, v := range forged {
		if err := rc.Set(t.Context(), key, v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r2.ticks(t, 4) // r1 read the directory at least three times since
	for key := range forged {
		if n := r1.count("ignoring an entry of the replica directory", map[string]string{"key": `"` + key + `"`}); n != 1 {
			t.Errorf("the bad entry %s was logged %d times by r1, want once", key, n)
		}
	}
	for _, id := range []string{"evil", "r9", "r8", "stale", "junk"} {
		if u := peerURL(r1.Node, id); u != "" {
			t.Errorf("r1 took %s as a peer at %s", id, u)
		}
	}
	if n := attacked.Load(); n != 0 {
		t.Errorf("%d requests went to the address of a forged entry", n)
	}
	if peerURL(r1.Node, "r2") != r2.srv.URL {
		t.Error("r1 lost r2 among the forged entries")
	}

	// r2 stops heartbeating (as a replica killed with SIGKILL does) but
	// its address still answers: it falls out once its entry expires.
	r2.Close()
	stopped := time.Now()
	testutil.Eventually(t, 3*dirTTLFactor*testRefresh, "r2's entry to expire in Redis", func() bool {
		return rc.Exists(t.Context(), DirectoryPrefix+"r2").Val() == 0
	})
	testutil.Eventually(t, 3*dirTTLFactor*testRefresh, "r1 to drop r2", func() bool {
		return r1.count("peer left", map[string]string{"peer": "r2"}) == 1
	})
	if d := time.Since(stopped); d < (dirTTLFactor-1)*testRefresh {
		t.Errorf("r2 left r1's directory %s after its last heartbeat, before its TTL", d)
	}

	// r3 drains: its entry is gone when Leave returns, and r1 drops it
	// at its next refresh (r3's hellos answer 503).
	r3 := startDirNode(t, "r3", rds.URL())
	testutil.Eventually(t, 5*time.Second, "r1 to find r3", func() bool { return peerURL(r1.Node, "r3") == r3.srv.URL })
	r3.Leave(t.Context())
	if n := rc.Exists(t.Context(), DirectoryPrefix+"r3").Val(); n != 0 {
		t.Error("r3's entry is still in Redis after Leave")
	}
	testutil.Eventually(t, dirTTLFactor*testRefresh, "r1 to drop r3 before its entry would have expired", func() bool {
		return r1.count("peer left", map[string]string{"peer": "r3"}) == 1
	})
	r1.ticks(t, 2) // r3 refreshed twice more (r2 is gone: only r3 says hello to r1)
	if rc.Exists(t.Context(), DirectoryPrefix+"r3").Val() != 0 {
		t.Error("r3 heartbeat after Leave")
	}
}

// TestDirectoryRedisOutage: with redis-server stopped the last known
// directory keeps working and each replica logs the outage once, not at
// every refresh; when Redis is back (empty) the heartbeats fill it again.
func TestDirectoryRedisOutage(t *testing.T) {
	rds := clustertest.StartRedis(t)
	rc := redisClient(t, rds.URL())
	r1 := startDirNode(t, "r1", rds.URL())
	r2 := startDirNode(t, "r2", rds.URL())
	testutil.Eventually(t, 5*time.Second, "r1 and r2 to find each other", func() bool {
		return peerURL(r1.Node, "r2") == r2.srv.URL && peerURL(r2.Node, "r1") == r1.srv.URL
	})

	rds.Stop()
	const down = "replica directory in Redis does not answer"
	testutil.Eventually(t, 5*time.Second, "r1 to log the outage", func() bool { return r1.count(down, nil) > 0 })
	r2.ticks(t, 2*dirTTLFactor) // longer than any entry's TTL
	r1.ticks(t, 2*dirTTLFactor)
	for _, n := range []*dirNode{r1, r2} {
		if c := n.count(down, nil); c != 1 {
			t.Errorf("%s logged the outage %d times, want once", n.Self(), c)
		}
	}
	if peerURL(r1.Node, "r2") != r2.srv.URL || peerURL(r2.Node, "r1") != r1.srv.URL {
		t.Error("the last known directory was lost while Redis was down")
	}
	if n := r1.count("peer left", nil); n != 0 {
		t.Errorf("r1 logged %d peers leaving during the outage", n)
	}

	rds.Start()
	const back = "replica directory in Redis answers again"
	testutil.Eventually(t, 5*time.Second, "both to see Redis back", func() bool { return r1.count(back, nil) == 1 && r2.count(back, nil) == 1 })
	testutil.Eventually(t, 5*time.Second, "the heartbeats to fill Redis again", func() bool {
		return rc.Exists(t.Context(), DirectoryPrefix+"r1", DirectoryPrefix+"r2").Val() == 2
	})
	r1.ticks(t, 2)
	if peerURL(r1.Node, "r2") != r2.srv.URL {
		t.Error("r1 lost r2 after Redis came back")
	}
	if c := r1.count(down, nil); c != 1 {
		t.Errorf("r1 logged the outage %d times in all, want once", c)
	}
}
